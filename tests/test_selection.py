"""Choosing between trained models on the validation fields (radioseg_utils.workflows.selection)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from radioseg_utils.cli import main
from radioseg_utils.core.paths import PRETRAINED_DIR
from radioseg_utils.model.files import DEFAULT_MODEL
from radioseg_utils.workflows.pretrain import PretrainSettings
from radioseg_utils.workflows.selection import (
    compare_models,
    compare_on_validation,
    completeness_at_target,
    validation_verdict,
)


def _rows(model: str, found: list[int], pair_completeness: list[float]) -> list[dict]:
    return [{"model": model, "field": f"val{i}", "strict_true": 200,
             "completeness_at_target": f / 200,
             "completeness_1.5-3arcsec_snr5-10": c, "n_1.5-3arcsec_snr5-10": 20}
            for i, (f, c) in enumerate(zip(found, pair_completeness))]


def _trial(threshold: float, completeness: float, reliability: float) -> dict:
    return {"threshold": threshold, "strict_completeness": completeness,
            "strict_reliability": reliability}


def test_completeness_at_the_target_reliability_is_read_between_thresholds():
    trials = [_trial(0.5, 0.60, 0.99), _trial(0.3, 0.80, 0.90), _trial(0.4, 0.70, 0.95)]
    # 0.96 lies between 0.4 (0.95) and 0.5 (0.99), a quarter of the way
    assert completeness_at_target(trials, 0.96) == pytest.approx(0.675)
    assert completeness_at_target(trials, 0.95) == pytest.approx(0.70)  # exactly at a trial
    assert completeness_at_target(trials, 0.85) == 0.80  # even the lowest is above it
    assert np.isnan(completeness_at_target(trials, 0.995))  # none reaches it
    # the shipped model's tuning on its main validation field: between its neighbours
    manifest = json.loads((PRETRAINED_DIR / "MANIFEST.json").read_text())
    shipped = manifest["centre_threshold"]["trials"]["val"]
    chosen = next(t for t in shipped if t["threshold"] == manifest["centre_threshold"]["chosen"])
    below = max((t for t in shipped if t["threshold"] < chosen["threshold"]),
                key=lambda t: t["threshold"])
    value = completeness_at_target(shipped)
    assert chosen["strict_completeness"] <= value <= below["strict_completeness"]


def test_verdict_pools_sources_and_guards_the_blended_class():
    table = pd.DataFrame(_rows("old", [100, 50], [0.8, 0.5])
                         + _rows("more", [104, 50], [0.8, 0.55])
                         + _rows("fewer_pairs", [110, 60], [0.75, 0.5])
                         + _rows("same", [100, 50], [0.8, 0.5]))
    assert validation_verdict(table, "more", "old")["better"]
    verdict = validation_verdict(table, "fewer_pairs", "old")  # more in all, fewer blended
    assert not verdict["better"]
    assert verdict["fewer_pairs"] == {"found": 170.0, "found_1.5-3arcsec_snr5-10": 25}
    assert not validation_verdict(table, "same", "old")["better"]  # a tie is no reason
    with pytest.raises(ValueError, match="no rows of model 'nope'"):
        validation_verdict(table, "nope", "old")


def test_the_test_field_cannot_choose_a_model():
    with pytest.raises(ValueError, match="test field cannot choose"):
        compare_on_validation({"a": DEFAULT_MODEL}, {"val": None, "test": None})


@pytest.mark.slow
def test_a_model_compared_with_itself_ties(tmp_path):
    settings = dataclasses.replace(PretrainSettings(), seed=5, val_size=384, test_size=128,
                                   val_fields=())
    info = compare_models(DEFAULT_MODEL, DEFAULT_MODEL, settings=settings, work_dir=tmp_path)
    table = pd.DataFrame(info["table"])
    assert list(table.field) == ["val", "val"]
    for _, rows in table.groupby("field"):
        a, b = (rows[rows.model == m].drop(columns="model").iloc[0]
                for m in ("candidate", "incumbent"))
        pd.testing.assert_series_equal(a, b, check_names=False)
    first = table.iloc[0]
    assert first.strict_found > 0 and first.strict_true >= first.strict_found
    assert first.strict_completeness == pytest.approx(first.strict_found / first.strict_true)
    assert first.completeness_at_target >= first.strict_completeness  # the tuned level is at or above the target
    assert 0 < first.threshold < 1 and np.isfinite(first["completeness_isolated_snr5-10"])
    assert not info["verdict"]["better"]  # a model never beats itself


def test_cli_compare_names_a_missing_model(tmp_path, capsys):
    assert main(["pretrain", "--compare", str(tmp_path / "new.keras"),
                 "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("new.keras not found") and len(err.splitlines()) == 1
    assert main(["pretrain", "--compare", str(DEFAULT_MODEL), "--until", "train"]) == 2
    assert "--compare trains nothing" in capsys.readouterr().err
