"""Pixel-wise and source-wise quality metrics of a segmentation / source catalogue.

* Pixel metrics from two binary maps: confusion matrix, precision, recall, F1, IoU, Dice,
  accuracy (:func:`pixel_metrics`). A ratio whose denominator is 0 is NaN.
* Source metrics from a :class:`radioseg_utils.core.matching.Match`: TP/FP/FN, completeness
  (TP / true sources), reliability (TP / detections) and their F1 (:func:`source_metrics`),
  optionally "strict" (only true sources of peak S/N >= ``min_snr`` count as real), and
  which detections are real (:func:`real_detections`, the labels ``p_real`` is fitted
  and checked on);
  completeness and reliability in bins of a quantity such as the true peak S/N or flux
  (:func:`completeness_reliability`); a table of matched pairs for size and flux recovery
  plots (:func:`recovery_table`).
* The true peak S/N that the bins use is
  :func:`radioseg_utils.simulation.truth.true_peak_snr`.

Outputs are dataclasses with ``as_dict()``, :class:`pandas.DataFrame` and
:class:`astropy.table.Table` objects ready for plotting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from astropy.table import Table

from radioseg_utils.core.matching import Match

__all__ = [
    "SNR_BINS",
    "FLUX_BINS_JY",
    "STRICT_MIN_SNR",
    "PixelMetrics",
    "SourceMetrics",
    "confusion_matrix",
    "pixel_metrics",
    "source_metrics",
    "real_detections",
    "completeness_reliability",
    "recovery_table",
]

#: Default bin edges of true peak S/N: 3-5, 5-10, 10-20, 20-50, > 50.
SNR_BINS: tuple[float, ...] = (3.0, 5.0, 10.0, 20.0, 50.0, np.inf)
#: Default flux bin edges in Jy (log-spaced, 1 µJy .. 10 mJy, then open-ended).
FLUX_BINS_JY: tuple[float, ...] = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 1e-3, 1e-2, np.inf)
#: True peak S/N above which a matched true source counts as real in strict metrics.
STRICT_MIN_SNR: float = 3.0


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


@dataclass(frozen=True)
class PixelMetrics:
    """Pixel counts of a binary segmentation against the truth, and the derived scores."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP)."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN)."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN), equal to the Dice coefficient."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def dice(self) -> float:
        """Dice coefficient, 2 |A n B| / (|A| + |B|)."""
        return self.f1

    @property
    def iou(self) -> float:
        """Intersection over union (Jaccard), TP / (TP + FP + FN)."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float:
        """(TP + TN) / all pixels."""
        return _ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    def as_dict(self) -> dict[str, float]:
        """Counts and scores in one flat dictionary."""
        keys = ("precision", "recall", "f1", "iou", "dice", "accuracy")
        return {**asdict(self), **{k: getattr(self, k) for k in keys}}


def _binary_pair(pred: np.ndarray, true: np.ndarray, valid: np.ndarray | None):
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {true.shape}")
    keep = np.ones(pred.shape, bool) if valid is None else np.asarray(valid, bool)
    if keep.shape != pred.shape:
        raise ValueError(f"valid shape {keep.shape} differs from map shape {pred.shape}")
    return pred.astype(bool)[keep], true.astype(bool)[keep]


def confusion_matrix(
    pred: np.ndarray, true: np.ndarray, *, valid: np.ndarray | None = None
) -> np.ndarray:
    """2x2 pixel confusion matrix ``[[TN, FP], [FN, TP]]`` (rows: truth, columns: prediction).

    Parameters
    ----------
    pred, true : ndarray, same shape
        Binary maps (non-zero = source).
    valid : ndarray of bool, optional
        Pixels to count (e.g. finite image pixels); default all.

    Examples
    --------
    >>> confusion_matrix([1, 1, 0, 0], [1, 0, 1, 0]).tolist()
    [[1, 1], [1, 1]]
    """
    p, t = _binary_pair(pred, true, valid)
    return np.bincount(2 * t.astype(int) + p.astype(int), minlength=4).reshape(2, 2)


def pixel_metrics(
    pred: np.ndarray, true: np.ndarray, *, valid: np.ndarray | None = None
) -> PixelMetrics:
    """Precision, recall, F1, IoU, Dice and accuracy of a binary map; see :func:`confusion_matrix`."""
    (tn, fp), (fn, tp) = confusion_matrix(pred, true, valid=valid).tolist()
    return PixelMetrics(tp=tp, fp=fp, fn=fn, tn=tn)


@dataclass(frozen=True)
class SourceMetrics:
    """Source counts of a catalogue matched to the truth, and the derived scores.

    ``tp`` counts matched detections (in strict mode: matched to a real true source),
    ``fp = n_pred - tp`` and ``fn = n_true - tp`` (in strict mode ``n_true`` counts only
    the real true sources).
    """

    tp: int
    fp: int
    fn: int

    @property
    def completeness(self) -> float:
        """TP / (TP + FN), the fraction of true sources found."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def reliability(self) -> float:
        """TP / (TP + FP), the fraction of detections that are real."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def f1(self) -> float:
        """Harmonic mean of completeness and reliability."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def as_dict(self) -> dict[str, float]:
        """Counts and scores in one flat dictionary."""
        return {**asdict(self), "completeness": self.completeness,
                "reliability": self.reliability, "f1": self.f1}


