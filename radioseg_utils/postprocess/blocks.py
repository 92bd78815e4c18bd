"""From model outputs to labelled, measured sources, one block of the image at a time.

The catalogue of an image of any size is built in square blocks (cores of ``block``
pixels) read with a ``margin`` on each side (:func:`catalogue_blocks`):

1. :func:`segment_block` turns the model outputs of the padded window into source labels
   and measures them on the image section: the one step that decides what a source is;
2. :func:`own_core` keeps the sources whose centroid lies in the block's core and the
   labels of the core, renumbered ``1..n`` in catalogue order: every source belongs to
   exactly one block, and sources up to ``margin`` pixels across the core border are
   whole, so tile and block borders neither duplicate nor split them;
3. :func:`offset_ids` gives the blocks consecutive ids in block order.

Where only some finished sources are wanted (a cut on ``p_real``), :func:`keep_sources`
drops the others from a block's labels, catalogue and components, numbering the kept
ones ``1..m`` again before the ids are offset.

Where the Gaussian components of the sources are listed
(:mod:`radioseg_utils.postprocess.decompose`), :func:`own_components` keeps those of the
owned sources and :func:`offset_components` numbers them on across blocks.

Blocks are independent, so they can run in any order, on any worker, and be resumed.
The global threshold is computed on an evenly strided sample of the probabilities
(:func:`sample_step`, :func:`threshold_from_sample`), the same sample whether the map is
in memory or streamed in bands of rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy.table import Table, vstack

from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.postprocess.centres import (
    DEFAULT_CENTRE_THRESHOLD,
    find_centres,
    seeded_labels,
)
from radioseg_utils.postprocess.components import label_components, split_blends
from radioseg_utils.postprocess.measure import measure_sources
from radioseg_utils.postprocess.reliability import detection_columns
from radioseg_utils.postprocess.threshold import (
    HYSTERESIS_LOW_FRACTION,
    apply_hysteresis,
    threshold_value,
)

__all__ = ["Block", "catalogue_blocks", "segment_block", "owned", "own_core", "own_components",
           "keep_sources", "offset_ids", "offset_components", "stack_blocks", "sample_step", "band_sample",
           "threshold_from_sample"]


class Block:
    """A catalogue block: its core ``[y0, y1) x [x0, x1)`` and the padded window read.

    Examples
    --------
    >>> b = catalogue_blocks((100, 100), block=64, margin=8)[1]
    >>> b.core, b.window
    ((0, 64, 64, 100), (slice(0, 72, None), slice(56, 100, None)))
    """

    __slots__ = ("index", "core", "padded")

    def __init__(self, index: tuple[int, int], core: tuple[int, int, int, int],
                 padded: tuple[int, int, int, int]) -> None:
        self.index, self.core, self.padded = index, core, padded

    @property
    def window(self) -> tuple[slice, slice]:
        """``(slice_y, slice_x)`` of the padded window in the image."""
        py0, py1, px0, px1 = self.padded
        return slice(py0, py1), slice(px0, px1)

    @property
    def name(self) -> str:
        """File-name stem of the block, e.g. ``block_0001_0002``."""
        return f"block_{self.index[0]:04d}_{self.index[1]:04d}"

    def __repr__(self) -> str:
        return f"Block(index={self.index}, core={self.core}, padded={self.padded})"


def _axis(n: int, block: int, margin: int):
    for start in range(0, n, block):
        stop = min(start + block, n)
        yield start, stop, max(0, start - margin), min(n, stop + margin)


def catalogue_blocks(shape: tuple[int, int], *, block: int, margin: int) -> list[Block]:
    """Blocks covering an image of ``shape`` (ny, nx), in row-major order.

    Raises
    ------
    ValueError
        If ``block < 1`` or ``margin < 0``.
    """
    if block < 1 or margin < 0:
        raise ValueError(f"need block >= 1 and margin >= 0, got {block=}, {margin=}")
    return [Block((by, bx), (y0, y1, x0, x1), (py0, py1, px0, px1))
            for by, (y0, y1, py0, py1) in enumerate(_axis(shape[0], block, margin))
            for bx, (x0, x1, px0, px1) in enumerate(_axis(shape[1], block, margin))]


def segment_block(
    sky: SkyImage,
    prob: np.ndarray,
    *,
    threshold: float | tuple[float, float],
    noise: float | np.ndarray,
    background: float | np.ndarray,
    primary_beam: Any,
    config: Any,
    beam_fwhm_arcsec: float | None = None,
    local_scale: bool = False,
) -> tuple[np.ndarray, Table]:
    """Labels and catalogue of the sources in one padded window.

    Parameters
    ----------
    sky : SkyImage
        Image section of the window (Jy/beam), with its WCS and band.
    prob : ndarray, shape (h, w, C)
        Model outputs on the window; channel 0 is the source probability, channel 1 (if
        any) the centre heat map of a model with a centre head.
    threshold : float or (low, high)
        Global threshold of channel 0 (hysteresis for a pair).
    noise, background : float or ndarray (h, w)
        Image rms and background in Jy/beam: numbers, or maps of the window.
    primary_beam : PrimaryBeam or callable, optional
        Fluxes are divided by it.
    config : PredictConfig
        Component and measurement settings (``connectivity``, ``min_area``,
        ``split_blends``, ``min_distance``, ``grow``, ``rule``; ``centre_threshold`` and
        ``centre_distance`` with a centre head: then every peak of the centre map above
        the threshold is one source, owning its watershed share of the mask,
        :func:`radioseg_utils.postprocess.centres.seeded_labels`).
    beam_fwhm_arcsec, local_scale
        Restoring beam (default the band's) and where the pixel scale is taken
        (:func:`~radioseg_utils.postprocess.measure.measure_sources`).

    Returns
    -------
    labels : ndarray of int, shape (h, w)
        Source labels of the window (0 = background).
    catalogue : astropy.table.Table
        :func:`~radioseg_utils.postprocess.measure.measure_sources` of the labels, ``x``, ``y`` in
        window pixels, ``label`` the value in ``labels``, and the model's confidence and the
        brighter-neighbour distance (:func:`~radioseg_utils.postprocess.reliability.detection_columns`:
        measured on the whole window, so neighbours across the core border count).
    """
    p = prob[..., 0]
    with np.errstate(invalid="ignore"):
        mask = apply_hysteresis(p, *threshold) if isinstance(threshold, tuple) else p > threshold
    if prob.shape[-1] > 1:
        level = config.centre_threshold
        centres = find_centres(prob[..., 1], min_distance=config.centre_distance,
                               threshold=DEFAULT_CENTRE_THRESHOLD if level is None else level)
        labels = seeded_labels(mask, centres, np.nan_to_num(sky.data))
    else:
        comp = label_components(mask, connectivity=config.connectivity, min_area=config.min_area)
        labels = comp.labels
        if config.split_blends and comp.n:
            labels = split_blends(labels, np.nan_to_num(sky.data), min_distance=config.min_distance)
    cat = measure_sources(sky.data, labels, sky.wcs, sky.band, noise=noise,
                          background=background, primary_beam=primary_beam,
                          beam_fwhm_arcsec=beam_fwhm_arcsec, grow=config.grow, rule=config.rule,
                          local_scale=local_scale)
    beam = beam_fwhm_arcsec if beam_fwhm_arcsec is not None else sky.band.beam_fwhm_arcsec
    return labels, detection_columns(cat, labels, prob, beam_fwhm_arcsec=beam)


def owned(block: Block, catalogue: Table) -> np.ndarray:
    """Which sources of a padded window's catalogue (``x``, ``y`` in window pixels) have
    their centroid in the block's core: bool, one per row."""
    y0, y1, x0, x1 = block.core
    py0, _, px0, _ = block.padded
    cx, cy = np.asarray(catalogue["x"]) + px0, np.asarray(catalogue["y"]) + py0
    return (cx >= x0 - 0.5) & (cx < x1 - 0.5) & (cy >= y0 - 0.5) & (cy < y1 - 0.5)


def own_core(block: Block, labels: np.ndarray, catalogue: Table) -> tuple[np.ndarray, Table]:
    """The sources whose centroid lies in the block's core, renumbered ``1..n``.

    Parameters
    ----------
    block : Block
        The block (``labels`` and ``catalogue`` are of its padded window).
    labels, catalogue
        Output of :func:`segment_block`.

    Returns
    -------
    core_labels : ndarray of int32, shape (y1 - y0, x1 - x0)
        Labels of the core: row ``k`` of the returned catalogue is ``k + 1``; sources owned
        by another block are 0.
    catalogue : astropy.table.Table
        Owned sources, ``x``, ``y`` in image pixels, ``id`` = ``1..n``, no ``label``.
    """
    y0, y1, x0, x1 = block.core
    py0, _, px0, _ = block.padded
    keep = owned(block, catalogue)
    cat = catalogue[keep]
    lut = _owned_ids(labels, catalogue, keep)
    core = lut[labels[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]]
    cat["id"] = np.arange(1, len(cat) + 1, dtype=np.int32)
    cat["x"], cat["y"] = np.asarray(cat["x"]) + px0, np.asarray(cat["y"]) + py0
    cat.remove_column("label")
    return core, cat


def own_components(block: Block, labels: np.ndarray, catalogue: Table,
                   components: Table) -> Table:
    """The components of the sources :func:`own_core` keeps, with their ids.

    Parameters
    ----------
    block : Block
        The block.
    labels, catalogue
        Output of :func:`segment_block`.
    components : astropy.table.Table
        :func:`~radioseg_utils.postprocess.decompose.decompose_sources` of the window.

    Returns
    -------
    astropy.table.Table
        The owned sources' components: ``source_id`` their source's ``id`` in the
        block's catalogue, ``x``, ``y`` in image pixels, no ``label``.
    """
    py0, _, px0, _ = block.padded
    lut = _owned_ids(labels, catalogue, owned(block, catalogue))
    source = lut[np.asarray(components["label"], dtype=np.int64)]
    comps = components[source > 0]
    comps.add_column(source[source > 0].astype(np.int64), name="source_id", index=0)
    comps["x"], comps["y"] = np.asarray(comps["x"]) + px0, np.asarray(comps["y"]) + py0
    comps.remove_column("label")
    return comps


def _owned_ids(labels: np.ndarray, catalogue: Table, keep: np.ndarray) -> np.ndarray:
    """Lookup from window label to the owned source's id ``1..n`` (0: not owned)."""
    lut = np.zeros(int(labels.max(initial=0)) + 1, np.int32)
    lut[np.asarray(catalogue["label"], dtype=np.int64)[keep]] = np.arange(1, keep.sum() + 1)
    return lut


def keep_sources(core: np.ndarray, catalogue: Table, keep: np.ndarray,
                 components: Table | None = None) -> tuple[np.ndarray, Table, Table | None]:
    """Only the sources ``keep`` of a block, renumbered ``1..m`` in catalogue order.

    Parameters
    ----------
    core : ndarray of int
        Labels of the block: row ``k`` of ``catalogue`` is ``k + 1`` (as :func:`own_core`
        returns them, or the labels of a whole image with its catalogue).
    catalogue : astropy.table.Table
        Its sources, with ``id`` = ``1..n``.
    keep : ndarray of bool, shape (n,)
        The sources kept.
    components : astropy.table.Table, optional
        Their components (:func:`own_components`, ``source_id`` in ``1..n``).

    Returns
    -------
    core, catalogue, components
        The labels of the kept sources (0 elsewhere), their rows with ``id`` = ``1..m``,
        and their components with ``source_id`` renumbered (None without components).
    """
    keep = np.asarray(keep, bool)
    if keep.shape != (len(catalogue),):
        raise ValueError(f"keep has shape {keep.shape}; the catalogue has {len(catalogue)} rows")
    lut = np.zeros(len(catalogue) + 1, np.int32)
    lut[1:][keep] = np.arange(1, keep.sum() + 1)
    kept = catalogue[keep]
    kept["id"] = np.arange(1, len(kept) + 1, dtype=np.int32)
    if components is not None:
        source = lut[np.asarray(components["source_id"], dtype=np.int64)]
        components = components[source > 0]
        components["source_id"] = source[source > 0].astype(np.int64)
    return lut[core], kept, components


def offset_ids(core: np.ndarray, catalogue: Table, offset: int) -> tuple[np.ndarray, Table]:
    """Shift the ids ``1..n`` of a block by ``offset`` (the sources of earlier blocks)."""
    catalogue = catalogue.copy(copy_data=False)
    catalogue["id"] = np.arange(offset + 1, offset + 1 + len(catalogue))
    return np.where(core > 0, core + offset, 0).astype(np.int32), catalogue


def offset_components(components: Table, offset: int, first: int) -> Table:
    """A block's components with their sources' ids shifted by ``offset`` and component
    ids ``first, first + 1, ...``."""
    components = components.copy(copy_data=False)
    components["source_id"] = np.asarray(components["source_id"]) + offset
    components.add_column(np.arange(first, first + len(components)), name="component", index=0)
    return components


def stack_blocks(tables: list[Table]) -> Table:
    """One catalogue from the blocks' catalogues (already offset)."""
    return vstack(tables, metadata_conflicts="silent")


def sample_step(shape: tuple[int, int], max_pixels: int) -> int:
    """Stride of the threshold sample ``prob[::step, ::step]``: at most ``max_pixels``."""
    return max(1, math.ceil(math.sqrt(shape[0] * shape[1] / max_pixels)))


def band_sample(rows: np.ndarray, first_row: int, step: int) -> np.ndarray:
    """The pixels of a band of rows that fall on the grid ``prob[::step, ::step]`` of the
    whole image (the band starts at image row ``first_row``), as a compact copy: a strided
    view would keep the whole band alive, and the bands of a large image add up to the
    whole map.

    Examples
    --------
    >>> rows = np.arange(20.0).reshape(5, 4)  # image rows 3..7 of 4 columns
    >>> band_sample(rows, 3, 2).tolist()  # image rows 4 and 6, columns 0 and 2
    [[4.0, 6.0], [12.0, 14.0]]
    """
    return rows[(-first_row) % step :: step, ::step].copy()


def threshold_from_sample(sample: np.ndarray, method: str, kwargs: dict) -> float | tuple[float, float]:
    """Global threshold of a probability sample (``(low, high)`` for hysteresis).

    ``hysteresis`` takes ``high`` (default: Yen's threshold of the sample) and ``low``
    (default ``HYSTERESIS_LOW_FRACTION * high``).
    """
    if method != "hysteresis":
        return threshold_value(sample, method, **kwargs)
    options = dict(kwargs)
    high = options.pop("high", None)
    low = options.pop("low", None)
    high = threshold_value(sample, "yen", **options) if high is None else float(high)
    low = HYSTERESIS_LOW_FRACTION * high if low is None else float(low)
    return low, high
