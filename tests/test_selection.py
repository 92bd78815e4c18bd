"""Choosing between trained models on the validation fields (radioseg_utils.workflows.selection)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from radioseg_utils.cli import main
from radioseg_utils.core.paths import PRETRAINED_DIR, PROJECT_ROOT
from radioseg_utils.io.registry import sha256sum
from radioseg_utils.model.files import DEFAULT_MODEL, read_sidecar, write_sidecar
from radioseg_utils.workflows.pipeline import RunLayout, load_field
from radioseg_utils.workflows.pretrain import (
    TARGET_RELIABILITY,
    THRESHOLD_GRID,
    PretrainSettings,
    held_out_fields,
    tune_centre_threshold,
)
from radioseg_utils.workflows.selection import (
    compare_models,
    compare_on_validation,
    comparison_by_field,
    completeness_at_target,
    found_by_field,
    refined_levels,
    training_history,
    validation_verdict,
    verdict_line,
)


def _rows(model: str, found: list[int], pair_completeness: list[float],
          alone: int = 0) -> list[dict]:
    return [{"model": model, "field": f"val{i}", "strict_true": 200,
             "completeness_at_target": f / 200, "strict_found_alone": alone if i == 0 else 0,
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
    table = pd.DataFrame(_rows("old", [100, 50], [0.8, 0.5], alone=2)
                         + _rows("more", [110, 50], [0.8, 0.55], alone=12)
                         + _rows("fewer_pairs", [110, 60], [0.75, 0.5], alone=22)
                         + _rows("same", [100, 50], [0.8, 0.5], alone=2))
    verdict = validation_verdict(table, "more", "old")
    assert verdict["better"]
    assert verdict["p_value"] == pytest.approx((91 + 14 + 1) / 2 ** 14)  # P(X >= 12), X ~ B(14, 1/2)
    verdict = validation_verdict(table, "fewer_pairs", "old")  # more in all, fewer blended
    assert not verdict["better"]
    assert verdict["fewer_pairs"] == {"found": 170.0, "found_1.5-3arcsec_snr5-10": 25,
                                      "found_alone": 22}
    assert not validation_verdict(table, "same", "old")["better"]  # a tie is no reason
    with pytest.raises(ValueError, match="no rows of model 'nope'"):
        validation_verdict(table, "nope", "old")


def test_sources_found_per_field_are_one_models_completeness_times_the_true_sources():
    table = pd.DataFrame(_rows("old", [100, 50], [0.8, 0.5]) + _rows("new", [110, 40], [0.8, 0.5]))
    table.loc[3, "completeness_at_target"] = np.nan  # no tried level of "new" reached it on val1
    found = found_by_field(table, "new")
    assert found.name == "new" and list(found.index) == ["val0", "val1"]
    assert found.val0 == pytest.approx(110) and np.isnan(found.val1)
    assert found_by_field(table, "old").tolist() == pytest.approx([100, 50])
    assert validation_verdict(table, "new", "old")["new"]["found"] == 110.0  # NaN counts 0
    with pytest.raises(ValueError, match="no rows of model 'nope'"):
        found_by_field(table, "nope")


def test_verdict_wants_the_sources_only_one_model_finds_to_fall_to_the_candidate():
    # more found in the pooled count, but 7 against 3 of the discordant sources is chance
    table = pd.DataFrame(_rows("old", [100, 50], [0.8, 0.5], alone=3)
                         + _rows("new", [104, 50], [0.8, 0.5], alone=7))
    verdict = validation_verdict(table, "new", "old")
    assert verdict["p_value"] == pytest.approx(176 / 1024) and not verdict["better"]
    assert validation_verdict(table, "new", "old", alpha=0.2)["better"]
    # no discordant source at all: nothing to tell them apart
    table["strict_found_alone"] = 0
    assert validation_verdict(table, "new", "old")["p_value"] == 1.0


def test_the_test_field_cannot_choose_a_model():
    with pytest.raises(ValueError, match="test field cannot choose"):
        compare_on_validation({"a": DEFAULT_MODEL}, {"val": None, "test": None}, incumbent="a")


def _perturbed_copy(folder) -> str:
    """The shipped model with every weight scaled by 1 +- 5 % (seeded), and its sidecar."""
    import keras

    model = keras.models.load_model(DEFAULT_MODEL, compile=False)
    rng = np.random.default_rng(3)
    model.set_weights([w * (1 + 0.05 * rng.standard_normal(w.shape)).astype(w.dtype)
                       for w in model.get_weights()])
    path = folder / "perturbed.keras"
    model.save(path)
    write_sidecar(path, read_sidecar(DEFAULT_MODEL))
    return path


@pytest.mark.slow
def test_models_compared_on_the_same_sources(tmp_path):
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
    assert (table.strict_found_alone == 0).all()  # each finds what the other finds
    assert not info["verdict"]["better"]  # a model never beats itself
    # another model: the tuned level is within a refinement step below
    # tune_centre_threshold's coarse one, and the sources found by both are the same count
    # seen from either side
    other = compare_models(_perturbed_copy(tmp_path), DEFAULT_MODEL, settings=settings,
                           work_dir=tmp_path)
    rows = pd.DataFrame(other["table"]).set_index("model")
    sky, truth = load_field(held_out_fields(settings, RunLayout.from_parameter(tmp_path))["val"])
    value, trials = tune_centre_threshold(tmp_path / "perturbed.keras", sky, truth,
                                          integration=settings.integration)
    coarse = sorted(THRESHOLD_GRID)
    below = max([t for t in coarse if t < value], default=value)
    assert below <= rows.loc["candidate", "threshold"] <= value
    assert (rows.levels >= len(coarse)).all()
    assert rows.loc["candidate", "strict_reliability"] >= TARGET_RELIABILITY or (
        value == max(coarse))
    both = rows.strict_found - rows.strict_found_alone
    assert both.candidate == both.incumbent and rows.strict_found_alone.sum() > 0
    # the incumbent is counted at its tuned level, the candidate at or above the stricter
    # of the two tuned reliabilities
    assert rows.loc["incumbent", "paired_threshold"] == rows.loc["incumbent", "threshold"]
    assert rows.loc["candidate", "paired_reliability"] >= rows.strict_reliability.max()
    assert other["verdict"]["candidate"]["found_alone"] == rows.loc["candidate", "strict_found_alone"]


def test_cli_compare_names_a_missing_model(tmp_path, capsys):
    assert main(["pretrain", "--compare", str(tmp_path / "new.keras"),
                 "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("new.keras not found") and len(err.splitlines()) == 1
    assert main(["pretrain", "--compare", str(DEFAULT_MODEL), "--until", "train"]) == 2
    assert "--compare trains nothing" in capsys.readouterr().err
    assert main(["pretrain", "--compare-tta"]) == 2
    assert "--compare-tta needs --compare MODEL" in capsys.readouterr().err
    assert main(["pretrain", "--against", str(DEFAULT_MODEL)]) == 2
    assert "--against needs --compare MODEL" in capsys.readouterr().err
    assert main(["pretrain", "--compare", str(DEFAULT_MODEL), "--against",
                 str(tmp_path / "control.keras"), "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("control.keras not found") and len(err.splitlines()) == 1


@pytest.mark.parametrize("incumbent", ["strict", "lax"])
def test_levels_are_refined_and_the_step_falls_against_the_challenger(monkeypatch, incumbent):
    """Reliability rising with the threshold, the lax model 0.025 below the strict one:
    each is tuned on the 0.01 steps below its coarse level, the incumbent is counted at its
    tuned level and the challenger at the stricter of the two tuned reliabilities."""
    import radioseg_utils.workflows.pipeline as pipeline
    import radioseg_utils.workflows.pretrain as pretrain
    from radioseg_utils.workflows import selection

    offsets = {"lax": 0.805, "strict": 0.83}
    decoded, augmented = [], []

    class Scan:
        def __init__(self, path, sky, truth, *, integration, tta=False):
            self.path = path
            augmented.append((path, tta))

        def at(self, value):
            decoded.append((self.path, value))
            return ({"threshold": value, "detections": 10, "strict_completeness": 1 - value,
                     "strict_reliability": round(offsets[self.path] + 0.4 * value, 9)}, value)

    class Files:
        def saved_parameters(self):
            return {"integration": 1000}

    monkeypatch.setattr(pretrain, "LevelScan", Scan)
    monkeypatch.setattr(pipeline, "load_field", lambda files: (type("S", (), {
        "band": type("B", (), {"name": "B1"})})(), None))
    monkeypatch.setattr(selection, "_level_counts", lambda ev, truth, sky, bins: (
        {"strict_found": round(100 * (1 - ev))}, np.arange(100) < round(100 * (1 - ev))))
    table = compare_on_validation({"lax": "lax", "strict": "strict"}, {"val": Files()},
                                  incumbent=incumbent, tta=("lax",))
    rows = table.set_index("model")
    assert sorted(augmented) == [("lax", True), ("strict", False)]
    assert len(decoded) == len(set(decoded))  # no level decoded twice
    # coarse 0.4 and 0.35; the steps below them reach 96 % at 0.39 (96.1 %) and 0.33 (96.2 %)
    assert rows.threshold.tolist() == [0.39, 0.33]
    assert rows.strict_reliability.tolist() == [0.961, 0.962]
    assert rows.levels.tolist() == [len(THRESHOLD_GRID) + 4] * 2
    if incumbent == "strict":  # the lax challenger raised to 96.2 %: 0.40 (96.5 %)
        assert rows.paired_threshold.tolist() == [0.4, 0.33]
        assert rows.strict_found_alone.tolist() == [0, 7]
    else:  # the lax incumbent keeps its level; the strict challenger is there already
        assert rows.paired_threshold.tolist() == [0.39, 0.33]
        assert rows.strict_found_alone.tolist() == [0, 6]
    # at exactly 96 %: between 0.38 (95.7 %) and 0.39, and between 0.32 (95.8 %) and 0.33
    assert rows.completeness_at_target.tolist() == pytest.approx([0.6125, 0.675])
    with pytest.raises(ValueError, match="incumbent 'old' is not one of"):
        compare_on_validation({"lax": "lax"}, {"val": Files()}, incumbent="old")
    with pytest.raises(ValueError, match=r"tta names \['new'\], not among"):
        compare_on_validation({"lax": "lax"}, {"val": Files()}, incumbent="lax", tta=("new",))


def test_a_level_scan_with_tta_runs_the_eight_symmetries(monkeypatch):
    import radioseg_utils.inference.config as inference_config
    from radioseg_utils.workflows.pretrain import LevelScan

    calls = []

    def net(batch):
        calls.append(batch.shape)
        return np.repeat(np.asarray(batch), 2, axis=-1)

    monkeypatch.setattr(inference_config, "load_model_cached",
                        lambda model, band, normalisation: (net, "asinh"))
    sky = type("Sky", (), {"band": type("B", (), {"name": "B1"})()})()
    batch = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    for tta, passes in ((False, 1), (True, 8)):
        calls.clear()
        out = LevelScan("m.keras", sky, None, integration=1000, tta=tta).replay(batch)
        assert len(calls) == passes and out.shape == (2, 8, 8, 2)
        np.testing.assert_allclose(out[..., 1], batch[..., 0], rtol=1e-6)


def test_refined_levels_leave_a_grid_that_never_reaches_the_target_alone():
    def at(value):
        return {"threshold": value, "strict_reliability": 0.5}, None

    runs = refined_levels(at, 0.96, grid=(0.3, 0.4))
    assert [t["threshold"] for t, _ in runs] == [0.3, 0.4]
    # the lowest level reaches it: nothing below to refine
    assert len(refined_levels(at, 0.4, grid=(0.3, 0.4))) == 2


def test_comparison_by_field_puts_the_two_models_side_by_side():
    rows = []
    for model, shift in (("candidate", 0.01), ("incumbent", 0.0)):
        for field, band in (("val", "B1"), ("val_B2_100h", "B2")):
            rows.append({"model": model, "field": field, "band": band, "integration": 100,
                         "threshold": 0.35 + shift, "strict_true": 300,
                         "completeness_at_target": 0.7 + shift,
                         "completeness_1.5-3arcsec_snr5-10": 0.8 - shift,
                         "n_1.5-3arcsec_snr5-10": 25, "strict_found_alone": int(100 * shift)})
    side = comparison_by_field({"table": rows})
    assert list(side.index) == ["val", "val_B2_100h"]
    assert side.loc["val_B2_100h", ("band", "")] == "B2"
    assert side.loc["val", ("completeness_at_target", "candidate")] == pytest.approx(0.71)
    assert side.loc["val", ("completeness_at_target", "incumbent")] == pytest.approx(0.70)
    assert side.loc["val", ("strict_found_alone", "candidate")] == 1
    assert side.loc["val", ("n_1.5-3arcsec_snr5-10", "")] == 25


def _stage(folder, val_loss: list[float], best: int, **record):
    folder.mkdir()
    pd.DataFrame({"epoch": range(len(val_loss)), "loss": val_loss,
                  "val_loss": val_loss}).to_csv(folder / "log.csv", index=False)
    (folder / "TRAINED.json").write_text(json.dumps({"best_epoch": best, **record}))
    return folder


def test_training_history_counts_epochs_on_across_stages(tmp_path):
    gpu = _stage(tmp_path / "gpu", [0.9, 0.5, 0.6], 1, device="GPU", accelerator="H100")
    cpu = _stage(tmp_path / "cpu", [0.45, 0.44], 1, device="CPU", accelerator="",
                 init_weights_sha256="ab12")
    history = training_history([gpu, cpu])
    assert list(history.epoch) == [1, 2, 3, 4, 5]
    assert list(history.stage) == [1, 1, 1, 2, 2]
    assert list(history.device) == ["H100"] * 3 + ["CPU"] * 2
    assert list(history.epoch[history.best]) == [2, 5]
    fresh = _stage(tmp_path / "fresh", [0.8], 0, device="CPU")
    with pytest.raises(ValueError, match="fresh/TRAINED.json does not start from the weights"):
        training_history([gpu, fresh])


RESULTS = PROJECT_ROOT / "benchmarks" / "results"
GPU_STAGE = RESULTS / "gpu_full_profile"


@pytest.mark.datacheck
@pytest.mark.parametrize("record", ["cpu_continued", "cpu_pairs", "cpu_blends",
                                    "cpu_deep_blends", "cpu_bright_blends",
                                    "cpu_wide_blends"])
def test_data_check_continued_training_record_is_consistent(record):
    """Each CPU continuation started from the shipped H100 weights, compared on validation
    fields only, and its recorded verdict follows from its recorded table."""
    continued = RESULTS / record
    history = training_history([GPU_STAGE, continued])
    assert list(history.device.unique()) == ["NVIDIA H100 80GB HBM3", "CPU"]
    record = json.loads((continued / "TRAINED.json").read_text())
    shipped = sha256sum(PRETRAINED_DIR / "unet_B1.keras")
    info = json.loads((continued / "compare.json").read_text())
    if info["verdict"]["better"]:
        pytest.skip("the continued model replaced the one it started from")
    assert record["init_weights_sha256"] == shipped
    _assert_verdict_from_validation_table(info)


def _assert_verdict_from_validation_table(info: dict) -> None:
    """The record compares on validation fields only, and its verdict is its table's."""
    table = pd.DataFrame(info["table"])
    assert "test" not in set(table.field) and len(table) == 2 * table.field.nunique()
    assert validation_verdict(table, "candidate", "incumbent") == info["verdict"]


