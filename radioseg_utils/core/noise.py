"""Robust noise and background estimates of radio images.

SDC1 images are mostly noise: a sigma-clipped median and a median-absolute-deviation rms
ignore the sources without masking them first. Non-finite pixels (NaN, inf) are always
ignored.

Three estimates: one number for an image (:func:`estimate_noise`); smooth maps of an
image held in memory with photutils' ``Background2D`` (:func:`background_rms_map`, used
by the photutils finder); and the same kind of maps for an image of any size read in
bands of rows (:func:`noise_mesh`), the statistics of overlapping boxes kept on a coarse
grid (:class:`NoiseMesh`) and interpolated where needed, so a 32768² image never needs a
full-size map in memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from astropy.stats import SigmaClip, mad_std
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from radioseg_utils.core.resample import linear_sample

__all__ = ["estimate_noise", "background_rms_map", "DEFAULT_SIGMA_CLIP", "DEFAULT_BOX",
           "MIN_BOX_COVERAGE", "NoiseMesh", "box_starts", "box_statistics", "noise_mesh"]

#: Clipping threshold, in standard deviations, of :func:`estimate_noise`.
DEFAULT_SIGMA_CLIP: float = 3.0
#: Maximum number of clipping iterations.
DEFAULT_MAXITERS: int = 10
#: Box size in pixels of :func:`background_rms_map` (~20 beams of SDC1 B1 on a side).
DEFAULT_BOX: int = 50
#: Smallest fraction of finite pixels of a box of :func:`box_statistics` (others are NaN
#: and take the value of the nearest box that has enough).
MIN_BOX_COVERAGE: float = 0.5


def _valid_mask(data: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """True where a pixel is finite and not masked; validates shapes."""
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {data.shape}")
    valid = np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} differs from image shape {data.shape}")
        valid &= ~mask
    return valid


def estimate_noise(
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    sigma_clip: float = DEFAULT_SIGMA_CLIP,
    maxiters: int = DEFAULT_MAXITERS,
) -> tuple[float, float]:
    """Sigma-clipped median and robust rms of an image.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image, e.g. in Jy/beam. NaN and inf pixels are ignored.
    mask : ndarray of bool, shape (ny, nx), optional
        True for pixels to ignore (e.g. known sources).
    sigma_clip : float
        Clipping threshold in standard deviations (iterated, both tails).
    maxiters : int
        Maximum number of clipping iterations.

    Returns
    -------
    median : float
        Sigma-clipped median, in the units of ``data``.
    rms : float
        ``1.4826 × MAD`` of the clipped pixels (the Gaussian standard deviation), same
        units. Clipping uses the median and MAD too.

    Raises
    ------
    ValueError
        If the image is not 2-D, the mask shape differs, or no finite unmasked pixel is left.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> med, rms = estimate_noise(rng.normal(1.0, 2.0, (200, 200)))
    >>> round(med, 1), round(rms, 1)
    (1.0, 2.0)
    """
    data = np.asarray(data)
    valid = _valid_mask(data, mask)
    if not valid.any():
        raise ValueError("no finite, unmasked pixel to estimate the noise from")
    clipper = SigmaClip(sigma=sigma_clip, maxiters=maxiters, cenfunc="median", stdfunc="mad_std")
    kept = clipper(data[valid], masked=False)
    return float(np.median(kept)), float(mad_std(kept))


def background_rms_map(
    data: np.ndarray,
    *,
    box: int = DEFAULT_BOX,
    filter_size: int = 3,
    mask: np.ndarray | None = None,
    sigma_clip: float = DEFAULT_SIGMA_CLIP,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth background and rms maps from sigma-clipped statistics in boxes.

    A thin wrapper of :class:`photutils.background.Background2D` with median background
    and MAD rms per box, median-filtered over ``filter_size`` boxes.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image; NaN and inf pixels are ignored (and are NaN in the outputs).
    box : int
        Box side in pixels; the image need not be a multiple of it.
    filter_size : int
        Median filter size, in boxes, applied to the low-resolution maps.
    mask : ndarray of bool, shape (ny, nx), optional
        True for pixels to ignore when computing the statistics.
    sigma_clip : float
        Clipping threshold in standard deviations within each box.

    Returns
    -------
    background, rms : ndarray, shape (ny, nx)
        Background level and rms, in the units of ``data``.

    Raises
    ------
    ValueError
        If the image is not 2-D, smaller than one box, or has no valid pixel.
    """
    from photutils.background import Background2D, MADStdBackgroundRMS, MedianBackground

    data = np.asarray(data, dtype=float)
    valid = _valid_mask(data, mask)
    if min(data.shape) < box:
        raise ValueError(f"image shape {data.shape} is smaller than the box size {box}")
    if not valid.any():
        raise ValueError("no finite, unmasked pixel to estimate the background from")
    finite = np.isfinite(data)
    clip = SigmaClip(sigma=sigma_clip, maxiters=DEFAULT_MAXITERS)
    bkg = Background2D(
        np.where(finite, data, 0.0),
        box,
        mask=~valid & finite,
        coverage_mask=~finite if not finite.all() else None,
        filter_size=filter_size,
        sigma_clip=clip,
        bkg_estimator=MedianBackground(sigma_clip=None),
        bkg_rms_estimator=MADStdBackgroundRMS(sigma_clip=None),
        fill_value=np.nan,
    )
    return np.asarray(bkg.background), np.asarray(bkg.background_rms)


