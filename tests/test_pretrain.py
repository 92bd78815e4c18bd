"""The command that reproduces the shipped model, on a tiny field, and the shipped model."""

from __future__ import annotations

import dataclasses
import json

import pytest

from radioseg_utils import pretrain
from radioseg_utils.modelio import load_model


def test_train_default_model_writes_model_sidecar_and_manifest(tmp_path):
    settings = dataclasses.replace(pretrain.PretrainSettings(), train_size=512, test_size=256,
                                   tile_size=64, seed=5)
    config = pretrain.DEFAULT_CONFIG.replace(epochs=1, base_filters=4, tile_size=64)
    manifest = pretrain.train_default_model(settings=settings, config=config,
                                            work_dir=tmp_path / "work", out_dir=tmp_path / "out")
    model, meta = load_model(tmp_path / "out" / "unet_B1.keras", expect_band="B1",
                             expect_normalisation="noise")
    assert meta["seed"] == 5 and meta["params"]["base_filters"] == 4
    saved = json.loads((tmp_path / "out" / "MANIFEST.json").read_text())
    assert saved["fields"]["train"]["seed"] != saved["fields"]["test"]["seed"]
    assert saved["fields"]["train"]["centre"] != saved["fields"]["test"]["centre"]
    scores = manifest["held_out_scores"]
    assert scores["field"] == "test (held out)"
    assert 0.0 <= scores["unet"]["pixel_f1"] <= 1.0 and scores["peaks"]["detections"] > 0
    assert 0.0 < scores["raw_image_best_threshold_pixel_f1"] <= 1.0


def test_shipped_model_manifest_matches_the_model():
    """The manifest beside the shipped model records its data, seeds, versions and scores."""
    manifest = json.loads((pretrain.PRETRAINED_DIR / "MANIFEST.json").read_text())
    _, meta = load_model(pretrain.PRETRAINED_DIR / manifest["model"])
    assert manifest["sidecar"]["saved_utc"] == meta["saved_utc"]
    assert manifest["settings"]["seed"] == meta["seed"] == pretrain.PretrainSettings().seed
    assert meta["versions"]["tensorflow"] and meta["versions"]["keras"]
    scores = manifest["held_out_scores"]
    # scored on held-out data only: better than any single threshold of the raw image
    assert scores["unet"]["pixel_f1"] > scores["raw_image_best_threshold_pixel_f1"]


@pytest.mark.parametrize("key", ["fields", "dataset", "config", "training_log"])
def test_shipped_manifest_is_complete(key):
    manifest = json.loads((pretrain.PRETRAINED_DIR / "MANIFEST.json").read_text())
    assert manifest[key]
