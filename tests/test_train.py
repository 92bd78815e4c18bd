"""Tests of radioseg_utils.model.train, trainconfig and modelio: training, resume, save/load."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from radioseg_utils.cli import main
from radioseg_utils.data.loader import ArrayLoader
from radioseg_utils.model.architectures import build_cae, build_unet
from radioseg_utils.model.config import TRAIN_PROFILES, TrainConfig, get_profile
from radioseg_utils.model.files import (
    ModelMismatchError,
    load_model,
    save_model,
    sidecar_path,
)
from radioseg_utils.model.losses import get_loss
from radioseg_utils.model.train import (
    TimeBudget,
    build_model,
    effective_batch_size,
    gpu_available,
    init_weights_file,
    train_model,
    warm_start,
)


@pytest.fixture
def eager():
    """Run Keras train/test steps eagerly: tracing costs more than tiny models compute.

    Tests without this fixture exercise the normal graph mode.
    """
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


#: A tiny, fast configuration for 32 x 32 cutouts.
TINY = TrainConfig(depth=2, base_filters=4, dropout=0.0, epochs=2, batch_size=4,
                   tile_size=32, patience=5, tensorboard=False, seed=3)


def _pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images with one bright square source each, and the source masks."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.3, size=(n, size, size, 1)).astype(np.float32)
    masks = np.zeros_like(images)
    for i in range(n):
        y, x = rng.integers(2, size - 10, size=2)
        masks[i, y:y + 8, x:x + 8] = 1.0
    return images + 2.0 * masks, masks


@pytest.fixture
def pairs():
    return _pairs(8, 32, seed=11)


def _csv_epochs(path) -> list[int]:
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


class _InterruptAfter(keras.callbacks.Callback):
    """Raise KeyboardInterrupt at the end of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_tiny_unet_overfits_four_pairs():
    keras.utils.set_random_seed(0)
    x, y = _pairs(4, 32, seed=5)
    model = build_unet(depth=2, base_filters=8, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=get_loss("bce"))
    history = model.fit(x, y, batch_size=4, epochs=30, verbose=0).history["loss"]
    assert history[-1] < history[0] / 5, (history[0], history[-1])


@pytest.mark.slow
def test_train_model_writes_checkpoints_logs_and_a_loadable_model(tmp_path, pairs):
    x, y = pairs
    result = train_model(TINY.replace(tensorboard=True), (x[:6], y[:6]), (x[6:], y[6:]),
                         out_dir=tmp_path, progress=False)
    assert (result.epochs_done, result.initial_epoch, result.stopped_early) == (2, 0, False)
    assert result.batch_size == effective_batch_size(TINY)
    for name in ("checkpoint.keras", "checkpoint.json", "best.weights.h5", "log.csv",
                 "model.keras", "model.json"):
        assert (tmp_path / name).is_file(), name
    for split in ("train", "validation"):
        assert list((tmp_path / "tensorboard" / split).glob("events.out.tfevents.*")), split
    assert _csv_epochs(tmp_path / "log.csv") == [0, 1]
    assert len(result.history["val_loss"]) == 2
    assert result.best_epoch == int(np.argmin(result.history["val_loss"]))
    assert result.scores["val_loss"] == min(result.history["val_loss"])
    assert set(result.scores) >= {"loss", "iou", "precision", "recall", "val_iou"}
    assert result.history["learning_rate"] == pytest.approx([1e-3, 1e-3])

    meta = json.loads((tmp_path / "model.json").read_text())
    assert (meta["model"], meta["band"], meta["normalisation"], meta["tile_size"]) == (
        "unet", "B1", "minmax", 32)
    assert meta["params"] == {"depth": 2, "base_filters": 4, "batch_norm": True,
                              "dropout": 0.0}
    assert meta["input_shape"] == [None, None, 1]
    assert meta["versions"]["keras"] == keras.__version__
    assert meta["scores"]["val_loss"] == pytest.approx(result.scores["val_loss"])

    model, loaded_meta = load_model(result.model_path, expect_band="560",
                                    expect_normalisation="minmax", expect_input=(48, 48, 1))
    assert loaded_meta == meta
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  result.model.predict(x, verbose=0))


