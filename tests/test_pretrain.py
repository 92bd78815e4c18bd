"""The command that reproduces the shipped model, on a tiny field, and the shipped model."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from radioseg_utils.core.paths import PRETRAINED_DIR, PROJECT_ROOT
from radioseg_utils.model.files import load_model
from radioseg_utils.workflows import pretrain


@pytest.mark.slow
def test_train_default_model_writes_model_sidecar_and_manifest(tmp_path):
    settings = dataclasses.replace(pretrain.PretrainSettings(), seed=5, tile_size=64,
                                   fields=(("B1", 1000, 512), ("B2", 100, 512)),
                                   val_size=256, test_size=256,
                                   val_fields=(("B2", 100, 256),))
    config = pretrain.DEFAULT_CONFIG.replace(epochs=1, base_filters=4, tile_size=64)
    manifest = pretrain.train_default_model(settings=settings, config=config,
                                            work_dir=tmp_path / "work", out_dir=tmp_path / "out")
    model, meta = load_model(tmp_path / "out" / "unet_B1.keras", expect_band="B2",
                             expect_normalisation=settings.normalisation)
    assert meta["seed"] == 5 and meta["params"]["base_filters"] == 4
    assert meta["bands"] == ["B1", "B2"] and meta["outputs"] == ["mask", "centre"]
    assert meta["centre_threshold"] in pretrain.THRESHOLD_GRID
    # one threshold per validation field, by band and integration
    assert set(meta["centre_thresholds"]) == {"B1", "B2"}
    assert meta["centre_thresholds"]["B1"]["1000"] == meta["centre_threshold"]
    assert meta["centre_thresholds"]["B2"]["100"] in pretrain.THRESHOLD_GRID
    # a one-epoch model finds too few sources to calibrate on: said, and nothing half-made
    assert "too few" in manifest["calibration"]["skipped"]
    assert "calibration" not in meta
    assert not list((tmp_path / "out").glob("*.calibration.npz"))
    # p_real: tried on the validation fields only (too few false detections to fit here)
    assert manifest["reliability"]["fields"] == ["val", "val_B2_100h"]
    assert "reliability" not in meta or (tmp_path / "out" / meta["reliability"]).is_file()
    assert model.output_shape == (None, None, None, 2)
    saved = json.loads((tmp_path / "out" / "MANIFEST.json").read_text())
    fields = saved["fields"]
    assert set(fields) == {"train", "train_B2_100h", "val", "val_B2_100h", "test"}
    # every field has its own seed and its own patch of sky
    assert len({f["seed"] for f in fields.values()}) == 5
    assert len({tuple(f["centre"]) for f in fields.values()}) == 5
    assert fields["train_B2_100h"]["integration"] == 100
    trials = saved["centre_threshold"]["trials"]["val"]
    assert [t["threshold"] for t in trials] == sorted(pretrain.THRESHOLD_GRID)
    # lower thresholds never find fewer sources
    counts = [t["detections"] for t in trials]
    assert counts == sorted(counts, reverse=True)
    scores = manifest["held_out_scores"]
    assert scores["field"] == "test (held out)"
    assert 0.0 <= scores["unet"]["pixel_f1"] <= 1.0 and scores["peaks"]["detections"] > 0
    # the calibration changes parameters, never which sources are found
    assert scores["unet"]["detections"] == scores["unet_uncalibrated"]["detections"]
    assert 0.0 < scores["raw_image_best_threshold_pixel_f1"] <= 1.0


@pytest.mark.slow
def test_training_on_one_machine_and_finishing_on_another(tmp_path):
    """--until train writes a carried-back folder; --trained finishes from it, checked."""
    settings = dataclasses.replace(pretrain.PretrainSettings(), seed=7, tile_size=64,
                                   fields=(("B1", 1000, 512), ("B1", 1000, 512)),
                                   val_size=256, test_size=256, val_fields=())
    config = pretrain.DEFAULT_CONFIG.replace(epochs=3, base_filters=4, tile_size=64)
    carried = tmp_path / "carried"
    record = pretrain.train_default_model(settings=settings, config=config,
                                          work_dir=tmp_path / "gpu", out_dir=carried,
                                          until="train", n_workers=2, time_budget=1e-6)
    assert sorted(p.name for p in carried.iterdir()) == ["TRAINED.json", "log.csv",
                                                        "model.json", "model.keras"]
    # the repeated B1 1000 h field has its own name, seed and patch of sky
    assert list(record["fields"]) == ["train", "train_B1_1000h_2"]
    assert record["fields"]["train"]["seed"] != record["fields"]["train_B1_1000h_2"]["seed"]
    assert record["epochs_done"] == 1 and record["stopped_by_time_budget"]
    # the version of the backend that trained it, whichever distribution installed it
    assert any(name.startswith(record["backend"]) for name in record["versions"])
    assert not (tmp_path / "gpu" / "fields" / "val.fits").exists()  # no held-out fields
    with pytest.raises(ValueError, match="other settings"):
        pretrain.train_default_model(settings=dataclasses.replace(settings, seed=8),
                                     config=config, work_dir=tmp_path / "cpu",
                                     out_dir=tmp_path / "out", trained=carried)
    with pytest.raises(ValueError, match=r"other config \(seed\).*--train-seed"):
        pretrain.train_default_model(settings=settings, config=config, train_seed=8,
                                     work_dir=tmp_path / "cpu", out_dir=tmp_path / "out",
                                     trained=carried)
    manifest = pretrain.train_default_model(settings=settings, config=config,
                                            work_dir=tmp_path / "cpu", out_dir=tmp_path / "out",
                                            trained=carried, evaluate=False)
    assert manifest["trained"]["epochs_done"] == 1
    assert manifest["command"] == ("radioseg pretrain --until train --out DIR (elsewhere), "
                                   "then radioseg pretrain --trained DIR")
    assert manifest["trained"]["stopped_by_time_budget"] is True
    # the fields simulated again here are those trained on there, bit for bit
    for name in ("train", "train_B1_1000h_2"):
        assert ((tmp_path / "cpu" / "fields" / f"{name}.fits").read_bytes()
                == (tmp_path / "gpu" / "fields" / f"{name}.fits").read_bytes())
    model, meta = load_model(tmp_path / "out" / "unet_B1.keras")
    assert getattr(model, "optimizer", None) is None  # the shipped copy: no optimiser state
    assert meta["centre_threshold"] in pretrain.THRESHOLD_GRID

    # training continued from that model's weights, finished into its own folder: the
    # manifest keeps the file it started from and the record of where that was trained
    start = tmp_path / "out" / "unet_B1.keras"
    digest = hashlib.sha256(start.read_bytes()).hexdigest()
    more = config.replace(init_weights=str(start), learning_rate=1e-4)
    again = tmp_path / "carried_again"
    record = pretrain.train_default_model(settings=settings, config=more,
                                          work_dir=tmp_path / "more", out_dir=again,
                                          until="train", time_budget=1e-6)
    assert record["init_weights_sha256"] == digest
    continued = pretrain.train_default_model(settings=settings, config=more,
                                             work_dir=tmp_path / "more",
                                             out_dir=tmp_path / "out", trained=again,
                                             evaluate=False)
    assert hashlib.sha256(start.read_bytes()).hexdigest() != digest  # replaced
    assert continued["continued_from"] == {"init_weights": str(start), "sha256": digest,
                                           "command": manifest["command"],
                                           "trained": manifest["trained"]}
    assert continued["trained"]["init_weights_sha256"] == digest
    # finished again now that the file it started from is another: said, not misattributed
    later = pretrain.train_default_model(settings=settings, config=more,
                                         work_dir=tmp_path / "more",
                                         out_dir=tmp_path / "out_later", trained=again,
                                         evaluate=False)
    assert later["continued_from"]["sha256"] == digest
    assert later["continued_from"]["trained"] is None
    assert "no longer the file trained from" in later["continued_from"]["note"]


@pytest.mark.datacheck
def test_data_check_shipped_manifest_matches_the_model():
    """The manifest beside the shipped model records its data, seeds, versions and scores."""
    manifest = json.loads((PRETRAINED_DIR / "MANIFEST.json").read_text())
    _, meta = load_model(PRETRAINED_DIR / manifest["model"])
    assert manifest["sidecar"]["saved_utc"] == meta["saved_utc"]
    assert manifest["settings"]["seed"] == meta["seed"] == pretrain.PretrainSettings().seed
    assert meta["versions"]["keras"] and meta["backend"] in ("tensorflow", "jax", "torch")
    # trained where the manifest says, by the command it names
    assert manifest["command"].startswith("radioseg pretrain")
    assert manifest["trained"]["device"] in ("CPU", "GPU")
    scores = manifest["held_out_scores"]
    # scored on held-out data only: better than any single threshold of the raw image
    assert scores["unet"]["pixel_f1"] > scores["raw_image_best_threshold_pixel_f1"]


@pytest.mark.datacheck
def test_data_check_shipped_calibration_is_named_and_helped_on_held_out_data():
    manifest = json.loads((PRETRAINED_DIR / "MANIFEST.json").read_text())
    _, meta = load_model(PRETRAINED_DIR / manifest["model"])
    assert (PRETRAINED_DIR / meta["calibration"]).is_file()
    assert set(meta["centre_thresholds"]) == {"B1", "B2", "B5"}
    scores = manifest["held_out_scores"]
    assert scores["unet"]["sdc1_score"] > scores["unet_uncalibrated"]["sdc1_score"]
    assert abs(scores["unet"]["flux_ratio"] - 1.0) < 0.05


@pytest.mark.datacheck
def test_data_check_shipped_p_real_fitted_on_validation_and_calibrated_on_test():
    manifest = json.loads((PRETRAINED_DIR / "MANIFEST.json").read_text())
    _, meta = load_model(PRETRAINED_DIR / manifest["model"])
    assert (PRETRAINED_DIR / meta["reliability"]).is_file()
    record = manifest["reliability"]
    assert record["fields"] and not any("test" in name for name in record["fields"])
    # checked on the held-out test field: every decile within the target
    check = record.get("test") or manifest["held_out_scores"]["unet"]["p_real"]
    assert check["calibrated"] and check["largest_gap"] <= check["tolerance"]
    assert len(check["deciles"]) == 10
    # fitted from a centre threshold below every tuned one, and calibrated there too
    floor = record["centre_threshold_min"]
    tuned = [v for table in meta["centre_thresholds"].values() for v in table.values()]
    assert floor == pretrain.p_real_floor(meta) and floor < min(tuned)
    low = record["test_floor"]
    assert low["centre_threshold_min"] == floor and low["calibrated"] and len(low["deciles"]) == 10


@pytest.mark.datacheck
def test_data_check_shipped_score_selection_follows_from_its_validation_scores():
    """Per band, the sidecar's score selection is the candidate that scored highest over
    that band's validation fields, and those fields are the p_real fit's (never test)."""
    manifest = json.loads((PRETRAINED_DIR / "MANIFEST.json").read_text())
    _, meta = load_model(PRETRAINED_DIR / manifest["model"])
    chosen = meta["score_selection"]
    assert chosen["fields"] == manifest["reliability"]["fields"]
    assert set(chosen["bands"]) == {"B1", "B2", "B5"}
    floor = manifest["reliability"]["centre_threshold_min"]
    for band, totals in chosen["pooled"].items():
        best = max(totals, key=lambda key: (totals[key], key == pretrain.TUNED))
        expected = ({"centre_threshold": None, "min_p_real": None} if best == pretrain.TUNED
                    else {"centre_threshold": floor, "min_p_real": float(best)})
        assert chosen["bands"][band] == expected, band
        # per field, the scores add up to the pooled ones
        per_field = manifest["reliability"]["score_selection"]["scores"]
        assert sum(per_field[name]["reliability"] for name in per_field
                   if name in _fields_of_band(manifest, band)) == pytest.approx(totals["reliability"])


def _fields_of_band(manifest: dict, band: str) -> list[str]:
    return [name for name, field in manifest["fields"].items() if field["band"] == band]


@pytest.mark.datacheck
@pytest.mark.parametrize("key", ["fields", "datasets", "config", "training_log", "centre_threshold",
                                 "calibration"])
def test_data_check_shipped_manifest_is_complete(key):
    manifest = json.loads((PRETRAINED_DIR / "MANIFEST.json").read_text())
    assert manifest[key]


def test_full_continued_profile_continues_the_shipped_full_model():
    """Same data and network as ``full``; starts from the shipped weights, which fit it."""
    from radioseg_utils.model.files import read_sidecar
    from radioseg_utils.model.train import init_weights_file

    settings, config = pretrain.PRETRAIN_PROFILES["full-continued"]
    full_settings, full = pretrain.PRETRAIN_PROFILES["full"]
    assert settings == full_settings
    same = ("model", "depth", "base_filters", "batch_norm", "dropout", "centre_head", "loss",
            "normalisation", "tile_size", "batch_size")
    assert {k: getattr(config, k) for k in same} == {k: getattr(full, k) for k in same}
    assert config.learning_rate < full.learning_rate and config.lr_schedule == "cosine"
    shipped = read_sidecar(init_weights_file(config.init_weights))["config"]
    assert {k: shipped[k] for k in same} == {k: getattr(config, k) for k in same}


def test_full_pairs_profile_is_the_continuation_with_the_pair_penalty():
    """Only the centre loss near close pairs, the profile name and the epochs differ."""
    from radioseg_utils.model.config import TrainConfig

    settings, config = pretrain.PRETRAIN_PROFILES["full-pairs"]
    base_settings, base = pretrain.PRETRAIN_PROFILES["full-continued"]
    assert settings == base_settings
    assert config.centre_pair_beta == 1.0 and base.centre_pair_beta is None
    assert config.epochs < base.epochs
    assert config.replace(centre_pair_beta=None, epochs=base.epochs,
                          profile=base.profile) == base
    # a checkpoint saved before the field existed reads as the plain loss
    saved = {k: v for k, v in base.to_dict().items() if k != "centre_pair_beta"}
    assert TrainConfig.completed(saved)["centre_pair_beta"] is None


def test_full_blends_profile_is_the_continuation_on_fields_with_more_pairs():
    settings, config = pretrain.PRETRAIN_PROFILES["full-blends"]
    base_settings, base = pretrain.PRETRAIN_PROFILES["full-continued"]
    assert settings.pair_fraction > 0 and base_settings.pair_fraction == 0
    assert dataclasses.replace(settings, pair_fraction=0.0) == base_settings
    assert config.replace(epochs=base.epochs, profile=base.profile) == base


def test_full_deep_blends_moves_pairs_in_the_deep_training_fields_only(monkeypatch, tmp_path):
    from radioseg_utils.workflows import pipeline

    settings, config = pretrain.PRETRAIN_PROFILES["full-deep-blends"]
    blends, blends_config = pretrain.PRETRAIN_PROFILES["full-blends"]
    assert dataclasses.replace(settings, pair_min_integration=0) == blends
    assert config.replace(profile=blends_config.profile) == blends_config
    asked = {}
    monkeypatch.setattr(pipeline, "ensure_field",
                        lambda layout, name, **kw: asked.setdefault(name, kw))
    pretrain._training_fields(settings, pipeline.RunLayout(tmp_path), n_workers=1,
                              datasets=False)
    assert len(asked) == len(settings.fields)
    for kw in asked.values():
        deep = kw["integration"] >= 100
        assert kw["pair_fraction"] == (settings.pair_fraction if deep else 0.0)
    assert {kw["integration"] for kw in asked.values()} >= {8, 100, 1000}


def test_full_bright_blends_raises_the_pair_floor_only(monkeypatch, tmp_path):
    from radioseg_utils.workflows import pipeline

    settings, config = pretrain.PRETRAIN_PROFILES["full-bright-blends"]
    deep, deep_config = pretrain.PRETRAIN_PROFILES["full-deep-blends"]
    assert settings.pair_sigma > deep.pair_sigma
    assert dataclasses.replace(settings, pair_sigma=deep.pair_sigma) == deep
    assert config.replace(profile=deep_config.profile) == deep_config
    asked = []
    monkeypatch.setattr(pipeline, "ensure_field", lambda layout, name, **kw: asked.append(kw))
    pretrain._training_fields(settings, pipeline.RunLayout(tmp_path), n_workers=1,
                              datasets=False)
    assert {kw["pair_sigma"] for kw in asked} == {settings.pair_sigma}


def test_full_wide_blends_adds_training_fields_only():
    settings, config = pretrain.PRETRAIN_PROFILES["full-wide-blends"]
    bright, bright_config = pretrain.PRETRAIN_PROFILES["full-bright-blends"]
    assert settings.fields[:len(bright.fields)] == bright.fields
    assert {(b, h) for b, h, _ in settings.fields[len(bright.fields):]} == {("B2", 8),
                                                                           ("B5", 1000)}
    assert dataclasses.replace(settings, fields=bright.fields) == bright
    assert config.replace(profile=bright_config.profile) == bright_config
    # the fields both recipes share keep their names, so their files are shared
    names = pretrain.training_field_names(settings.fields)
    assert names[:len(bright.fields)] == pretrain.training_field_names(bright.fields)


def test_a_train_seed_is_another_start_on_the_same_fields(monkeypatch, tmp_path):
    """``train_seed`` seeds the training only; the fields keep ``settings.seed``."""
    seen = []

    def prepare(settings, config, layout, **kwargs):
        seen.append((settings.seed, config.seed))
        raise RuntimeError("stopped before simulating")

    monkeypatch.setattr(pretrain, "prepare", prepare)
    for train_seed in (None, 11):
        with pytest.raises(RuntimeError, match="stopped"):
            pretrain.train_default_model(settings=pretrain.PretrainSettings(seed=5),
                                         work_dir=tmp_path, out_dir=tmp_path / "out",
                                         train_seed=train_seed)
    assert seen == [(5, 5), (5, 11)]


def test_cli_pretrain_passes_the_train_seed(monkeypatch, tmp_path, capsys):
    from radioseg_utils.cli import main

    calls = []
    monkeypatch.setattr(pretrain, "train_default_model",
                        lambda **kwargs: calls.append(kwargs) or {"epochs_done": 0})
    assert main(["pretrain", "--profile", "full-scratch", "--train-seed", "11", "--until",
                 "train", "--out", str(tmp_path)]) == 0
    assert calls[0]["train_seed"] == 11 and calls[0]["settings"].seed == 2026
    capsys.readouterr()
    for extra in (["--compare", str(tmp_path / "m.keras")], ["--reliability-only"]):
        assert main(["pretrain", "--train-seed", "3", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "trains nothing" in err and "--train-seed" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("name", "fields_of"), [("full-scratch", "full"),
                                                 ("full-scratch-blends", "full-bright-blends")])
def test_scratch_recipes_are_the_shipped_gpu_run_on_their_fields(name, fields_of):
    """From scratch, with the epochs and batch of the GPU run that made the shipped model;
    the control and the pair run differ only in their fields."""
    settings, config = pretrain.PRETRAIN_PROFILES[name]
    _, full = pretrain.PRETRAIN_PROFILES["full"]
    assert settings == pretrain.PRETRAIN_PROFILES[fields_of][0]
    assert not config.init_weights
    assert config.replace(epochs=full.epochs, batch_size=full.batch_size,
                          profile=full.profile) == full
    record = json.loads((PROJECT_ROOT / "benchmarks" / "results" / "gpu_full_profile"
                         / "TRAINED.json").read_text())
    assert config.epochs == record["epochs_done"]
    assert config.batch_size == record["config"]["gpu_batch_size"]


def test_a_training_record_from_before_a_setting_reads_as_its_default(tmp_path):
    """A carried-back folder whose record predates ``pair_fraction`` was trained on the
    population's own positions: it fits a recipe without pairs, not one with them."""
    import json

    from radioseg_utils.workflows.pipeline import RunLayout

    settings, config = pretrain.PRETRAIN_PROFILES["full-continued"]
    folder = tmp_path / "carried"
    folder.mkdir()
    old = {k: v for k, v in dataclasses.asdict(settings).items() if k != "pair_fraction"}
    (folder / pretrain.TRAINED_RECORD).write_text(json.dumps(
        {"settings": old, "config": config.to_dict()}))
    for name in ("model.keras", "model.json", "log.csv"):
        (folder / name).write_text(name)
    layout = RunLayout(tmp_path / "run")
    pretrain._adopt_trained(folder, settings, config, layout)
    assert (layout.model_dir() / "model.keras").read_text() == "model.keras"
    with pytest.raises(ValueError, match=r"other settings \(pair_fraction\)"):
        pretrain._adopt_trained(folder, dataclasses.replace(settings, pair_fraction=0.15),
                                config, layout)


