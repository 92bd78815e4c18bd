"""Tests of radioseg_utils.evaluation.evaluate: every finder scored with the same metrics."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.baselines import FinderResult, run_peaks, run_unet
from radioseg_utils.core.bands import get_band
from radioseg_utils.data.masks import make_masks
from radioseg_utils.evaluation.evaluate import (
    SUMMARY_COLUMNS,
    compare_finders,
    comparison_table,
    evaluate_finder,
    labelled_detections,
    summary_table,
    truth_in_image,
    truth_mask,
    write_tables,
)
from radioseg_utils.io.catalogue import SUBMISSION_COLUMNS, catalogue_table
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.simulation.simulate import simulate_field

BAND = get_band("B1")
NOISE = BAND.noise(1000)
SHAPE = (256, 256)
N_BINS = 5  # metrics.SNR_BINS: 3-5, 5-10, 10-20, 20-50, > 50
BIN_COLUMNS = ["finder", "field", "band", "integration", "snr_bin", "snr_lo", "snr_hi", "n_true",
               "n_found", "completeness", "n_pred", "bin_reliability", *SUMMARY_COLUMNS]


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A small simulated B1 1000 h field: (SkyImage, truth, binary truth mask)."""
    path = tmp_path_factory.mktemp("field") / "field.fits"
    sim = simulate_field("B1", 1000, shape=SHAPE, seed=11, output=path)
    sky = read_image(path)
    truth = sim.truth
    return sky, truth, truth_mask(sky, truth, noise=NOISE)


def _perfect(truth: Table, sky, *, min_snr: float = 3.0) -> FinderResult:
    """A 'finder' that reports the true sources of S/N >= min_snr, with the truth mask."""
    real = truth_in_image(truth, sky)
    real = real[np.asarray(real["peak_snr"]) >= min_snr]
    columns = {name: np.asarray(real[name]) for name in SUBMISSION_COLUMNS}
    columns["peak_snr"] = np.asarray(real["peak_snr"])
    columns["label"] = np.arange(1, len(real) + 1)
    masks = make_masks(truth, sky.wcs, sky.band, shape=sky.shape, noise=NOISE)
    return FinderResult(catalogue_table(columns), masks.labels, 0.5, 10.0, finder="perfect")


def _with_false_positives(perfect: FinderResult, truth: Table, sky, n_false: int) -> FinderResult:
    """``perfect`` plus ``n_false`` detections > 3 arcsec from every true source (S/N 4)."""
    ra_t, dec_t = np.radians(truth["ra_core"]), np.radians(truth["dec_core"])
    picks = []
    for y in range(20, SHAPE[0] - 20, 16):
        for x in range(20, SHAPE[1] - 20, 16):
            ra, dec = (np.radians(v) for v in sky.wcs.pixel_to_world_values(x, y))
            cos_d = (np.sin(dec) * np.sin(dec_t)
                     + np.cos(dec) * np.cos(dec_t) * np.cos(ra - ra_t))
            if np.degrees(np.arccos(np.clip(cos_d, -1, 1))).min() * 3600 > 3.0:
                picks.append((np.degrees(ra), np.degrees(dec)))
    ra, dec = np.asarray(picks[:n_false]).T
    assert ra.size == n_false
    cat = perfect.catalogue
    fake = {name: np.full(n_false, cat[name][0]) for name in cat.colnames}
    fake.update(ra_core=ra, ra_cent=ra, dec_core=dec, dec_cent=dec, peak_snr=np.full(n_false, 4.0),
                label=np.zeros(n_false, int))
    columns = {name: np.concatenate([np.asarray(cat[name]), fake[name]]) for name in cat.colnames}
    return FinderResult(catalogue_table(columns), perfect.labels, 0.5, 10.0, finder="noisy")