@pytest.mark.datacheck
@pytest.mark.parametrize(("name", "with_pairs"), [("cpu_scratch", False),
                                                  ("cpu_scratch_blends", True)])
def test_data_check_scratch_records_were_trained_from_scratch_on_a_cpu(name, with_pairs):
    """The shipped GPU recipe's length from random weights, with or without close pairs;
    each compared with the shipped model."""
    folder = RESULTS / name
    record = json.loads((folder / "TRAINED.json").read_text())
    gpu = json.loads((GPU_STAGE / "TRAINED.json").read_text())
    assert record["device"] == "CPU" and gpu["device"] == "GPU"
    assert not record["config"]["init_weights"] and record["init_weights_sha256"] is None
    assert record["epochs_done"] == gpu["epochs_done"]
    assert (record["settings"]["pair_fraction"] > 0) == with_pairs
    assert gpu["settings"].get("pair_fraction", 0) == 0
    if not with_pairs:  # the control: the fields and datasets of the GPU run's record
        assert record["datasets"] == gpu["datasets"] and record["fields"] == gpu["fields"]
    info = json.loads((folder / "compare.json").read_text())
    assert info["incumbent"] == "unet_B1.keras" and not info["candidate_tta"]
    _assert_verdict_from_validation_table(info)


@pytest.mark.datacheck
@pytest.mark.parametrize(("folder", "candidate"),
                         [("cpu_scratch_blends", "full_scratch_blends.keras"),
                          ("cpu_scratch_seed1", "full_scratch_seed1.keras")])
