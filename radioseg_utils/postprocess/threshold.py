"""Thresholds that turn a reconstruction (probability or brightness map) into a binary mask.

One function per method returns a number, as in :mod:`skimage.filters`; the caller applies
it with ``image > value``. :func:`threshold` is the dispatcher used by the pipeline: it picks
the method by name, optionally computes one threshold per tile, and returns the mask.

Non-finite pixels (NaN, inf) are ignored when a threshold is computed and never enter a
mask. A constant image (or tile) gets its constant value as threshold, so nothing in it is
selected (``image > value`` is False everywhere).

References
----------
Yen, J.-C., Chang, F.-J. & Chang, S. 1995, IEEE Trans. Image Process. 4, 370,
"A new criterion for automatic multilevel thresholding", doi:10.1109/83.366472
Otsu, N. 1979, IEEE Trans. Syst. Man Cybern. 9, 62, "A threshold selection method from
gray-level histograms", doi:10.1109/TSMC.1979.4310076
Zack, G. W., Rogers, W. E. & Latt, S. A. 1977, J. Histochem. Cytochem. 25, 741,
"Automatic measurement of sister chromatid exchange frequency" (triangle),
doi:10.1177/25.7.70454
Li, C. H. & Tam, P. K. S. 1998, Pattern Recognit. Lett. 19, 771, "An iterative algorithm
for minimum cross entropy thresholding", doi:10.1016/S0167-8655(98)00057-9

The supervised reference, the one global threshold with the best pixel F1 against a known
truth mask, is :func:`radioseg_utils.evaluation.threshold_scan.best_f1_threshold`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from skimage import filters

__all__ = [
    "DEFAULT_NBINS",
    "DEFAULT_FIXED",
    "HYSTERESIS_LOW_FRACTION",
    "THRESHOLD_METHODS",
    "threshold_yen",
    "threshold_otsu",
    "threshold_triangle",
    "threshold_li",
    "threshold_fixed",
    "threshold_value",
    "apply_hysteresis",
    "threshold",
]

#: Histogram bins of the histogram-based methods.
DEFAULT_NBINS: int = 256
#: Default fixed threshold (a probability map cut at one half).
DEFAULT_FIXED: float = 0.5
#: Hysteresis without an explicit ``low``: low = this fraction of the high threshold.
HYSTERESIS_LOW_FRACTION: float = 0.5


def _finite_values(image: np.ndarray) -> np.ndarray:
    """Return the finite pixel values of ``image`` as a 1-D float array.

    Raises
    ------
    ValueError
        If the image is empty or has no finite pixel.
    """
    values = np.asarray(image, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("cannot threshold an empty image")
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("cannot threshold an image with no finite pixel (all NaN/inf)")
    return values


def _histogram_threshold(
    func: Callable[..., float], image: np.ndarray, nbins: int
) -> float:
    values = _finite_values(image)
    lo, hi = values.min(), values.max()
    if lo == hi:
        return float(lo)
    return float(func(values, nbins=nbins))


def threshold_yen(image: np.ndarray, *, nbins: int = DEFAULT_NBINS) -> float:
    """Yen's maximum-correlation threshold (the method of the radioseg poster).

    Parameters
    ----------
    image : ndarray, any shape
        Map to threshold; non-finite pixels are ignored.
    nbins : int
        Number of histogram bins.

    Returns
    -------
    float
        Threshold in the units of ``image``; pixels ``> value`` are foreground. A constant
        image returns its value.

    Raises
    ------
    ValueError
        If ``image`` has no finite pixel.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.r_[np.full(90, 0.1), np.full(10, 0.9)]
    >>> int((image > threshold_yen(image)).sum())
    10
    """
    return _histogram_threshold(filters.threshold_yen, image, nbins)


def threshold_otsu(image: np.ndarray, *, nbins: int = DEFAULT_NBINS) -> float:
    """Otsu's between-class-variance threshold; see :func:`threshold_yen` for the contract."""
    return _histogram_threshold(filters.threshold_otsu, image, nbins)


def threshold_triangle(image: np.ndarray, *, nbins: int = DEFAULT_NBINS) -> float:
    """Triangle (Zack et al. 1977) threshold; see :func:`threshold_yen` for the contract."""
    return _histogram_threshold(filters.threshold_triangle, image, nbins)


def threshold_li(image: np.ndarray, *, tolerance: float | None = None) -> float:
    """Li's iterative minimum-cross-entropy threshold; see :func:`threshold_yen`.

    Parameters
    ----------
    tolerance : float, optional
        Convergence tolerance, as in :func:`skimage.filters.threshold_li`.
    """
    values = _finite_values(image)
    lo, hi = values.min(), values.max()
    if lo == hi:
        return float(lo)
    return float(filters.threshold_li(values, tolerance=tolerance))


