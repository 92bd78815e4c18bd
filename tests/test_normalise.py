"""Tests of radioseg_utils.data.normalise: exact answers on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from radioseg_utils.data import normalise as nm

SMALL = np.array([[0.0, 1.0], [2.0, 4.0]])


def test_names_match_registry():
    assert nm.NORMALISATIONS == ("minmax", "log", "histeq", "asinh", "noise")
    assert set(nm.NOISE_METHODS) <= set(nm.NORMALISATIONS)


def test_minmax_exact():
    out = nm.normalise(SMALL, "minmax")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.25], [0.5, 1.0]])


def test_log_exact():
    out = nm.normalise(SMALL, "log", stretch=3.0)
    # log1p(3 m) / log1p(3) = log2(1 + 3 m) / 2
    np.testing.assert_allclose(out, np.log2(1 + 3 * np.array([[0, 0.25], [0.5, 1.0]])) / 2, rtol=1e-6)


def test_histeq_flattens_heavy_tail(rng):
    image = rng.lognormal(0.0, 1.0, (100, 100))
    out = nm.normalise(image, "histeq", nbins=4096)
    assert out.max() == pytest.approx(1.0)
    # The output is ~uniform: half of the pixels below 0.5, a quarter below 0.25.
    assert np.mean(out < 0.5) == pytest.approx(0.5, abs=0.02)
    assert np.mean(out < 0.25) == pytest.approx(0.25, abs=0.02)
    # ... and keeps the order of pixel values that fall in different bins.
    order = np.argsort(image.ravel())
    assert np.all(np.diff(out.ravel()[order]) >= 0)


def test_asinh_exact_with_noise_map():
    noise_map = np.array([[1.0, 1.0], [2.0, 0.5]])
    out = nm.normalise(SMALL, "asinh", noise=noise_map, softening=2.0)
    np.testing.assert_allclose(out, np.arcsinh(SMALL / (2.0 * noise_map)), rtol=1e-6)


def test_noise_exact_clipping():
    image = np.array([[-30.0, -2.0], [3.0, 50.0]])
    out = nm.normalise(image, "noise", noise=2.0, clip=10.0)
    np.testing.assert_allclose(out, [[-1.0, -0.1], [0.15, 1.0]], rtol=1e-6)


def test_noise_default_sigma_from_image(rng):
    image = rng.normal(0.0, 3.0, (128, 128))
    out = nm.normalise(image, "noise", clip=5.0)
    # image / sigma with sigma ~ 3: the std of the output is ~ 1 / 5.
    assert np.std(out) == pytest.approx(0.2, rel=0.05)


def test_noise_is_ignored_by_bounded_methods():
    np.testing.assert_array_equal(
        nm.normalise(SMALL, "minmax", noise=123.0), nm.normalise(SMALL, "minmax")
    )


@pytest.mark.parametrize("method", nm.NORMALISATIONS)
def test_nan_pixels_filled_and_ignored(method):
    image = np.array([[0.0, 1.0, np.nan], [2.0, np.inf, 4.0]])
    out = nm.normalise(image, method, noise=1.0, fill=-7.0)
    assert out[0, 2] == -7.0 and out[1, 1] == -7.0
    finite = nm.normalise(np.array([[0.0, 1.0], [2.0, 4.0]]), method, noise=1.0)
    np.testing.assert_allclose(out[[0, 0, 1, 1], [0, 1, 0, 2]], finite.ravel(), rtol=1e-6)


@pytest.mark.parametrize("method", ["minmax", "log", "histeq"])
def test_constant_image_maps_to_zero(method):
    np.testing.assert_array_equal(nm.normalise(np.full((3, 3), 5.0), method), np.zeros((3, 3)))


def test_all_nan_raises():
    with pytest.raises(ValueError, match="no finite pixel"):
        nm.normalise(np.full((2, 2), np.nan), "minmax")


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="unknown normalisation 'sqrt'.*minmax"):
        nm.normalise(SMALL, "sqrt")


@pytest.mark.parametrize(
    ("method", "kwargs", "match"),
    [
        ("noise", {"noise": 0.0}, "noise sigma must be finite and positive"),
        ("noise", {"noise": np.ones((3, 3))}, r"noise map shape \(3, 3\)"),
        ("noise", {"noise": 1.0, "clip": -1.0}, "clip must be positive"),
        ("asinh", {"noise": 1.0, "softening": 0.0}, "softening must be positive"),
        ("log", {"stretch": 0.0}, "stretch must be positive"),
    ],
)
def test_bad_options_raise(method, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nm.normalise(SMALL, method, **kwargs)
