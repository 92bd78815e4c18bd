"""From an image to a segmentation, a probability map and a source catalogue.

:func:`predict_image` runs the whole inference chain on an image file of any size, and
:func:`segment` the same chain on an image already in memory
(:class:`~radioseg_utils.fitsio.SkyImage`), which
:func:`radioseg_utils.baselines.run_unet` times as a finder like the classical ones:

1. tiled inference with blended seams (:func:`radioseg_utils.tiling.predict_tiled`),
   reading one tile at a time from the file (:func:`predict_image`); the probability map
   lives in memory, or in a temporary memory-mapped file for images above
   ``MEMMAP_PIXELS``;
2. one global threshold (:mod:`radioseg_utils.threshold`, computed on an evenly strided
   sample of at most ``THRESHOLD_SAMPLE_PIXELS`` probabilities);
3. connected components, optional deblending and measurement on the image
   (:mod:`radioseg_utils.components`, :mod:`radioseg_utils.measure`), block by block
   (``CATALOGUE_BLOCK`` pixels plus a ``BLOCK_MARGIN`` on each side; a source belongs to the
   block whose core holds its centroid, so sources up to the margin in size are whole);
4. :func:`predict_image` writes outputs in ``out_dir``: ``<stem>_seg.fits`` (source ids, same WCS and header as the
   input), ``<stem>_prob.fits``, the catalogue as ``<stem>_cat.ecsv`` and
   ``<stem>_cat.fits`` (with units), the SDC1 submission ``<stem>_submission.txt`` and a
   DS9 region file ``<stem>.reg`` (fk5 ellipses).

The model is a path to a radioseg ``.keras`` model with its sidecar (loaded by
:func:`radioseg_utils.modelio.load_model`, which also gives its band and normalisation) or
any callable mapping ``(B, H, W, 1)`` float32 batches to probabilities.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
import tempfile
from typing import NamedTuple
import warnings

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from .catalogue import write_submission
from .components import DEFAULT_CONNECTIVITY, DEFAULT_MIN_DISTANCE, label_components, split_blends
from .fitsio import SkyImage, read_image, write_image
from .measure import ClassRule, measure_sources
from .noise import estimate_noise
from .paths import check_writable
from .normalise import normalise as normalise_image
from .sources import PrimaryBeam
from .threshold import HYSTERESIS_LOW_FRACTION, apply_hysteresis, threshold_value
from .tiling import DEFAULT_BATCH, DEFAULT_OVERLAP, DEFAULT_TILE, predict_tiled

__all__ = [
    "DEFAULT_MODEL",
    "MEMMAP_PIXELS",
    "THRESHOLD_SAMPLE_PIXELS",
    "CATALOGUE_BLOCK",
    "BLOCK_MARGIN",
    "NOISE_BOX",
    "PredictConfig",
    "PredictResult",
    "Segmentation",
    "load_segmenter",
    "predict_image",
    "segment",
    "write_ds9_regions",
]

logger = logging.getLogger(__name__)

#: Pretrained model shipped with the package (used when no model is given).
DEFAULT_MODEL: Path = Path(__file__).resolve().parent / "pretrained" / "unet_B1.keras"
#: Images with more pixels keep their probability and segmentation maps on disk.
MEMMAP_PIXELS: int = 8192 * 8192
#: Largest number of probabilities the global threshold is computed from.
THRESHOLD_SAMPLE_PIXELS: int = 4096 * 4096
#: Side of the blocks the catalogue is built in, in pixels.
CATALOGUE_BLOCK: int = 4096
#: Extra pixels read around each block so that sources crossing its edge are whole.
BLOCK_MARGIN: int = 128
#: Side of the central box the image noise is estimated in, in pixels.
NOISE_BOX: int = 2048


@dataclass(frozen=True)
class PredictConfig:
    """Settings of :func:`predict_image` (data go in the call, not here).

    Attributes
    ----------
    threshold : str
        ``"fixed"`` (default: probability 0.5, the decision boundary of a network trained
        with cross-entropy), ``"yen"`` (the poster's choice; on well-trained probability maps
        it cuts far too low, see the thresholding chapter), ``"otsu"``, ``"triangle"``,
        ``"li"`` or ``"hysteresis"``.
    threshold_kwargs : dict
        Options of the threshold method (``value`` for fixed; ``low``/``high`` for hysteresis).
    min_area : int
        Smallest component kept, in pixels.
    connectivity : {8, 4}
        Pixel connectivity of components.
    split_blends : bool
        Split components with several image peaks by watershed.
    min_distance : int
        Minimum peak separation for splitting, in pixels.
    grow : float
        Pixels by which components are grown before measuring (to include the wings).
    tile, overlap, batch_size : int
        Tiled inference settings (:func:`radioseg_utils.tiling.predict_tiled`).
    rule : ClassRule
        SIZE/CLASS rule of :func:`radioseg_utils.measure.measure_sources`.
    """

    threshold: str = "fixed"
    threshold_kwargs: dict = field(default_factory=dict)
    min_area: int = 3
    connectivity: int = DEFAULT_CONNECTIVITY
    split_blends: bool = False
    min_distance: int = DEFAULT_MIN_DISTANCE
    grow: float = 1.0
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = DEFAULT_BATCH
    rule: ClassRule = ClassRule()


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_image` produced.

    Attributes
    ----------
    catalogue : astropy.table.Table
        The sources (ids equal to the values in the segmentation map).
    threshold : float or tuple
        Threshold applied to the probabilities (``(low, high)`` for hysteresis).
    noise : float
        Image rms (Jy/beam) used for the peak S/N.
    paths : dict
        Output files by kind: ``segmentation``, ``probability``, ``ecsv``, ``fits``,
        ``submission``, ``regions``.
    """

    catalogue: Table
    threshold: float | tuple[float, float]
    noise: float
    paths: dict[str, Path]


