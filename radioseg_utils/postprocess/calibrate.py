"""Learned corrections of the sizes and fluxes measured in each segment.

:func:`radioseg_utils.postprocess.measure.measure_sources` measures sizes from second moments and
fluxes from sums over the pixels of a segment. For faint sources both are biased (the
segment cuts off the wings) and noisy, and the SDC1 scorer rewards relative accuracy: a
size or flux within 30 % (10 % for flux) of the truth scores 1, twice that error 0.5.
A :class:`ParameterCalibration` predicts, from what was measured, the deconvolved major
and minor axes (Gaussian FWHM) and the ratio of the intrinsic flux to the measured one.
It is fitted on detections of simulated training fields matched to their true sources
(:func:`fit_calibration`): gradient-boosted trees (scikit-learn's
``HistGradientBoostingRegressor``) with an absolute-error loss on logarithms, i.e. the
median of the true value given the measurements, which is what a relative-error score
rewards.

The trees are kept as plain arrays (:meth:`ParameterCalibration.save`, a ``.npz`` file
read without pickle) and evaluated by numpy, so a shipped calibration does not depend on
the scikit-learn version. It is applied to star-forming galaxies only (``size == 2``): the
extended AGN of :class:`~radioseg_utils.postprocess.measure.ClassRule` keep their measured sizes.

The features (:data:`FEATURES`) are the peak S/N, the measured FWHMs in beams, the
segment area, the compactness, the measured flux, the local noise and the beam: together
they tell the depth and band of the image, on which the sizes of the detected sources
depend.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import astropy.units as u
import numpy as np
from astropy.table import Table

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.core.matching import match_positions

__all__ = ["FEATURES", "CALIBRATION_TARGETS", "ParameterCalibration", "calibration_features",
           "fit_calibration", "load_calibration", "plot_calibration", "training_pairs"]

#: Inputs of the calibration, in this order (see :func:`calibration_features`).
FEATURES: tuple[str, ...] = ("log_peak_snr", "fwhm_maj_beams", "fwhm_min_beams", "log_area_pix",
                             "compactness", "log_flux_jy", "log_noise_jy", "log_beam_arcsec")
#: Predicted quantities: log of the true b_maj and b_min in beams, log of true / measured flux.
CALIBRATION_TARGETS: tuple[str, ...] = ("log_b_maj_beams", "log_b_min_beams", "log_flux_ratio")
#: Node fields of a stored tree.
_NODE_DTYPE = np.dtype([("value", "<f8"), ("feature", "<i4"), ("threshold", "<f8"),
                        ("missing_left", "u1"), ("left", "<i4"), ("right", "<i4"),
                        ("is_leaf", "u1")])
_FORMAT = "radioseg-calibration/1"


def _values(column, unit: u.UnitBase | None) -> np.ndarray:
    """Float values of a column, in ``unit`` when the column has a unit (else as they are)."""
    column_unit = getattr(column, "unit", None)
    if unit is None or column_unit is None:
        return np.asarray(getattr(column, "value", column), dtype=float)
    return np.asarray(u.Quantity(column, column_unit).to_value(unit), dtype=float)


def calibration_features(catalogue: Table, band: str | Band) -> np.ndarray:
    """Feature matrix ``(n, len(FEATURES))`` of a catalogue of
    :func:`~radioseg_utils.postprocess.measure.measure_sources` (``flux_meas`` if present, else
    ``flux``, is the measured flux).

    Raises
    ------
    KeyError
        If a needed column is missing (the message names it).
    """
    beam = get_band(band).beam_fwhm_arcsec
    needed = ("peak_snr", "fwhm_maj", "fwhm_min", "area_pix", "compactness", "noise", "flux")
    missing = [c for c in needed if c not in catalogue.colnames]
    if missing:
        raise KeyError(f"catalogue lacks column(s) {missing} needed by the calibration")

    def col(name: str) -> np.ndarray:
        return _values(catalogue[name], None)

    flux = _values(catalogue["flux_meas" if "flux_meas" in catalogue.colnames else "flux"], u.Jy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([
            np.log10(np.clip(col("peak_snr"), 0.1, None)),
            _values(catalogue["fwhm_maj"], u.arcsec) / beam,
            _values(catalogue["fwhm_min"], u.arcsec) / beam,
            np.log10(np.clip(col("area_pix"), 1.0, None)),
            np.nan_to_num(col("compactness"), nan=0.0, posinf=0.0, neginf=0.0),
            np.log10(np.clip(flux, 1e-12, None)),
            np.log10(_values(catalogue["noise"], u.Jy / u.beam)),
            np.full(len(catalogue), np.log10(beam)),
        ])


def _tree_depth(tree: np.ndarray) -> int:
    """Number of splits on the longest path from the root of ``tree`` to a leaf."""
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if not tree["is_leaf"][node]:
            stack += [(int(tree["left"][node]), depth + 1), (int(tree["right"][node]), depth + 1)]
    return deepest


class _Walk(NamedTuple):
    """One tree, arranged for :func:`_predict_trees`: a leaf is its own child (threshold
    +inf, feature 0), so rows that reach one early stay there."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray
    depth: int


