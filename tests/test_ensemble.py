"""Ensembles of trained models: one model file whose maps are the mean of its members'."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from radioseg_utils.cli import EXIT_OK, EXIT_USAGE, main
from radioseg_utils.core.bands import get_band
from radioseg_utils.core.paths import OutputExistsError
from radioseg_utils.inference.config import PredictConfig, resolve_config
from radioseg_utils.model.architectures import build_unet
from radioseg_utils.model.ensemble import SHARED_KEYS, build_ensemble, save_ensemble
from radioseg_utils.model.files import (
    ModelMismatchError,
    load_model,
    load_segmenter,
    save_model,
    sidecar_path,
)
from radioseg_utils.postprocess.centres import DEFAULT_CENTRE_THRESHOLD

META = {"band": "B1", "bands": ["B1", "B2"], "normalisation": "asinh", "integration": 1000,
        "outputs": ["mask", "centre"], "tile_size": 32}


def _batch(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, 16, 16, 1)).astype(np.float32)


@pytest.fixture
def members(tmp_path):
    """Two tiny two-output U-Nets saved with the same data description, different seeds."""
    paths = []
    for seed in (1, 2):
        model = build_unet(depth=1, base_filters=2, centre_head=True, name=f"unet{seed}")
        paths.append(save_model(model, tmp_path / f"m{seed}.keras",
                                metadata={**META, "model": "unet", "seed": seed,
                                          "centre_threshold": 0.3}))
    return paths


def test_build_ensemble_averages_its_members():
    nets = [build_unet(depth=1, base_filters=2, name=f"n{i}") for i in range(3)]
    ensemble = build_ensemble(nets)
    x = _batch()
    outs = [np.asarray(net(x)) for net in nets]
    assert not np.allclose(outs[0], outs[1])  # the members differ, so the mean is a test
    np.testing.assert_allclose(np.asarray(ensemble(x)), np.mean(outs, axis=0), atol=1e-6)


def test_build_ensemble_refuses_one_member_or_other_shapes():
    with pytest.raises(ValueError, match="at least two members, got 1"):
        build_ensemble([build_unet(depth=1, base_filters=2)])
    two_outputs = build_unet(depth=1, base_filters=2, centre_head=True, name="b")
    with pytest.raises(ValueError, match="must take and give the same shapes"):
        build_ensemble([build_unet(depth=1, base_filters=2, name="a"), two_outputs])


def test_saved_ensemble_loads_predicts_the_mean_and_lists_its_members(tmp_path, members,
                                                                      caplog):
    path = save_ensemble(members, tmp_path / "ens.keras")
    ensemble, meta = load_model(path, expect_band="B2", expect_normalisation="asinh")
    assert meta["model"] == "ensemble"
    assert [m["file"] for m in meta["members"]] == ["m1.keras", "m2.keras"]
    assert [m["seed"] for m in meta["members"]] == [1, 2]
    assert {k: meta[k] for k in META} == META  # what the data must be is kept
    assert "centre_threshold" not in meta  # one member's tuning is not the ensemble's
    x = _batch(1)
    expected = np.mean([np.asarray(load_model(p)[0](x)) for p in members], axis=0)
    np.testing.assert_allclose(np.asarray(ensemble(x)), expected, atol=1e-6)
    with caplog.at_level(logging.INFO, logger="radioseg_utils.inference.config"):
        untuned = resolve_config(path, PredictConfig(), band="B1", noise=1e-6)
    assert untuned.centre_threshold == DEFAULT_CENTRE_THRESHOLD
    assert "ens.keras has no tuned centre threshold" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="radioseg_utils.inference.config"):
        resolve_config(members[0], PredictConfig(), band="B1", noise=1e-6)  # tuned: 0.3
    assert "no tuned centre threshold" not in caplog.text
    net, normalisation = load_segmenter(path, "B1")  # what predict reads
    assert normalisation == "asinh"
    np.testing.assert_allclose(np.asarray(net(x)), expected, atol=1e-5)
    with pytest.raises(ModelMismatchError, match="data is band B5"):
        load_model(path, expect_band="B5")


@pytest.mark.parametrize("key", ["band", "normalisation", "outputs", "tile_size"])
def test_members_must_agree_on_what_the_data_is(tmp_path, members, key):
    assert key in SHARED_KEYS
    side = sidecar_path(members[1])
    meta = json.loads(side.read_text())
    meta[key] = {"band": "B2", "normalisation": "minmax", "outputs": ["mask"],
                 "tile_size": 64}[key]
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"cannot average m2.keras with m1.keras: {key} is"):
        save_ensemble(members, tmp_path / "ens.keras")
    assert not (tmp_path / "ens.keras").exists()


def test_save_ensemble_errors(tmp_path, members):
    with pytest.raises(ValueError, match="at least two model files, got 1"):
        save_ensemble(members[:1], tmp_path / "ens.keras")
    with pytest.raises(ValueError, match="must end in .keras"):
        save_ensemble(members, tmp_path / "ens.h5")
    with pytest.raises(FileNotFoundError, match="absent.keras not found"):
        save_ensemble([members[0], tmp_path / "absent.keras"], tmp_path / "ens.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip archive")
    sidecar_path(junk).write_text(sidecar_path(members[0]).read_text())
    with pytest.raises(ValueError, match="junk.keras is not a readable .keras model archive"):
        save_ensemble([members[0], junk], tmp_path / "ens.keras")
    save_ensemble(members, tmp_path / "ens.keras")
    before = (tmp_path / "ens.keras").read_bytes()
    with pytest.raises(OutputExistsError, match="ens.keras exists"):
        save_ensemble(members, tmp_path / "ens.keras")
    assert (tmp_path / "ens.keras").read_bytes() == before  # nothing lost
    save_ensemble(members[::-1], tmp_path / "ens.keras", overwrite=True)
    assert json.loads(sidecar_path(tmp_path / "ens.keras").read_text())["members"][0][
        "file"] == "m2.keras"


def test_cli_ensemble(tmp_path, members, capsys):
    out = tmp_path / "ens.keras"
    assert main(["ensemble", *map(str, members), "-o", str(out)]) == EXIT_OK
    assert load_model(out)[1]["model"] == "ensemble"
    assert main(["ensemble", *map(str, members), "-o", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.endswith("exists; to replace, add --overwrite") and "\n" not in err
    assert main(["ensemble", *map(str, members), "-o", str(out), "--overwrite"]) == EXIT_OK
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"PK")
    sidecar_path(junk).write_text(sidecar_path(members[0]).read_text())
    assert main(["ensemble", str(members[0]), str(junk), "-o", str(out), "--overwrite"]) \
        == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("radioseg: error:") and "not a readable .keras" in err
    assert "\n" not in err


@pytest.mark.slow
def test_an_ensemble_tuned_by_pretrain_predicts_at_its_own_threshold(tmp_path, members):
    """`radioseg ensemble`, then `radioseg pretrain --tune`: the thresholds land in the
    ensemble's sidecar and predictions on an image of that band and depth use them."""
    import dataclasses

    from radioseg_utils.workflows import pretrain

    settings = dataclasses.replace(pretrain.PretrainSettings(), seed=5, val_size=256,
                                   test_size=256, val_fields=(("B2", 100, 256),))
    path = save_ensemble(members, tmp_path / "ens.keras")
    info = pretrain.tune_model(path, settings=settings, work_dir=tmp_path / "run")
    meta = json.loads(sidecar_path(path).read_text())
    assert set(meta["centre_thresholds"]) == {"B1", "B2"}
    assert meta["centre_threshold"] == info["centre_threshold"] in pretrain.THRESHOLD_GRID
    assert [t["threshold"] for t in info["trials"]["val_B2_100h"]] == sorted(
        pretrain.THRESHOLD_GRID)
    assert "test" not in info["trials"]
    b2_100h = resolve_config(path, PredictConfig(), band="B2", noise=get_band("B2").noise(100))
    assert b2_100h.centre_threshold == meta["centre_thresholds"]["B2"]["100"]
    other = resolve_config(path, PredictConfig(), band="B2", noise=None, sdc1=False)
    assert other.centre_threshold == meta["centre_threshold"]