class Segmentation(NamedTuple):
    """What :func:`segment` returns: float32 probabilities ``prob`` and int32 source ids
    ``labels`` (0 = background), both ``(ny, nx)``; the ``catalogue`` (``meta``: ``NOISE``,
    ``BACKGRND``, ``THRESH``, ``THRVALUE``, ``NORM``); the ``threshold`` applied (``(low,
    high)`` for hysteresis)."""

    prob: np.ndarray
    labels: np.ndarray
    catalogue: Table
    threshold: float | tuple[float, float]


class _FitsTiles:
    """Array-like view of a FITS image that reads only the requested section."""

    def __init__(self, path: Path, shape: tuple[int, int]):
        self.path, self.shape = path, shape

    def __getitem__(self, index: tuple[slice, slice]) -> np.ndarray:
        return read_image(self.path, section=index).data

    def section(self, index: tuple[slice, slice]) -> SkyImage:
        return read_image(self.path, section=index)


class _MemoryTiles:
    """The same view of an image already in memory."""

    def __init__(self, sky: SkyImage):
        self.sky, self.shape = sky, sky.shape

    def __getitem__(self, index: tuple[slice, slice]) -> np.ndarray:
        return self.sky.data[index]

    def section(self, index: tuple[slice, slice]) -> SkyImage:
        return replace(self.sky, data=self.sky.data[index], wcs=self.sky.wcs.slice(index),
                       origin=(index[0].start, index[1].start))


