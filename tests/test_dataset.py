"""Tests of radioseg_utils.data: splits, cutouts, shards and the backend-neutral loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from test_masks import point_sources  # tests/ is on sys.path (pytest rootdir insertion)

from radioseg_utils.data import loader as dl
from radioseg_utils.data import shards as ds
from radioseg_utils.data import splits as sp
from radioseg_utils.data.normalise import normalise
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.simulation.sources import add_stamp, source_stamps

NOISE = 1e-7
FIELD = (192, 256)
SIZE = 16


@pytest.fixture(scope="module")
def field():
    """A noisy field with 60 point/extended sources of known truth."""
    rng = np.random.default_rng(7)
    wcs = sdc1_wcs("B1", FIELD)
    n = 60
    truth = point_sources(wcs, rng.uniform(0, FIELD[1], n), rng.uniform(0, FIELD[0], n),
                          rng.uniform(2, 200, n) * NOISE, b_maj=rng.uniform(0, 3, n),
                          b_min=0.5, pa=rng.uniform(0, 180, n))
    image = rng.normal(0.0, NOISE, FIELD).astype(np.float32)
    for stamp in source_stamps(truth, wcs, "B1", shape=FIELD):
        add_stamp(image, stamp)
    return image, truth, wcs


@pytest.fixture(scope="module")
def shards(field, tmp_path_factory):
    image, truth, wcs = field
    out = tmp_path_factory.mktemp("shards")
    meta = ds.build_dataset(image, truth, wcs, "B1", out_dir=out, size=SIZE, noise=NOISE,
                            seed=3, block=32, normalisation="noise",
                            provenance={"source": "test field"})
    return out, meta


def coverage(positions: np.ndarray, size: int, shape) -> np.ndarray:
    cover = np.zeros(shape, bool)
    for y, x in positions:
        cover[y:y + size, x:x + size] = True
    return cover


def test_block_assignment_is_80_10_10_and_seeded():
    layout = sp.split_layout((1000, 1000), block=100, guard=0, seed=1)
    assert np.bincount(layout.blocks.ravel()).tolist() == [80, 10, 10]
    again = sp.split_layout((1000, 1000), block=100, guard=0, seed=1)
    other = sp.split_layout((1000, 1000), block=100, guard=0, seed=2)
    np.testing.assert_array_equal(layout.blocks, again.blocks)
    assert not np.array_equal(layout.blocks, other.blocks)
    strips = sp.split_layout((100, 40), block=(10, 40), guard=0, seed=0)
    assert strips.blocks.shape == (10, 1)
    assert strips.pixel_map().shape == (100, 40)


@pytest.mark.parametrize("guard", [0, 5])
def test_splits_are_spatially_disjoint(guard):
    shape, size = (240, 300), 20
    layout = sp.split_layout(shape, block=40, guard=guard, seed=4)
    pos = {s: sp.cutout_positions(layout, s, size=size, stride=5) for s in sp.SPLITS}
    assert all(len(p) > 0 for p in pos.values())
    train = coverage(pos["train"], size, shape)
    for split in ("val", "test"):
        other = coverage(pos[split], size, shape)
        assert not np.any(train & other)
        # ... and no training pixel within the guard band of a val/test cutout
        grown = ndimage.binary_dilation(other, np.ones((2 * guard + 1,) * 2)) if guard else other
        assert not np.any(train & grown)
        # every cutout pixel lies in a block of its own split
        assert np.all(layout.pixel_map()[other] == sp.SPLITS.index(split))


def test_random_positions_are_valid_and_seeded():
    layout = sp.split_layout((400, 400), block=50, guard=8, seed=0)
    pos = sp.cutout_positions(layout, "val", size=16, n_random=30, seed=5)
    assert pos.shape == (30, 2)
    np.testing.assert_array_equal(pos, sp.cutout_positions(layout, "val", size=16, n_random=30, seed=5))
    assert np.all(layout.pixel_map()[coverage(pos, 16, (400, 400))] == 1)


def test_build_dataset_metadata_and_shards(shards, field):
    out, meta = shards
    assert json.loads((out / "metadata.json").read_text()) == meta
    assert meta["size"] == SIZE and meta["stride"] == SIZE // 2 and meta["seed"] == 3
    assert meta["layout"]["guard"] == SIZE // 2
    assert meta["masks"]["n_selected"] + meta["masks"]["n_below_snr"] == 60
    assert meta["provenance"]["source"] == "test field"
    for split in sp.SPLITS:
        info = meta["splits"][split]
        assert info["n_cutouts"] > 0 and len(list(out.glob(f"{split}-*.npz"))) == info["n_shards"]
        assert 0.0 < info["source_pixel_fraction"] < 1.0


def test_shards_hold_the_field_cutouts_and_masks(shards, field):
    out, meta = shards
    image, truth, wcs = field
    from radioseg_utils.data.masks import make_masks
    binary, labels, _ = make_masks(truth, wcs, "B1", shape=FIELD, noise=NOISE)
    arrays = dl.load_split_arrays(out, "test", normalisation="minmax")
    assert arrays.images.shape == (meta["splits"]["test"]["n_cutouts"], SIZE, SIZE, 1)
    for k, (y, x) in enumerate(arrays.origins):
        np.testing.assert_array_equal(arrays.labels[k], labels[y:y + SIZE, x:x + SIZE])
        np.testing.assert_array_equal(arrays.masks[k, ..., 0], binary[y:y + SIZE, x:x + SIZE])
        np.testing.assert_allclose(arrays.images[k, ..., 0],
                                   normalise(image[y:y + SIZE, x:x + SIZE], "minmax"))
    sources = np.unique(arrays.labels[arrays.labels > 0])
    assert sources.size == meta["splits"]["test"]["n_sources"]


def _all_batches(loader):
    return (np.concatenate(a) for a in zip(*(loader[i] for i in range(len(loader)))))


def test_loader_shapes_and_consistent_augmentation(shards):
    out, meta = shards
    ref = dl.load_split_arrays(out, "train")  # metadata default: "noise"
    loader = dl.ShardLoader(out, "train", batch_size=8, augment=True, shuffle=False, seed=1)
    images, masks = _all_batches(loader)
    first = loader[0]
    assert first[0].shape == (8, SIZE, SIZE, 1) and first[0].dtype.name == "float32"
    assert images.shape == ref.images.shape and masks.shape == ref.masks.shape
    used = set()
    for k in range(len(images)):
        # find the symmetry taking the stored image to the yielded one; the mask must match it
        for rot in range(4):
            for flip in (False, True):
                t = np.rot90(ref.images[k, ..., 0], rot)
                t = t[:, ::-1] if flip else t
                if np.array_equal(t, images[k, ..., 0]):
                    m = np.rot90(ref.masks[k, ..., 0], rot)
                    np.testing.assert_array_equal(m[:, ::-1] if flip else m, masks[k, ..., 0])
                    used.add((rot, flip))
                    break
            else:
                continue
            break
        else:
            pytest.fail(f"cutout {k} is not a flip/rotation of the stored one")
    assert len(used) >= 4  # the augmentation really varies


def test_loader_without_augmentation_matches_arrays(shards):
    out, _ = shards
    ref = dl.load_split_arrays(out, "val", normalisation="asinh")
    loader = dl.ShardLoader(out, "val", batch_size=4, augment=False, shuffle=False,
                            normalisation="asinh")
    images, _ = _all_batches(loader)
    np.testing.assert_array_equal(images, ref.images)
    assert len(loader) == -(-len(ref.images) // 4)  # known length: ceil(n / 4)


def test_loader_shuffles_each_epoch_reproducibly(shards):
    out, _ = shards
    ref = dl.load_split_arrays(out, "train")
    make = lambda: dl.ShardLoader(out, "train", batch_size=8, augment=False, seed=5)  # noqa: E731
    first, again = make(), make()
    epoch0, _ = _all_batches(first)
    np.testing.assert_array_equal(epoch0, next(_all_batches(again)))  # same seed, same order
    first.on_epoch_end()
    epoch1, _ = _all_batches(first)
    assert not np.array_equal(epoch0, epoch1)  # a new order every epoch...
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert key(epoch0) == key(epoch1) == key(ref.images)  # ...of the same cutouts, each once


def test_existing_shards_need_overwrite(shards, field):
    out, _ = shards
    image, truth, wcs = field
    with pytest.raises(FileExistsError, match="already holds .* shards"):
        ds.build_dataset(image, truth, wcs, "B1", out_dir=out, size=SIZE, noise=NOISE, block=32)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sp.split_layout((100, 100), block=(100, 60), guard=0, seed=0), "only 2 block"),
        (lambda: sp.split_layout((100, 100), block=10, guard=-1, seed=0), "guard >= 0"),
        (lambda: sp.cutout_positions(sp.split_layout((100, 100), block=10, guard=0, seed=0),
                                     "holdout", size=8), "unknown split 'holdout'"),
        (lambda: sp.cutout_positions(sp.split_layout((100, 100), block=10, guard=0, seed=0),
                                     "val", size=200), "cutout size 200"),
        (lambda: sp.cutout_positions(sp.split_layout((100, 100), block=10, guard=40, seed=0),
                                     "val", size=8, n_random=5), "found only 0 valid positions"),
    ],
)
def test_bad_layout_options_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_split_without_cutouts_raises(field, tmp_path):
    image, truth, wcs = field
    with pytest.raises(ValueError, match="split '(val|test)' has no cutout"):
        ds.build_dataset(image, truth, wcs, "B1", out_dir=tmp_path, size=SIZE, noise=NOISE,
                         block=SIZE, guard=SIZE)


def test_reading_bad_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metadata.json"):
        dl.load_split_arrays(tmp_path, "train")


@pytest.mark.realdata
def test_cli_dataset_on_real_cutout(sdc1_dir, tmp_path, capsys):
    from radioseg_utils.cli import main

    out = tmp_path / "real"
    argv = ["dataset", str(sdc1_dir / "B1_1000h_0.05tr.fits"),
            str(sdc1_dir / "truth_B1_1000h_0.05tr.cat"), "--out", str(out), "--size", "16",
            "--integration", "1000"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    meta = ds.read_metadata(out)
    assert meta["masks"]["n_catalogue"] == 601 and meta["masks"]["n_selected"] == 94
    assert meta["masks"]["skipped"]["off_grid"] == 4
    assert meta["noise_jy"] == 3.58e-7 and meta["band"] == "B1"
    # the masks trace the real emission: pixels above 5 sigma (0.25 after "noise" scaling
    # with its clip of 20) lie in the masks
    train = dl.load_split_arrays(out, "train", normalisation="noise")
    assert train.masks[train.images > 0.25].mean() > 0.9
    assert main(argv) == 2  # shards exist: a one-line error, no traceback
    assert "already holds" in capsys.readouterr().err


def test_shards_hold_centre_maps_at_the_selected_sources(shards, field):
    out, meta = shards
    image, truth, wcs = field
    arrays = dl.load_split_arrays(out, "train")
    assert arrays.centres.shape == arrays.masks.shape
    rows = np.array(sorted({int(v) - 1 for v in np.unique(arrays.labels) if v > 0}))
    x, y = wcs.world_to_pixel_values(truth["ra_core"][rows], truth["dec_core"][rows])
    peaks = 0
    for heat, origin in zip(arrays.centres[..., 0], arrays.origins):
        inside = ((x >= origin[1]) & (x < origin[1] + SIZE - 0.5)
                  & (y >= origin[0]) & (y < origin[0] + SIZE - 0.5))
        ix = np.rint(x[inside]).astype(int) - origin[1]
        iy = np.rint(y[inside]).astype(int) - origin[0]
        np.testing.assert_array_equal(heat[iy, ix], 1.0)  # every selected centre is a peak
        peaks += int((heat == 1.0).sum())
    assert peaks > 0
    assert 0 < float(arrays.centres.mean()) < 0.2


def test_loader_with_centre_target_over_two_folders(shards, field, tmp_path):
    out, meta = shards
    image, truth, wcs = field
    other = tmp_path / "twice-as-noisy"
    ds.build_dataset(image, truth, wcs, "B1", out_dir=other, size=SIZE, noise=2 * NOISE,
                     seed=3, block=32, normalisation="noise")
    loader = dl.ShardLoader([out, other], "val", batch_size=64, augment=False, shuffle=False,
                            targets=("mask", "centre"))
    images, targets = _all_batches(loader)
    n = meta["splits"]["val"]["n_cutouts"]
    assert targets.shape == (2 * n, SIZE, SIZE, 2)
    assert len(loader) == -(-2 * n // 64)
    first = dl.load_split_arrays(out, "val")
    np.testing.assert_array_equal(targets[:n, ..., 1:], first.centres)
    np.testing.assert_array_equal(targets[:n, ..., :1], first.masks)
    # each folder is normalised with its own noise: same pixels, other values
    np.testing.assert_array_equal(images[n:], dl.load_split_arrays(other, "val").images)
    assert not np.allclose(images[n:], images[:n])
    with pytest.raises(ValueError, match="targets"):
        dl.ShardLoader(out, "val", batch_size=4, targets=("mask", "halo"))
