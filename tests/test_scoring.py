"""Tests of radioseg_utils.evaluation.scoring (the official ska-sdc scorer) on the real truth cutout."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from astropy.table import vstack

from radioseg_utils.evaluation.scoring import SCORE_COMPONENTS, sdc1_score
from radioseg_utils.io.catalogue import CatalogueFormatError, read_truth_catalogue


@pytest.fixture(scope="module")
def truth(sdc1_dir):
    return read_truth_catalogue(sdc1_dir / "truth_B1_1000h_0.05tr.cat")


def test_truth_scores_perfect(truth):
    before = list(logging.getLogger().handlers)
    result = sdc1_score(truth, truth, "B1", train=True)
    assert logging.getLogger().handlers == before  # scorer's basicConfig neutralised
    assert result.n_det == len(truth) == 601
    assert result.n_match == 601 and result.n_false == 0 and result.n_bad == 0
    assert result.value == pytest.approx(result.n_match, rel=1e-6)
    assert result.acc_pc == pytest.approx(100.0)


def test_perturbed_submission_scores_less(truth, rng):
    sub = truth.copy()
    n = len(sub)
    jitter = 0.3 / 3600.0  # 0.3 arcsec
    for col in ("ra_core", "ra_cent", "dec_core", "dec_cent"):
        sub[col] = np.asarray(sub[col]) + rng.normal(0, jitter, n)
    sub["flux"] = np.asarray(sub["flux"]) * rng.uniform(0.8, 1.2, n)
    keep = rng.random(n) > 0.1
    sub = sub[keep]
    false = sub[:20].copy()
    false["ra_core"] = false["ra_cent"] = np.asarray(false["ra_core"]) + 20.0 / 3600.0
    false["dec_core"] = false["dec_cent"] = np.asarray(false["dec_core"]) + 20.0 / 3600.0
    perfect = sdc1_score(truth, truth, "B1", train=True)
    result = sdc1_score(sub, truth, "B1", train=True, mode=1)
    assert result.n_det == keep.sum()
    assert result.n_match <= keep.sum()
    assert result.value < perfect.value - (n - keep.sum())
    assert 0 < result.acc_pc < 100
    with_false = sdc1_score(vstack([sub, false]), truth, "B1", train=True, mode=1)
    assert with_false.n_det == result.n_det + 20
    assert with_false.value < result.value


def test_bad_mode_and_empty(truth):
    with pytest.raises(ValueError, match="mode must be 0"):
        sdc1_score(truth, truth, "B1", mode=2)
    with pytest.raises(CatalogueFormatError):
        sdc1_score(truth[:0], truth, "B1")


def test_score_components(truth):
    perfect = sdc1_score(truth, truth, "B1", train=True)
    assert list(perfect.components) == list(SCORE_COMPONENTS)
    assert all(v == pytest.approx(1.0) for v in perfect.components.values())
    assert "components" not in perfect.as_dict()
    sub = truth.copy()
    sub["class"] = np.where(np.asarray(sub["class"]) == 3, 1, 3)  # every class wrong
    sub["flux"] = np.asarray(sub["flux"]) * 1.5  # 50 % off: above the 10 % cap
    result = sdc1_score(sub, truth, "B1", train=True)
    assert result.components["class"] < 0.01  # a few pairs cross-match a same-class neighbour
    assert result.components["position"] == pytest.approx(1.0, abs=0.01)
    assert 0.0 < result.components["flux"] < 1.0
    # the per-source score is the mean of the seven accuracies
    mean = np.mean(list(result.components.values()))
    assert result.acc_pc == pytest.approx(100 * mean, rel=1e-9)