def _sorted_quantile(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` (linear interpolation) of each row's sorted values ``[lo, hi)``."""
    position = lo + q * np.maximum(hi - lo - 1, 0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(hi - 1, 0))
    rows = np.arange(len(values))
    weight = position - below
    with np.errstate(invalid="ignore"):  # rows without any value give NaN
        return values[rows, below] * (1.0 - weight) + values[rows, above] * weight


def _count_below(values: np.ndarray, n: np.ndarray, limit: np.ndarray, *, inclusive: bool) -> np.ndarray:
    """Per row, how many of the first ``n`` (sorted) values are below ``limit`` (or equal,
    if ``inclusive``): a bisection run on all rows at once."""
    rows = np.arange(len(values))
    lo, hi = np.zeros(len(values), np.int64), n.astype(np.int64).copy()
    with np.errstate(invalid="ignore"):  # NaN limits (empty rows) count nothing
        while np.any(lo < hi):
            active = lo < hi
            mid = (lo + hi) // 2
            value = values[rows, np.minimum(mid, values.shape[1] - 1)]
            below = (value <= limit) if inclusive else (value < limit)
            lo = np.where(active & below, mid + 1, lo)
            hi = np.where(active & ~below, mid, hi)
    return lo


def box_starts(n: int, box: int, step: int) -> np.ndarray:
    """First pixels of the boxes of side ``box`` every ``step`` pixels along an axis of
    ``n``, the last one aligned with the end (one box of ``n`` when ``n <= box``).

    Examples
    --------
    >>> box_starts(100, 40, 20).tolist()
    [0, 20, 40, 60]
    >>> box_starts(30, 40, 20).tolist()
    [0]
    """
    if n <= box:
        return np.zeros(1, np.int64)
    starts = list(range(0, n - box, step))
    return np.asarray(starts + [n - box], np.int64)


def box_statistics(rows: np.ndarray, starts: np.ndarray, box: int, *, stride: int = 1,
                   sigma_clip: float = DEFAULT_SIGMA_CLIP,
                   maxiters: int = DEFAULT_MAXITERS) -> tuple[np.ndarray, np.ndarray]:
    """Sigma-clipped background and rms in boxes of a band of image rows.

    Box ``k`` holds the columns ``[starts[k], starts[k] + box)`` of the band. In each box
    the finite pixels are sorted once; clipping at ``sigma_clip`` standard deviations
    around the median then keeps a contiguous run of them, found by bisection and
    iterated until it no longer changes. The background is the median of the kept pixels
    and the rms their standard deviation (as BANE's, it keeps the faint sources within the
    clip: the confusion that the SDC1 noise levels the models were trained with include
    too). Boxes with fewer than :data:`MIN_BOX_COVERAGE` of their pixels finite give NaN.

    Parameters
    ----------
    rows : ndarray, shape (h, nx)
        Image rows; NaN/inf pixels are ignored.
    starts : ndarray of int
        First column of each box (e.g. :func:`box_starts`).
    box : int
        Box width in pixels (at most ``nx``).
    stride : int
        Pixels of a box are sampled every ``stride`` rows and columns.
    sigma_clip : float
        Clipping threshold in standard deviations.
    maxiters : int
        Largest number of clipping iterations.

    Returns
    -------
    background, rms : ndarray of float64, shape (len(starts),)

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> bkg, rms = box_statistics(rng.normal(2.0, 0.5, (40, 80)), np.array([0, 40]), 40)
    >>> np.round(bkg, 1).tolist(), np.round(rms, 1).tolist()
    ([2.0, 2.0], [0.5, 0.5])
    """
    rows = np.asarray(rows, dtype=np.float32)
    h, nx = rows.shape
    if not 1 <= box <= nx:
        raise ValueError(f"need 1 <= box {box} <= band width {nx}")
    clean = np.where(np.isfinite(rows), rows, np.float32(np.nan))
    windows = sliding_window_view(clean[::stride], box, axis=1)[:, np.asarray(starts), ::stride]
    values = np.sort(windows.transpose(1, 0, 2).reshape(len(starts), -1), axis=1)
    n = np.isfinite(values).sum(axis=1)
    lo, hi = np.zeros(len(starts), np.int64), n.copy()
    index = np.arange(values.shape[1])
    centred = values - _sorted_quantile(values, lo, hi, 0.5)[:, None].astype(np.float32)

    def clipped() -> tuple[np.ndarray, np.ndarray]:
        kept = np.where((index >= lo[:, None]) & (index < hi[:, None]), centred, np.float32(0))
        count = np.maximum(hi - lo, 1)
        mean = kept.sum(axis=1, dtype=np.float64) / count
        square = np.square(kept).sum(axis=1, dtype=np.float64) / count
        return _sorted_quantile(values, lo, hi, 0.5), np.sqrt(np.clip(square - mean**2, 0.0, None))

    for _ in range(maxiters):
        median, sigma = clipped()
        new_lo = _count_below(values, n, median - sigma_clip * sigma, inclusive=False)
        new_hi = _count_below(values, n, median + sigma_clip * sigma, inclusive=True)
        keep = hi > lo
        new_lo, new_hi = np.where(keep, new_lo, lo), np.where(keep, new_hi, hi)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    median, sigma = clipped()
    ok = (n >= MIN_BOX_COVERAGE * values.shape[1]) & (hi > lo) & (sigma > 0)
    return (np.where(ok, median, np.nan).astype(np.float64),
            np.where(ok, sigma, np.nan).astype(np.float64))


@dataclass(frozen=True)
class NoiseMesh:
    """Background and rms of an image at the centres of a grid of boxes (:func:`noise_mesh`).

    Attributes
    ----------
    shape : (ny, nx)
        Shape of the image.
    box, step : int
        Box side and spacing of the boxes, in pixels.
    background, rms : ndarray of float64, shape (my, mx)
        Values of the boxes, median-filtered and filled (no NaN), in image units.
    """

    shape: tuple[int, int]
    box: int
    step: int
    background: np.ndarray
    rms: np.ndarray

    def _mesh_coords(self, axis: int, pixels: slice) -> np.ndarray:
        starts = box_starts(self.shape[axis], self.box, self.step)
        centres = starts + (min(self.box, self.shape[axis]) - 1) / 2.0
        return np.interp(np.arange(pixels.start, pixels.stop, dtype=np.float64), centres,
                         np.arange(centres.size, dtype=np.float64))

    def maps(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Background and rms maps (float32) of the image window ``(rows, cols)``.

        Interpolated linearly between the box centres and constant beyond the outer ones
        (as BANE does); a window's values equal those of the whole image's maps.
        """
        ys, xs = self._mesh_coords(0, rows), self._mesh_coords(1, cols)
        return linear_sample(self.background, ys, xs), linear_sample(self.rms, ys, xs)

    @property
    def median_rms(self) -> float:
        """Median rms of the boxes."""
        return float(np.median(self.rms))


def _nan_median_filter(mesh: np.ndarray, size: int) -> np.ndarray:
    if size <= 1:
        return mesh
    padded = np.pad(mesh, size // 2, mode="edge")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods stay NaN
        return np.nanmedian(sliding_window_view(padded, (size, size)), axis=(-2, -1))


def _fill_nearest(mesh: np.ndarray) -> np.ndarray:
    missing = ~np.isfinite(mesh)
    if not missing.any():
        return mesh
    index = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
    return mesh[tuple(index)]


def noise_mesh(read_rows: Callable[[int, int], np.ndarray], shape: tuple[int, int], *,
               box: int = DEFAULT_BOX, step: int | None = None, stride: int = 2,
               filter_size: int = 3, sigma_clip: float = DEFAULT_SIGMA_CLIP,
               mapper: Callable[..., Iterable] = map) -> NoiseMesh:
    """Background and rms of an image read in bands of rows, on a grid of boxes.

    The statistics (:func:`box_statistics`) of boxes of side ``box`` every ``step``
    pixels (overlapping, as BANE's grid and box), median-filtered over ``filter_size``
    boxes (as photutils and BANE do, so that a bright source does not raise its box
    alone); boxes without enough finite pixels take the values of the nearest box with
    them. Memory: one band of ``box`` rows and its boxes, plus the grid; each image row is
    read about ``box / step`` times.

    Parameters
    ----------
    read_rows : callable
        ``read_rows(y0, y1)`` returns the image rows ``[y0, y1)``, shape (y1 - y0, nx),
        e.g. a section of a FITS file.
    shape : (ny, nx)
        Image shape.
    box : int
        Box side in pixels (``min(box, ny, nx)`` is used for a smaller image).
    step : int, optional
        Spacing of the boxes in pixels; default ``box // 2``.
    stride : int
        Pixels of each box are sampled every ``stride`` rows and columns (default 2: in an
        image of two or more pixels per beam neighbouring pixels are correlated and add
        little, and the boxes overlap; a quarter of the work).
    filter_size : int
        Side of the median filter, in boxes (odd; 1: none).
    sigma_clip : float
        Clipping threshold in standard deviations.
    mapper : callable
        ``map``-like function applying a function to every band's first row, in order
        (e.g. a thread pool's ``map``: the bands are independent).

    Returns
    -------
    NoiseMesh

    Raises
    ------
    ValueError
        If a band has the wrong shape or no box has enough finite pixels.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> image = rng.normal(0.0, 1.0, (100, 100)) * np.linspace(1.0, 3.0, 100)  # rms 1 -> 3
    >>> mesh = noise_mesh(lambda y0, y1: image[y0:y1], image.shape, box=20, stride=1, filter_size=1)
    >>> bkg, rms = mesh.maps(slice(0, 100), slice(0, 100))
    >>> round(float(rms[50, 10]), 1), round(float(rms[50, 89]), 1)
    (1.2, 2.8)
    """
    ny, nx = (int(n) for n in shape)
    box = int(min(box, ny, nx))
    step = max(1, box // 2) if step is None else int(step)
    if box < 1 or step < 1 or filter_size < 1 or filter_size % 2 == 0:
        raise ValueError(f"need box >= 1, step >= 1 and an odd filter_size >= 1, got "
                         f"{box=}, {step=}, {filter_size=}")
    columns = box_starts(nx, box, step)

    def band_statistics(y0: int) -> tuple[np.ndarray, np.ndarray]:
        band = np.asarray(read_rows(int(y0), int(y0) + box))
        if band.shape != (box, nx):
            raise ValueError(f"rows {y0}..{y0 + box} have shape {band.shape}, expected {(box, nx)}")
        return box_statistics(band, columns, box, stride=stride, sigma_clip=sigma_clip)

    stats = list(mapper(band_statistics, box_starts(ny, box, step)))
    background = np.array([s[0] for s in stats])
    rms = np.array([s[1] for s in stats])
    if not np.isfinite(rms).any():
        raise ValueError("no box has enough finite pixels to estimate the noise from")
    background = _fill_nearest(_nan_median_filter(background, filter_size))
    rms = _fill_nearest(_nan_median_filter(rms, filter_size))
    return NoiseMesh((ny, nx), box, step, background, rms)