def test_data_check_records_against_the_control_compare_two_scratch_runs(folder, candidate):
    """The pairs alone, and the draw alone: each run against the control, not the shipped
    model."""
    info = json.loads((RESULTS / folder / "compare_against_control.json").read_text())
    assert (info["candidate"], info["incumbent"]) == (candidate, "full_scratch.keras")
    assert not info["candidate_tta"]
    _assert_verdict_from_validation_table(info)


@pytest.mark.datacheck
def test_data_check_second_start_differs_from_the_control_in_its_training_seed_only():
    """The same recipe, fields, machine and backend as the control; another training seed."""
    control, second = (json.loads((RESULTS / name / "TRAINED.json").read_text())
                       for name in ("cpu_scratch", "cpu_scratch_seed1"))
    assert control["config"]["seed"] == control["settings"]["seed"] != second["config"]["seed"]
    assert {**second["config"], "seed": control["config"]["seed"]} == control["config"]
    for key in ("settings", "fields", "datasets", "device", "backend", "versions",
                "epochs_done", "init_weights_sha256"):
        assert second[key] == control[key], key


@pytest.mark.datacheck
@pytest.mark.parametrize("folder", ["cpu_scratch_blends", "cpu_scratch_seed1"])
def test_data_check_control_counts_the_same_against_any_model(folder):
    """Each model's threshold is tuned on its own: the control's tuned levels and the
    sources it finds at the target reliability against another model are those of its
    comparison with the shipped one (the paired counts are not: they depend on both)."""
    own, there = (pd.DataFrame(json.loads((RESULTS / record).read_text())["table"])
                  for record in ("cpu_scratch/compare.json",
                                 f"{folder}/compare_against_control.json"))
    pd.testing.assert_series_equal(found_by_field(own, "candidate"),
                                   found_by_field(there, "incumbent"), check_names=False)
    columns = ["field", "threshold", "strict_true"]
    pd.testing.assert_frame_equal(own[own.model == "candidate"][columns].reset_index(drop=True),
                                  there[there.model == "incumbent"][columns]
                                  .reset_index(drop=True))


