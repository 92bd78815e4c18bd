"""Segmentation maps from a truth catalogue: binary source masks and instance label maps.

A source enters the maps when the peak of its beam-convolved model (from
:func:`radioseg_utils.simulation.sources.source_stamps`, apparent flux if a primary beam is given) is
at least ``snr_min`` times the local noise at that peak. Its footprint is

``"model"``
    the pixels where its beam-convolved model is at least ``k_sigma`` times the noise, so
    the map matches what is visible in the image;
``"ellipse"``
    the half-maximum ellipse of its beam-convolved model: the ellipse of the model's
    second moments scaled to the FWHM (exact for a Gaussian source, area
    ``pi * FWHM_maj * FWHM_min / 4``), a simple geometric option.

In the instance label map each pixel carries ``row + 1`` of the catalogue row whose model
is brightest there among the sources whose footprint covers it (0 = background); the
binary map is ``labels > 0``.

The maps are built tile by tile so that a 32768² SDC1 grid fits in bounded memory: a first
pass renders each candidate source once (small stamps only) to measure its peak S/N; a
second pass paints, for each tile, the selected sources whose stamp touches it, into a
tile-sized buffer, and writes the tile to the output (in memory, or ``.npy`` memory maps
for big grids). Stamps are kept between the passes up to a memory budget, beyond which
they are rendered again.

Sources that cannot be drawn are skipped and counted, never silently, in exclusive
categories checked in this order: ``bad_position`` (non-finite RA/Dec), ``nan_flux``
(non-finite flux), ``nonpositive_flux``, ``bad_size`` (non-finite or negative ``b_maj``),
``bad_class`` (class not 1, 2 or 3), then ``off_grid`` (stamp misses the grid). A size of
zero is not an error: the source is unresolved and its model is the restoring beam. Faint
sources (below ``snr_min``) are counted separately; an empty selection raises
:class:`EmptySelectionError` unless ``allow_empty``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.simulation.sources import (
    DEFAULT_PAD_FWHM,
    SourceStamp,
    clip_stamp,
    source_stamps,
)

__all__ = [
    "EmptySelectionError",
    "MaskReport",
    "MaskSet",
    "FOOTPRINTS",
    "SKIP_REASONS",
    "DEFAULT_SNR_MIN",
    "DEFAULT_K_SIGMA",
    "MASK_TILE",
    "make_masks",
]

logger = logging.getLogger(__name__)

#: Default peak S/N cut of the selection.
DEFAULT_SNR_MIN: float = 5.0
#: Default footprint level, in noise sigmas, of the ``"model"`` footprint.
DEFAULT_K_SIGMA: float = 1.0
#: Default tile side (pixels) for grids larger than one tile: 64 MiB float32 buffers.
MASK_TILE: int = 4096
#: Default memory budget (bytes) for stamps kept between the selection and painting passes.
DEFAULT_CACHE_BYTES: int = 256 * 2**20
#: Footprint options.
FOOTPRINTS: tuple[str, ...] = ("model", "ellipse")
#: Skip categories, in the order they are checked.
SKIP_REASONS: tuple[str, ...] = (
    "bad_position", "nan_flux", "nonpositive_flux", "bad_size", "bad_class", "off_grid",
)
#: Squared Mahalanobis radius of the half-maximum contour of a Gaussian, 2 ln 2.
_HALF_MAX_R2 = 2.0 * np.log(2.0)


class EmptySelectionError(ValueError):
    """Raised when no catalogue source passes the selection (and ``allow_empty`` is False)."""


@dataclass(frozen=True)
class MaskReport:
    """What :func:`make_masks` selected, skipped and drew.

    Attributes
    ----------
    n_catalogue : int
        Rows in the input catalogue.
    skipped : dict of str to int
        Sources that could not be drawn, per reason of :data:`SKIP_REASONS` (exclusive).
    n_below_snr : int
        Drawable sources whose peak S/N is below ``snr_min``.
    rows : ndarray of int64
        Catalogue rows of the selected sources, ascending; their label is ``row + 1``.
    peak_snr : ndarray of float64
        Peak S/N of each selected source (same order as ``rows``).
    n_labelled : int
        Selected sources that own at least one pixel of the label map (the others are
        entirely covered by brighter neighbours).
    n_zero_size : int
        Selected sources with ``b_maj == 0``, drawn as unresolved (beam-shaped) sources.
    snr_min, k_sigma : float
        Selection and footprint levels used.
    footprint : str
        Footprint option used.
    """

    n_catalogue: int
    skipped: dict[str, int]
    n_below_snr: int
    rows: np.ndarray
    peak_snr: np.ndarray
    n_labelled: int
    n_zero_size: int
    snr_min: float
    k_sigma: float
    footprint: str

    @property
    def n_selected(self) -> int:
        """Number of selected sources."""
        return int(self.rows.size)

    def as_dict(self) -> dict[str, object]:
        """Summary counts as JSON-ready plain types (no per-source arrays)."""
        return {
            "n_catalogue": self.n_catalogue,
            "n_selected": self.n_selected,
            "n_below_snr": self.n_below_snr,
            "n_labelled": self.n_labelled,
            "n_zero_size": self.n_zero_size,
            "skipped": dict(self.skipped),
            "snr_min": self.snr_min,
            "k_sigma": self.k_sigma,
            "footprint": self.footprint,
        }


class MaskSet(NamedTuple):
    """Result of :func:`make_masks`.

    Attributes
    ----------
    binary : ndarray of uint8, shape (ny, nx)
        1 on source pixels, 0 elsewhere.
    labels : ndarray of int32, shape (ny, nx)
        Catalogue row + 1 of the source owning each pixel, 0 for background.
    report : MaskReport
        Selection and skip counts.
    """

    binary: np.ndarray
    labels: np.ndarray
    report: MaskReport


@dataclass
class _Selected:
    """Per-source results of the selection pass (lists, then arrays)."""

    rows: list[int] = field(default_factory=list)
    snr: list[float] = field(default_factory=list)
    y0: list[int] = field(default_factory=list)
    x0: list[int] = field(default_factory=list)
    h: list[int] = field(default_factory=list)
    w: list[int] = field(default_factory=list)
    cache: dict[int, np.ndarray] = field(default_factory=dict)
    cache_bytes: int = 0


def _noise_at(noise: float | np.ndarray, y: int, x: int) -> float:
    return float(noise) if np.ndim(noise) == 0 else float(noise[y, x])


def _check_noise(noise: float | np.ndarray, shape: tuple[int, int]) -> float | np.ndarray:
    if np.ndim(noise) == 0:
        value = float(noise)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"noise must be finite and positive, got {value}")
        return value
    if tuple(noise.shape) != tuple(shape):
        raise ValueError(f"noise map shape {tuple(noise.shape)} differs from grid shape {tuple(shape)}")
    return noise


def _sort_out_bad_rows(catalogue: Table) -> tuple[np.ndarray, dict[str, int]]:
    """Catalogue rows that can be drawn, and counts of the others per reason."""
    n = len(catalogue)
    col = lambda name: np.asarray(catalogue[name], dtype=float)  # noqa: E731
    ok = np.ones(n, dtype=bool)
    skipped: dict[str, int] = {}
    checks = {
        "bad_position": ~(np.isfinite(col("ra_cent")) & np.isfinite(col("dec_cent"))),
        "nan_flux": ~np.isfinite(col("flux")),
        "nonpositive_flux": ~(col("flux") > 0),
        "bad_size": ~(col("b_maj") >= 0),
        "bad_class": ~np.isin(np.asarray(catalogue["class"]), (1, 2, 3)),
    }
    for reason, bad in checks.items():
        skipped[reason] = int(np.count_nonzero(ok & bad))
        ok &= ~bad
    return np.flatnonzero(ok), skipped


def _select(
    catalogue: Table,
    rows: np.ndarray,
    wcs: WCS,
    band: Band,
    *,
    shape: tuple[int, int],
    noise: float | np.ndarray,
    snr_min: float,
    primary_beam: Callable | None,
    pad_fwhm: float,
    cache_bytes: int,
) -> tuple[_Selected, int, int]:
    """Render candidates once; keep those with peak S/N >= snr_min.

    Returns the selection, the number below the S/N cut and the number off the grid.
    """
    flux = np.asarray(catalogue["flux"], dtype=float)[rows]
    if primary_beam is not None:
        sub = catalogue[rows]
        flux = flux * np.asarray(primary_beam(np.asarray(sub["ra_cent"], float),
                                              np.asarray(sub["dec_cent"], float)))
    # The peak of a beam-convolved model never exceeds its flux (Jy -> Jy/beam), so
    # sources with flux / min(noise) < snr_min are faint without rendering them.
    noise_min = float(noise) if np.ndim(noise) == 0 else float(np.nanmin(noise))
    maybe = flux >= snr_min * noise_min
    candidates = rows[maybe]
    n_faint = int(np.count_nonzero(~maybe))
    sel = _Selected()
    n_seen = 0
    for stamp in source_stamps(catalogue[candidates], wcs, band, shape=shape,
                               primary_beam=primary_beam, pad_fwhm=pad_fwhm):
        n_seen += 1
        img_sl, st_sl = clip_stamp(stamp, shape)
        part = stamp.data[st_sl]
        iy, ix = np.unravel_index(int(np.argmax(part)), part.shape)
        y, x = img_sl[0].start + iy, img_sl[1].start + ix
        snr = float(part[iy, ix]) / _noise_at(noise, y, x)
        if not snr >= snr_min:
            n_faint += 1
            continue
        row = int(candidates[stamp.index])
        sel.rows.append(row)
        sel.snr.append(snr)
        sel.y0.append(stamp.y0), sel.x0.append(stamp.x0)
        sel.h.append(stamp.data.shape[0]), sel.w.append(stamp.data.shape[1])
        if sel.cache_bytes + stamp.data.nbytes <= cache_bytes:
            sel.cache[row] = stamp.data.copy()
            sel.cache_bytes += stamp.data.nbytes
    return sel, n_faint, int(candidates.size - n_seen)


def _ellipse(data: np.ndarray) -> np.ndarray:
    """Half-maximum ellipse of the second moments of a (positive) model stamp."""
    yy, xx = np.indices(data.shape, dtype=float)
    total = data.sum(dtype=float)
    my, mx = (data * yy).sum() / total, (data * xx).sum() / total
    dy, dx = yy - my, xx - mx
    cyy, cxx, cxy = ((data * dy * dy).sum() / total, (data * dx * dx).sum() / total,
                     (data * dx * dy).sum() / total)
    det = cxx * cyy - cxy**2
    r2 = (cyy * dx**2 - 2 * cxy * dx * dy + cxx * dy**2) / det
    return r2 <= _HALF_MAX_R2


def _paint(
    best: np.ndarray,
    labels: np.ndarray,
    stamp: SourceStamp,
    origin: tuple[int, int],
    *,
    footprint: str,
    threshold: float | np.ndarray,
) -> None:
    """Paint one stamp into tile buffers at ``origin``, brightest model wins."""
    local = SourceStamp(stamp.index, stamp.y0 - origin[0], stamp.x0 - origin[1], stamp.data)
    sl = clip_stamp(local, best.shape)
    if sl is None:
        return
    tile_sl, st_sl = sl
    model = stamp.data[st_sl]
    if footprint == "ellipse":
        inside = _ellipse(stamp.data)[st_sl]
    else:
        thr = threshold if np.ndim(threshold) == 0 else threshold[
            tile_sl[0].start + origin[0]:tile_sl[0].stop + origin[0],
            tile_sl[1].start + origin[1]:tile_sl[1].stop + origin[1]]
        inside = model >= thr
    win = inside & (model > best[tile_sl])
    best[tile_sl][win] = model[win]
    labels[tile_sl][win] = stamp.index + 1


def _tiles(shape: tuple[int, int], tile: int):
    for ty in range(0, shape[0], tile):
        for tx in range(0, shape[1], tile):
            yield ty, tx, min(ty + tile, shape[0]), min(tx + tile, shape[1])


class _Output:
    """Binary and label maps in memory, or as ``.npy`` files written one tile at a time.

    File outputs are mapped only while a tile is written, so the resident memory stays at
    one tile (a map held open for the whole run would keep every touched page resident).
    """

    def __init__(self, shape: tuple[int, int], out_dir: str | Path | None) -> None:
        self.paths: tuple[Path, Path] | None = None
        if out_dir is None:
            self.binary, self.labels = np.zeros(shape, np.uint8), np.zeros(shape, np.int32)
            return
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.paths = (out_dir / "binary.npy", out_dir / "labels.npy")
        for path, dtype in zip(self.paths, (np.uint8, np.int32)):
            np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()

    def write(self, y0: int, x0: int, labels: np.ndarray) -> None:
        """Store a tile of labels (and its binary map) with first pixel ``(y0, x0)``."""
        if self.paths is None:
            sl = (slice(y0, y0 + labels.shape[0]), slice(x0, x0 + labels.shape[1]))
            self.binary[sl], self.labels[sl] = labels > 0, labels
            return
        rows, cols = np.flatnonzero(labels.any(axis=1)), np.flatnonzero(labels.any(axis=0))
        if rows.size == 0:
            return  # the files are created zero-filled: skip writing zeros
        labels = labels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        sl = (slice(y0 + rows[0], y0 + rows[-1] + 1), slice(x0 + cols[0], x0 + cols[-1] + 1))
        for path, values in zip(self.paths, (labels > 0, labels)):
            out = np.load(path, mmap_mode="r+")
            out[sl] = values
            out.flush()
            del out

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(binary, labels)``: arrays, or read-only memory maps of the files."""
        if self.paths is None:
            return self.binary, self.labels
        return tuple(np.load(path, mmap_mode="r") for path in self.paths)


