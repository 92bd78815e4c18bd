"""A calibrated probability that each detection is a true source: ``p_real``.

A finder's catalogue mixes true sources with noise peaks, and its overall reliability
(the fraction of true detections) hides which rows are doubtful. A
:class:`ReliabilityModel` gives every row of a model's catalogue ``p_real``, the
probability that the detection matches a true source, so that a user can cut the
catalogue at the purity they need: keeping the rows with ``p_real >= q`` leaves a
catalogue whose expected purity is the mean ``p_real`` of what is kept.

What the probability is computed from (:data:`RELIABILITY_FEATURES`, all measured for every
row of a model's catalogue):

* the model's own confidence: ``prob_peak`` and ``centre_peak``, the highest value of
  its source-probability map and of its centre map in the segment
  (:func:`detection_columns`, added by
  :func:`radioseg_utils.postprocess.blocks.segment_block`);
* the peak S/N (log), the compactness (peak / integrated flux), the measured major
  axis in restoring-beam FWHMs (log, beam included) and the axis ratio;
* ``neighbour_dist``, the distance to the nearest brighter detection, in beams (log,
  capped at :data:`NEIGHBOUR_CAP_BEAMS`): a faint detection in the wings of a bright
  source is often a side lobe or a noise peak on its wing.

The classifier is a logistic regression on the standardised features, their squares and
their pairwise products (fitted by :func:`scipy.optimize.minimize` with a small L2
penalty), followed by an isotonic recalibration of its score (pool-adjacent-violators,
fitted on out-of-fold scores of a k-fold split, so it corrects the regression's own
miscalibration rather than memorising the training rows). :func:`fit_reliability` fits it
on the detections of fields with known truth, labelled real or false by the strict
matching of :func:`radioseg_utils.evaluation.evaluate.evaluate_finder`
(:func:`radioseg_utils.evaluation.evaluate.labelled_detections`); it takes the fields by name
and refuses any whose name says ``test``. The default model's is fitted on its validation
fields only (:func:`radioseg_utils.workflows.pretrain.fit_model_reliability`).

The model is saved as a ``.npz`` file of arrays and a JSON header (no pickle),
:meth:`ReliabilityModel.save` / :func:`load_reliability`, named in the model's sidecar
(``reliability``) beside the size and flux calibration.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table
from scipy import optimize
from scipy.spatial import cKDTree

from radioseg_utils.io.catalogue import set_column

__all__ = ["CENTRE_THRESHOLD_MIN", "NEIGHBOUR_CAP_BEAMS", "RELIABILITY_FEATURES", "ReliabilityModel", "detection_columns",
           "fit_reliability", "load_reliability", "neighbour_distance", "refuse_test_fields",
           "reliability_features"]

#: Key of a reliability model's ``meta``: the lowest centre threshold of the detections it
#: was fitted on. ``p_real`` is valid at that threshold and above it, not below.
CENTRE_THRESHOLD_MIN: str = "centre_threshold_min"
#: Largest distance (restoring-beam FWHMs) searched for a brighter neighbour; a detection
#: without one that close has ``neighbour_dist`` NaN and counts as this far.
NEIGHBOUR_CAP_BEAMS: float = 5.0
#: Nearest detections searched for a brighter one.
_NEIGHBOURS_SEARCHED = 16
#: Inputs of the reliability model, in this order (see :func:`reliability_features`).
RELIABILITY_FEATURES: tuple[str, ...] = (
    "log_peak_snr", "prob_peak", "centre_peak", "compactness", "log_fwhm_maj_beams",
    "axis_ratio", "log_neighbour_beams")
_FORMAT = "radioseg-reliability/1"
#: Standardised features are clipped to this many standard deviations before the
#: quadratic terms, so that an outlier cannot dominate its own score.
_Z_CLIP = 5.0


def neighbour_distance(ra: np.ndarray, dec: np.ndarray, peak: np.ndarray,
                       cap_arcsec: float) -> np.ndarray:
    """Distance (arcsec) from each detection to the nearest one with a higher ``peak``.

    Parameters
    ----------
    ra, dec : array, shape (n,)
        Positions in degrees.
    peak : array, shape (n,)
        Brightness that orders the detections (e.g. the peak in Jy/beam).
    cap_arcsec : float
        Largest distance searched.

    Returns
    -------
    ndarray of float64, shape (n,)
        NaN where no brighter detection lies within ``cap_arcsec`` among the 16 nearest.

    Examples
    --------
    >>> d = neighbour_distance([0, 0, 0], [0, 1 / 3600, 30 / 3600], [5, 1, 2], 10.0)
    >>> np.round(d, 3).tolist()
    [nan, 1.0, nan]
    """
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    peak = np.asarray(peak, float)
    n = ra.size
    out = np.full(n, np.nan)
    if n < 2:
        return out
    vectors = np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    chord_cap = 2 * np.sin(np.radians(cap_arcsec / 3600.0) / 2)
    chord, index = cKDTree(vectors).query(vectors, k=min(_NEIGHBOURS_SEARCHED, n),
                                          distance_upper_bound=chord_cap)
    found = index < n
    brighter = found & (peak[np.where(found, index, 0)] > peak[:, None])
    has = brighter.any(axis=1)
    first = np.argmax(brighter, axis=1)
    nearest = chord[np.arange(n), first]
    out[has] = np.degrees(2 * np.arcsin(np.clip(nearest[has] / 2, 0, 1))) * 3600.0
    return out


def detection_columns(catalogue: Table, labels: np.ndarray, prob: np.ndarray, *,
                      beam_fwhm_arcsec: float) -> Table:
    """Add the model's confidence and the brighter-neighbour distance to a catalogue.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Sources of :func:`~radioseg_utils.postprocess.measure.measure_sources` with their
        ``label`` in ``labels``, ``ra_core``, ``dec_core`` and ``peak_flux``.
    labels : ndarray of int, shape (h, w)
        Source labels (0 = background).
    prob : ndarray, shape (h, w) or (h, w, C)
        Model outputs on the same pixels: channel 0 the source probability, channel 1 (if
        any) the centre map. NaN counts as 0.
    beam_fwhm_arcsec : float
        Restoring-beam FWHM: the neighbour search reaches :data:`NEIGHBOUR_CAP_BEAMS` of it.

    Returns
    -------
    astropy.table.Table
        ``catalogue`` (changed in place) with ``prob_peak``, ``centre_peak`` (NaN for a
        one-channel model) and ``neighbour_dist`` (arcsec).
    """
    prob = np.asarray(prob)
    prob = prob[..., None] if prob.ndim == 2 else prob
    ids = np.asarray(catalogue["label"], np.int64)
    inside = labels > 0
    owner = labels[inside]

    def peak_in_segment(channel: int) -> np.ndarray:
        # a running maximum per label over the segment pixels: linear in their number
        # (ndimage.maximum with an index sorts the whole window, 30x slower)
        peak = np.full(int(labels.max(initial=0)) + 1, -np.inf)
        np.maximum.at(peak, owner, np.nan_to_num(prob[..., channel][inside], nan=0.0))
        return peak[ids]

    set_column(catalogue, "prob_peak", peak_in_segment(0))
    set_column(catalogue, "centre_peak", peak_in_segment(1) if prob.shape[-1] > 1
               else np.full(ids.size, np.nan))
    set_column(catalogue, "neighbour_dist",
               neighbour_distance(np.asarray(catalogue["ra_core"], float),
                                  np.asarray(catalogue["dec_core"], float),
                                  np.asarray(catalogue["peak_flux"], float),
                                  NEIGHBOUR_CAP_BEAMS * beam_fwhm_arcsec))
    return catalogue


def _values(catalogue: Table, name: str, unit: u.UnitBase | None = None) -> np.ndarray:
    column = catalogue[name]
    if unit is not None and getattr(column, "unit", None) is not None:
        return np.asarray(u.Quantity(column, column.unit).to_value(unit), float)
    return np.asarray(getattr(column, "value", column), float)


def reliability_features(catalogue: Table, beam_fwhm_arcsec: float) -> np.ndarray:
    """Feature matrix ``(n, len(RELIABILITY_FEATURES))`` of a model's catalogue.

    Parameters
    ----------
    catalogue : astropy.table.Table
        With ``peak_snr``, ``prob_peak``, ``centre_peak``, ``compactness``, ``fwhm_maj``,
        ``fwhm_min`` and ``neighbour_dist`` (arcsec).
    beam_fwhm_arcsec : float
        Restoring beam the sources were measured with.

    Raises
    ------
    KeyError
        If a needed column is missing (the message names it).
    """
    needed = ("peak_snr", "prob_peak", "centre_peak", "compactness", "fwhm_maj", "fwhm_min",
              "neighbour_dist")
    missing = [c for c in needed if c not in catalogue.colnames]
    if missing:
        raise KeyError(f"catalogue lacks column(s) {missing} needed for p_real (a catalogue of "
                       "radioseg predict has them)")
    beam = float(beam_fwhm_arcsec)
    maj = _values(catalogue, "fwhm_maj", u.arcsec)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _values(catalogue, "fwhm_min", u.arcsec) / maj
        neighbour = _values(catalogue, "neighbour_dist", u.arcsec) / beam
        return np.column_stack([
            np.log10(np.clip(np.nan_to_num(_values(catalogue, "peak_snr"), nan=0.1), 0.1, None)),
            np.nan_to_num(_values(catalogue, "prob_peak"), nan=0.0),
            np.nan_to_num(_values(catalogue, "centre_peak"), nan=0.0),
            np.clip(np.nan_to_num(_values(catalogue, "compactness"), nan=0.0), 0.0, 3.0),
            np.log10(np.clip(np.nan_to_num(maj / beam, nan=0.1), 0.1, 100.0)),
            np.clip(np.nan_to_num(ratio, nan=1.0), 0.0, 1.0),
            np.log10(np.clip(np.nan_to_num(neighbour, nan=NEIGHBOUR_CAP_BEAMS), 0.1,
                             NEIGHBOUR_CAP_BEAMS)),
        ])


def _basis(z: np.ndarray) -> np.ndarray:
    """Intercept, the standardised features, their squares and pairwise products."""
    z = np.clip(z, -_Z_CLIP, _Z_CLIP)
    i, j = np.triu_indices(z.shape[1])
    return np.column_stack([np.ones(len(z)), z, z[:, i] * z[:, j]])


def _fit_logistic(basis: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """Weights of an L2-penalised logistic regression (the intercept is not penalised)."""
    mask = np.ones(basis.shape[1])
    mask[0] = 0.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = basis @ w
        value = np.sum(np.logaddexp(0.0, s) - y * s) + 0.5 * penalty * np.sum(mask * w * w)
        grad = basis.T @ (0.5 * (1.0 + np.tanh(0.5 * s)) - y) + penalty * mask * w
        return float(value), grad

    w0 = np.zeros(basis.shape[1])
    w0[0] = np.log((y.sum() + 0.5) / (len(y) - y.sum() + 0.5))
    result = optimize.minimize(loss, w0, jac=True, method="L-BFGS-B",
                               options={"maxiter": 2000})
    return result.x


def _isotonic(score: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Increasing step fit of ``y`` on ``score`` (pool adjacent violators).

    Returns the mean score and the fraction of ``y`` (with half a count of each kind added,
    so no block claims exactly 0 or 1) of every block, in increasing order.
    """
    _, inverse = np.unique(score, return_inverse=True)  # equal scores form one block
    sums = zip(np.bincount(inverse, weights=y).tolist(), np.bincount(inverse).tolist(),
               np.bincount(inverse, weights=score).tolist())
    blocks: list[list[float]] = []  # [sum of y, count, sum of scores], increasing fraction
    for block in sums:
        blocks.append(list(block))
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last)]
    arr = np.asarray(blocks, float)
    return arr[:, 2] / arr[:, 1], (arr[:, 0] + 0.5) / (arr[:, 1] + 1.0)