#: member sidecars of each committed ensemble, in the order of its members
ENSEMBLES = {"ens_shipped_seed1": (PRETRAINED_DIR / "unet_B1.json",
                                   RESULTS / "cpu_scratch_seed1" / "model.json"),
             "ens_three": (PRETRAINED_DIR / "unet_B1.json",
                           RESULTS / "cpu_scratch_seed1" / "model.json",
                           RESULTS / "cpu_scratch" / "model.json")}


@pytest.mark.datacheck
@pytest.mark.parametrize(("name", "record"), [("ens_shipped_seed1", "compare.json"),
                                              ("ens_three", "compare_three.json")])
def test_data_check_ensemble_records_average_the_starts_they_name(name, record):
    """Each ensemble's members are the committed starts (by their sidecars' commit, save
    time and seed), it is compared with the shipped model, and the shipped model counts
    as it does against the control."""
    folder = RESULTS / "cpu_ensemble"
    sidecar = json.loads((folder / f"{name}.json").read_text())
    assert sidecar["model"] == "ensemble"
    keys = ("git_commit", "saved_utc", "seed")
    assert [{k: m[k] for k in keys} for m in sidecar["members"]] == [
        {k: json.loads(path.read_text())[k] for k in keys} for path in ENSEMBLES[name]]
    info = json.loads((folder / record).read_text())
    assert (info["candidate"], info["incumbent"]) == (f"{name}.keras", "unet_B1.keras")
    assert not info["candidate_tta"]
    _assert_verdict_from_validation_table(info)
    shipped = pd.DataFrame(json.loads((RESULTS / "cpu_scratch" / "compare.json").read_text())
                           ["table"])
    pd.testing.assert_series_equal(found_by_field(shipped, "incumbent"),
                                   found_by_field(pd.DataFrame(info["table"]), "incumbent"))