def test_cli_offers_every_pretrain_profile():
    from radioseg_utils.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["pretrain"]
    profile = next(a for a in sub._actions if a.dest == "profile")
    assert tuple(profile.choices) == tuple(pretrain.PRETRAIN_PROFILES)


def test_replayed_model_runs_the_network_once_per_batch():
    import numpy as np

    calls = []

    def net(batch):
        calls.append(batch.shape)
        return batch * 2.0

    replay = pretrain._Replay(net)
    batches = [np.ones((2, 4, 4, 1), np.float32), np.zeros((1, 4, 4, 1), np.float32)]
    first = [replay(b) for b in batches]
    replay.rewind()
    second = [replay(b) for b in batches]
    assert len(calls) == 2
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    replay.rewind()
    with pytest.raises(RuntimeError, match="shape"):
        replay(np.ones((3, 4, 4, 1), np.float32))


def _record_fitted_fields(monkeypatch) -> dict[str, list[str]]:
    """Replace the calibration and p_real fits by stubs that record the fields each got."""
    seen = {}

    def calibrate(path, fields, *, seed):
        seen["calibration"] = list(fields)
        return {"skipped": "not here"}

    def reliability(path, fields, *, seed):
        seen["reliability"] = list(fields)
        return {"skipped": "not here", "fields": list(fields)}

    monkeypatch.setattr(pretrain, "calibrate_model", calibrate)
    monkeypatch.setattr(pretrain, "fit_model_reliability", reliability)
    return seen