def _check_values(values, n: int, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {values.shape}")
    return values


def source_metrics(
    match: Match, *, true_snr: Sequence[float] | None = None, min_snr: float | None = None
) -> SourceMetrics:
    """TP, FP, FN, completeness, reliability and F1 of a match.

    Parameters
    ----------
    match : Match
        From :func:`radioseg_utils.core.matching.match_positions` or ``match_labels``.
    true_snr : array, shape (n_true,), optional
        True peak S/N of every true source (needed with ``min_snr``).
    min_snr : float, optional
        Strict mode: only true sources with ``true_snr >= min_snr`` are real; a detection
        matched to a fainter one is a false positive, and fainter true sources are not
        counted as missed. The SDC1_FACTS reference figures use ``STRICT_MIN_SNR``.

    Raises
    ------
    ValueError
        If ``min_snr`` is given without ``true_snr`` or the shape of ``true_snr`` is wrong.
    """
    if min_snr is None:
        return SourceMetrics(tp=match.tp, fp=match.n_pred - match.tp, fn=match.n_true - match.tp)
    if true_snr is None:
        raise ValueError("strict metrics (min_snr) need true_snr")
    real = _check_values(true_snr, match.n_true, "true_snr") >= min_snr
    tp = int(real_detections(match, true_snr=true_snr, min_snr=min_snr).sum())
    return SourceMetrics(tp=tp, fp=match.n_pred - tp, fn=int(real.sum()) - tp)


def real_detections(match: Match, *, true_snr: Sequence[float],
                    min_snr: float = STRICT_MIN_SNR) -> np.ndarray:
    """Which detections are real in the strict sense of :func:`source_metrics`.

    Returns
    -------
    ndarray of bool, shape (n_pred,)
        True for a detection matched to a true source of ``true_snr >= min_snr``; their
        count is the strict ``tp``, their mean the strict reliability.

    Examples
    --------
    >>> m = Match(pred=np.array([0, 2]), true=np.array([1, 0]), distance=np.zeros(2),
    ...           n_pred=3, n_true=2)
    >>> real_detections(m, true_snr=[2.0, 8.0]).tolist()
    [True, False, False]
    """
    snr = _check_values(true_snr, match.n_true, "true_snr")
    real = np.zeros(match.n_pred, bool)
    real[match.pred] = snr[match.true] >= min_snr
    return real


def completeness_reliability(
    match: Match,
    *,
    true_values: Sequence[float],
    pred_values: Sequence[float] | None = None,
    bins: Sequence[float] = SNR_BINS,
) -> pd.DataFrame:
    """Completeness and reliability in bins of a quantity (true peak S/N, flux, ...).

    Completeness in a bin = true sources in the bin that are matched / true sources in the
    bin (binned by ``true_values``). Reliability in a bin = matched detections / detections
    in the bin (binned by ``pred_values``, the same quantity measured on the detections).

    Parameters
    ----------
    match : Match
    true_values : array, shape (n_true,)
        Quantity of each true source, e.g. :func:`true_peak_snr`.
    pred_values : array, shape (n_pred,), optional
        The quantity measured for each detection, e.g. its ``peak_snr``; without it the
        reliability columns are NaN.
    bins : sequence of float
        Increasing bin edges (``np.inf`` allowed as the last); bins are ``[lo, hi)``.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``lo``, ``hi``, ``n_true``, ``n_found``, ``completeness``,
        ``n_pred``, ``n_matched``, ``reliability``.

    Raises
    ------
    ValueError
        If bins are not increasing or the value arrays have the wrong shape.
    """
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be at least two increasing edges, got {list(bins)}")
    tv = _check_values(true_values, match.n_true, "true_values")
    found = match.true_found()
    rows = []
    pv = None if pred_values is None else _check_values(pred_values, match.n_pred, "pred_values")
    matched = match.true_of_pred() >= 0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_t = (tv >= lo) & (tv < hi)
        row = {"lo": lo, "hi": hi, "n_true": int(in_t.sum()), "n_found": int(found[in_t].sum())}
        row["completeness"] = _ratio(row["n_found"], row["n_true"])
        if pv is None:
            row.update(n_pred=0, n_matched=0, reliability=float("nan"))
        else:
            in_p = (pv >= lo) & (pv < hi)
            row.update(n_pred=int(in_p.sum()), n_matched=int(matched[in_p].sum()))
            row["reliability"] = _ratio(row["n_matched"], row["n_pred"])
        rows.append(row)
    return pd.DataFrame(rows)


def recovery_table(
    match: Match,
    pred: Table,
    truth: Table,
    *,
    columns: Sequence[str] = ("flux", "b_maj", "b_min", "pa", "size", "class"),
) -> Table:
    """Matched pairs side by side, for flux and size recovery plots.

    Returns
    -------
    astropy.table.Table
        Columns ``pred_index``, ``true_index``, ``distance`` and, for every name in
        ``columns`` present in both catalogues, ``true_<name>`` and ``pred_<name>``; plus
        ``flux_ratio`` and ``b_maj_ratio`` (pred / true) when those columns are present.
    """
    out = Table({"pred_index": match.pred, "true_index": match.true, "distance": match.distance})
    for name in columns:
        if name in pred.colnames and name in truth.colnames:
            out[f"true_{name}"] = np.asarray(truth[name])[match.true]
            out[f"pred_{name}"] = np.asarray(pred[name])[match.pred]
            out[f"true_{name}"].unit = truth[name].unit
            out[f"pred_{name}"].unit = pred[name].unit
    for name in ("flux", "b_maj"):
        if f"true_{name}" in out.colnames:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f"{name}_ratio"] = np.asarray(out[f"pred_{name}"], float) / np.asarray(
                    out[f"true_{name}"], float
                )
    return out