@pytest.mark.slow
def test_resume_continues_from_the_saved_epoch(eager, tmp_path, pairs):
    x, y = pairs
    config = TINY.replace(epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train_model(config, (x, y), out_dir=tmp_path, progress=False,
                    callbacks=[_InterruptAfter(1)])
    state = json.loads((tmp_path / "checkpoint.json").read_text())
    assert state["epochs_done"] == 2
    first_losses = state["history"]["loss"]
    assert _csv_epochs(tmp_path / "log.csv") == [0, 1]

    result = train_model(config, (x, y), out_dir=tmp_path, progress=False)
    assert (result.initial_epoch, result.epochs_done) == (2, 3)
    assert result.history["loss"][:2] == first_losses
    assert _csv_epochs(tmp_path / "log.csv") == [0, 1, 2]
    # the optimizer state came back: 3 epochs of 2 batches of 4 cutouts
    assert int(result.model.optimizer.iterations.numpy()) == 6

    again = train_model(config.replace(epochs=3), (x, y), out_dir=tmp_path, progress=False)
    assert (again.initial_epoch, again.epochs_done) == (3, 3)  # nothing left to do
    fresh = train_model(config.replace(epochs=1), (x, y), out_dir=tmp_path, resume=False,
                        progress=False)
    assert (fresh.initial_epoch, fresh.epochs_done) == (0, 1)
    assert _csv_epochs(tmp_path / "log.csv") == [0]


def test_time_budget_stops_before_an_epoch_that_would_not_fit():
    now = [0.0]
    budget = TimeBudget(100.0, clock=lambda: now[0])
    budget.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    budget.model.stop_training = False
    budget.on_train_begin()
    for epoch, length in enumerate([30.0, 30.0]):  # 30 + 30 + (next 30) <= 100
        budget.on_epoch_begin(epoch)
        now[0] += length
        budget.on_epoch_end(epoch)
        assert not budget.model.stop_training
    budget.on_epoch_begin(2)
    now[0] += 35.0  # the longest epoch so far decides: 95 + 35 > 100
    budget.on_epoch_end(2)
    assert budget.model.stop_training and budget.exhausted
    with pytest.raises(ValueError, match="time budget"):
        TimeBudget(0)


def test_a_run_stopped_by_its_time_budget_is_finished_not_resumed(eager, tmp_path, pairs):
    x, y = pairs
    config = TINY.replace(epochs=5)
    result = train_model(config, (x, y), out_dir=tmp_path, progress=False, time_budget=1e-6)
    assert result.epochs_done == 1
    sidecar = json.loads(sidecar_path(result.model_path).read_text())
    assert sidecar["stopped_by_time_budget"] and sidecar["epochs_done"] == 1
    assert sidecar["backend"] == keras.backend.backend()
    again = train_model(config, (x, y), out_dir=tmp_path, progress=False)
    assert (again.initial_epoch, again.epochs_done) == (1, 1)


def test_cosine_schedule(eager, tmp_path, pairs):
    x, y = pairs
    config = TINY.replace(lr_schedule="cosine", epochs=3, learning_rate=0.01)
    result = train_model(config, (x, y), out_dir=tmp_path, progress=False)
    # 0.5 * lr0 * (1 + cos(pi * epoch / epochs)) for epochs 0, 1, 2
    expected = [0.01, 0.005 * (1 + np.cos(np.pi / 3)), 0.005 * (1 + np.cos(2 * np.pi / 3))]
    assert result.history["learning_rate"] == pytest.approx(expected, rel=1e-6)


def test_resume_refuses_a_changed_config(eager, tmp_path, pairs):
    x, y = pairs
    train_model(TINY.replace(epochs=1), (x, y), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"another config \(loss: 'bce_dice' -> 'dice'\)"):
        train_model(TINY.replace(loss="dice"), (x, y), out_dir=tmp_path, progress=False)


@pytest.fixture
def trained_tiny(tmp_path, pairs):
    """A TINY model trained one epoch: the weights a warm start begins from."""
    x, y = pairs
    return train_model(TINY.replace(epochs=1), (x, y), out_dir=tmp_path / "first",
                       progress=False).model_path


def test_warm_start_copies_the_weights_and_returns_the_file_hash(trained_tiny):
    import hashlib

    source, _ = load_model(trained_tiny)
    config = TINY.replace(init_weights=str(trained_tiny))
    model = build_model(config)
    assert any(not np.array_equal(a, b) for a, b in zip(model.get_weights(), source.get_weights()))
    digest = warm_start(model, config)
    assert digest == hashlib.sha256(trained_tiny.read_bytes()).hexdigest()
    for a, b in zip(model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["unet_centre", "vae"])
def test_read_keras_file_gives_the_model_keras_loads(tmp_path, kind):
    """Same config (initialisers included), weights, outputs and compiled loss."""
    from radioseg_utils.model.architectures import build_vae
    from radioseg_utils.model.files import read_keras_file
    from radioseg_utils.model.losses import MaskCentreLoss

    if kind == "vae":
        model, loss, x = build_vae(), get_loss("bce"), np.zeros((2, 16, 16, 1), np.float32)
    else:
        model = build_unet(depth=2, base_filters=4, centre_head=True)
        loss, x = MaskCentreLoss("bce_dice", 2.0, pair_beta=1.0), np.zeros((2, 16, 16, 1), np.float32)
    x[:, 6:9, 6:9] = 3.0
    model.compile(optimizer="adam", loss=loss)
    model.optimizer.build(model.trainable_variables)  # a checkpoint holds the Adam moments
    model.save(tmp_path / "m.keras")
    reference = keras.saving.load_model(tmp_path / "m.keras")
    for compile in (True, False):
        got = read_keras_file(tmp_path / "m.keras", compile=compile)
        assert json.dumps(got.get_config(), sort_keys=True) == json.dumps(
            reference.get_config(), sort_keys=True)
        for a, b in zip(got.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        if kind == "unet_centre":  # the VAE samples its latent: outputs differ run to run
            np.testing.assert_array_equal(got.predict(x, verbose=0), reference.predict(x, verbose=0))
        assert got.compiled is compile
    assert got.layers[1].kernel_initializer.get_config() == (
        reference.layers[1].kernel_initializer.get_config())
    if kind == "unet_centre":
        assert read_keras_file(tmp_path / "m.keras").loss.pair_beta == 1.0


def test_warm_start_refuses_another_architecture_or_a_missing_file(trained_tiny, tmp_path):
    other = TINY.replace(base_filters=8, init_weights=str(trained_tiny))
    with pytest.raises(ValueError, match=r"another architecture: base_filters 4 \(config: 8\)"):
        warm_start(build_model(other), other)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        init_weights_file(str(tmp_path / "nothing.keras"))
    bare = tmp_path / "bare.keras"
    bare.write_bytes(trained_tiny.read_bytes())
    with pytest.raises(FileNotFoundError, match="sidecar bare.json is missing"):
        warm_start(build_model(TINY), TINY.replace(init_weights=str(bare)))


def test_init_weights_names_a_shipped_model():
    from radioseg_utils.core.paths import PRETRAINED_DIR

    assert init_weights_file("unet_B1.keras") == PRETRAINED_DIR / "unet_B1.keras"


def test_training_from_init_weights_starts_at_them_and_records_their_file(
        eager, trained_tiny, tmp_path, pairs):
    x, y = pairs
    source, _ = load_model(trained_tiny)
    # a learning rate so small that one epoch leaves the kernels where the warm start put them
    config = TINY.replace(epochs=1, learning_rate=1e-12, init_weights=str(trained_tiny))
    result = train_model(config, (x, y), out_dir=tmp_path / "continued", progress=False)
    kernels = [w.name for w in source.weights if w.name == "kernel"]
    assert kernels
    for mine, theirs in zip(result.model.weights, source.weights, strict=True):
        if mine.name == "kernel":
            np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), atol=1e-8)
    sidecar = json.loads(sidecar_path(result.model_path).read_text())
    assert sidecar["config"]["init_weights"] == str(trained_tiny)
    assert len(sidecar["init_weights_sha256"]) == 64
    cold = train_model(TINY.replace(epochs=1, learning_rate=1e-12), (x, y),
                       out_dir=tmp_path / "cold", progress=False)
    assert "init_weights_sha256" not in json.loads(sidecar_path(cold.model_path).read_text())
    assert not all(np.allclose(np.asarray(a), np.asarray(b)) for a, b in
                   zip(cold.model.weights, source.weights) if a.name == "kernel")