def test_pretrain_fits_p_real_on_validation_fields_never_on_test(tmp_path, monkeypatch):
    """The reliability step of train_default_model gets every held-out field but the test
    field; the test field only scores."""
    from radioseg_utils.workflows.pipeline import FieldFiles

    fit_model_reliability = pretrain.fit_model_reliability

    def field(name):
        return FieldFiles(tmp_path / f"{name}.fits", tmp_path / f"{name}.ecsv")

    model = tmp_path / "work" / "model.keras"
    model.parent.mkdir()
    model.write_bytes(b"")
    (tmp_path / "work" / "model.json").write_text(json.dumps({"band": "B1"}))
    held_out = {name: field(name) for name in ("val", "test", "val_B2_100h", "val_B5_8h")}
    monkeypatch.setattr(pretrain, "prepare", lambda *a, **k: ({"train": field("train")},
                                                              held_out, {}, model, {}))
    monkeypatch.setattr(pretrain, "tune_centre_thresholds",
                        lambda *a, **k: ({"B1": {"1000": 0.3}}, {}))
    seen = _record_fitted_fields(monkeypatch)
    monkeypatch.setattr(pretrain, "save_inference_copy", lambda src, dst: dst.write_bytes(b""))
    manifest = pretrain.train_default_model(work_dir=tmp_path / "run", out_dir=tmp_path / "out",
                                            evaluate=False)
    assert seen["reliability"] == ["val", "val_B2_100h", "val_B5_8h"]
    assert "test" not in seen["calibration"] and "train" in seen["calibration"]
    assert manifest["reliability"]["fields"] == seen["reliability"]
    assert pretrain.validation_fields(held_out) == {k: v for k, v in held_out.items() if k != "test"}
    with pytest.raises(ValueError, match="test field"):
        fit_model_reliability(model, {"val": field("val"), "test": field("test")}, seed=0)