@pytest.mark.datacheck
def test_data_check_ensemble_was_tuned_on_validation_fields_only():
    """`radioseg pretrain --tune`: thresholds, calibration and p_real from the validation
    fields (no training fields, never the test field); p_real checked on the test field."""
    info = json.loads((RESULTS / "cpu_ensemble" / "tune.json").read_text())
    validation = set(info["trials"])
    assert "test" not in validation and not any(n.startswith("train") for n in validation)
    assert set(info["calibration"]["fields"]) == set(info["reliability"]["fields"]) == validation
    assert info["centre_threshold"] == info["centre_thresholds"]["B1"]["1000"]
    assert info["test"]["largest_gap"] <= info["test"]["tolerance"] and info["test"]["calibrated"]


@pytest.mark.datacheck
def test_data_check_tta_record_compares_the_shipped_model_with_itself():
    info = json.loads((RESULTS / "cpu_tta" / "compare.json").read_text())
    assert info["candidate_tta"] and info["candidate"] == info["incumbent"] == "unet_B1.keras"
    _assert_verdict_from_validation_table(info)


def test_the_verdict_line_names_test_time_augmentation():
    counts = {"found": 10.0, "found_1.5-3arcsec_snr5-10": 1, "found_alone": 0}
    info = {"candidate": "unet_B1.keras", "incumbent": "unet_B1.keras",
            "verdict": {"better": False, "p_value": 1.0, "candidate": counts,
                        "incumbent": counts}}
    assert verdict_line(info).startswith("unet_B1.keras does not beat")
    assert verdict_line({**info, "candidate_tta": True}).startswith(
        "unet_B1.keras with test-time augmentation does not beat unet_B1.keras")