def make_masks(
    catalogue: Table,
    wcs: WCS,
    band: str | Band,
    *,
    shape: tuple[int, int],
    noise: float | np.ndarray,
    snr_min: float = DEFAULT_SNR_MIN,
    k_sigma: float = DEFAULT_K_SIGMA,
    footprint: str = "model",
    tile: int | None = None,
    primary_beam: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    pad_fwhm: float = DEFAULT_PAD_FWHM,
    out_dir: str | Path | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    allow_empty: bool = False,
) -> MaskSet:
    """Binary and instance segmentation maps of the catalogue sources above an S/N cut.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Tidy truth catalogue (:data:`radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`).
    wcs : astropy.wcs.WCS
        Celestial WCS of the image grid.
    band : str or Band
        SDC1 band (restoring beam).
    shape : (ny, nx)
        Grid shape in pixels.
    noise : float or ndarray of shape (ny, nx)
        Image rms in Jy/beam, scalar or map (a memory map is fine).
    snr_min : float
        Keep sources whose model peak / local noise is at least this.
    k_sigma : float
        ``"model"`` footprint: pixels where the source model >= ``k_sigma * noise``.
    footprint : {"model", "ellipse"}
        Footprint definition, see the module docstring.
    tile : int, optional
        Tile side in pixels. Default: one tile if the grid has at most
        :data:`MASK_TILE`² pixels, else :data:`MASK_TILE`.
    primary_beam : callable, optional
        ``primary_beam(ra, dec) -> attenuation`` applied to the fluxes (apparent flux).
    pad_fwhm : float
        Stamp half-size in convolved FWHMs (see :func:`~radioseg_utils.simulation.sources.source_stamps`).
    out_dir : str or Path, optional
        Write ``binary.npy`` and ``labels.npy`` there, tile by tile (for big grids), and
        return them as read-only memory maps; None keeps both in memory.
    cache_bytes : int
        Memory budget for stamps kept between the two passes.
    allow_empty : bool
        Return empty maps instead of raising when no source is selected.

    Returns
    -------
    MaskSet
        ``(binary uint8, labels int32, report)``; see :class:`MaskReport`.

    Raises
    ------
    EmptySelectionError
        If no source is selected and ``allow_empty`` is False; the message gives the counts.
    ValueError
        On a bad option, noise or missing catalogue column.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from radioseg_utils.io.wcs import sdc1_wcs
    >>> wcs = sdc1_wcs("B1", (32, 32))
    >>> cat = Table({"ra_core": [0.0], "dec_core": [-30.0], "ra_cent": [0.0],
    ...              "dec_cent": [-30.0], "flux": [1e-5], "core_frac": [0.0], "b_maj": [0.0],
    ...              "b_min": [0.0], "pa": [0.0], "size": [2], "class": [3]})
    >>> binary, labels, report = make_masks(cat, wcs, "B1", shape=(32, 32), noise=1e-7)
    >>> report.n_selected, int(labels.max()), int(binary.sum())
    (1, 1, 37)
    """
    if footprint not in FOOTPRINTS:
        raise ValueError(f"unknown footprint {footprint!r}; expected one of {', '.join(FOOTPRINTS)}")
    if not (np.isfinite(snr_min) and np.isfinite(k_sigma) and k_sigma > 0):
        raise ValueError(f"snr_min must be finite and k_sigma positive, got {snr_min}, {k_sigma}")
    shape = (int(shape[0]), int(shape[1]))
    if min(shape) < 1:
        raise ValueError(f"grid shape must be positive, got {shape}")
    if tile is None:
        tile = max(shape) if shape[0] * shape[1] <= MASK_TILE**2 else MASK_TILE
    if tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile}")
    band = get_band(band)
    noise = _check_noise(noise, shape)
    missing = [c for c in ("ra_cent", "dec_cent", "flux", "b_maj", "class") if c not in catalogue.colnames]
    if missing:
        raise ValueError(f"catalogue lacks column(s) {', '.join(missing)} needed for masks")

    rows, skipped = _sort_out_bad_rows(catalogue)
    sel, n_faint, skipped["off_grid"] = _select(
        catalogue, rows, wcs, band, shape=shape, noise=noise, snr_min=snr_min,
        primary_beam=primary_beam, pad_fwhm=pad_fwhm, cache_bytes=cache_bytes)
    order = np.argsort(np.asarray(sel.rows, dtype=np.int64), kind="stable")
    sel_rows = np.asarray(sel.rows, dtype=np.int64)[order]
    y0, x0, h, w = (np.asarray(v, dtype=np.int64)[order] for v in (sel.y0, sel.x0, sel.h, sel.w))
    counts = ", ".join(f"{k} {v}" for k, v in skipped.items() if v)
    logger.info("masks: %d of %d sources selected (peak S/N >= %g), %d fainter; skipped: %s",
                sel_rows.size, len(catalogue), snr_min, n_faint, counts or "none")
    if sel_rows.size == 0 and not allow_empty:
        raise EmptySelectionError(
            f"no source selected out of {len(catalogue)}: {n_faint} below peak S/N {snr_min}, "
            f"skipped {counts or 'none'}")

    output = _Output(shape, out_dir)
    threshold = k_sigma * noise
    owners: set[int] = set()
    for ty0, tx0, ty1, tx1 in _tiles(shape, tile):
        touch = np.flatnonzero((y0 < ty1) & (y0 + h > ty0) & (x0 < tx1) & (x0 + w > tx0))
        if touch.size == 0:
            continue
        best = np.zeros((ty1 - ty0, tx1 - tx0), np.float32)
        lab = np.zeros(best.shape, np.int32)
        stamps = [SourceStamp(int(sel_rows[i]), int(y0[i]), int(x0[i]), sel.cache[sel_rows[i]])
                  for i in touch if sel_rows[i] in sel.cache]
        todo = np.asarray([sel_rows[i] for i in touch if sel_rows[i] not in sel.cache], np.int64)
        if todo.size:
            stamps.extend(SourceStamp(int(todo[s.index]), s.y0, s.x0, s.data) for s in source_stamps(
                catalogue[todo], wcs, band, shape=shape, primary_beam=primary_beam,
                pad_fwhm=pad_fwhm))
        stamps.sort(key=lambda s: s.index)
        for stamp in stamps:
            _paint(best, lab, stamp, (ty0, tx0), footprint=footprint, threshold=threshold)
        output.write(ty0, tx0, lab)
        owners.update(np.unique(lab[lab > 0]).tolist())
    b_maj = np.asarray(catalogue["b_maj"], dtype=float)
    report = MaskReport(
        n_catalogue=len(catalogue), skipped=skipped, n_below_snr=n_faint, rows=sel_rows,
        peak_snr=np.asarray(sel.snr, dtype=float)[order], n_labelled=len(owners),
        n_zero_size=int(np.count_nonzero(b_maj[sel_rows] == 0)), snr_min=float(snr_min),
        k_sigma=float(k_sigma), footprint=footprint)
    return MaskSet(*output.result(), report)