def test_perfect_finder_scores_one(field):
    sky, truth, mask = field
    ev = evaluate_finder(_perfect(truth, sky), truth, sky, integration=1000, true_mask=mask,
                         field="sim")
    bins = ev.bins
    assert bins["n_true"].sum() == ev.strict.tp + ev.strict.fn > 100
    has = bins["n_true"] > 0
    assert has.all()
    assert np.all(bins.loc[has, "completeness"] == 1.0)
    assert np.all(bins.loc[bins["n_pred"] > 0, "reliability"] == 1.0)
    assert ev.source.reliability == ev.strict.reliability == ev.strict.f1 == 1.0
    assert ev.pixel.f1 == ev.pixel.iou == 1.0
    assert ev.flux_ratio == 1.0
    # the official scorer: every source matched, none false, near-perfect accuracy
    assert ev.score.n_match == len(ev.result.catalogue) and ev.score.n_false == 0
    assert ev.sdc1_score > 0.95 * len(ev.result.catalogue)
    row = ev.summary()
    assert (row["finder"], row["field"], row["band"], row["integration"]) == ("perfect", "sim", "B1", 1000)
    assert row["runtime_s"] == 0.5 and row["peak_rss_mb"] == 10.0 and row["notes"] == ""


def test_injected_false_positives_give_exact_reliability(field):
    sky, truth, mask = field
    perfect = _perfect(truth, sky)
    n, k = len(perfect.catalogue), 7
    ev = evaluate_finder(_with_false_positives(perfect, truth, sky, k), truth, sky,
                         integration=1000, true_mask=mask, score=False)
    assert ev.source.reliability == pytest.approx(n / (n + k), abs=1e-15)
    assert ev.strict.reliability == pytest.approx(n / (n + k), abs=1e-15)
    assert ev.strict.completeness == 1.0 and ev.score is None
    low = ev.bins.iloc[0]  # S/N 3-5: the fakes have measured S/N 4
    assert low["n_pred"] == low["n_true"] + k
    assert low["reliability"] == pytest.approx(low["n_true"] / (low["n_true"] + k), abs=1e-15)
    assert np.isnan(ev.summary()["sdc1_score"])
    # the per-row labels that p_real is fitted on: the perfect rows real, the fakes false
    real = labelled_detections(ev.result.catalogue, truth, sky, integration=1000)
    assert real.tolist() == [True] * n + [False] * k and real.mean() == ev.strict.reliability


def test_tidy_tables_have_expected_rows_and_columns(field, tmp_path):
    sky, truth, mask = field
    evs = [evaluate_finder(_perfect(truth, sky), truth, sky, integration=1000, true_mask=mask,
                           score=False, field="sim"),
           evaluate_finder(run_peaks(sky), truth, sky, integration=1000, true_mask=mask,
                           score=False, field="sim")]
    bins = comparison_table(evs)
    assert list(bins.columns) == BIN_COLUMNS
    assert len(bins) == 2 * N_BINS
    assert bins["finder"].tolist() == ["perfect"] * N_BINS + ["peaks"] * N_BINS
    assert bins["snr_bin"].tolist()[:N_BINS] == ["3-5", "5-10", "10-20", "20-50", ">50"]
    peaks = bins[bins["finder"] == "peaks"]
    assert peaks["detections"].nunique() == 1
    assert peaks["detections"].iloc[0] == len(evs[1].result.catalogue)
    assert peaks["n_found"].tolist() == evs[1].bins["n_found"].tolist()
    summary = summary_table(evs)
    assert list(summary.columns) == ["finder", "field", "band", "integration", *SUMMARY_COLUMNS]
    assert summary["strict_reliability"].tolist()[0] == 1.0
    paths = write_tables(evs, tmp_path / "results")
    assert sorted(p.name for p in paths.values()) == [
        "finders_bins.csv", "finders_bins.ecsv", "finders_summary.csv", "finders_summary.ecsv"]
    back = Table.read(paths["bins_ecsv"], format="ascii.ecsv")
    assert len(back) == 2 * N_BINS and back.colnames == BIN_COLUMNS
    assert np.allclose(back["completeness"], bins["completeness"], equal_nan=True)


