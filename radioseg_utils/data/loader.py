"""Reading shards back for training: the cutouts of a split as arrays, or a shuffled,
augmented input pipeline over one or several shard folders.

The pipeline is a :class:`keras.utils.PyDataset` of numpy batches, so the same training
code runs on every Keras 3 backend (TensorFlow, JAX, PyTorch): nothing here uses
``tf.data``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from radioseg_utils.core.runtime import start_keras

start_keras()  # without TensorFlow's start-up lines
import keras  # noqa: E402

from radioseg_utils.data.normalise import NORMALISATIONS, normalise
from radioseg_utils.data.shards import TARGET_CHANNELS, read_metadata
from radioseg_utils.data.splits import SPLITS

__all__ = [
    "SHUFFLE_WINDOW",
    "ArrayLoader",
    "ShardLoader",
    "load_split_arrays",
    "SplitArrays",
]


#: Shards whose cutouts :class:`ShardLoader` shuffles together (at 256² px a shard holds
#: about 45 cutouts, at 128² about 180).
SHUFFLE_WINDOW: int = 8


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


def _batch_slices(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class ArrayLoader(keras.utils.PyDataset):
    """Batches of ``(images, targets)`` numpy arrays for Keras on any backend.

    Parameters
    ----------
    images : ndarray, shape (N, H, W) or (N, H, W, 1)
        Model inputs (already normalised).
    targets : ndarray, shape (N, H, W) or (N, H, W, T)
        Target maps in [0, 1].
    batch_size : int
        Cutouts per batch (the last batch may be smaller).
    shuffle : bool
        A new seeded order of the cutouts every epoch.
    seed : int
        Seed of the shuffling.
    what : str
        Name of the data in error messages.

    Raises
    ------
    ValueError
        On shapes that do not pair up, non-finite images, targets outside [0, 1] or a
        non-positive batch size.
    """

    def __init__(self, images: np.ndarray, targets: np.ndarray, *, batch_size: int,
                 shuffle: bool = True, seed: int = 0, what: str = "data") -> None:
        super().__init__()
        images, targets = (np.asarray(a, dtype=np.float32) for a in (images, targets))
        images, targets = (a[..., None] if a.ndim == 3 else a for a in (images, targets))
        if images.ndim != 4 or targets.ndim != 4 or images.shape[:3] != targets.shape[:3]:
            raise ValueError(f"{what}: images {images.shape} and masks {targets.shape} must be "
                             "(N, H, W[, C]) and (N, H, W[, T]) with the same N, H, W")
        if not np.isfinite(images).all():
            raise ValueError(f"{what}: images contain NaN or inf")
        if targets.size and (targets.min() < 0 or targets.max() > 1):
            raise ValueError(f"{what}: mask values must lie in [0, 1], found "
                             f"[{targets.min():g}, {targets.max():g}]")
        if batch_size < 1:
            raise ValueError(f"{what}: batch_size must be positive, got {batch_size}")
        self.images, self.targets = images, targets
        self.batches = _batch_slices(len(images), batch_size)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        n = len(self.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[self.batches[index]]
        return self.images[rows], self.targets[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


class ShardLoader(keras.utils.PyDataset):
    """Stream a split's shards as batches for Keras training on any backend.

    The dataset is never held in memory: shards are read a window of ``window`` shards at
    a time. Every epoch the shard order is shuffled (seeded), the cutouts of each window
    are shuffled together, normalised (with the noise of their own folder) and, with
    ``augment``, flipped/rotated by the same random one of the 8 symmetries of a square
    as their targets (seeded per epoch and batch, so any batch can be recomputed).

    Parameters
    ----------
    shard_dir : str or Path, or a sequence of them
        Folder(s) written by :func:`radioseg_utils.data.shards.build_dataset`, all with the
        same cutout size.
    split : {"train", "val", "test"}
        Split name.
    batch_size : int
        Cutouts per batch (the last batch of an epoch may be smaller).
    augment, shuffle : bool
        Random flips/rot90; shuffling of shards and cutouts.
    seed : int
        Seed of shuffling and augmentation.
    normalisation : str, optional
        Normalisation of the images; default the one in each folder's metadata.
    window : int
        Shards whose cutouts are shuffled together (:data:`SHUFFLE_WINDOW`).
    targets : sequence of str
        Target channels, names from :data:`~radioseg_utils.data.shards.TARGET_CHANNELS`:
        ``("mask",)`` for a segmentation model, ``("mask", "centre")`` for a U-Net with a
        centre head.

    Notes
    -----
    Items are ``(images, targets)``, float32 of shapes ``(B, size, size, 1)`` and
    ``(B, size, size, len(targets))``; ``len(loader)`` is ``ceil(n_cutouts / batch_size)``
    with ``n_cutouts`` the cutouts in the split's shards of all folders.

    Raises
    ------
    ValueError
        On a bad option, folders with different cutout sizes, or shards without a
        requested target (written before centre maps existed: rebuild them).
    """

    def __init__(self, shard_dir: str | Path | Sequence[str | Path], split: str, *,
                 batch_size: int, augment: bool = True, shuffle: bool = True, seed: int = 0,
                 normalisation: str | None = None, window: int = SHUFFLE_WINDOW,
                 targets: Sequence[str] = ("mask",)) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if window < 1:
            raise ValueError(f"window must be positive, got {window}")
        self.targets = _check_targets(targets)
        folders = [shard_dir] if isinstance(shard_dir, (str, Path)) else list(shard_dir)
        if not folders:
            raise ValueError("no shard folder given")
        self.files: list[tuple[Path, Callable[[np.ndarray], np.ndarray], int]] = []
        sizes: set[int] = set()
        for folder in folders:
            found, meta = _shards(folder, split)
            norm = _normaliser(meta, normalisation)
            self.files += [(path, norm, _count(path)) for path in found]
            sizes.add(int(meta["size"]))
        if len(sizes) > 1:
            raise ValueError(f"shard folders hold cutouts of different sizes {sorted(sizes)} px")
        self.size = sizes.pop()
        self.n_cutouts = sum(n for _, _, n in self.files)
        self.batches = _batch_slices(self.n_cutouts, batch_size)
        self.augment, self.shuffle, self.seed, self.window = augment, shuffle, seed, window
        self.epoch = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.order = self._order()

    def _order(self) -> np.ndarray:
        """``(shard, row)`` of every cutout of this epoch, in reading order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        shards = rng.permutation(len(self.files)) if self.shuffle else np.arange(len(self.files))
        parts = []
        for w in range(0, len(shards), self.window):
            pairs = np.concatenate([np.stack([np.full(self.files[i][2], i),
                                              np.arange(self.files[i][2])], axis=1)
                                    for i in shards[w:w + self.window]])
            parts.append(rng.permutation(pairs) if self.shuffle else pairs)
        return np.concatenate(parts) if parts else np.zeros((0, 2), int)

    def _shard(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised images ``(n, size, size)`` and targets ``(n, size, size, T)`` of shard
        ``i``, kept while its window is being read."""
        if i not in self._cache:
            path, norm, n = self.files[i]
            with np.load(path) as shard:
                missing = [t for t in self.targets if t not in shard.files]
                if missing:
                    raise ValueError(f"shard {path} has no {', '.join(missing)} map: it was "
                                     "written by an older radioseg; rebuild the dataset")
                images = np.stack([norm(c) for c in shard["image"]]).astype(np.float32)
                stacked = np.stack([shard[t].astype(np.float32) for t in self.targets], -1)
            if len(images) != n:
                raise ValueError(f"shard {path} changed while training: {len(images)} cutouts, "
                                 f"{n} when the loader was made")
            if len(self._cache) >= 2 * self.window:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = (images, stacked)
        return self._cache[i]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = self.order[self.batches[index]]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        images, targets = [], []
        for i, row in pairs:
            shard_images, shard_targets = self._shard(int(i))
            image, target = shard_images[row][..., None], shard_targets[row]
            if self.augment:
                image, target = _augment(rng, image, target)
            images.append(image)
            targets.append(target)
        return np.stack(images), np.stack(targets)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def _count(path: Path) -> int:
    """Cutouts in one shard (read from its ``origin`` array)."""
    with np.load(path) as shard:
        return len(shard["origin"])


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