def threshold_fixed(image: np.ndarray, *, value: float = DEFAULT_FIXED) -> float:
    """A fixed threshold, validated against the image (which needs a finite pixel).

    Raises
    ------
    ValueError
        If ``value`` is not finite or the image has no finite pixel.
    """
    _finite_values(image)
    if not np.isfinite(value):
        raise ValueError(f"fixed threshold value must be finite, got {value!r}")
    return float(value)


#: Methods of :func:`threshold` that return one number, by name.
THRESHOLD_METHODS: dict[str, Callable[..., float]] = {
    "yen": threshold_yen,
    "otsu": threshold_otsu,
    "triangle": threshold_triangle,
    "li": threshold_li,
    "fixed": threshold_fixed,
}


def threshold_value(image: np.ndarray, method: str = "yen", **kwargs) -> float:
    """Threshold of ``image`` by the method named ``method`` (a key of THRESHOLD_METHODS).

    Raises
    ------
    ValueError
        If ``method`` is unknown.
    """
    try:
        func = THRESHOLD_METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown threshold method {method!r}; expected one of "
            f"{', '.join([*THRESHOLD_METHODS, 'hysteresis'])}"
        ) from None
    return func(image, **kwargs)


def _hysteresis(image: np.ndarray, low, high) -> np.ndarray:
    """Pixels ``> low`` that are 8-connected to a pixel ``> high`` (low/high may be maps)."""
    with np.errstate(invalid="ignore"):
        weak = np.asarray(image > low)
        strong = weak & np.asarray(image > high)
    labels, n = ndimage.label(weak, structure=np.ones((3, 3), bool))
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels]


def apply_hysteresis(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Hysteresis mask: pixels above ``low`` 8-connected to a pixel above ``high``.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Map to threshold; non-finite pixels are never selected.
    low, high : float
        Thresholds, ``low <= high``.

    Returns
    -------
    ndarray of bool, shape (ny, nx)

    Raises
    ------
    ValueError
        If ``low > high`` or the image is not 2-D.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"apply_hysteresis expects a 2-D image, got shape {image.shape}")
    if not low <= high:
        raise ValueError(f"hysteresis needs low <= high, got low={low}, high={high}")
    return _hysteresis(image, low, high)


def _tile_slices(shape: tuple[int, int], tile: int):
    for y0 in range(0, shape[0], tile):
        for x0 in range(0, shape[1], tile):
            yield (slice(y0, y0 + tile), slice(x0, x0 + tile))


def _threshold_map(image: np.ndarray, method: str, per_tile: int | None, kwargs) -> np.ndarray | float:
    if per_tile is None:
        return threshold_value(image, method, **kwargs)
    out = np.full(image.shape, np.nan)
    for sl in _tile_slices(image.shape, per_tile):
        if np.isfinite(image[sl]).any():
            out[sl] = threshold_value(image[sl], method, **kwargs)
    return out


def threshold(
    image: np.ndarray,
    method: str = "yen",
    *,
    per_tile: int | None = None,
    low: float | None = None,
    high: float | None = None,
    **kwargs,
) -> np.ndarray:
    """Binary foreground mask of a 2-D map, by a named method.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Probability or brightness map. Non-finite pixels are ignored and never selected.
    method : {"yen", "otsu", "triangle", "li", "fixed", "hysteresis"}
        How the threshold is chosen. ``"hysteresis"`` keeps pixels above ``low`` that
        are connected to a pixel above ``high``; ``high`` defaults to the Yen threshold and
        ``low`` to ``HYSTERESIS_LOW_FRACTION * high``.
    per_tile : int, optional
        Side in pixels of square, non-overlapping tiles that each get their own threshold
        (tiles without a finite pixel select nothing). Default: one global threshold.
    low, high : float, optional
        Hysteresis thresholds (only with ``method="hysteresis"``).
    **kwargs
        Passed to the method, e.g. ``nbins=128`` or ``value=0.3`` for ``"fixed"``.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        ``image > threshold``.

    Raises
    ------
    ValueError
        For a non-2-D image, an unknown method, ``per_tile < 1``, ``low``/``high`` given
        with another method, or an image without finite pixels.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"threshold expects a 2-D image, got shape {image.shape}")
    if per_tile is not None and int(per_tile) < 1:
        raise ValueError(f"per_tile must be a positive tile size in pixels, got {per_tile}")
    if method != "hysteresis":
        if low is not None or high is not None:
            raise ValueError(f"low/high are only used with method='hysteresis', not {method!r}")
        value = _threshold_map(image, method, per_tile, kwargs)
        with np.errstate(invalid="ignore"):
            return np.asarray(image > value) & np.isfinite(image)
    high_map = high if high is not None else _threshold_map(image, "yen", per_tile, kwargs)
    low_map = low if low is not None else HYSTERESIS_LOW_FRACTION * np.asarray(high_map)
    if np.any(np.asarray(low_map) > np.asarray(high_map)):
        raise ValueError(f"hysteresis needs low <= high, got low={low}, high={high}")
    return _hysteresis(image, low_map, high_map)