def test_pixel_metrics_exact_on_a_hand_built_case():
    shape = (16, 20)
    wcs = sdc1_wcs(BAND, shape)
    data = np.zeros(shape, np.float32)
    data[5, 12] = np.nan  # one predicted-only pixel without data: not counted
    from radioseg_utils.io.fits_read import Beam, SkyImage

    sky = SkyImage(data=data, wcs=wcs, header=sdc1_header(wcs, BAND), band=BAND,
                   beam=Beam(BAND.beam_fwhm_arcsec, BAND.beam_fwhm_arcsec),
                   pixel_arcsec=BAND.pixel_arcsec, path=None)
    labels = np.zeros(shape, np.int32)
    labels[4:8, 10:14] = 1  # 16 px
    true_mask = np.zeros(shape, bool)
    true_mask[4:8, 8:12] = True  # overlaps 8 px
    ra, dec = wcs.pixel_to_world_values(10.5, 5.5)
    cols = {name: np.zeros(1) for name in SUBMISSION_COLUMNS}
    cols.update(ra_core=[ra], dec_core=[dec], ra_cent=[ra], dec_cent=[dec], flux=[1e-4],
                size=[2], **{"class": [3]}, label=[1])
    cat = catalogue_table(cols)
    truth = Table({**{k: np.asarray(v) for k, v in cols.items() if k != "label"},
                   "peak_snr": np.array([200.0])})
    ev = evaluate_finder(FinderResult(cat, labels, 1.0, 1.0, "box"), truth, sky,
                         integration=1000, true_mask=true_mask, score=False)
    assert (ev.pixel.tp, ev.pixel.fp, ev.pixel.fn) == (8, 7, 8)
    assert ev.pixel.precision == 8 / 15 and ev.pixel.recall == 0.5
    assert ev.pixel.f1 == pytest.approx(16 / 31) and ev.pixel.iou == pytest.approx(8 / 23)
    assert ev.source.tp == 1 and ev.bins["completeness"].iloc[-1] == 1.0


def test_finder_without_detections(field):
    sky, truth, mask = field
    empty = catalogue_table({**{name: np.zeros(0) for name in SUBMISSION_COLUMNS},
                             "peak_snr": np.zeros(0), "label": np.zeros(0)})
    result = FinderResult(empty, np.zeros(sky.shape, np.int32), 0.1, 0.0, finder="none")
    ev = evaluate_finder(result, truth, sky, integration=1000, true_mask=mask)
    assert ev.score is None and ev.sdc1_score == 0.0
    assert ev.notes == ("no detections: SDC1 score 0",)
    assert ev.strict.completeness == 0.0 and np.isnan(ev.strict.reliability)
    assert ev.pixel.recall == 0.0 and np.isnan(ev.pixel.precision)
    assert np.all(ev.bins["n_found"] == 0) and np.isnan(ev.flux_ratio)
    row = summary_table([ev]).iloc[0]
    assert row["detections"] == 0 and row["sdc1_score"] == 0.0


@pytest.mark.slow
def test_compare_classical_finders_on_the_same_field(field, tmp_path):
    sky, truth, _ = field
    evs = compare_finders(sky, truth, integration=1000, finders=("peaks", "photutils", "pybdsf"),
                          field="sim", finder_options={"pybdsf": {"workdir": tmp_path / "bdsf"}})
    assert [e.finder for e in evs] == ["peaks", "photutils", "pybdsf"]
    for ev in evs:
        bright = ev.bins[ev.bins["lo"] >= 20]
        assert bright["n_found"].sum() >= 0.9 * bright["n_true"].sum() > 10
        assert ev.strict.reliability > 0.7 and ev.score.n_match > 0
        assert 0.7 < ev.flux_ratio < 1.3 and ev.pixel.iou > 0.2
    assert evs[2].strict.reliability > 0.95  # PyBDSF: few false detections
    assert evs[2].result.runtime_s > evs[0].result.runtime_s


