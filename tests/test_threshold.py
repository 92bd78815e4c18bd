"""Tests of radioseg_utils.postprocess.threshold."""

from __future__ import annotations

import numpy as np
import pytest

from radioseg_utils.evaluation.threshold_scan import best_f1_threshold
from radioseg_utils.postprocess import threshold as th

METHODS = ["yen", "otsu", "triangle", "li"]


@pytest.fixture
def bimodal(rng) -> np.ndarray:
    """88 % of pixels in [0.05, 0.15], 500 in [0.85, 0.95] (a probability map)."""
    image = rng.uniform(0.05, 0.15, (64, 64))
    image[20:40, 10:30] = rng.uniform(0.85, 0.95, (20, 20))
    image[50:60, 50:60] = rng.uniform(0.85, 0.95, (10, 10))
    return image


@pytest.mark.parametrize("method", METHODS)
def test_threshold_lies_between_modes(bimodal, method):
    value = th.threshold_value(bimodal, method)
    assert bimodal[bimodal < 0.5].max() <= value < bimodal[bimodal > 0.5].min()
    mask = th.threshold(bimodal, method)
    assert mask.sum() == 500


@pytest.mark.parametrize("method", METHODS)
def test_nan_pixels_ignored_and_never_selected(bimodal, method):
    image = bimodal.copy()
    image[0, :] = np.nan
    image[1, 0] = np.inf
    assert th.threshold_value(image, method) == pytest.approx(
        th.threshold_value(bimodal[2:], method), abs=0.05
    )
    mask = th.threshold(image, method)
    assert not mask[0].any() and not mask[1, 0]
    assert mask.sum() == 500


@pytest.mark.parametrize("method", METHODS + ["fixed"])
def test_constant_image_selects_nothing(method):
    image = np.full((8, 8), 0.25)
    if method != "fixed":
        assert th.threshold_value(image, method) == 0.25
    assert not th.threshold(image, method, **({"value": 0.25} if method == "fixed" else {})).any()


def test_all_nan_raises():
    with pytest.raises(ValueError, match="no finite pixel"):
        th.threshold_yen(np.full((4, 4), np.nan))


def test_fixed_and_bad_inputs(bimodal):
    assert th.threshold(bimodal, "fixed", value=0.5).sum() == 500
    assert th.threshold(bimodal, "fixed").sum() == 500  # default DEFAULT_FIXED = 0.5
    with pytest.raises(ValueError, match="unknown threshold method 'foo'"):
        th.threshold(bimodal, "foo")
    with pytest.raises(ValueError, match="2-D"):
        th.threshold(bimodal[0], "yen")
    with pytest.raises(ValueError, match="must be finite"):
        th.threshold_fixed(bimodal, value=np.nan)
    with pytest.raises(ValueError, match="only used with method='hysteresis'"):
        th.threshold(bimodal, "otsu", low=0.2)
    with pytest.raises(ValueError, match="per_tile"):
        th.threshold(bimodal, "otsu", per_tile=0)


def test_hysteresis_keeps_only_components_with_a_strong_pixel():
    image = np.zeros((5, 9))
    image[1:4, 1:3] = 0.4  # weak blob with one strong pixel
    image[2, 2] = 0.9
    image[1:4, 6:8] = 0.4  # weak blob only
    mask = th.apply_hysteresis(image, 0.3, 0.8)
    assert mask.sum() == 6 and not mask[:, 5:].any()
    assert np.array_equal(th.threshold(image, "hysteresis", low=0.3, high=0.8), mask)
    with pytest.raises(ValueError, match="low <= high"):
        th.apply_hysteresis(image, 0.9, 0.8)


def test_per_tile_threshold_adapts_to_each_tile(rng):
    image = rng.normal(0.0, 0.01, (32, 64))
    image[:, 32:] += 10.0  # right half has a large offset
    image[8:16, 8:16] += 1.0
    image[8:16, 40:48] += 1.0
    assert th.threshold(image, "li").sum() == 32 * 32  # global: the whole offset half
    mask = th.threshold(image, "li", per_tile=32)
    assert mask.sum() == 128
    assert mask[8:16, 8:16].all() and mask[8:16, 40:48].all()


def test_best_f1_threshold_exact_counts():
    image = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, np.nan, 0.05]])
    truth = np.array([[0, 0, 1, 0], [1, 1, 1, 0]])  # the NaN source pixel is always missed
    scan = best_f1_threshold(image, truth, thresholds=np.array([0.45, 0.0, 0.25]))
    assert scan.thresholds.tolist() == [0.0, 0.25, 0.45]
    # t=0: tp 3, fp 4, fn 1 -> 6/11; t=0.25: tp 3, fp 1, fn 1 -> 6/8; t=0.45: tp 2, fn 2 -> 4/6
    assert scan.f1 == pytest.approx([6 / 11, 0.75, 2 / 3])
    assert scan.best_threshold == 0.25
    b = scan.best
    assert (b.tp, b.fp, b.fn, b.tn) == (3, 1, 1, 3)
    valid = np.ones(image.shape, bool)
    valid[0, 3] = False  # drop the false positive at 0.4
    assert best_f1_threshold(image, truth, valid=valid, thresholds=np.array([0.25])).best.f1 == pytest.approx(6 / 7)


def test_best_f1_threshold_quantile_scan_separates_bimodal(bimodal):
    truth = bimodal > 0.5
    scan = best_f1_threshold(bimodal, truth, levels=50)
    assert scan.best.f1 == 1.0 and scan.best.fp == 0
    assert bimodal[~truth].max() <= scan.best_threshold < bimodal[truth].min()
    assert scan.thresholds.size <= 51 and np.all(np.diff(scan.thresholds) > 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"truth": np.zeros((3, 3))}, "differs from image shape"),
        ({"valid": np.ones((2, 2), bool)}, "valid shape"),
        ({"levels": 1}, "levels must be >= 2"),
        ({"thresholds": np.array([np.nan])}, "finite values"),
        ({"image": np.full((4, 4), np.nan)}, "at least one finite"),
    ],
)
def test_best_f1_threshold_bad_input(kwargs, message):
    args = {"image": np.arange(16.0).reshape(4, 4), "truth": np.eye(4)} | kwargs
    with pytest.raises(ValueError, match=message):
        best_f1_threshold(**args)