@dataclass(frozen=True)
class ReliabilityModel:
    """Logistic regression plus isotonic recalibration: the ``p_real`` of a detection.

    Attributes
    ----------
    mean, scale : ndarray, shape (len(RELIABILITY_FEATURES),)
        Standardisation of the features.
    weights : ndarray
        Logistic-regression weights of :func:`_basis` of the standardised features.
    knots_score, knots_p : ndarray
        Isotonic map from the regression's score to the probability (linear between the
        knots, constant beyond them).
    meta : dict
        Provenance (fields, counts, seed, folds, penalty, file name, and
        :data:`CENTRE_THRESHOLD_MIN`).
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    knots_score: np.ndarray
    knots_p: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def centre_threshold_min(self) -> float | None:
        """The lowest centre threshold of the detections this model was fitted on (None
        for a file that does not say): ``p_real`` of detections found below it is an
        extrapolation."""
        value = self.meta.get(CENTRE_THRESHOLD_MIN)
        return None if value is None else float(value)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Logistic-regression score (log-odds before recalibration) of a feature matrix."""
        features = np.asarray(features, float)
        if features.ndim != 2 or features.shape[1] != len(RELIABILITY_FEATURES):
            raise ValueError(f"features must have shape (n, {len(RELIABILITY_FEATURES)}), "
                             f"got {features.shape}")
        return _basis((features - self.mean) / self.scale) @ self.weights

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``p_real`` (float32 in [0, 1]) of a feature matrix of :func:`reliability_features`."""
        p = np.interp(self.score(features), self.knots_score, self.knots_p)
        return np.clip(p, 0.0, 1.0).astype(np.float32)

    def apply(self, catalogue: Table, beam_fwhm_arcsec: float) -> Table:
        """A copy of ``catalogue`` with the column ``p_real`` (float32, unit-less, 0..1) and
        ``meta["PREAL"]`` naming this model's file."""
        out = catalogue.copy(copy_data=False)
        values = (self.predict(reliability_features(out, beam_fwhm_arcsec)) if len(out)
                  else np.zeros(0, np.float32))
        set_column(out, "p_real", values)
        out.meta["PREAL"] = self.meta.get("name", "fitted")
        return out

    def save(self, path: str | Path) -> Path:
        """Write the model as ``.npz`` (arrays and a JSON header; no pickle)."""
        path = Path(path)
        header = {"format": _FORMAT, "features": list(RELIABILITY_FEATURES), "meta": self.meta}
        with path.open("wb") as f:
            np.savez_compressed(f, header=np.array(json.dumps(header)), mean=self.mean,
                                scale=self.scale, weights=self.weights,
                                knots_score=self.knots_score, knots_p=self.knots_p)
        return path


