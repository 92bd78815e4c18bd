"""The science targets checked on an evaluation table."""

import numpy as np
import pandas as pd
import pytest

from radioseg_utils.evaluation.targets import BOOK_TARGETS, check_targets


def _table():
    base = {"field": "simulated", "band": "B1"}
    rows = [
        {**base, "integration": 1000, "finder": "unet", "completeness_5_10": 0.85,
         "completeness_gt10": 0.96, "strict_reliability": 0.97, "flux_ratio": 1.02,
         "sdc1_score": 400.0},
        {**base, "integration": 1000, "finder": "pybdsf", "completeness_5_10": 0.2,
         "completeness_gt10": 0.9, "strict_reliability": 0.99, "flux_ratio": 1.0,
         "sdc1_score": 150.0},
        {**base, "integration": 8, "finder": "unet", "completeness_5_10": 0.79,
         "completeness_gt10": 0.99, "strict_reliability": 0.94, "flux_ratio": 0.90,
         "sdc1_score": 10.0},
        {**base, "integration": 8, "finder": "pybdsf", "completeness_5_10": 0.5,
         "completeness_gt10": 0.9, "strict_reliability": 0.99, "flux_ratio": 1.0,
         "sdc1_score": -3.0},
    ]
    return pd.DataFrame(rows)


def test_targets_flag_each_value():
    out = check_targets(_table()).set_index("integration")
    deep, shallow = out.loc[1000], out.loc[8]
    assert deep["score_ratio"] == pytest.approx(400 / 150)
    assert deep["all_met"]
    assert not shallow["ok_completeness_5_10"] and shallow["ok_completeness_gt10"]
    assert not shallow["ok_strict_reliability"] and not shallow["ok_flux_ratio"]
    # PyBDSF's score is negative there: any higher score beats it
    assert shallow["ok_score_ratio"] and not shallow["all_met"]


def test_targets_for_another_finder_and_errors():
    out = check_targets(_table(), "pybdsf")
    assert out["score_ratio"].tolist() == [1.0, 1.0]
    assert not out["ok_score_ratio"].any()  # 1x is not 2x
    with pytest.raises(ValueError, match="no row of finder"):
        check_targets(_table(), "photutils")
    assert BOOK_TARGETS.completeness_5_10 == 0.8 and BOOK_TARGETS.score_over_pybdsf == 2.0
    failed = _table()
    failed.loc[0, ["completeness_5_10", "sdc1_score"]] = np.nan
    row = check_targets(failed).set_index("integration").loc[1000]
    assert not row["ok_completeness_5_10"] and not row["all_met"]


def test_perfect_parameters_ratio_is_matched_minus_false_over_the_reference():
    table = _table()
    assert "perfect_parameters_ratio" not in check_targets(table).columns  # without the scorer counts
    table["sdc1_matched"] = [500, 180, 20, 5]
    table["sdc1_false"] = [20, 2, 3, 9]
    out = check_targets(table).set_index("integration")
    assert out.loc[1000, "perfect_parameters_ratio"] == pytest.approx((500 - 20) / 150)
    # the ceiling is never below the score itself
    assert out.loc[1000, "perfect_parameters_ratio"] >= out.loc[1000, "score_ratio"]
