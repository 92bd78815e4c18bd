"""The oracle threshold: the single global cut of a score map with the best pixel F1 against
a truth mask. It needs the truth, so it measures what a threshold could reach (an upper
bound in the book), never what a finder does on new data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radioseg_utils.evaluation.metrics import PixelMetrics

__all__ = [
    "ThresholdScan",
    "best_f1_threshold",
    "DEFAULT_SCAN_LEVELS",
]

#: Candidate thresholds of :func:`best_f1_threshold`: this many quantiles of the image.
DEFAULT_SCAN_LEVELS: int = 2000


@dataclass(frozen=True)
class ThresholdScan:
    """Pixel F1 of ``image > t`` against a truth mask for a range of thresholds ``t``.

    Attributes
    ----------
    thresholds : ndarray, shape (k,)
        Candidate thresholds, increasing (units of the image).
    f1 : ndarray, shape (k,)
        Pixel F1 at each threshold (NaN where nothing is selected and the truth is empty).
    best_threshold : float
        Threshold of the highest F1 (the lowest such one on ties).
    best : radioseg_utils.evaluation.metrics.PixelMetrics
        Pixel counts at ``best_threshold``.
    """

    thresholds: np.ndarray
    f1: np.ndarray
    best_threshold: float
    best: PixelMetrics


def best_f1_threshold(
    image: np.ndarray,
    truth: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    levels: int = DEFAULT_SCAN_LEVELS,
    thresholds: np.ndarray | None = None,
) -> ThresholdScan:
    """The single global threshold of ``image`` with the best pixel F1 against ``truth``.

    Counts are exact for every candidate (the pixel values of the truth's source and
    background pixels are sorted once, then counted above each threshold), so the scan of
    a 2048² map takes a few seconds.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Score map: raw brightness (Jy/beam) or probabilities. Non-finite pixels are never
        selected (but a non-finite truth pixel still counts as missed).
    truth : ndarray, shape (ny, nx)
        Binary truth mask (non-zero = source).
    valid : ndarray of bool, shape (ny, nx), optional
        Pixels to count; default all.
    levels : int
        Number of thresholds of the returned curve: quantiles of the finite valid pixel
        values at ``levels`` evenly spaced probabilities in [0, 1] (duplicates removed).
        The best threshold is searched exactly among all distinct pixel values and added
        to the curve.
    thresholds : ndarray, shape (k,), optional
        Explicit candidate thresholds instead (the best is then one of them).

    Returns
    -------
    ThresholdScan

    Raises
    ------
    ValueError
        If the shapes differ, ``levels < 2``, ``thresholds`` is not a non-empty 1-D array
        of finite values, or no valid pixel is finite.

    Examples
    --------
    >>> scan = best_f1_threshold(np.array([0.1, 0.2, 0.3, 0.9]), np.array([0, 0, 1, 1]),
    ...                          thresholds=np.array([0.05, 0.25, 0.5]))
    >>> float(scan.best_threshold), scan.f1.round(2).tolist()
    (0.25, [0.67, 1.0, 0.67])
    """
    image = np.asarray(image, dtype=float)
    truth = np.asarray(truth)
    if truth.shape != image.shape:
        raise ValueError(f"truth shape {truth.shape} differs from image shape {image.shape}")
    keep = np.ones(image.shape, bool) if valid is None else np.asarray(valid, bool)
    if keep.shape != image.shape:
        raise ValueError(f"valid shape {keep.shape} differs from image shape {image.shape}")
    values, is_source = image[keep], truth[keep] != 0
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError("best_f1_threshold needs at least one finite valid pixel")
    if thresholds is None:
        if int(levels) < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        candidates = np.unique(np.quantile(values[finite], np.linspace(0.0, 1.0, int(levels))))
    else:
        candidates = np.asarray(thresholds, dtype=float)
        if candidates.ndim != 1 or candidates.size == 0 or not np.isfinite(candidates).all():
            raise ValueError("thresholds must be a non-empty 1-D array of finite values")
        candidates = np.unique(candidates)
    values = np.where(finite, values, -np.inf)  # never above a threshold
    src, bkg = np.sort(values[is_source]), np.sort(values[~is_source])
    if thresholds is None:  # the exact optimum lies at one of the distinct pixel values
        distinct = np.unique(values[finite])
        exact = _f1_above(src, bkg, distinct)[0]
        k = int(np.nanargmax(exact)) if np.isfinite(exact).any() else 0
        candidates = np.union1d(candidates, distinct[k])
    f1, tp, fp = _f1_above(src, bkg, candidates)
    k = int(np.nanargmax(f1)) if np.isfinite(f1).any() else 0
    best = PixelMetrics(tp=int(tp[k]), fp=int(fp[k]), fn=int(src.size - tp[k]),
                        tn=int(bkg.size - fp[k]))
    return ThresholdScan(candidates, f1, float(candidates[k]), best)


def _f1_above(src: np.ndarray, bkg: np.ndarray, candidates: np.ndarray):
    """Pixel F1, TP and FP of ``value > t`` from sorted source/background values."""
    tp = src.size - np.searchsorted(src, candidates, side="right")
    fp = bkg.size - np.searchsorted(bkg, candidates, side="right")
    denominator = tp + src.size + fp  # 2 TP + FP + FN
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, np.nan)
    return f1, tp, fp
