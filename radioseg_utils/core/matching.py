"""One-to-one matching of predicted and true sources.

Two ways to pair detections with the truth:

* :func:`match_positions`: by sky position within a radius (beam scale), the brightest
  true source first, each taking the nearest still-free detection (greedy on a
  :class:`scipy.spatial.cKDTree` of unit vectors, exact great-circle separations);
* :func:`match_labels`: by overlap of instance label images, the pairs of highest
  intersection-over-union first.

Both return a :class:`Match`: matched index pairs plus the unmatched detections (false
positives) and true sources (false negatives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

__all__ = ["DEFAULT_RADIUS_ARCSEC", "DEFAULT_MIN_IOU", "Match", "match_positions", "match_labels"]

#: Matching radius in arcsec: the B1 restoring-beam FWHM (SDC1_FACTS reference figures).
DEFAULT_RADIUS_ARCSEC: float = 1.5
#: Minimum intersection-over-union of two labels to count as a match.
DEFAULT_MIN_IOU: float = 0.5


@dataclass(frozen=True)
class Match:
    """Result of a one-to-one match.

    Attributes
    ----------
    pred : ndarray of int, shape (n_match,)
        Row indices of the matched detections.
    true : ndarray of int, shape (n_match,)
        Row indices of the true sources they match (``pred[k]`` <-> ``true[k]``).
    distance : ndarray of float, shape (n_match,)
        Separation in arcsec (position matching) or ``1 - IoU`` (label matching).
    n_pred, n_true : int
        Numbers of detections and true sources.
    """

    pred: np.ndarray
    true: np.ndarray
    distance: np.ndarray
    n_pred: int
    n_true: int

    @property
    def tp(self) -> int:
        """Number of matched pairs (true positives)."""
        return int(self.pred.size)

    @property
    def fp(self) -> np.ndarray:
        """Indices of unmatched detections (false positives), increasing."""
        return np.setdiff1d(np.arange(self.n_pred), self.pred)

    @property
    def fn(self) -> np.ndarray:
        """Indices of unmatched true sources (false negatives), increasing."""
        return np.setdiff1d(np.arange(self.n_true), self.true)

    def true_found(self) -> np.ndarray:
        """For each true source, whether a detection matches it: bool, shape (n_true,)."""
        found = np.zeros(self.n_true, bool)
        found[self.true] = True
        return found

    def true_of_pred(self) -> np.ndarray:
        """For each detection, the index of its true source or -1: shape (n_pred,)."""
        out = np.full(self.n_pred, -1, np.int64)
        out[self.pred] = self.true
        return out

    def to_table(self) -> Table:
        """Matched pairs as a table with columns ``pred``, ``true``, ``distance``."""
        return Table({"pred": self.pred, "true": self.true, "distance": self.distance})


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def _columns(table: Table, names: tuple[str, str], what: str) -> tuple[np.ndarray, np.ndarray]:
    missing = [n for n in names if n not in table.colnames]
    if missing:
        raise ValueError(f"{what} catalogue lacks column(s) {', '.join(missing)}")
    ra, dec = (np.asarray(table[n], dtype=float) for n in names)
    if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
        raise ValueError(f"{what} catalogue has non-finite {names[0]}/{names[1]}")
    return ra, dec


def match_positions(
    pred: Table,
    truth: Table,
    *,
    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
    pred_columns: tuple[str, str] = ("ra_core", "dec_core"),
    true_columns: tuple[str, str] = ("ra_core", "dec_core"),
    order_by: str | None = "flux",
) -> Match:
    """Match detections to true sources by position, one to one, brightest truth first.

    Parameters
    ----------
    pred, truth : astropy.table.Table
        Catalogues with RA/Dec columns in degrees (any RA convention).
    radius_arcsec : float
        Largest separation of a match, in arcsec.
    pred_columns, true_columns : (str, str)
        Names of the RA and Dec columns used in each catalogue.
    order_by : str or None
        Truth column sorted in decreasing order to set who picks first (``"flux"``); None
        keeps the table order.

    Returns
    -------
    Match
        ``distance`` in arcsec; pairs listed in the order the true sources picked.

    Raises
    ------
    ValueError
        If a column is missing or non-finite, or the radius is not positive.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"ra_core": [0.0, 0.01], "dec_core": [0.0, 0.0], "flux": [1.0, 2.0]})
    >>> p = Table({"ra_core": [0.0, 0.5], "dec_core": [0.0001, 0.0]})
    >>> m = match_positions(p, t)
    >>> m.tp, m.fp.tolist(), m.fn.tolist()
    (1, [1], [1])
    """
    if not radius_arcsec > 0:
        raise ValueError(f"radius_arcsec must be positive, got {radius_arcsec}")
    p_xyz = _unit_vectors(*_columns(pred, pred_columns, "predicted"))
    t_xyz = _unit_vectors(*_columns(truth, true_columns, "true"))
    empty = np.zeros(0, np.int64)
    if len(p_xyz) == 0 or len(t_xyz) == 0:
        return Match(empty, empty, np.zeros(0), len(p_xyz), len(t_xyz))
    if order_by is None:
        order = np.arange(len(t_xyz))
    elif order_by not in truth.colnames:
        raise ValueError(f"true catalogue lacks column {order_by!r} used by order_by")
    else:
        order = np.argsort(-np.asarray(truth[order_by], dtype=float), kind="stable")
    chord = 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)
    candidates = cKDTree(p_xyz).query_ball_point(t_xyz[order], chord)
    taken = np.zeros(len(p_xyz), bool)
    pairs: list[tuple[int, int, float]] = []
    for t, cand in zip(order, candidates):
        if not cand:
            continue
        cand = np.asarray(cand)
        cand = cand[~taken[cand]]
        if cand.size == 0:
            continue
        d = np.linalg.norm(p_xyz[cand] - t_xyz[t], axis=1)
        best = cand[np.argmin(d)]
        taken[best] = True
        sep = 2.0 * np.arcsin(min(d.min() / 2.0, 1.0))
        pairs.append((best, t, np.degrees(sep) * 3600.0))
    if not pairs:
        return Match(empty, empty, np.zeros(0), len(p_xyz), len(t_xyz))
    p_idx, t_idx, dist = (np.asarray(v) for v in zip(*pairs))
    return Match(p_idx.astype(np.int64), t_idx.astype(np.int64), dist.astype(float), len(p_xyz), len(t_xyz))


def match_labels(
    pred_labels: np.ndarray,
    true_labels: np.ndarray,
    *,
    min_iou: float = DEFAULT_MIN_IOU,
) -> Match:
    """Match instance label images one to one by intersection over union.

    Parameters
    ----------
    pred_labels, true_labels : ndarray of int, shape (ny, nx)
        Label images, 0 for background. Label ``k`` is row ``k - 1`` of the result, and
        ``n_pred``/``n_true`` are the largest labels.
    min_iou : float
        Smallest IoU of a match, in (0, 1].

    Returns
    -------
    Match
        ``distance`` is ``1 - IoU``; pairs in decreasing IoU.

    Raises
    ------
    ValueError
        If the shapes differ, labels are negative, or ``min_iou`` is outside (0, 1].
    """
    pred_labels, true_labels = np.asarray(pred_labels), np.asarray(true_labels)
    if pred_labels.shape != true_labels.shape:
        raise ValueError(f"label shapes differ: {pred_labels.shape} vs {true_labels.shape}")
    if min(pred_labels.min(initial=0), true_labels.min(initial=0)) < 0:
        raise ValueError("labels must be >= 0 (0 is background)")
    if not 0 < min_iou <= 1:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    n_p, n_t = int(pred_labels.max(initial=0)), int(true_labels.max(initial=0))
    area_p = np.bincount(pred_labels.ravel(), minlength=n_p + 1)
    area_t = np.bincount(true_labels.ravel(), minlength=n_t + 1)
    both = (pred_labels > 0) & (true_labels > 0)
    key = pred_labels[both].astype(np.int64) * (n_t + 1) + true_labels[both]
    keys, inter = np.unique(key, return_counts=True)
    p, t = keys // (n_t + 1), keys % (n_t + 1)
    iou = inter / (area_p[p] + area_t[t] - inter)
    order = np.lexsort((t, p, -iou))
    used_p, used_t = np.zeros(n_p + 1, bool), np.zeros(n_t + 1, bool)
    rows = []
    for k in order:
        if iou[k] < min_iou:
            break
        if not (used_p[p[k]] or used_t[t[k]]):
            used_p[p[k]] = used_t[t[k]] = True
            rows.append(k)
    rows = np.asarray(rows, dtype=np.int64)
    return Match(p[rows] - 1, t[rows] - 1, 1.0 - iou[rows], n_p, n_t)