def _arrange_trees(nodes: np.ndarray, offsets: np.ndarray) -> list[_Walk]:
    """The trees ``nodes[offsets[k]:offsets[k+1]]`` arranged for :func:`_predict_trees`."""
    walks = []
    for start, stop in zip(offsets[:-1], offsets[1:]):
        tree = nodes[start:stop]
        leaf = tree["is_leaf"].astype(bool)
        own = np.arange(len(tree))
        walks.append(_Walk(np.where(leaf, own, tree["left"]), np.where(leaf, own, tree["right"]),
                           np.where(leaf, 0, tree["feature"]).astype(np.intp),
                           np.where(leaf, np.inf, tree["threshold"]),
                           tree["missing_left"].astype(bool), tree["value"], _tree_depth(tree)))
    return walks


def _predict_trees(walks: Sequence[_Walk], baseline: float, x: np.ndarray) -> np.ndarray:
    """Sum of the leaf values of every tree plus baseline.

    All rows descend a tree together, one level per step, for as many steps as the tree
    is deep.
    """
    n = len(x)
    rows = np.arange(n)
    by_feature = np.ascontiguousarray(x.T).ravel()  # feature f of row r at f * n + r
    missing = bool(np.isnan(x).any())
    out = np.full(n, baseline)
    for walk in walks:
        column_start = walk.feature * n
        idx = np.zeros(n, np.intp)
        for _ in range(walk.depth):
            value = by_feature.take(column_start.take(idx) + rows)
            go_left = value <= walk.threshold.take(idx)
            if missing:
                go_left |= np.isnan(value) & walk.missing_left.take(idx)
            idx = np.where(go_left, walk.left.take(idx), walk.right.take(idx))
        out += walk.value.take(idx)
    return out