@pytest.fixture(scope="module")
def tiny_unet(tmp_path_factory):
    """An untrained 1-level U-Net saved with a B1 / noise-normalisation sidecar."""
    import keras

    from radioseg_utils.model.architectures import build_unet
    from radioseg_utils.model.files import save_model

    keras.utils.set_random_seed(0)
    net = build_unet(depth=1, base_filters=2, batch_norm=False, dropout=0.0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return save_model(net, path, metadata={"band": "B1", "normalisation": "noise"})


def test_unet_finder_wiring(field, tiny_unet):
    sky, truth, mask = field
    result = run_unet(sky, model=tiny_unet)
    assert result.finder == "unet" and result.labels.shape == sky.shape
    assert result.labels.dtype == np.int32 and result.runtime_s > 0
    cat = result.catalogue
    assert cat["label"].tolist() == cat["id"].tolist() == list(range(1, len(cat) + 1))
    assert set(np.unique(result.labels)) == {0, *cat["id"]}
    evs = compare_finders(sky, truth, integration=1000, finders=("unet",), model=tiny_unet,
                          true_mask=mask, score=False)
    assert evs[0].result.labels.tolist() == result.labels.tolist()


def test_unet_score_finder_is_the_unet_with_the_sidecars_score_selection(field, tiny_unet,
                                                                          tmp_path, rng):
    import json
    import shutil

    from radioseg_utils.baselines import FINDERS
    from radioseg_utils.inference.config import PredictConfig
    from radioseg_utils.postprocess.reliability import RELIABILITY_FEATURES, fit_reliability

    sky = field[0]
    model = tmp_path / "tiny.keras"
    shutil.copy(tiny_unet, model)
    x = rng.normal(size=(2000, len(RELIABILITY_FEATURES)))
    fit_reliability([x], [rng.random(2000) < 1 / (1 + np.exp(-x[:, 0]))], ["val"],
                    meta={"name": "tiny.reliability.npz"}).save(tmp_path / "tiny.reliability.npz")
    sidecar = json.loads(tiny_unet.with_suffix(".json").read_text())
    cut = {"centre_threshold": 0.3, "min_p_real": 0.5}
    sidecar.update(reliability="tiny.reliability.npz", score_selection={"bands": {"B1": cut}})
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    result = FINDERS["unet_score"](sky, model=model)
    assert result.finder == "unet_score"
    same = run_unet(sky, model=model, config=PredictConfig(**cut))
    assert result.catalogue["p_real"].tolist() == same.catalogue["p_real"].tolist()
    assert np.all(np.asarray(result.catalogue["p_real"]) >= 0.5)
    assert len(result.catalogue) < len(run_unet(sky, model=model).catalogue)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda sky, truth: compare_finders(sky, truth, integration=1000, finders=("sextractor",)),
         ValueError, "unknown finder"),
        (lambda sky, truth: evaluate_finder(run_peaks(sky), truth[["flux"]], sky,
                                            integration=1000, pixels=False),
         ValueError, "lacks column"),
        (lambda sky, truth: evaluate_finder(run_peaks(sky), truth, sky, integration=1000,
                                            true_mask=np.zeros((3, 3), bool)),
         ValueError, "true_mask shape"),
        (lambda sky, truth: evaluate_finder(
            FinderResult(run_peaks(sky).catalogue, np.zeros((4, 4), np.int32), 0, 0, "x"),
            truth, sky, integration=1000), ValueError, "label map shape"),
        (lambda sky, truth: evaluate_finder(run_peaks(sky), truth, sky, integration=None),
         ValueError, "noise or the integration"),
        (lambda sky, truth: compare_finders(sky, truth, integration=None, finders=("peaks",)),
         ValueError, "noise or the integration"),
        (lambda sky, truth: run_unet(sky, noise=-1.0), ValueError, "positive number"),
        (lambda sky, truth: run_unet(sky, model="/nonexistent/model.keras"),
         FileNotFoundError, "not found"),
    ],
)
def test_bad_inputs(field, call, error, message):
    sky, truth, _ = field
    with pytest.raises(error, match=message):
        call(sky, truth)