def test_a_checkpoint_from_before_init_weights_still_resumes(eager, tmp_path, pairs):
    x, y = pairs
    train_model(TINY.replace(epochs=1), (x, y), out_dir=tmp_path, progress=False)
    path = tmp_path / "checkpoint.json"
    state = json.loads(path.read_text())
    del state["config"]["init_weights"]  # as written before the field existed
    path.write_text(json.dumps(state))
    result = train_model(TINY, (x, y), out_dir=tmp_path, progress=False)
    assert (result.initial_epoch, result.epochs_done) == (1, 2)
    state["config"]["init_weights"] = "other.keras"  # but a real change is refused
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="init_weights: 'other.keras' -> ''"):
        train_model(TINY.replace(epochs=3), (x, y), out_dir=tmp_path, progress=False)


def test_mixed_precision_trains_saves_and_resumes(eager, tmp_path, pairs):
    x, y = pairs
    config = TINY.replace(mixed_precision="on", epochs=1)
    result = train_model(config, (x, y), out_dir=tmp_path, progress=False)
    assert result.mixed_precision
    assert result.model.get_layer("enc0_conv1").compute_dtype == "float16"
    assert keras.config.dtype_policy().name == "float32"  # global policy restored
    model, meta = load_model(result.model_path)
    assert meta["dtype_policy"] == "mixed_float16"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x, training=False)),
                                  keras.ops.convert_to_numpy(result.model(x, training=False)))
    resumed = train_model(config.replace(epochs=2), (x, y), out_dir=tmp_path, progress=False)
    assert (resumed.initial_epoch, resumed.epochs_done) == (1, 2)