@dataclass(frozen=True)
class ParameterCalibration:
    """Boosted-tree corrections of measured sizes and fluxes.

    Attributes
    ----------
    nodes : dict
        Per target of :data:`CALIBRATION_TARGETS`, the nodes of all its trees (structured array).
    offsets : dict
        Per target, the start of each tree in ``nodes`` and the end of the last.
    baselines : dict
        Per target, the constant the tree values are added to.
    meta : dict
        Provenance (training fields, pairs, seed, versions).
    """

    nodes: dict[str, np.ndarray]
    offsets: dict[str, np.ndarray]
    baselines: dict[str, float]
    meta: dict = field(default_factory=dict)

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted :data:`CALIBRATION_TARGETS` for a feature matrix of :func:`calibration_features`."""
        features = np.asarray(features, dtype=float)
        if features.ndim != 2 or features.shape[1] != len(FEATURES):
            raise ValueError(f"features must have shape (n, {len(FEATURES)}), got {features.shape}")
        return {t: _predict_trees(self._walks[t], self.baselines[t], features)
                for t in CALIBRATION_TARGETS}

    @functools.cached_property
    def _walks(self) -> dict[str, list[_Walk]]:
        """The trees of each target arranged for prediction, once per calibration (a
        loaded one is cached across the blocks of a run)."""
        return {t: _arrange_trees(self.nodes[t], self.offsets[t]) for t in CALIBRATION_TARGETS}

    def apply(self, catalogue: Table, band: str | Band) -> Table:
        """A copy of ``catalogue`` with calibrated ``b_maj``, ``b_min`` and ``flux``.

        Only rows with ``size == 2`` (Gaussian-sized star-forming galaxies) change; the
        measured flux is kept as ``flux_meas`` (applying twice gives the same table).
        ``b_min`` is capped at ``b_maj``.
        """
        out = catalogue.copy()
        if "flux_meas" not in out.colnames:
            out["flux_meas"] = out["flux"].copy()
            out["flux_meas"].description = "flux measured in the segment, before calibration"
        if len(out) == 0:
            return out
        band = get_band(band)
        pred = self.predict(calibration_features(out, band))
        sfg = np.asarray(out["size"]) == 2
        beam = band.beam_fwhm_arcsec
        b_maj = beam * np.exp(pred["log_b_maj_beams"])
        b_min = np.minimum(beam * np.exp(pred["log_b_min_beams"]), b_maj)
        flux = _values(out["flux_meas"], u.Jy) * np.exp(pred["log_flux_ratio"])
        for name, values in (("b_maj", b_maj * u.arcsec), ("b_min", b_min * u.arcsec),
                             ("flux", flux * u.Jy)):
            column = out[name]  # set in place: units and descriptions stay
            if isinstance(column, u.Quantity):
                column[sfg] = values[sfg]
            else:
                column[sfg] = values[sfg].to_value(column.unit or values.unit)
        out.meta["CALIB"] = self.meta.get("name", "calibrated")
        return out

    def save(self, path: str | Path) -> Path:
        """Write the calibration as ``.npz`` (arrays and a JSON header; no pickle)."""
        path = Path(path)
        arrays = {}
        for t in CALIBRATION_TARGETS:
            arrays[f"{t}_nodes"] = self.nodes[t]
            arrays[f"{t}_offsets"] = self.offsets[t]
        header = {"format": _FORMAT, "features": list(FEATURES), "targets": list(CALIBRATION_TARGETS),
                  "baselines": self.baselines, "meta": self.meta}
        with path.open("wb") as f:
            np.savez_compressed(f, header=np.array(json.dumps(header)), **arrays)
        return path


def load_calibration(path: str | Path) -> ParameterCalibration:
    """Read a calibration written by :meth:`ParameterCalibration.save`.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it is not a radioseg calibration or was made for other features.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file {path} not found")
    stat = path.stat()
    return _load_cached(str(path.resolve()), stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> ParameterCalibration:
    try:
        with np.load(path, allow_pickle=False) as saved:
            header = json.loads(str(saved["header"]))
            if header.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a radioseg calibration (format "
                                 f"{header.get('format')!r}, expected {_FORMAT!r})")
            if tuple(header["features"]) != FEATURES or tuple(header["targets"]) != CALIBRATION_TARGETS:
                raise ValueError(f"{path}: made for features {header['features']} and targets "
                                 f"{header['targets']}; this version uses {list(FEATURES)}, "
                                 f"{list(CALIBRATION_TARGETS)}")
            nodes = {t: saved[f"{t}_nodes"] for t in CALIBRATION_TARGETS}
            offsets = {t: saved[f"{t}_offsets"] for t in CALIBRATION_TARGETS}
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path}: not a readable radioseg calibration ({exc})") from exc
    return ParameterCalibration(nodes, offsets, {t: float(v) for t, v in header["baselines"].items()},
                                header.get("meta", {}))


def _export(model) -> tuple[np.ndarray, np.ndarray, float]:
    """Nodes, tree offsets and baseline of a fitted ``HistGradientBoostingRegressor``."""
    trees = [predictors[0].nodes for predictors in model._predictors]
    nodes = np.zeros(sum(len(t) for t in trees), _NODE_DTYPE)
    offsets = np.zeros(len(trees) + 1, np.int64)
    for k, tree in enumerate(trees):
        if tree["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        sl = slice(offsets[k], offsets[k] + len(tree))
        for name, source in (("value", "value"), ("feature", "feature_idx"),
                             ("threshold", "num_threshold"), ("missing_left", "missing_go_to_left"),
                             ("left", "left"), ("right", "right"), ("is_leaf", "is_leaf")):
            nodes[name][sl] = tree[source]
        offsets[k + 1] = offsets[k] + len(tree)
    return nodes, offsets, float(np.ravel(model._baseline_prediction)[0])


def training_pairs(catalogue: Table, truth: Table, band: str | Band) -> tuple[np.ndarray, np.ndarray]:
    """Features and :data:`CALIBRATION_TARGETS` of the detections matched (within one beam FWHM, one to
    one) to true star-forming galaxies (``size == 2``) and called such (``size == 2``)."""
    band = get_band(band)
    beam = band.beam_fwhm_arcsec
    match = match_positions(catalogue, truth, radius_arcsec=beam)
    det, true = catalogue[match.pred], truth[match.true]
    keep = (np.asarray(true["size"]) == 2) & (np.asarray(det["size"]) == 2)
    x = calibration_features(det, band)[keep]
    measured = _values(det["flux_meas" if "flux_meas" in det.colnames else "flux"], u.Jy)[keep]

    def value(name: str) -> np.ndarray:
        return _values(true[name], u.Jy if name == "flux" else u.arcsec)[keep]

    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.column_stack([np.log(value("b_maj") / beam), np.log(value("b_min") / beam),
                             np.log(value("flux") / measured)])
    ok = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(y), axis=1)
    return x[ok], y[ok]


