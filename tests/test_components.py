"""Tests of radioseg_utils.postprocess.components."""

from __future__ import annotations

import numpy as np
import pytest

from radioseg_utils.postprocess.components import (
    component_stats,
    label_components,
    split_blends,
)


@pytest.fixture
def mask() -> np.ndarray:
    m = np.zeros((6, 8), bool)
    m[0, 0] = m[1, 1] = True  # diagonal pair: one component with 8-connectivity
    m[2:5, 4:7] = True  # 3x3 square
    m[5, 0] = True  # single pixel
    return m


def test_stats_of_hand_built_mask(mask):
    comp = label_components(mask)
    assert comp.n == 3
    assert comp.area.tolist() == [2, 9, 1]
    assert comp.bbox.tolist() == [[0, 0, 2, 2], [4, 2, 3, 3], [0, 5, 1, 1]]
    assert np.allclose(comp.centroid, [[0.5, 0.5], [5.0, 3.0], [0.0, 5.0]])
    assert comp.labels[1, 1] == 1 and comp.labels[3, 5] == 2 and comp.labels[5, 0] == 3
    assert comp.labels.dtype == np.int32 and comp.labels[~mask].max() == 0
    table = comp.to_table()
    assert table["area"].tolist() == [2, 9, 1] and table["x"][1] == 5.0


def test_connectivity_and_min_area(mask):
    comp4 = label_components(mask, connectivity=4)
    assert comp4.area.tolist() == [1, 1, 9, 1]
    big = label_components(mask, min_area=2)
    assert big.area.tolist() == [2, 9]
    assert big.labels.max() == 2 and big.labels[5, 0] == 0


def test_component_stats_matches_opencv(mask):
    comp = label_components(mask)
    again = component_stats(comp.labels * 7)  # non-consecutive labels are renumbered
    assert np.array_equal(again.labels, comp.labels)
    assert np.array_equal(again.area, comp.area) and np.array_equal(again.bbox, comp.bbox)
    assert np.allclose(again.centroid, comp.centroid)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"connectivity": 6}, "connectivity must be 4 or 8"), ({"min_area": 0}, "min_area")],
)
def test_bad_options(mask, kwargs, match):
    with pytest.raises(ValueError, match=match):
        label_components(mask, **kwargs)
    with pytest.raises(ValueError, match="2-D mask"):
        label_components(mask[0])


def _two_gaussians(separation: float) -> np.ndarray:
    y, x = np.mgrid[:21, :31]
    g = lambda x0: np.exp(-((x - x0) ** 2 + (y - 10) ** 2) / (2 * 1.5**2))  # noqa: E731
    return g(15 - separation / 2) + 0.8 * g(15 + separation / 2)


def test_split_blends_separates_two_peaks():
    image = _two_gaussians(8.0)
    comp = label_components(image > 0.05)
    assert comp.n == 1
    split = split_blends(comp.labels, image, min_distance=2)
    assert split.max() == 2
    assert split[10, 11] != split[10, 19] and split[10, 11] > 0 and split[10, 19] > 0
    assert np.array_equal(split > 0, comp.labels > 0)  # no pixel gained or lost
    # a single peak (or peaks closer than min_distance) is never split
    single = label_components(_two_gaussians(0.0) > 0.05).labels
    assert split_blends(single, _two_gaussians(0.0)).max() == 1


def test_split_blends_keeps_peakless_component():
    labels = np.zeros((5, 5), np.int32)
    labels[1:4, 1:4] = 1
    image = np.zeros((5, 5))  # flat: no strict local maximum above threshold_abs
    out = split_blends(labels, image, threshold_abs=1.0)
    assert out.max() == 1 and np.array_equal(out > 0, labels > 0)
    with pytest.raises(ValueError, match="differs from labels shape"):
        split_blends(labels, image[:4])