@pytest.mark.parametrize(("kind", "size"), [("cae", 60), ("vae", 16)])
def test_autoencoders_train_through_train_model(eager, tmp_path, kind, size):
    x, y = _pairs(4, size, seed=2)
    config = TINY.replace(model=kind, tile_size=size, epochs=1, latent_dim=4)
    result = train_model(config, (x, y), (x, y), out_dir=tmp_path, progress=False)
    assert result.model.output_shape == (None, size, size, 1)
    assert np.isfinite(result.history["val_loss"]).all()
    with pytest.raises(ModelMismatchError, match=f"model takes {size}x{size} px cutouts, "
                                                 f"data is 64x64 px"):
        load_model(result.model_path, expect_input=64)


@pytest.mark.parametrize(("data", "config", "match"), [
    (_pairs(2, 30, 0), TINY, "not multiples of 4 px"),
    (_pairs(2, 36, 0), TINY, "cutouts are 36x36 px but TrainConfig.tile_size is 32"),
    ((np.full((2, 32, 32), np.nan), np.zeros((2, 32, 32))), TINY, "images contain NaN"),
    ((np.zeros((2, 32, 32)), np.full((2, 32, 32), 2.0)), TINY, r"mask values must lie in"),
    ((np.zeros((2, 32, 32)), np.zeros((3, 32, 32))), TINY, "with the same N, H, W"),
    (_pairs(2, 64, 0), TINY.replace(model="cae", tile_size=60), "64x64 px but the model "
                                                                "takes 60x60"),
])
def test_train_model_rejects_bad_data(tmp_path, data, config, match):
    with pytest.raises(ValueError, match=match):
        train_model(config, data, out_dir=tmp_path, progress=False)


def test_train_model_rejects_other_inputs(tmp_path):
    with pytest.raises(TypeError, match="train_data: expected a keras.utils.PyDataset"):
        train_model(TINY, np.zeros((2, 32, 32)), out_dir=tmp_path, progress=False)


def test_train_model_accepts_a_loader(eager, tmp_path, pairs):
    x, y = pairs
    loader = ArrayLoader(x, y, batch_size=4, shuffle=False)
    result = train_model(TINY.replace(epochs=1), loader, loader, out_dir=tmp_path, progress=False)
    assert result.epochs_done == 1
    assert 0.0 <= result.scores["val_iou"] <= 1.0


# --------------------------------------------------------------------------- config
def test_profiles():
    quick, full = TRAIN_PROFILES["quick"], TRAIN_PROFILES["full"]
    assert (quick.depth, quick.base_filters, quick.mixed_precision) == (3, 8, "off")
    assert (full.depth, full.base_filters, full.mixed_precision) == (4, 16, "auto")
    assert full.gpu_batch_size > quick.gpu_batch_size
    assert get_profile("quick", epochs=1).epochs == 1
    assert TrainConfig(model="cae").tile_size == 60
    assert TrainConfig(model="vae").tile_size == 16
    assert TrainConfig(band="1400").band == "B2"
    expected = TINY.gpu_batch_size if gpu_available() else TINY.batch_size
    assert effective_batch_size(TINY) == expected


@pytest.mark.parametrize(("changes", "match"), [
    ({"model": "resnet"}, r"TrainConfig.model='resnet': expected one of unet, cae, vae"),
    ({"loss": "l1"}, "TrainConfig.loss='l1'"),
    ({"epochs": 0}, "TrainConfig.epochs must be a positive integer"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"integration": 50}, "TrainConfig.integration=50 h"),
    ({"band": "B9"}, "unknown band 'B9'"),
    ({"tile_size": 30}, r"TrainConfig.tile_size: cutouts of 30x30 px are not multiples of 4"),
    ({"centre_pair_beta": 1.0}, "centre_pair_beta needs centre_head"),
    ({"centre_pair_beta": 0.0, "centre_head": True}, "centre_pair_beta needs centre_head"),
])
def test_train_config_rejects_bad_values(changes, match):
    with pytest.raises(ValueError, match=match):
        TINY.replace(**changes)


