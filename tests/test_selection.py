"""Choosing between trained models on the validation fields (radioseg_utils.workflows.selection)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from radioseg_utils.cli import main
from radioseg_utils.model.files import DEFAULT_MODEL
from radioseg_utils.workflows.pretrain import PretrainSettings
from radioseg_utils.workflows.selection import (
    compare_models,
    compare_on_validation,
    validation_verdict,
)


def _rows(model: str, found: list[int], pair_completeness: list[float]) -> list[dict]:
    return [{"model": model, "field": f"val{i}", "strict_found": f,
             "completeness_1.5-3arcsec_snr5-10": c, "n_1.5-3arcsec_snr5-10": 20}
            for i, (f, c) in enumerate(zip(found, pair_completeness))]


def test_verdict_pools_sources_and_guards_the_blended_class():
    table = pd.DataFrame(_rows("old", [100, 50], [0.8, 0.5])
                         + _rows("more", [104, 50], [0.8, 0.55])
                         + _rows("fewer_pairs", [110, 60], [0.75, 0.5])
                         + _rows("same", [100, 50], [0.8, 0.5]))
    assert validation_verdict(table, "more", "old")["better"]
    verdict = validation_verdict(table, "fewer_pairs", "old")  # more in all, fewer blended
    assert not verdict["better"]
    assert verdict["fewer_pairs"] == {"found": 170, "found_1.5-3arcsec_snr5-10": 25}
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
    assert 0 < first.threshold < 1 and np.isfinite(first["completeness_isolated_snr5-10"])
    assert not info["verdict"]["better"]  # a model never beats itself


def test_cli_compare_names_a_missing_model(tmp_path, capsys):
    assert main(["pretrain", "--compare", str(tmp_path / "new.keras"),
                 "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("new.keras not found") and len(err.splitlines()) == 1
    assert main(["pretrain", "--compare", str(DEFAULT_MODEL), "--until", "train"]) == 2
    assert "--compare trains nothing" in capsys.readouterr().err
