"""Tests of radioseg_utils.model.architectures (U-Net, CAE, VAE, padding) and radioseg_utils.model.losses."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from radioseg_utils.model.architectures import (
    Sampling,
    build_cae,
    build_unet,
    build_vae,
    size_multiple,
)
from radioseg_utils.model.config import LOSSES
from radioseg_utils.model.losses import (
    FOCAL_ALPHA,
    FOCAL_GAMMA,
    BCEDiceLoss,
    DiceLoss,
    PixelScore,
    get_loss,
    keras_pixel_scores,
)
from radioseg_utils.model.shapes import check_input_size


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(7)


# --------------------------------------------------------------------------- U-Net
@pytest.mark.parametrize(("depth", "shape"), [(4, (64, 64)), (4, (128, 128)), (3, (96, 96)),
                                              (3, (48, 80)), (2, (36, 36))])
def test_unet_output_shape_equals_input_shape(depth, shape):
    model = build_unet(depth=depth, base_filters=4)
    image = np.random.default_rng(1).normal(size=(2, *shape, 1)).astype(np.float32)
    prob = model.predict(image, verbose=0)
    assert prob.shape == image.shape
    assert prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0


def test_unet_structure_and_parameter_count():
    # depth 1, 2 filters, no batch norm: parameters counted by hand
    # enc0 (1->2, 2->2) 20 + 38; bottleneck (2->4, 4->4) 76 + 148; up 2x2x4x2+2 = 34;
    # dec0 after concatenation (4->2, 2->2) 74 + 38; 1x1 head 3.
    model = build_unet(depth=1, base_filters=2, batch_norm=False, dropout=0.0)
    assert model.count_params() == 20 + 38 + 76 + 148 + 34 + 74 + 38 + 3
    default = build_unet()
    kinds = [type(layer).__name__ for layer in default.layers]
    assert kinds.count("Concatenate") == 4
    assert kinds.count("Conv2DTranspose") == 4
    assert kinds.count("MaxPooling2D") == 4
    assert "Dense" not in kinds
    assert default.input_shape == (None, None, None, 1)
    assert size_multiple(default) == 16


def test_unet_output_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_unet(depth=2, base_filters=4)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("enc0_conv1").compute_dtype == "float16"
    assert model.output.dtype == "float32"


@pytest.mark.parametrize(("options", "match"), [
    ({"depth": 0}, "depth must be a positive integer"),
    ({"base_filters": 2.5}, "base_filters must be a positive integer"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
])
def test_unet_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        build_unet(**options)


# --------------------------------------------------------------------------- input size
def test_check_input_size_names_the_problem():
    check_input_size((8, 64, 64, 1), multiple=16)
    with pytest.raises(ValueError, match=r"train_data: cutouts of 100x100 px are not multiples "
                                         r"of 16 px"):
        check_input_size((8, 100, 100, 1), multiple=16, what="train_data")
    with pytest.raises(ValueError, match="cutouts are 64x64 px but the model takes 60x60 px"):
        check_input_size((64, 64, 1), size=60)




# --------------------------------------------------------------------------- CAE / VAE
@pytest.mark.slow
def test_cae_pads_60_to_64_and_crops_back_and_trains_one_step():
    model = build_cae(60, depth=3, base_filters=4)
    assert model.input_shape == (None, 60, 60, 1)
    assert model.output_shape == (None, 60, 60, 1)
    assert model.get_layer("pad").padding == ((2, 2), (2, 2))
    assert model.get_layer("crop").cropping == ((2, 2), (2, 2))
    assert "Concatenate" not in [type(layer).__name__ for layer in model.layers]
    model.compile(optimizer="adam", loss=get_loss("bce"))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 60, 60, 1)).astype(np.float32)
    y = (x > 1).astype(np.float32)
    loss = model.train_on_batch(x, y)
    assert math.isfinite(float(loss)) and 0.1 < float(loss) < 5
    assert model.predict(x, verbose=0).shape == (2, 60, 60, 1)
    assert [type(layer).__name__ for layer in build_cae(64, depth=3).layers].count(
        "ZeroPadding2D") == 0


def test_sampling_adds_the_kl_term():
    layer = Sampling(kl_weight=2.0, n_pixels=4, seed=0)
    mean = np.ones((1, 2), np.float32)
    log_var = np.zeros((1, 2), np.float32)
    z = layer([mean, log_var], training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(z), mean)
    # KL(N(1, 1) || N(0, 1)) = 0.5 * sum(mean**2) = 1 per sample; * 2 / 4 pixels = 0.5
    assert [float(v) for v in layer.losses] == pytest.approx([0.5])
    noisy = keras.ops.convert_to_numpy(layer([mean, log_var], training=True))
    assert not np.allclose(noisy, mean)


def test_vae_builds_trains_one_step_decodes_and_reloads(tmp_path):
    model = build_vae(16, latent_dim=4, base_filters=4, seed=1)
    assert model.output_shape == (None, 16, 16, 1)
    decoder = model.get_layer("decoder")
    assert decoder.input_shape == (None, 4)
    model.compile(optimizer="adam", loss=get_loss("bce"))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 16, 16, 1)).astype(np.float32)
    y = (x > 1).astype(np.float32)
    assert math.isfinite(float(model.train_on_batch(x, y)))
    assert len(model.losses) == 1  # the KL term
    decoded = decoder.predict(rng.normal(size=(3, 4)).astype(np.float32), verbose=0)
    assert decoded.shape == (3, 16, 16, 1)
    assert 0.0 <= decoded.min() and decoded.max() <= 1.0
    first = model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, model.predict(x, verbose=0))  # z = mean at inference
    model.save(tmp_path / "vae.keras")
    again = keras.saving.load_model(tmp_path / "vae.keras")
    np.testing.assert_array_equal(again.predict(x, verbose=0), first)


def test_vae_rejects_sizes_not_multiple_of_the_strides():
    with pytest.raises(ValueError, match="VAE input_size 18 px is not a multiple of 2"):
        build_vae(18, depth=2)


# --------------------------------------------------------------------------- losses
# Two source and two background pixels with hand-picked probabilities.
TRUTH = np.array([1, 1, 0, 0], np.float32).reshape(1, 2, 2, 1)
PROB = np.array([0.9, 0.4, 0.6, 0.1], np.float32).reshape(1, 2, 2, 1)
# BCE: -(ln .9 + ln .4 + ln .4 + ln .9) / 4
BCE = -(math.log(0.9) + math.log(0.4)) / 2
# Dice: 1 - (2 * (0.9 + 0.4) + 1) / (2 + 2 + 1)
DICE = 1 - 3.6 / 5


def _focal_numpy(t, p, alpha, gamma):
    pt = np.where(t == 1, p, 1 - p)
    weight = np.where(t == 1, alpha, 1 - alpha)
    return float(np.mean(-weight * (1 - pt) ** gamma * np.log(pt)))


@pytest.mark.parametrize(("name", "expected"), [
    ("bce", BCE),
    ("dice", DICE),
    ("bce_dice", BCE + DICE),
    ("focal", _focal_numpy(TRUTH, PROB, FOCAL_ALPHA, FOCAL_GAMMA)),
])
def test_losses_match_hand_computed_values(name, expected):
    assert float(get_loss(name)(TRUTH, PROB)) == pytest.approx(expected, rel=1e-5)


def test_focal_loss_hand_value():
    # 0.25*.01*-ln.9 + 0.25*.36*-ln.4 + 0.75*.36*-ln.4 + 0.75*.01*-ln.9, over 4 pixels
    assert _focal_numpy(TRUTH, PROB, 0.25, 2.0) == pytest.approx(0.0827296, rel=1e-5)
    assert float(get_loss("focal", alpha=0.5, gamma=0.0)(TRUTH, PROB)) == pytest.approx(
        BCE / 2, rel=1e-5)


def test_dice_loss_is_per_cutout_mean():
    truth = np.ones((2, 2, 2, 1), np.float32)
    prob = np.stack([np.ones((2, 2, 1)), np.zeros((2, 2, 1))]).astype(np.float32)
    # cutout 1 perfect: loss 0; cutout 2 empty prediction: 1 - 1 / (4 + 1) = 0.8
    assert float(DiceLoss()(truth, prob)) == pytest.approx(0.4)
    empty = np.zeros((1, 2, 2, 1), np.float32)
    assert float(DiceLoss()(empty, empty)) == 0.0


def test_losses_serialise_with_their_options():
    loss = BCEDiceLoss(bce_weight=2.0, dice_weight=3.0, smooth=0.5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, BCEDiceLoss)
    assert (again.bce_weight, again.dice_weight, again.smooth) == (2.0, 3.0, 0.5)
    assert float(again(TRUTH, PROB)) == pytest.approx(2 * BCE + 3 * (1 - 3.1 / 4.5), rel=1e-5)


def test_get_loss_unknown_name():
    assert LOSSES == ("bce", "dice", "focal", "bce_dice")
    with pytest.raises(ValueError, match="unknown loss 'l2': expected one of bce, dice"):
        get_loss("l2")


def test_pixel_scores_accumulate_over_batches():
    metrics = {m.name: m for m in keras_pixel_scores()} | {"f1": PixelScore("f1")}
    # batch 1: TP at .9, FN at .4, FP at .6, TN at .1; batch 2: TP at exactly 0.5
    for metric in metrics.values():
        metric.update_state(TRUTH, PROB)
        metric.update_state(np.ones((1, 1, 1, 1)), np.full((1, 1, 1, 1), 0.5))
    tp, fp, fn = 2, 1, 1
    expected = {"iou": tp / (tp + fp + fn), "precision": tp / (tp + fp),
                "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}
    assert {k: float(m.result()) for k, m in metrics.items()} == pytest.approx(expected)
    metrics["iou"].reset_state()
    assert float(metrics["iou"].result()) == 0.0  # no pixels: 0, not NaN
    with pytest.raises(ValueError, match="unknown pixel score 'dice'"):
        PixelScore("dice")