def load_reliability(path: str | Path) -> ReliabilityModel:
    """Read a model written by :meth:`ReliabilityModel.save`.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it is not a radioseg reliability model or was made for other features.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reliability file {path} not found")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> ReliabilityModel:
    try:
        with np.load(path, allow_pickle=False) as saved:
            header = json.loads(str(saved["header"]))
            arrays = {k: np.asarray(saved[k], float) for k in
                      ("mean", "scale", "weights", "knots_score", "knots_p")}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable radioseg reliability file ({exc})") from None
    if header.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a radioseg reliability file (format "
                         f"{header.get('format')!r}, expected {_FORMAT!r})")
    if tuple(header.get("features", ())) != RELIABILITY_FEATURES:
        raise ValueError(f"{path}: made for features {header.get('features')}; this version "
                         f"uses {list(RELIABILITY_FEATURES)}")
    return ReliabilityModel(**arrays, meta=header.get("meta", {}))


def refuse_test_fields(fields: Sequence[str]) -> None:
    """Raise if a field name says ``test`` (in any case): ``p_real`` is fitted on
    validation fields and only checked on test fields.

    Raises
    ------
    ValueError
        Naming the test fields.
    """
    testing = [name for name in fields if "test" in name.lower()]
    if testing:
        raise ValueError(f"refusing to fit p_real on test field(s) {testing}: fit on "
                         "validation fields, check on test fields")


def fit_reliability(features: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                    fields: Sequence[str], *, folds: int = 5, penalty: float = 1.0,
                    seed: int = 0, meta: dict | None = None) -> ReliabilityModel:
    """Fit ``p_real`` on detections of fields whose truth is known.

    Parameters
    ----------
    features : sequence of ndarray, shape (n_k, len(RELIABILITY_FEATURES))
        Per field, :func:`reliability_features` of the finder's detections.
    labels : sequence of bool arrays, shape (n_k,)
        Per field, whether each detection is real (matches a true source).
    fields : sequence of str
        Names of the fields, recorded in ``meta``. Fit on validation fields: a name that
        contains ``test`` is refused, so that the fields on which the probabilities are
        checked never shape them.
    folds : int
        Folds of the out-of-fold scores that the isotonic map is fitted on.
    penalty : float
        L2 penalty of the logistic regression (on standardised features).
    seed : int
        Random state of the fold split.
    meta : dict, optional
        Further provenance stored with the model.

    Raises
    ------
    ValueError
        If the lengths differ, a field is a test field, fewer than 20 real or 20 false
        detections are given, or ``folds < 2``.
    """
    if not len(features) == len(labels) == len(fields):
        raise ValueError("features, labels and fields must have the same length")
    refuse_test_fields(fields)
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    k = len(RELIABILITY_FEATURES)
    x = np.vstack([np.asarray(f, float).reshape(-1, k) for f in features]) if features \
        else np.zeros((0, k))
    y = np.concatenate([np.asarray(lab, bool) for lab in labels]).astype(float) if labels \
        else np.zeros(0)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} feature rows but {len(y)} labels")
    ok = np.all(np.isfinite(x), axis=1)
    x, y = x[ok], y[ok]
    n_real, n_false = int(y.sum()), int(len(y) - y.sum())
    if min(n_real, n_false) < 20:
        raise ValueError(f"{n_real} real and {n_false} false detections: too few of each "
                         "(20 needed) to fit p_real")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[~(scale > 0)] = 1.0
    basis = _basis((x - mean) / scale)
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    out_of_fold = np.empty(len(y))
    for f in range(folds):
        test = fold == f
        out_of_fold[test] = basis[test] @ _fit_logistic(basis[~test], y[~test], penalty)
    knots_score, knots_p = _isotonic(out_of_fold, y)
    weights = _fit_logistic(basis, y, penalty)
    info = {"fields": list(fields), "detections": int(len(y)), "real": n_real,
            "false": n_false,
            "per_field": {name: {"detections": int(np.size(lab)), "real": int(np.sum(lab))}
                          for name, lab in zip(fields, labels)},
            "folds": folds, "penalty": penalty, "seed": seed, **(meta or {})}
    return ReliabilityModel(mean, scale, weights, knots_score, knots_p, info)
