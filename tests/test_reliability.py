"""p_real: the per-source reliability, its fit, its file, its use in predict, its check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.core.bands import get_band
from radioseg_utils.core.matching import match_positions
from radioseg_utils.evaluation.metrics import real_detections, source_metrics
from radioseg_utils.evaluation.reliability import (
    P_REAL_TOLERANCE,
    plot_reliability_diagram,
    reliability_diagram,
)
from radioseg_utils.inference.config import PredictConfig, resolve_config
from radioseg_utils.io.catalogue import catalogue_table
from radioseg_utils.postprocess import reliability as rel

BAND = get_band("B1")
K = len(rel.RELIABILITY_FEATURES)


def _sample(rng, n):
    """Features with a known, non-linear probability of being real (about 75 % real)."""
    x = rng.normal(size=(n, K))
    logit = 1.8 + 1.5 * x[:, 0] - 1.0 * x[:, 1] ** 2 + 0.8 * x[:, 2] * x[:, 3] + np.sin(2 * x[:, 4])
    p = 1.0 / (1.0 + np.exp(-logit))
    return x, p, rng.random(n) < p


def test_fitted_p_real_is_calibrated_in_every_decile_of_new_data(rng):
    fields = [_sample(rng, 6000) for _ in range(2)]
    model = rel.fit_reliability([f[0] for f in fields], [f[2] for f in fields],
                                ["val", "val_B2_100h"], seed=1)
    x, p_true, real = _sample(np.random.default_rng(99), 30000)
    p = model.predict(x)
    assert p.dtype == np.float32 and p.min() >= 0 and p.max() <= 1
    table = reliability_diagram(p, real)
    assert len(table) == 10 and table["n"].sum() == len(p)
    assert np.all(np.abs(table["gap"]) <= P_REAL_TOLERANCE), table
    # and against the probabilities the data were drawn from
    for idx in np.array_split(np.argsort(p, kind="stable"), 10):
        assert abs(p[idx].mean() - p_true[idx].mean()) <= P_REAL_TOLERANCE
    # it ranks: the top decile is far purer than the bottom one
    assert table["observed"].iloc[-1] - table["observed"].iloc[0] > 0.5
    assert model.meta["fields"] == ["val", "val_B2_100h"] and model.meta["detections"] == 12000


def test_a_constant_score_is_calibrated_but_a_wrong_one_is_caught(rng):
    real = rng.random(5000) < 0.7
    assert np.all(np.abs(reliability_diagram(np.full(5000, 0.7), real)["gap"]) < 0.05)
    wrong = reliability_diagram(np.full(5000, 0.9), real)
    assert np.all(np.abs(wrong["gap"]) > P_REAL_TOLERANCE)


def test_fit_refuses_test_fields_and_too_few_of_a_kind(rng):
    x, _, real = _sample(rng, 500)
    with pytest.raises(ValueError, match="test field"):
        rel.fit_reliability([x, x], [real, real], ["val", "test"])
    with pytest.raises(ValueError, match="test field"):
        rel.fit_reliability([x], [real], ["my_TEST_field"])
    with pytest.raises(ValueError, match="too few"):
        rel.fit_reliability([x], [np.ones(500, bool)], ["val"])
    with pytest.raises(ValueError, match="same length"):
        rel.fit_reliability([x], [real, real], ["val"])
    with pytest.raises(ValueError, match="labels"):
        rel.fit_reliability([x], [real[:-1]], ["val"])


def test_reliability_file_round_trip_and_one_line_errors(rng, tmp_path):
    x, _, real = _sample(rng, 2000)
    model = rel.fit_reliability([x], [real], ["val"], meta={"name": "m.reliability.npz"})
    path = model.save(tmp_path / "m.reliability.npz")
    loaded = rel.load_reliability(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.meta["name"] == "m.reliability.npz"
    with pytest.raises(FileNotFoundError, match="reliability file .*nope.npz not found"):
        rel.load_reliability(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", header=np.array(json.dumps({"format": "radioseg-calibration/1"})),
             mean=np.zeros(K), scale=np.ones(K), weights=np.zeros(3), knots_score=np.zeros(2),
             knots_p=np.zeros(2))
    with pytest.raises(ValueError, match="not a radioseg reliability file"):
        rel.load_reliability(tmp_path / "other.npz")
    np.savez(tmp_path / "junk.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a readable radioseg reliability file"):
        rel.load_reliability(tmp_path / "junk.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        rel.load_reliability(tmp_path / "text.npz")
    with pytest.raises(ValueError, match="shape"):
        model.predict(x[:, :3])


def test_neighbour_distance_finds_the_nearest_brighter_detection():
    arcsec = 1 / 3600
    ra = np.array([0.0, 2.0, 3.0, 0.0, 40.0]) * arcsec
    dec = np.zeros(5)
    peak = np.array([10.0, 5.0, 7.0, 1.0, 1.0])
    d = rel.neighbour_distance(ra, dec, peak, cap_arcsec=10.0)
    # 0: brightest; 1: nearest brighter is 2 (1"), not 0 (2"); 2: 0 at 3"; 3: 0 at 0";
    # 4: nothing brighter within 10"
    np.testing.assert_allclose(d[1:4], [1.0, 3.0, 0.0], atol=1e-6)
    assert np.isnan(d[0]) and np.isnan(d[4])
    assert np.isnan(rel.neighbour_distance([0.0], [0.0], [1.0], 10.0)).all()


def test_detection_columns_read_both_heads_and_features_need_them():
    labels = np.zeros((10, 10), np.int32)
    labels[1:4, 1:4], labels[6:9, 6:9] = 1, 2
    prob = np.zeros((10, 10, 2))
    prob[2, 2] = (0.9, 0.7)
    prob[7, 7] = (0.6, np.nan)
    cat = catalogue_table({"label": [1, 2], "ra_core": [0.0, 0.0], "dec_core": [0.0, 2 / 3600],
                           "peak_flux": [2.0, 1.0]})
    rel.detection_columns(cat, labels, prob, beam_fwhm_arcsec=1.0)
    np.testing.assert_allclose(cat["prob_peak"], [0.9, 0.6])
    np.testing.assert_allclose(cat["centre_peak"], [0.7, 0.0])  # NaN counts as 0
    assert np.isnan(cat["neighbour_dist"][0])
    assert cat["neighbour_dist"][1] == pytest.approx(2.0) and str(cat["neighbour_dist"].unit) == "arcsec"
    one = catalogue_table({"label": [1, 2], "ra_core": [0.0, 0.0], "dec_core": [0.0, 1.0],
                           "peak_flux": [2.0, 1.0]})
    rel.detection_columns(one, labels, prob[..., 0], beam_fwhm_arcsec=1.0)
    assert np.isnan(one["centre_peak"]).all()  # a one-channel model
    with pytest.raises(KeyError, match="peak_snr"):
        rel.reliability_features(cat, 1.0)


def test_real_detections_are_the_strict_true_positives():
    truth = Table({"ra_core": [0.0, 0.0, 0.0], "dec_core": [0.0, 0.01, 0.02], "flux": [3.0, 2.0, 1.0]})
    found = Table({"ra_core": [0.0, 0.0, 0.0, 0.0], "dec_core": [0.0, 0.01, 0.02, 0.05]})
    match = match_positions(found, truth, radius_arcsec=1.0)
    snr = np.array([10.0, 2.0, 4.0])
    real = real_detections(match, true_snr=snr)
    assert real.tolist() == [True, False, True, False]
    strict = source_metrics(match, true_snr=snr, min_snr=3.0)
    assert strict.tp == real.sum() and strict.reliability == real.mean()


def test_reliability_diagram_checks_its_input_and_plots():
    with pytest.raises(ValueError, match="one length"):
        reliability_diagram([0.5, 0.5], [True])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_diagram([0.5, np.nan], [True, False], n_bins=1)
    with pytest.raises(ValueError, match="bins"):
        reliability_diagram([0.5], [True])
    table = reliability_diagram(np.linspace(0, 1, 40), np.arange(40) % 2 == 0, n_bins=4)
    assert table["n"].tolist() == [10] * 4
    ax = plot_reliability_diagram(table)
    assert ax.get_xlabel() == "mean p_real in the bin"


# --------------------------------------------------------------------------- in predict
def _fitted_file(rng, path, **meta):
    x, _, real = _sample(rng, 3000)
    return rel.fit_reliability([x], [real], ["val"], meta={"name": path.name, **meta}).save(path)


def test_resolve_config_takes_the_reliability_file_from_the_sidecar(tmp_path, rng):
    _fitted_file(rng, tmp_path / "m.reliability.npz")
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "m.json").write_text(json.dumps({"reliability": "m.reliability.npz"}))
    config = resolve_config(tmp_path / "m.keras", PredictConfig(), sdc1=False)
    assert config.reliability == str(tmp_path / "m.reliability.npz")  # on every image
    assert resolve_config(tmp_path / "m.keras", PredictConfig(reliability=None)).reliability is None
    assert resolve_config(lambda x: x, PredictConfig()).reliability is None
    (tmp_path / "m.json").write_text(json.dumps({"reliability": "gone.npz"}))
    with pytest.raises(FileNotFoundError, match="reliability file .*gone.npz named by the sidecar"):
        resolve_config(tmp_path / "m.keras", PredictConfig())


def _model_with(tmp_path, rng, sidecar: dict, **meta):
    _fitted_file(rng, tmp_path / "m.reliability.npz", **meta)
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "m.json").write_text(json.dumps({"reliability": "m.reliability.npz", **sidecar}))
    return tmp_path / "m.keras"


def test_p_real_is_given_only_from_the_centre_threshold_it_was_fitted_at(tmp_path, rng, caplog):
    model = _model_with(tmp_path, rng, {"centre_threshold": 0.4},
                        **{rel.CENTRE_THRESHOLD_MIN: 0.25})
    assert rel.load_reliability(tmp_path / "m.reliability.npz").centre_threshold_min == 0.25
    for level in (None, 0.25, 0.3):  # the tuned level, the floor, above it
        config = resolve_config(model, PredictConfig(centre_threshold=level))
        assert config.reliability == str(tmp_path / "m.reliability.npz"), level
    with caplog.at_level("WARNING"):
        below = resolve_config(model, PredictConfig(centre_threshold=0.2))
    assert below.reliability is None  # an extrapolation is not given as a probability
    assert "no p_real column: m.reliability.npz is calibrated for centre thresholds from 0.25" \
        in caplog.text
    with pytest.raises(ValueError, match=r"a p_real cut \(0.5\) needs p_real"):
        resolve_config(model, PredictConfig(centre_threshold=0.2, min_p_real=0.5))
    # a file that does not say where it holds is used as before
    (tmp_path / "old").mkdir()
    old = _model_with(tmp_path / "old", rng, {})
    assert rel.load_reliability(old.with_name("m.reliability.npz")).centre_threshold_min is None
    assert resolve_config(old, PredictConfig(centre_threshold=0.1)).reliability is not None


def test_the_score_selection_fills_in_the_threshold_and_cut_of_the_sidecar(tmp_path, rng):
    chosen = {"bands": {"B1": {"centre_threshold": 0.25, "min_p_real": 0.3},
                        "B5": {"centre_threshold": None, "min_p_real": None}}}
    model = _model_with(tmp_path, rng, {"centre_threshold": 0.4, "score_selection": chosen},
                        **{rel.CENTRE_THRESHOLD_MIN: 0.25})
    plain = resolve_config(model, PredictConfig(), band="B1")
    assert (plain.centre_threshold, plain.min_p_real) == (0.4, None)
    score = resolve_config(model, PredictConfig(selection="score"), band="B1")
    assert (score.centre_threshold, score.min_p_real) == (0.25, 0.3)
    assert score.reliability is not None
    # where the tuned catalogue scored highest, the score selection is the tuned one
    b5 = resolve_config(model, PredictConfig(selection="score"), band="B5")
    assert (b5.centre_threshold, b5.min_p_real) == (0.4, None)
    mine = resolve_config(model, PredictConfig(selection="score", centre_threshold=0.5,
                                               min_p_real=0.0), band="B1")
    assert (mine.centre_threshold, mine.min_p_real) == (0.5, 0.0)  # given values are kept
    with pytest.raises(ValueError, match=r"m.keras has no score selection for band B2; it has "
                                         r"one for \['B1', 'B5'\]"):
        resolve_config(model, PredictConfig(selection="score"), band="B2")
    with pytest.raises(ValueError, match="the score selection is chosen for the SDC1 score of "
                                         "SDC1 images, and this image is not one"):
        resolve_config(model, PredictConfig(selection="score"), band="B1", sdc1=False)
    forced = resolve_config(model, PredictConfig(selection="score", corrections="sdc1"),
                            band="B1", sdc1=False)
    assert (forced.centre_threshold, forced.min_p_real) == (0.25, 0.3)
    with pytest.raises(ValueError, match="unknown selection 'purity'"):
        resolve_config(model, PredictConfig(selection="purity"))
    with pytest.raises(ValueError, match=r"min_p_real must lie in \[0, 1\], got 1.5"):
        resolve_config(model, PredictConfig(min_p_real=1.5))
    (tmp_path / "m.json").write_text(json.dumps({"reliability": "m.reliability.npz"}))
    with pytest.raises(ValueError, match="m.keras has no score selection in its sidecar"):
        resolve_config(model, PredictConfig(selection="score"), band="B1")
    with pytest.raises(ValueError, match="this model has no score selection"):
        resolve_config(lambda x: x, PredictConfig(selection="score"), band="B1")
