"""Tests of radioseg_utils.inference.tiling: tiled prediction equals untiled prediction, no seams."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from radioseg_utils.inference.tiling import predict_tiled, tile_weights


def blur_model(batch: np.ndarray) -> np.ndarray:
    """A fully convolutional 'model': Gaussian blur (support 6 px) with zero padding."""
    return ndimage.gaussian_filter(batch, sigma=(0, 1.5, 1.5, 0), mode="constant", truncate=4.0)


@pytest.fixture
def image(rng) -> np.ndarray:
    return rng.normal(0.0, 1.0, (150, 230)).astype(np.float32)


def test_profiles_partition_unity():
    left = tile_weights(64, 32, taper_start=False, taper_end=True)
    right = tile_weights(64, 32, taper_start=True, taper_end=False)
    assert np.allclose(left[32:] + right[:32], 1.0)
    assert left[-8:].max() == 0.0 and right[:8].max() == 0.0 and left[0] == 1.0


def test_tiled_equals_untiled_numpy_model(image):
    full = blur_model(image[None, :, :, None])[0, :, :, 0]
    tiled = predict_tiled(blur_model, image, tile=64, overlap=32, batch_size=3, progress=False)
    assert tiled.dtype == np.float32 and tiled.shape == image.shape
    assert np.abs(tiled - full).max() < 1e-5
    # without blending (no overlap) the tile borders show: the test can fail
    seamy = predict_tiled(blur_model, image, tile=64, overlap=0, progress=False)
    assert np.abs(seamy - full).max() > 0.1


def test_nan_regions_and_memmap_output(image, tmp_path):
    img = image.copy()
    img[10:40, 100:160] = np.nan
    out = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.float32, shape=img.shape)
    res = predict_tiled(blur_model, img, tile=64, overlap=32, out=out, progress=False)
    assert res is out
    assert np.all(res[10:40, 100:160] == 0) and np.isfinite(res).all()
    expected = blur_model(np.nan_to_num(img)[None, :, :, None])[0, :, :, 0]
    far = np.ones(img.shape, bool)
    far[10:40, 100:160] = False
    assert np.abs(res - expected)[far].max() < 1e-5


def test_small_image_padded_and_normalise(rng):
    img = rng.normal(5.0, 1.0, (20, 30))
    res = predict_tiled(lambda b: b * 0 + 0.25, img, tile=64, overlap=16, progress=False)
    assert res.shape == (20, 30) and np.allclose(res, 0.25)
    seen = []
    predict_tiled(lambda b: b, img, tile=16, overlap=4, normalise=lambda t: seen.append(t.shape) or t - 5,
                  progress=False)
    assert all(s[0] <= 16 and s[1] <= 16 for s in seen) and len(seen) == 2 * 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"tile": 32, "overlap": 32}, "overlap < tile"), ({"batch_size": 0}, "batch_size"),
     ({"out": np.zeros((3, 3))}, "out has shape")],
)
def test_bad_arguments(image, kwargs, match):
    with pytest.raises(ValueError, match=match):
        predict_tiled(blur_model, image, progress=False, **kwargs)


def test_model_output_shape_checked(image):
    with pytest.raises(ValueError, match="model returned shape"):
        predict_tiled(lambda b: b[..., 0], image, tile=64, overlap=8, progress=False)


def test_tiny_keras_unet_tiled_equals_untiled(rng):
    keras = pytest.importorskip("keras")
    from radioseg_utils.model.architectures import build_unet

    keras.utils.set_random_seed(7)
    model = build_unet(depth=2, base_filters=4, batch_norm=False, dropout=0.0)
    img = rng.normal(0.0, 1.0, (160, 160)).astype(np.float32)
    full = model.predict_on_batch(img[None, :, :, None])[0, :, :, 0]
    # tile starts 0, 48, 64: multiples of 2**depth keep the pooling grid aligned
    tiled = predict_tiled(model, img, tile=96, overlap=48, progress=False)
    assert np.abs(tiled - full).max() < 2e-3
    seamy = predict_tiled(model, img, tile=96, overlap=0, progress=False)
    assert np.abs(seamy - full).max() > 0.05


def test_multichannel_model_gives_one_map_per_channel(image):
    def two(batch):
        return np.concatenate([blur_model(batch), 2 * batch], axis=-1)

    maps = predict_tiled(two, image, tile=64, overlap=32, progress=False)
    assert maps.shape == image.shape + (2,)
    assert np.array_equal(maps[..., 0], predict_tiled(blur_model, image, tile=64, overlap=32,
                                                      progress=False))
    assert np.allclose(maps[..., 1], 2 * image, atol=1e-5)  # weights sum to 1 everywhere
    with pytest.raises(ValueError, match="2 output channels"):
        predict_tiled(two, image, tile=64, overlap=32, out=np.zeros(image.shape), progress=False)


def test_every_model_call_gets_one_batch_shape_so_compiling_backends_compile_once():
    shapes = []

    def model(batch):
        shapes.append(batch.shape)
        return batch * 2.0

    image = np.random.default_rng(3).normal(size=(150, 170)).astype(np.float32)
    out = predict_tiled(model, image, tile=64, overlap=16, batch_size=4, progress=False)
    assert len(shapes) > 1 and set(shapes) == {(4, 64, 64, 1)}
    np.testing.assert_allclose(np.squeeze(out), 2.0 * image, rtol=1e-5, atol=1e-5)