def _fake_held_out(tmp_path):
    from radioseg_utils.workflows.pipeline import FieldFiles

    return {name: FieldFiles(tmp_path / f"{name}.fits", tmp_path / f"{name}.ecsv")
            for name in ("val", "test", "val_B2_100h")}


def test_tune_model_fits_on_validation_fields_only_and_writes_the_sidecar(tmp_path,
                                                                          monkeypatch):
    """A model file from elsewhere: thresholds, calibration and p_real from the validation
    fields (no training fields, never the test field), written into its sidecar."""
    model = tmp_path / "ens.keras"
    model.write_bytes(b"")
    (tmp_path / "ens.json").write_text(json.dumps({"band": "B1", "model": "ensemble"}))
    held_out = _fake_held_out(tmp_path)
    monkeypatch.setattr(pretrain, "held_out_fields", lambda *a, **k: held_out)
    thresholds = {"B1": {"1000": 0.35}, "B2": {"100": 0.4}}
    monkeypatch.setattr(pretrain, "tune_centre_thresholds",
                        lambda path, fields, settings: (thresholds, {"val": []}))
    seen = _record_fitted_fields(monkeypatch)
    info = pretrain.tune_model(model, work_dir=tmp_path / "run")
    assert seen == {"calibration": ["val", "val_B2_100h"],
                    "reliability": ["val", "val_B2_100h"]}
    assert info["centre_threshold"] == 0.35 and "test" not in info  # no p_real to check
    sidecar = json.loads((tmp_path / "ens.json").read_text())
    assert sidecar["centre_thresholds"] == thresholds and sidecar["centre_threshold"] == 0.35
    assert sidecar["model"] == "ensemble"  # the rest of the sidecar is kept
    assert set(info["timings"]) == {"tune_s", "calibrate_s", "reliability_s"}


