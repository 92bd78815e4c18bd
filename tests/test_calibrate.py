"""Learned size and flux corrections: the tree evaluator, fitting, files, use in predict."""

from __future__ import annotations

import json

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.core.bands import get_band
from radioseg_utils.inference.config import (
    PredictConfig,
    resolve_config,
    tuned_centre_threshold,
)
from radioseg_utils.postprocess import calibrate

BEAM = get_band("B1").beam_fwhm_arcsec


def _fields(rng, n=3000):
    """A measured catalogue and its truth: measured FWHMs are the true sizes convolved with
    the beam, shrunk by 20 % (a tight mask) and noisy; fluxes are 15 % low and noisy."""
    ra = rng.uniform(-0.1, 0.1, n)
    dec = -30.0 + np.arange(n) * (3 * BEAM / 3600.0)  # a column of sources 3 beams apart
    b_maj = rng.lognormal(np.log(1.0), 0.4, n)
    b_min = b_maj * rng.uniform(0.4, 1.0, n)
    flux = 1e-6 * (3 + rng.lognormal(np.log(3.0), 1.0, n))  # S/N above 3
    snr = flux / 1e-6
    truth = Table({"ra_core": ra, "dec_core": dec, "b_maj": b_maj * u.arcsec,
                   "b_min": b_min * u.arcsec, "flux": flux * u.Jy, "size": np.full(n, 2)})
    scatter = 1 + rng.normal(0, 0.3, (2, n)) / np.sqrt(snr)
    fwhm_maj = 0.8 * np.hypot(b_maj, BEAM) * scatter[0]
    fwhm_min = np.minimum(0.8 * np.hypot(b_min, BEAM) * scatter[1], fwhm_maj)
    size = np.where(np.arange(n) % 10 == 0, 1, 2)  # every tenth called an extended AGN
    measured = Table({
        "ra_core": ra, "dec_core": dec, "flux": 0.85 * flux * (1 + rng.normal(0, 0.5, n) / snr) * u.Jy,
        "b_maj": fwhm_maj * u.arcsec, "b_min": fwhm_min * u.arcsec, "size": size,
        "peak_snr": snr, "fwhm_maj": fwhm_maj * u.arcsec, "fwhm_min": fwhm_min * u.arcsec,
        "area_pix": np.round(10 * fwhm_maj * fwhm_min), "compactness": 1 / (1 + b_maj),
        "noise": np.full(n, 1e-6) * u.Jy / u.beam})
    return measured, truth


def _log_error(measured, truth, name, rows):
    return np.median(np.abs(np.log(np.asarray(measured[name])[rows] / np.asarray(truth[name])[rows])))


def test_tree_evaluator_matches_scikit_learn(rng):
    from sklearn.ensemble import HistGradientBoostingRegressor

    x = rng.normal(size=(2000, len(calibrate.FEATURES)))
    x[rng.random(x.shape) < 0.02] = np.nan  # missing values take the learned branch
    y = np.sin(np.nan_to_num(x[:, 0])) + np.nan_to_num(x[:, 3]) ** 2
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, y)
    nodes, offsets, baseline = calibrate._export(model)
    ours = calibrate._predict_trees(calibrate._arrange_trees(nodes, offsets), baseline, x)
    np.testing.assert_allclose(ours, model.predict(x), rtol=1e-12, atol=1e-12)


def test_fitted_calibration_corrects_sizes_and_fluxes_on_new_fields(rng):
    train, train_truth = _fields(rng)
    test, test_truth = _fields(np.random.default_rng(99))
    cal = calibrate.fit_calibration([train], [train_truth], ["B1"], max_iter=100)
    out = cal.apply(test, "B1")
    sfg = np.asarray(test["size"]) == 2
    for name in ("b_maj", "b_min", "flux"):
        before, after = _log_error(test, test_truth, name, sfg), _log_error(out, test_truth, name, sfg)
        assert after < 0.5 * before, (name, before, after)
    # extended AGN keep their measured sizes and fluxes; the measured flux is kept
    for name in ("b_maj", "b_min", "flux"):
        np.testing.assert_array_equal(out[name][~sfg], test[name][~sfg])
    np.testing.assert_array_equal(out["flux_meas"], test["flux"])
    assert np.all(out["b_min"] <= out["b_maj"])
    assert out["b_maj"].unit == u.arcsec and out["flux"].unit == u.Jy
    # applying twice changes nothing: the features read the measured flux
    again = cal.apply(out, "B1")
    for name in ("b_maj", "b_min", "flux"):
        np.testing.assert_array_equal(again[name], out[name])
    assert cal.meta["pairs"] == int(np.sum(np.asarray(train["size"]) == 2))