def _noise_box(shape: tuple[int, int]) -> tuple[slice, slice]:
    """Central box of side at most ``NOISE_BOX`` in which the noise is estimated."""
    ny, nx = shape
    return (slice((ny - min(ny, NOISE_BOX)) // 2, (ny + min(ny, NOISE_BOX)) // 2),
            slice((nx - min(nx, NOISE_BOX)) // 2, (nx + min(nx, NOISE_BOX)) // 2))


def _image_shape(path: Path) -> tuple[int, int]:
    with warnings.catch_warnings():  # SDC1 headers carry a BLANK card on float data
        warnings.filterwarnings("ignore", message=".*BLANK.*", category=fits.verify.VerifyWarning)
        header = fits.getheader(path)
    return int(header["NAXIS2"]), int(header["NAXIS1"])


def load_segmenter(
    model: str | Path | Callable[[np.ndarray], np.ndarray],
    band: str,
    normalisation: str | None = None,
) -> tuple[Callable[[np.ndarray], np.ndarray], str | None]:
    """``(model, normalisation)``, loaded once to segment several images.

    A ``.keras`` file is read with its sidecar by :func:`radioseg_utils.modelio.load_model`,
    checked against ``band``, and ``normalisation`` defaults to (and must agree with) the
    sidecar's; a loaded model or callable is returned unchanged with ``normalisation``
    (None: no normalisation). Raises FileNotFoundError for a missing file and
    :class:`~radioseg_utils.modelio.ModelMismatchError` for another band or normalisation.
    """
    if not isinstance(model, (str, Path)):
        return model, normalisation
    path = Path(model)
    if not path.with_suffix(".keras").is_file() and not path.is_file():
        hint = (" (the package's pretrained model is missing: reinstall radioseg or "
                "recreate it with `radioseg pretrain`)") if path == DEFAULT_MODEL else ""
        raise FileNotFoundError(f"model file {path} not found{hint}")
    from .modelio import load_model

    loaded, meta = load_model(path, expect_band=band, expect_normalisation=normalisation)
    return loaded, meta["normalisation"]


def _memmap_or_zeros(shape, dtype, folder: Path | None) -> np.ndarray:
    if folder is None:
        return np.zeros(shape, dtype)
    handle = tempfile.NamedTemporaryFile(dir=folder, suffix=".npy", delete=False)
    handle.close()
    return np.lib.format.open_memmap(handle.name, mode="w+", dtype=dtype, shape=shape)


def _strided_sample(array: np.ndarray) -> np.ndarray:
    step = max(1, math.ceil(math.sqrt(array.size / THRESHOLD_SAMPLE_PIXELS)))
    return np.asarray(array[::step, ::step])


def _global_threshold(prob: np.ndarray, method: str, kwargs: dict):
    sample = _strided_sample(prob)
    if method != "hysteresis":
        return threshold_value(sample, method, **kwargs)
    options = dict(kwargs)
    high = options.pop("high", None)
    low = options.pop("low", None)
    high = threshold_value(sample, "yen", **options) if high is None else float(high)
    low = HYSTERESIS_LOW_FRACTION * high if low is None else float(low)
    return low, high


def _blocks(n: int, block: int, margin: int):
    """(core start, core stop, padded start, padded stop) along one axis."""
    for start in range(0, n, block):
        stop = min(start + block, n)
        yield start, stop, max(0, start - margin), min(n, stop + margin)


def _catalogue_and_segmentation(tiles, prob, seg, value, band, noise, background, primary_beam,
                                config):
    ny, nx = prob.shape
    tables: list[Table] = []
    next_id = 1
    for y0, y1, py0, py1 in _blocks(ny, CATALOGUE_BLOCK, BLOCK_MARGIN):
        for x0, x1, px0, px1 in _blocks(nx, CATALOGUE_BLOCK, BLOCK_MARGIN):
            window = (slice(py0, py1), slice(px0, px1))
            p = np.asarray(prob[window])
            with np.errstate(invalid="ignore"):
                mask = (apply_hysteresis(p, *value) if isinstance(value, tuple) else p > value)
            comp = label_components(mask, connectivity=config.connectivity, min_area=config.min_area)
            sky = tiles.section(window)
            labels = comp.labels
            if config.split_blends and comp.n:
                labels = split_blends(labels, np.nan_to_num(sky.data), min_distance=config.min_distance)
            cat = measure_sources(sky.data, labels, sky.wcs, band, noise=noise,
                                  background=background, primary_beam=primary_beam,
                                  grow=config.grow, rule=config.rule)
            cx, cy = np.asarray(cat["x"]) + px0, np.asarray(cat["y"]) + py0
            keep = (cx >= x0 - 0.5) & (cx < x1 - 0.5) & (cy >= y0 - 0.5) & (cy < y1 - 0.5)
            cat = cat[keep]
            lut = np.zeros(int(labels.max(initial=0)) + 1, seg.dtype)
            new_ids = np.arange(next_id, next_id + len(cat))
            lut[np.asarray(cat["label"])] = new_ids
            core = (slice(y0 - py0, y1 - py0), slice(x0 - px0, x1 - px0))
            seg[y0:y1, x0:x1] = lut[labels[core]]
            cat["id"] = new_ids
            cat["x"] = cx[keep]
            cat["y"] = cy[keep]
            cat.remove_column("label")
            tables.append(cat)
            next_id += len(cat)
    return vstack(tables, metadata_conflicts="silent")


def _primary_beam(primary_beam):
    """A primary-beam FITS path read as :class:`~radioseg_utils.sources.PrimaryBeam`."""
    if isinstance(primary_beam, (str, Path)):
        return PrimaryBeam.from_fits(primary_beam)
    return primary_beam


def _run(tiles, net, normalisation, *, band, noise, background, primary_beam, config,
         progress, folder, seg_dtype):
    """Tiled inference, global threshold, components and catalogue: ``(prob, seg, cat, value)``."""
    ny, nx = tiles.shape
    tile_norm = None
    if normalisation is not None:
        tile_norm = functools.partial(normalise_image, method=normalisation, noise=noise)
    prob = predict_tiled(net, tiles, tile=config.tile, overlap=config.overlap,
                         batch_size=config.batch_size, normalise=tile_norm,
                         out=_memmap_or_zeros((ny, nx), np.float32, folder), progress=progress)
    value = _global_threshold(prob, config.threshold, config.threshold_kwargs)
    seg = _memmap_or_zeros((ny, nx), seg_dtype, folder)
    catalogue = _catalogue_and_segmentation(tiles, prob, seg, value, band, noise, background,
                                            _primary_beam(primary_beam), config)
    # short upper-case keys: they become FITS header cards of the catalogue table
    catalogue.meta.update(BAND=band.name, NOISE=float(noise), BACKGRND=float(background),
                          THRESH=config.threshold, THRVALUE=str(value), NORM=str(normalisation))
    logger.info("%d sources, threshold %s, noise %.3g Jy/beam", len(catalogue), value, noise)
    return prob, seg, catalogue, value


def write_ds9_regions(catalogue: Table, path: str | Path, *, overwrite: bool = False,
                      color: str = "green") -> Path:
    """Write the sources as DS9 fk5 ellipses (measured FWHM / 2 semi-axes, with ids).

    The DS9 angle is counter-clockwise from the RA axis (west on the sky as displayed),
    i.e. ``pa_eon + 90`` for a position angle east of north.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Catalogue of :func:`radioseg_utils.measure.measure_sources` (uses ``ra_cent``,
        ``dec_cent``, ``fwhm_maj``, ``fwhm_min``, ``pa_eon``, ``id``).
    path : str or Path
        Output ``.reg`` file; replaced only when ``overwrite`` is True.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = check_writable(path, overwrite=overwrite)
    lines = ["# Region file format: DS9 version 4.1", f"global color={color} width=1", "fk5"]
    for row in catalogue:
        lines.append(
            f"ellipse({float(row['ra_cent']) % 360.0:.7f},{float(row['dec_cent']):.7f},"
            f"{float(row['fwhm_maj']) / 2:.3f}\",{float(row['fwhm_min']) / 2:.3f}\","
            f"{(float(row['pa_eon']) + 90.0) % 180.0:.2f}) # text={{{int(row['id'])}}}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def predict_image(
    image_path: str | Path,
    model: str | Path | Callable[[np.ndarray], np.ndarray] = DEFAULT_MODEL,
    *,
    out_dir: str | Path,
    normalisation: str | None = None,
    config: PredictConfig = PredictConfig(),
    noise: float | None = None,
    primary_beam: str | Path | Callable | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> PredictResult:
    """Segment an image with a model and write the segmentation, probabilities and catalogue.

    Parameters
    ----------
    image_path : str or Path
        SDC1-style FITS image (2-D or 4-D, Jy/beam) of any size.
    model : path or callable
        A radioseg ``.keras`` model with its sidecar (default :data:`DEFAULT_MODEL`), or a
        callable ``(B, H, W, 1) -> (B, H, W, 1)`` probabilities.
    out_dir : str or Path
        Folder for the outputs (created).
    normalisation : str, optional
        Name of the tile normalisation (:func:`radioseg_utils.normalise.normalise`). For a
        model file it defaults to, and must agree with, the sidecar's; for a callable,
        None means no normalisation.
    config : PredictConfig
        Threshold, component, measurement and tiling settings.
    noise : float, optional
        Image rms in Jy/beam for the peak S/N and noise-based normalisations; default the
        sigma-clipped rms of a central ``NOISE_BOX`` box, whose sigma-clipped median is
        subtracted as background before sources are measured.
    primary_beam : path or callable, optional
        SDC1 primary-beam FITS file (or a callable of RA, Dec); fluxes are divided by it.
    overwrite : bool
        Replace existing output files.
    progress : bool
        Show progress bars.

    Returns
    -------
    PredictResult

    Raises
    ------
    FileNotFoundError
        If the image or the model is missing.
    FileExistsError
        If an output exists and ``overwrite`` is False.
    radioseg_utils.modelio.ModelMismatchError
        If the model was trained on another band or normalisation.
    """
    image_path, out_dir = Path(image_path), Path(out_dir)
    if not image_path.is_file():
        raise FileNotFoundError(f"image {image_path} not found")
    shape = _image_shape(image_path)
    centre = read_image(image_path, section=_noise_box(shape))
    band = centre.band
    net, normalisation = load_segmenter(model, band.name, normalisation)
    background, rms = estimate_noise(centre.data)
    noise = rms if noise is None else noise
    stem = image_path.name.removesuffix(".gz").removesuffix(".fits").removesuffix(".fit")
    paths = {
        "segmentation": out_dir / f"{stem}_seg.fits",
        "probability": out_dir / f"{stem}_prob.fits",
        "ecsv": out_dir / f"{stem}_cat.ecsv",
        "fits": out_dir / f"{stem}_cat.fits",
        "submission": out_dir / f"{stem}_submission.txt",
        "regions": out_dir / f"{stem}.reg",
    }
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output(s) exist: {', '.join(existing)}; pass overwrite=True")
    out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        folder = Path(scratch) if shape[0] * shape[1] > MEMMAP_PIXELS else None
        prob, seg, catalogue, value = _run(
            _FitsTiles(image_path, shape), net, normalisation, band=band, noise=noise,
            background=background, primary_beam=primary_beam, config=config,
            progress=progress, folder=folder, seg_dtype=np.float32)
        header = centre.header.copy()
        header["BUNIT"] = ""
        header["HISTORY"] = f"radioseg predict: threshold {config.threshold} = {value}"
        write_image(paths["probability"], prob, header, overwrite=overwrite)
        write_image(paths["segmentation"], seg, header, overwrite=overwrite)
        del prob, seg
    catalogue.meta["IMAGE"] = image_path.name
    catalogue.write(paths["ecsv"], format="ascii.ecsv", overwrite=overwrite)
    catalogue.write(paths["fits"], format="fits", overwrite=overwrite)
    write_submission(catalogue, paths["submission"], overwrite=overwrite, allow_empty=True)
    write_ds9_regions(catalogue, paths["regions"], overwrite=overwrite)
    return PredictResult(catalogue=catalogue, threshold=value, noise=float(noise), paths=paths)


def segment(
    sky: SkyImage,
    model: str | Path | Callable[[np.ndarray], np.ndarray] = DEFAULT_MODEL,
    *,
    normalisation: str | None = None,
    config: PredictConfig = PredictConfig(),
    noise: float | None = None,
    primary_beam: str | Path | Callable | None = None,
    progress: bool = False,
) -> Segmentation:
    """Segment an image held in memory: the chain of :func:`predict_image`, without files.

    Parameters
    ----------
    sky : SkyImage
        2-D image in Jy/beam with its WCS and band (e.g. from
        :func:`radioseg_utils.fitsio.read_image`).
    model, normalisation, config, noise, primary_beam
        As in :func:`predict_image` (noise and background from the central
        ``NOISE_BOX`` box of ``sky`` when ``noise`` is None).
    progress : bool
        Show a progress bar over tiles.

    Returns
    -------
    Segmentation
        ``(prob, labels, catalogue, threshold)``: float32 probabilities and int32 source
        ids on the image grid, the catalogue (ids equal to the labels), the threshold.

    Raises
    ------
    FileNotFoundError
        If the model file is missing.
    radioseg_utils.modelio.ModelMismatchError
        If the model was trained on another band or normalisation.
    """
    net, normalisation = load_segmenter(model, sky.band.name, normalisation)
    background, rms = estimate_noise(sky.data[_noise_box(sky.shape)])
    noise = rms if noise is None else noise
    prob, seg, catalogue, value = _run(
        _MemoryTiles(sky), net, normalisation, band=sky.band, noise=noise,
        background=background, primary_beam=primary_beam, config=config, progress=progress,
        folder=None, seg_dtype=np.int32)
    return Segmentation(prob, seg, catalogue, value)

