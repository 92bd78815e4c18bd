"""Tests of radioseg_utils.evaluation.metrics with small exact answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.core.bands import get_band
from radioseg_utils.core.matching import Match
from radioseg_utils.evaluation.metrics import (
    completeness_reliability,
    confusion_matrix,
    pixel_metrics,
    recovery_table,
    source_metrics,
)
from radioseg_utils.simulation.truth import true_peak_snr


def test_pixel_metrics_exact():
    true = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
    pred = np.array([[1, 1, 0, 1], [0, 0, 0, 0]])
    assert confusion_matrix(pred, true).tolist() == [[4, 1], [1, 2]]
    m = pixel_metrics(pred, true)
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 1, 4)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)
    assert m.f1 == m.dice == pytest.approx(2 / 3)
    assert m.iou == pytest.approx(0.5) and m.accuracy == pytest.approx(0.75)
    valid = np.ones_like(true, bool)
    valid[0, 3] = False
    assert pixel_metrics(pred, true, valid=valid).precision == 1.0
    assert math.isnan(pixel_metrics(np.zeros(4), np.zeros(4)).precision)
    assert set(m.as_dict()) >= {"tp", "iou", "dice", "accuracy"}
    with pytest.raises(ValueError, match="differs from truth shape"):
        pixel_metrics(pred, true[:1])


@pytest.fixture
def match() -> Match:
    # 5 detections, 6 true sources; pairs (pred, true): (0, 0), (1, 2), (3, 5)
    return Match(np.array([0, 1, 3]), np.array([0, 2, 5]), np.zeros(3), n_pred=5, n_true=6)


def test_source_metrics_and_strict(match):
    m = source_metrics(match)
    assert (m.tp, m.fp, m.fn) == (3, 2, 3)
    assert m.completeness == 0.5 and m.reliability == 0.6
    assert m.f1 == pytest.approx(2 * 0.5 * 0.6 / 1.1)
    snr = np.array([50.0, 8.0, 2.0, 1.0, 4.0, 30.0])  # true source 2 is below S/N 3
    strict = source_metrics(match, true_snr=snr, min_snr=3.0)
    assert (strict.tp, strict.fp, strict.fn) == (2, 3, 2)
    with pytest.raises(ValueError, match="need true_snr"):
        source_metrics(match, min_snr=3.0)


def test_completeness_reliability_bins(match):
    true_snr = np.array([60.0, 4.0, 12.0, 2.0, 7.0, 7.5])
    pred_snr = np.array([55.0, 11.0, 6.0, 5.5, 1.0])
    table = completeness_reliability(match, true_values=true_snr, pred_values=pred_snr)
    assert table["lo"].tolist() == [3, 5, 10, 20, 50]
    assert table["n_true"].tolist() == [1, 2, 1, 0, 1]
    assert table["n_found"].tolist() == [0, 1, 1, 0, 1]
    assert table["n_pred"].tolist() == [0, 2, 1, 0, 1]
    assert table["n_matched"].tolist() == [0, 1, 1, 0, 1]
    assert table["completeness"].tolist()[:3] == [0.0, 0.5, 1.0]
    assert math.isnan(table["completeness"][3]) and table["reliability"][1] == 0.5
    with pytest.raises(ValueError, match="increasing"):
        completeness_reliability(match, true_values=true_snr, bins=[5, 3])
    with pytest.raises(ValueError, match=r"true_values must have shape \(6,\)"):
        completeness_reliability(match, true_values=true_snr[:3])


def test_recovery_table(match):
    truth = Table({"flux": np.arange(1.0, 7.0), "b_maj": np.full(6, 2.0)})
    pred = Table({"flux": np.array([2.0, 1.5, 9.0, 3.0, 1.0]), "b_maj": np.full(5, 3.0)})
    rec = recovery_table(match, pred, truth)
    assert rec["true_flux"].tolist() == [1.0, 3.0, 6.0]
    assert rec["flux_ratio"].tolist() == [2.0, 0.5, 0.5]
    assert rec["b_maj_ratio"].tolist() == [1.5, 1.5, 1.5]


def test_true_peak_snr_point_and_resolved():
    band = get_band("B1")
    truth = Table({
        "ra_core": [-0.3, -0.3], "dec_core": [-29.7, -29.7],
        "ra_cent": [-0.3, -0.3], "dec_cent": [-29.7, -29.7],
        "flux": [1e-5, 1e-5], "core_frac": [0.0, 0.0],
        "b_maj": [0.0, 1.5], "b_min": [0.0, 1.5],
        "pa": [0.0, 0.0], "size": [2, 2], "class": [3, 3],
    })
    snr = true_peak_snr(truth, band, noise=1e-6)
    # point source: peak = flux; a Gaussian source of FWHM = beam: the peak halves
    assert snr == pytest.approx([10.0, 5.0], rel=1e-3)