def test_tune_model_refuses_the_shipped_model_and_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="is the shipped model.*tune a copy instead"):
        pretrain.tune_model(PRETRAINED_DIR / "unet_B1.keras", work_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="absent.keras not found"):
        pretrain.tune_model(tmp_path / "absent.keras", work_dir=tmp_path)


def test_cli_pretrain_tune(monkeypatch, tmp_path, capsys):
    from radioseg_utils.cli import main

    calls = []
    monkeypatch.setattr(pretrain, "tune_model",
                        lambda model, **kwargs: calls.append((model, kwargs)) or {"ok": 1})
    model = tmp_path / "ens.keras"
    assert main(["pretrain", "--profile", "full", "--tune", str(model), "--work-dir",
                 str(tmp_path / "run")]) == 0
    assert calls[0][0] == model and calls[0][1]["settings"] == pretrain.PRETRAIN_PROFILES[
        "full"][0]
    assert json.loads(capsys.readouterr().out) == {"ok": 1}
    for extra, message in ((["--until", "train"], "--tune trains nothing"),
                           (["--compare", str(model)], "--compare and --tune are separate"),
                           (["--reliability-only"], "--tune and --reliability-only are")):
        assert main(["pretrain", "--tune", str(model), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert len(calls) == 1


def test_p_real_is_fitted_from_the_floor_or_the_lowest_tuned_threshold():
    assert pretrain.p_real_floor({}) == pretrain.P_REAL_FLOOR
    assert pretrain.p_real_floor({"centre_threshold": 0.4,
                                  "centre_thresholds": {"B1": {"8": 0.45}}}) == pretrain.P_REAL_FLOOR
    assert pretrain.p_real_floor({"centre_threshold": 0.4,
                                  "centre_thresholds": {"B5": {"8": 0.15}}}) == 0.15


def test_score_selection_is_chosen_per_band_on_validation_fields(tmp_path, monkeypatch, rng):
    """Each band gets the p_real cut whose detections score highest over its fields, or the
    tuned catalogue where that scores higher; nothing is fitted on a test field."""
    import numpy as np
    from astropy.table import Table

    import radioseg_utils.baselines as baselines
    import radioseg_utils.workflows.pipeline as pipeline
    from radioseg_utils.baselines.result import FinderResult
    from radioseg_utils.core.bands import get_band
    from radioseg_utils.postprocess.reliability import CENTRE_THRESHOLD_MIN, fit_reliability

    k = 7
    x = rng.normal(size=(500, k))
    fit_reliability([x], [rng.random(500) < 0.5], ["val"],
                    meta={"name": "m.reliability.npz", CENTRE_THRESHOLD_MIN: 0.25}
                    ).save(tmp_path / "m.reliability.npz")
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    (tmp_path / "m.json").write_text(json.dumps({"reliability": "m.reliability.npz",
                                                 "centre_threshold": 0.4}))

    class Field:
        def __init__(self, band):
            self.band = band

        def saved_parameters(self):
            return {"integration": 100}

    # per band: p_real and truth of the deep catalogue's rows, and the tuned catalogue's score
    rows = {"B1": ([0.1, 0.35, 0.35, 0.6, 0.9], [False, True, True, True, True], 2.0),
            "B5": ([0.1, 0.5, 0.7], [False, False, False], 0.0)}
    calls = []

    def run_unet(sky, *, model, config=None, primary_beam=None):
        calls.append(None if config is None else config.centre_threshold)
        p, real, tuned = rows[sky.band.name]
        cat = Table({"p_real": p, "real": real} if config is not None else
                    {"p_real": [1.0], "real": [True], "tuned": [tuned]})
        return FinderResult(cat, np.zeros((2, 2), np.int32), 0.0, 0.0, "unet")

    def score(result, **kwargs):
        cat = result.catalogue
        if "tuned" in cat.colnames:
            return float(cat["tuned"][0])
        return float(np.sum(np.where(cat["real"], 1.0, -1.0)))

    monkeypatch.setattr(baselines, "run_unet", run_unet)
    monkeypatch.setattr(pipeline, "load_field",
                        lambda files: (type("Sky", (), {"band": get_band(files.band)})(), None))
    monkeypatch.setattr(pretrain, "_sdc1_score", score)
    fields = {"val": Field("B1"), "val_B1_8h": Field("B1"), "val_B5_8h": Field("B5")}
    chosen = pretrain.tune_score_selection(model, fields)
    # B1: p >= 0.2 (or 0.3) keeps the four real rows: 4 per field, against 2 tuned
    assert chosen["bands"]["B1"] == {"centre_threshold": 0.25, "min_p_real": 0.2}
    assert chosen["pooled"]["B1"]["0.2"] == 8.0 and chosen["pooled"]["B1"]["reliability"] == 4.0
    # B5: every cut keeps false rows or nothing; the tuned catalogue wins the tie with an
    # empty one, as the selection that changes nothing
    assert chosen["pooled"]["B5"]["0.9"] == chosen["pooled"]["B5"]["reliability"] == 0.0
    assert chosen["bands"]["B5"] == {"centre_threshold": None, "min_p_real": None}
    assert set(calls) == {0.25, None}  # the deep catalogue at the reliability file's floor
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["score_selection"]["bands"] == chosen["bands"]
    assert sidecar["score_selection"]["fields"] == ["val", "val_B1_8h", "val_B5_8h"]
    assert "scores" not in sidecar["score_selection"] and set(chosen["scores"]) == set(fields)
    with pytest.raises(ValueError, match="test field"):
        pretrain.tune_score_selection(model, {"test": Field("B1")})
    (tmp_path / "m.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match="m.keras has no reliability file"):
        pretrain.tune_score_selection(model, fields)
    fit_reliability([x], [rng.random(500) < 0.5], ["val"], meta={"name": "old.npz"}
                    ).save(tmp_path / "old.npz")
    (tmp_path / "m.json").write_text(json.dumps({"reliability": "old.npz"}))
    with pytest.raises(ValueError, match="old.npz does not say from which centre threshold"):
        pretrain.tune_score_selection(model, fields)