def fit_calibration(catalogues: Sequence[Table], truths: Sequence[Table],
                    bands: Sequence[str | Band], *, seed: int = 0, max_iter: int = 200,
                    meta: dict | None = None) -> ParameterCalibration:
    """Fit the calibration on detections of fields whose truth is known.

    Parameters
    ----------
    catalogues, truths, bands : sequences of equal length
        Per field: the finder's catalogue (uncalibrated), the true sources (SDC1 columns,
        ``b_maj``/``b_min`` Gaussian FWHM in arcsec for ``size == 2``) and the band. Use
        training fields only: never the fields a score is reported on.
    seed : int
        Random state of the trees (their validation split for early stopping).
    max_iter : int
        Boosting iterations per target.
    meta : dict, optional
        Provenance stored with the calibration.

    Raises
    ------
    ValueError
        If the lengths differ or fewer than 100 pairs are found.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    if not len(catalogues) == len(truths) == len(bands):
        raise ValueError("catalogues, truths and bands must have the same length")
    pairs = [training_pairs(c, t, b) for c, t, b in zip(catalogues, truths, bands)]
    x = np.vstack([p[0] for p in pairs]) if pairs else np.zeros((0, len(FEATURES)))
    y = np.vstack([p[1] for p in pairs]) if pairs else np.zeros((0, len(CALIBRATION_TARGETS)))
    if len(x) < 100:
        raise ValueError(f"only {len(x)} matched star-forming galaxies: too few to calibrate on")
    nodes, offsets, baselines = {}, {}, {}
    for k, target in enumerate(CALIBRATION_TARGETS):
        model = HistGradientBoostingRegressor(loss="absolute_error", max_iter=max_iter,
                                              random_state=seed).fit(x, y[:, k])
        nodes[target], offsets[target], baselines[target] = _export(model)
    info = {"pairs": int(len(x)), "pairs_per_field": [int(len(p[0])) for p in pairs],
            "seed": seed, "max_iter": max_iter, **(meta or {})}
    return ParameterCalibration(nodes, offsets, baselines, info)


def plot_calibration(raw: Table, calibrated: Table, truth: Table, band: str | Band):
    """Measured and calibrated parameters of matched star-forming galaxies against the truth.

    Three panels: true against reported ``b_maj`` and ``b_min`` (arcsec; as measured in the
    segment, deconvolved, and after calibration), and reported / true flux against the
    true flux. Detections are matched within one beam FWHM to true sources of
    ``size == 2``.

    Parameters
    ----------
    raw, calibrated : astropy.table.Table
        The same detections without and with calibration (row for row).
    truth : astropy.table.Table
        The true sources of the image.
    band : str or Band
        SDC1 band (beam size).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    band = get_band(band)
    if len(raw) != len(calibrated):
        raise ValueError("raw and calibrated must hold the same detections")
    match = match_positions(raw, truth, radius_arcsec=band.beam_fwhm_arcsec)
    keep = np.asarray(truth["size"])[match.true] == 2
    det, true = match.pred[keep], truth[match.true[keep]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    for ax, name in zip(axes[:2], ("b_maj", "b_min")):
        t = _values(true[name], u.arcsec)
        top = max(float(np.percentile(t, 99.5)), band.beam_fwhm_arcsec) * 1.5
        for table, colour, label in ((raw, "0.6", "measured"), (calibrated, "tab:blue", "calibrated")):
            v = _values(table[name], u.arcsec)[det]
            ok = np.abs(v - t) <= 0.3 * t
            ax.scatter(t, v, s=2, color=colour, alpha=0.4,
                       label=f"{label}: {100 * ok.mean():.0f} % within 30 %")
        ax.plot([0, top], [0, top], "k--", lw=0.8)
        ax.set(xlim=(0, top), ylim=(0, top), xlabel=f"true {name} (arcsec)",
               ylabel=f"reported {name} (arcsec)", title=f"{name}, {len(det)} matched SFGs")
        ax.legend(loc="upper left", markerscale=4)
    t = _values(true["flux"], u.Jy)
    for table, colour, label in ((raw, "0.6", "measured"), (calibrated, "tab:blue", "calibrated")):
        ratio = _values(table["flux"], u.Jy)[det] / t
        ok = np.abs(ratio - 1) <= 0.1
        axes[2].scatter(t * 1e6, ratio, s=2, color=colour, alpha=0.4,
                        label=f"{label}: {100 * ok.mean():.0f} % within 10 %")
    axes[2].axhline(1, color="k", ls="--", lw=0.8)
    axes[2].set(xscale="log", ylim=(0, 2.5), xlabel="true flux (µJy)",
                ylabel="reported / true flux", title="flux")
    axes[2].legend(loc="upper right", markerscale=4)
    return fig
