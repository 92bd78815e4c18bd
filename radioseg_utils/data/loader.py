"""Reading shards back for training: the cutouts of a split as arrays, or a shuffled,
augmented input pipeline over one or several shard folders.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from radioseg_utils.core.runtime import quiet_tensorflow
from radioseg_utils.data.normalise import NORMALISATIONS, normalise
from radioseg_utils.data.shards import TARGET_CHANNELS, read_metadata
from radioseg_utils.data.splits import SPLITS

__all__ = [
    "SHUFFLE_BUFFER",
    "load_split_arrays",
    "make_tf_dataset",
    "SplitArrays",
]


#: Default shuffle buffer of :func:`make_tf_dataset`, in cutouts.
SHUFFLE_BUFFER: int = 1024


def _shards(shard_dir: str | Path, split: str) -> tuple[list[Path], dict[str, object]]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    meta = read_metadata(shard_dir)
    files = sorted(Path(shard_dir).glob(f"{split}-*.npz"))
    if not files:
        raise FileNotFoundError(f"no {split} shards in {shard_dir}")
    return files, meta


def _normaliser(meta: dict[str, object], normalisation: str | None) -> Callable[[np.ndarray], np.ndarray]:
    method = normalisation or meta["normalisation"]
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {method!r}; expected one of {', '.join(NORMALISATIONS)}")
    return lambda cutout: normalise(cutout, method, noise=meta["noise_jy"])


def load_split_arrays(shard_dir: str | Path, split: str, *,
                      normalisation: str | None = None) -> SplitArrays:
    """Load one split in memory (for small datasets and tests).

    Parameters
    ----------
    shard_dir : str or Path
        Folder written by :func:`build_dataset`.
    split : {"train", "val", "test"}
        Split name.
    normalisation : str, optional
        Normalisation of the images; default the one in the metadata.

    Returns
    -------
    SplitArrays
    """
    files, meta = _shards(shard_dir, split)
    norm = _normaliser(meta, normalisation)
    parts = {k: [] for k in ("image", "mask", "labels", "origin", "centre")}
    for path in files:
        with np.load(path) as shard:
            for key, values in parts.items():
                if key in shard.files:
                    values.append(shard[key])
    images = np.stack([norm(c) for c in np.concatenate(parts["image"])])
    masks = np.concatenate(parts["mask"]).astype(np.float32)
    centres = (np.concatenate(parts["centre"]).astype(np.float32)[..., None]
               if len(parts["centre"]) == len(files) else None)
    return SplitArrays(images[..., None], masks[..., None], np.concatenate(parts["labels"]),
                       np.concatenate(parts["origin"]), centres)


def _augment(rng: np.random.Generator, image: np.ndarray, target: np.ndarray):
    """Same random flip and rot90 of an image and its target (the 8 symmetries of a square)."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    image, target = np.rot90(image, k), np.rot90(target, k)
    if flip:
        image, target = image[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(target)


def _check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    targets = tuple(targets)
    if not targets or any(t not in TARGET_CHANNELS for t in targets) or len(set(targets)) < len(targets):
        raise ValueError(f"targets must be distinct names among {', '.join(TARGET_CHANNELS)}, "
                         f"got {targets}")
    return targets


def make_tf_dataset(
    shard_dir: str | Path | Sequence[str | Path],
    split: str,
    *,
    batch_size: int,
    augment: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    normalisation: str | None = None,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    targets: Sequence[str] = ("mask",),
):
    """Stream a split's shards as a batched, prefetched ``tf.data.Dataset``.

    Shards are read one at a time (file order shuffled each epoch when ``shuffle``), so the
    dataset is never held in memory; cutouts are normalised (with the noise of their own
    folder), augmented with a random flip/rot90 applied identically to image and targets
    (seeded per epoch), shuffled in a buffer of ``shuffle_buffer`` cutouts, batched and
    prefetched.

    Parameters
    ----------
    shard_dir : str or Path, or a sequence of them
        Folder(s) written by :func:`build_dataset`, all with the same cutout size.
    split : {"train", "val", "test"}
        Split name.
    batch_size : int
        Cutouts per batch (the last batch may be smaller).
    augment, shuffle : bool
        Random flips/rot90; shuffling of shards and cutouts.
    seed : int
        Seed of shuffling and augmentation.
    normalisation : str, optional
        Normalisation of the images; default the one in each folder's metadata.
    shuffle_buffer : int
        Shuffle buffer size in cutouts.
    targets : sequence of str
        Target channels, names from :data:`TARGET_CHANNELS`: ``("mask",)`` for a segmentation
        model, ``("mask", "centre")`` for a U-Net with a centre head.

    Returns
    -------
    tf.data.Dataset
        Yields ``(images, targets)``, float32 of shapes ``(B, size, size, 1)`` and
        ``(B, size, size, len(targets))``; its cardinality is
        ``ceil(n_cutouts / batch_size)`` (``n_cutouts`` of the split summed over the
        folders' metadata; reading a different number of cutouts raises an error).

    Raises
    ------
    ValueError
        On a bad option, folders with different cutout sizes, or shards without a
        requested target (written before centre maps existed: rebuild them).
    """
    quiet_tensorflow()
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    targets = _check_targets(targets)
    folders = [shard_dir] if isinstance(shard_dir, (str, Path)) else list(shard_dir)
    if not folders:
        raise ValueError("no shard folder given")
    files: list[tuple[Path, Callable[[np.ndarray], np.ndarray]]] = []
    sizes, n_cutouts = set(), 0
    for folder in folders:
        found, meta = _shards(folder, split)
        norm = _normaliser(meta, normalisation)
        files += [(path, norm) for path in found]
        sizes.add(int(meta["size"]))
        n_cutouts += int(meta["splits"][split]["n_cutouts"])
    if len(sizes) > 1:
        raise ValueError(f"shard folders hold cutouts of different sizes {sorted(sizes)} px")
    size = sizes.pop()
    epochs = itertools.count()

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng([seed, next(epochs)])
        order = rng.permutation(len(files)) if shuffle else range(len(files))
        for i in order:
            path, norm = files[i]
            with np.load(path) as shard:
                missing = [t for t in targets if t not in shard.files]
                if missing:
                    raise ValueError(f"shard {path} has no {', '.join(missing)} map: it was "
                                     "written by an older radioseg; rebuild the dataset")
                images = shard["image"]
                stacked = np.stack([shard[t].astype(np.float32) for t in targets], axis=-1)
            for image, target in zip(images, stacked):
                image = norm(image)[..., None]
                if augment:
                    image, target = _augment(rng, image, target)
                yield image, target

    ds = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((size, size, 1), tf.float32),
        tf.TensorSpec((size, size, len(targets)), tf.float32)))
    # a known length (ceil(n / batch_size) batches) lets Keras end each epoch cleanly
    ds = ds.apply(tf.data.experimental.assert_cardinality(n_cutouts))
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class SplitArrays(NamedTuple):
    """One split loaded in memory (:func:`load_split_arrays`).

    Attributes
    ----------
    images : ndarray of float32, shape (n, size, size, 1)
        Normalised images.
    masks : ndarray of float32, shape (n, size, size, 1)
        Binary masks (0 or 1).
    labels : ndarray of int32, shape (n, size, size)
        Instance labels (catalogue row + 1, 0 = background).
    origins : ndarray of int64, shape (n, 2)
        ``(y, x)`` of each cutout's first pixel in the field.
    centres : ndarray of float32, shape (n, size, size, 1), or None
        Centre heat maps (None for shards written before they existed).
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    origins: np.ndarray
    centres: np.ndarray | None = None
