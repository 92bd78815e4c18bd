"""Centre heat maps, their decoding, seeded segments, and the centre loss."""

import numpy as np
import pytest

from radioseg_utils.data.heatmaps import centre_heatmap
from radioseg_utils.postprocess.centres import find_centres, seeded_labels


def test_heatmap_peaks_at_nearest_pixel_and_takes_the_maximum():
    heat = centre_heatmap([5.4, 7.0], [5.0, 5.0], (11, 13), sigma=1.0)
    assert heat.dtype == np.float32
    assert heat[5, 5] == 1.0 and heat[5, 7] == 1.0
    # between the two sources the larger of the two Gaussians, not their sum
    assert heat[5, 6] == pytest.approx(np.exp(-0.5), rel=1e-6)
    assert heat.max() == 1.0
    assert heat[0, 0] == 0.0  # beyond 4 sigma


def test_heatmap_origin_matches_a_cutout_of_the_full_map():
    x, y = np.array([3.0, 20.2, 31.0]), np.array([4.0, 17.7, 2.0])
    full = centre_heatmap(x, y, (40, 40))
    cut = centre_heatmap(x, y, (16, 16), origin=(10, 18))
    np.testing.assert_array_equal(cut, full[10:26, 18:34])


@pytest.mark.parametrize("kwargs, match", [
    ({"x": [1.0, 2.0], "y": [1.0]}, "differ in length"),
    ({"x": [np.nan], "y": [1.0]}, "finite"),
    ({"x": [1.0], "y": [1.0], "sigma": 0.0}, "sigma"),
])
def test_heatmap_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        centre_heatmap(shape=(8, 8), **kwargs)


def test_find_centres_recovers_close_pairs_and_respects_threshold():
    heat = centre_heatmap([10, 13], [10, 10], (40, 40))  # a pair 3 px apart
    heat = np.maximum(heat, 0.25 * centre_heatmap([30], [25], (40, 40)))  # a weak third
    found = find_centres(heat, threshold=0.5)
    assert sorted(map(tuple, found.tolist())) == [(10, 10), (10, 13)]
    assert len(find_centres(heat, threshold=0.2)) == 3
    # NaN counts as no heat; a min_distance above the separation merges the pair
    heat[0, 0] = np.nan
    assert len(find_centres(heat, threshold=0.5, min_distance=4)) == 1


def test_find_centres_errors():
    with pytest.raises(ValueError, match="2-D"):
        find_centres(np.zeros(5))
    with pytest.raises(ValueError, match="min_distance"):
        find_centres(np.zeros((5, 5)), min_distance=0)


def test_seeded_labels_split_a_blend_and_give_faint_centres_a_disc():
    image = centre_heatmap([10, 15], [10, 10], (24, 30), sigma=1.5)
    mask = image > 0.05
    centres = np.array([[10, 10], [10, 15], [20, 25]])  # the third has no mask pixel
    labels = seeded_labels(mask, centres, image)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert labels[10, 9] == 1 and labels[10, 16] == 2
    # the blend is shared out: every mask pixel belongs to one of the two centres
    assert np.all(labels[mask] > 0) and set(np.unique(labels[mask])) == {1, 2}
    assert (labels == 3).sum() == 9  # disc of radius 1.5 px: 3 x 3 pixels
    # mask pixels not connected to any centre are dropped
    mask[0:3, 0:3] = True
    assert np.all(seeded_labels(mask, centres, image)[0:3, 0:3] == 0)


def test_seeded_labels_errors_and_empty():
    assert not seeded_labels(np.ones((4, 4), bool), np.empty((0, 2)), np.zeros((4, 4))).any()
    with pytest.raises(ValueError, match="off the"):
        seeded_labels(np.ones((4, 4), bool), np.array([[4, 0]]), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="equal"):
        seeded_labels(np.ones((4, 4), bool), np.array([[1, 1]]), np.zeros((4, 5)))


def test_centre_loss_prefers_the_right_heat_map():
    keras = pytest.importorskip("keras")
    from radioseg_utils.model.losses import CentreFocalLoss, MaskCentreLoss

    heat = centre_heatmap([8, 20], [8, 20], (32, 32))
    target = np.stack([(heat > 0.3).astype(np.float32), heat], axis=-1)[None]
    good = np.clip(target, 0.01, 0.99).astype(np.float32)
    shifted = np.roll(good, 3, axis=2)
    flat = np.full_like(good, 0.5)
    loss = MaskCentreLoss("bce_dice", 2.0)
    assert float(loss(target, good)) < float(loss(target, shifted)) < float(loss(target, flat))
    centre = CentreFocalLoss()
    assert float(centre(target[..., 1:], good[..., 1:])) < 0.1
    # an empty cutout is normalised by one centre, not divided by zero
    assert np.isfinite(float(centre(np.zeros((1, 8, 8, 1)), np.full((1, 8, 8, 1), 0.1,
                                                                      np.float32))))
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.mask_loss, again.centre_weight) == ("bce_dice", 2.0)