def test_get_profile_unknown():
    with pytest.raises(ValueError, match="unknown training profile 'huge'"):
        get_profile("huge")


# --------------------------------------------------------------------------- save / load
def test_save_load_sidecar_and_mismatch_errors(tmp_path):
    model = build_unet(depth=2, base_filters=4)
    path = save_model(model, tmp_path / "unet", metadata={"band": 560.0,
                                                          "normalisation": "minmax",
                                                          "integration": 1000})
    assert path == tmp_path / "unet.keras"
    meta = json.loads(sidecar_path(path).read_text())
    assert (meta["format"], meta["band"], meta["integration"]) == ("radioseg-model/1", "B1",
                                                                   1000)
    with pytest.raises(ModelMismatchError, match="trained on band B1, data is band B2"):
        load_model(path, expect_band="B2")
    with pytest.raises(ModelMismatchError,
                       match="trained on 'minmax'-normalised input, data is 'noise'-normalised"):
        load_model(path, expect_normalisation="noise")
    with pytest.raises(ModelMismatchError, match="model takes 1 channel"):
        load_model(path, expect_input=(64, 64, 3))
    loaded, _ = load_model(path, expect_band="B1", expect_input=100)  # U-Net: any size
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_cae_sidecar_input_size(tmp_path):
    path = save_model(build_cae(60, depth=2, base_filters=2), tmp_path / "cae.keras",
                      metadata={"band": "B1", "normalisation": "noise"})
    with pytest.raises(ModelMismatchError, match="model takes 60x60 px cutouts, data is "
                                                 "16x16 px"):
        load_model(path, expect_input=(16, 16))


def test_save_and_load_errors(tmp_path):
    model = build_unet(depth=1, base_filters=2)
    with pytest.raises(ValueError, match="metadata must give the normalisation"):
        save_model(model, tmp_path / "m.keras", metadata={"band": "B1"})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        save_model(model, tmp_path / "m.keras",
                   metadata={"band": "B1", "normalisation": "log", "x": object()})
    with pytest.raises(FileNotFoundError, match="model file .*absent.keras not found"):
        load_model(tmp_path / "absent.keras")
    path = save_model(model, tmp_path / "m.keras", metadata={"band": "B1",
                                                             "normalisation": "log"})
    sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="model sidecar .*m.json not found"):
        load_model(path)


@pytest.mark.slow
def test_cli_train_on_dataset_shards_and_resume(tmp_path, capsys):
    from test_masks import (
        point_sources,  # tests/ is on sys.path (pytest rootdir insertion)
    )

    from radioseg_utils.data.shards import build_dataset
    from radioseg_utils.io.wcs import sdc1_wcs
    from radioseg_utils.simulation.sources import add_stamp, source_stamps

    rng = np.random.default_rng(8)
    shape, noise = (128, 192), 1e-7
    wcs = sdc1_wcs("B2", shape)
    truth = point_sources(wcs, rng.uniform(0, shape[1], 40), rng.uniform(0, shape[0], 40),
                          rng.uniform(10, 200, 40) * noise)
    image = rng.normal(0.0, noise, shape).astype(np.float32)
    for stamp in source_stamps(truth, wcs, "B2", shape=shape):
        add_stamp(image, stamp)
    shards = tmp_path / "shards"
    build_dataset(image, truth, wcs, "B2", out_dir=shards, size=32, noise=noise, seed=1,
                  block=64, integration=100)
    out = tmp_path / "run"
    args = ["train", "--data", str(shards), "--out", str(out), "--epochs", "1",
            "--normalisation", "noise", "--loss", "dice"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out / "model.keras")
    meta = json.loads((out / "model.json").read_text())
    assert (meta["band"], meta["integration"], meta["normalisation"], meta["tile_size"],
            meta["training_set"], meta["loss"], meta["config"]["profile"]) == (
        "B2", 100, "noise", 32, "shards", "dice", "quick")
    args[args.index("--epochs") + 1] = "2"  # resumes after epoch 1
    assert main(args) == 0
    assert _csv_epochs(out / "log.csv") == [0, 1]


def test_cli_train_reports_a_missing_data_folder(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    assert "dataset shard folder" in capsys.readouterr().err