def test_calibration_file_round_trip_and_errors(rng, tmp_path):
    measured, truth = _fields(rng, n=600)
    cal = calibrate.fit_calibration([measured], [truth], ["B1"], max_iter=20, meta={"name": "x"})
    path = cal.save(tmp_path / "cal.npz")
    loaded = calibrate.load_calibration(path)
    x = calibrate.calibration_features(measured, "B1")
    for target in calibrate.CALIBRATION_TARGETS:
        np.testing.assert_array_equal(loaded.predict(x)[target], cal.predict(x)[target])
    assert loaded.meta["name"] == "x"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        calibrate.load_calibration(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", header=np.array(json.dumps({"format": "something"})))
    with pytest.raises(ValueError, match="not a radioseg calibration"):
        calibrate.load_calibration(tmp_path / "other.npz")
    np.savez(tmp_path / "junk.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a readable radioseg calibration"):
        calibrate.load_calibration(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="shape"):
        cal.predict(x[:, :3])


def test_features_name_the_missing_column_and_fit_needs_pairs(rng):
    measured, truth = _fields(rng, n=50)
    with pytest.raises(KeyError, match="peak_snr"):
        calibrate.calibration_features(measured[[c for c in measured.colnames if c != "peak_snr"]], "B1")
    with pytest.raises(ValueError, match="too few"):
        calibrate.fit_calibration([measured], [truth], ["B1"])
    with pytest.raises(ValueError, match="same length"):
        calibrate.fit_calibration([measured], [truth, truth], ["B1"])


def test_resolve_config_takes_calibration_and_thresholds_from_the_sidecar(tmp_path, rng):
    measured, truth = _fields(rng, n=600)
    calibrate.fit_calibration([measured], [truth], ["B1"], max_iter=5).save(tmp_path / "m.cal.npz")
    (tmp_path / "m.keras").write_bytes(b"")
    sidecar = {"centre_threshold": 0.35, "calibration": "m.cal.npz",
               "centre_thresholds": {"B1": {"8": 0.45, "100": 0.4, "1000": 0.35}}}
    (tmp_path / "m.json").write_text(json.dumps(sidecar))
    band = get_band("B1")
    config = resolve_config(tmp_path / "m.keras", PredictConfig(), band="B1", noise=band.noise(8) * 1.3)
    assert config.calibration == str(tmp_path / "m.cal.npz")
    assert config.centre_threshold == 0.45
    assert resolve_config(tmp_path / "m.keras", PredictConfig(calibration=None)).calibration is None
    # a callable has no sidecar: defaults
    assert resolve_config(lambda x: x, PredictConfig()).calibration is None
    # the nearest nominal noise decides; other bands and no noise fall back to the scalar
    assert tuned_centre_threshold(sidecar, "B1", band.noise(1000)) == 0.35
    assert tuned_centre_threshold(sidecar, "B1", band.noise(100) * 0.8) == 0.4
    assert tuned_centre_threshold(sidecar, "B2", 1e-6) == 0.35
    assert tuned_centre_threshold(sidecar, "B1", None) == 0.35
    sidecar["calibration"] = "missing.npz"
    (tmp_path / "m.json").write_text(json.dumps(sidecar))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        resolve_config(tmp_path / "m.keras", PredictConfig())


def test_plot_calibration_draws_three_panels(rng):
    import matplotlib

    matplotlib.use("Agg")
    measured, truth = _fields(rng, n=600)
    cal = calibrate.fit_calibration([measured], [truth], ["B1"], max_iter=10)
    fig = calibrate.plot_calibration(measured, cal.apply(measured, "B1"), truth, "B1")
    assert len(fig.axes) == 3 and "matched SFGs" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="same detections"):
        calibrate.plot_calibration(measured, measured[:10], truth, "B1")