def _focal_oracle(y, p, beta_map, alpha=2.0):
    """CenterNet's penalty-reduced focal loss of one cutout, in numpy, with a beta per pixel."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    pos = y >= 0.999
    total = np.sum((1 - p[pos]) ** alpha * np.log(p[pos]))
    total += np.sum(((1 - y) ** beta_map * p**alpha * np.log(1 - p))[~pos])
    return -total / max(1, pos.sum())


def _near_pair(y, radius):
    """Pixels with two or more target centres in the (2 radius + 1)^2 box around them."""
    from scipy.ndimage import uniform_filter

    side = 2 * radius + 1
    count = uniform_filter((y >= 0.999).astype(float), side, mode="constant") * side**2
    return count > 1.5


def test_centre_loss_pair_beta_matches_a_numpy_oracle():
    pytest.importorskip("keras")
    from radioseg_utils.model.losses import CENTRE_BETA, CENTRE_PAIR_RADIUS, CentreFocalLoss

    y = centre_heatmap([6, 9, 20, 25], [6, 7, 20, 20], (32, 32))  # a pair 3.2 px apart
    rng = np.random.default_rng(4)
    p = rng.uniform(0.02, 0.98, y.shape).astype(np.float32)
    near = _near_pair(y, CENTRE_PAIR_RADIUS)
    assert near[6, 7] and near[7, 8] and not near[20, 20]  # the pair, not the far one
    for pair_beta in (None, 1.0, 2.5):
        beta = np.where(near, CENTRE_BETA if pair_beta is None else pair_beta, CENTRE_BETA)
        got = float(CentreFocalLoss(pair_beta=pair_beta)(y[None, ..., None], p[None, ..., None]))
        assert got == pytest.approx(_focal_oracle(y, p, beta), rel=1e-4)


def test_centre_loss_pair_beta_charges_a_merged_pair_and_spares_lone_sources():
    pytest.importorskip("keras")
    from radioseg_utils.model.losses import CentreFocalLoss

    def cost(loss, y, p):
        return float(loss(y[None, ..., None], np.clip(p, 0.01, 0.99)[None, ..., None]))

    plain, sharp = CentreFocalLoss(), CentreFocalLoss(pair_beta=1.0)
    pair = centre_heatmap([10, 13], [10, 10], (24, 24))
    merged = centre_heatmap([11.5], [10], (24, 24), sigma=1.8)  # one blob over both
    assert cost(sharp, pair, merged) > 2 * cost(plain, pair, merged)
    assert cost(sharp, pair, pair) < cost(sharp, pair, merged)  # resolving them pays
    lone = centre_heatmap([6, 18], [6, 18], (24, 24))  # 12 px apart: no pair
    wide = centre_heatmap([6, 18], [6, 18], (24, 24), sigma=1.8)
    assert cost(sharp, lone, wide) == pytest.approx(cost(plain, lone, wide), rel=1e-6)
    with pytest.raises(ValueError, match="pair_beta"):
        CentreFocalLoss(pair_beta=0.0)
    with pytest.raises(ValueError, match="pair_radius"):
        CentreFocalLoss(pair_beta=1.0, pair_radius=0)


def test_mask_centre_loss_keeps_pair_beta_when_serialised():
    keras = pytest.importorskip("keras")
    from radioseg_utils.model.losses import MaskCentreLoss

    loss = MaskCentreLoss("bce_dice", 1.5, pair_beta=1.0)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.centre_weight, again.pair_beta) == (1.5, 1.0)
    y = centre_heatmap([10, 13], [10, 10], (24, 24))
    target = np.stack([(y > 0.3).astype(np.float32), y], axis=-1)[None]
    p = np.clip(np.roll(target, 1, axis=2), 0.02, 0.98).astype(np.float32)
    assert float(again(target, p)) == pytest.approx(float(loss(target, p)), rel=1e-6)
    assert float(loss(target, p)) > float(MaskCentreLoss("bce_dice", 1.5)(target, p))
