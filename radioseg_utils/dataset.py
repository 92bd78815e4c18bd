"""Training data: image/mask cutouts, spatially disjoint splits, shards and a tf.data pipeline.

The field is divided into large blocks (``block`` pixels a side; ``(h, nx)`` gives
horizontal strips), and the blocks are dealt to the train/val/test splits (80:10:10 by
block count) by a seeded permutation (:func:`split_layout`). A cutout belongs to a split
only if the cutout, grown by a guard band of ``guard`` pixels on every side, lies in that
split's blocks (or off the grid), so no pixel of a test cutout is in a training cutout, and
sources straddling a border are not shared. Cutouts are placed on a sliding grid
(``stride`` < ``size`` overlaps them) or at random (:func:`cutout_positions`).

:func:`build_dataset` runs masks → cutouts → shards. Shards are compressed ``.npz`` files
``<split>-NNNNN.npz`` holding ``image`` (float32 Jy/beam, raw), ``mask`` (uint8),
``labels`` (int32, catalogue row + 1), ``centre`` (float16 heat map of the selected sources'
core positions, :func:`radioseg_utils.centres.centre_heatmap`) and ``origin`` (int64
``(y, x)`` of each cutout in the field), beside ``metadata.json`` (band, integration, noise, default normalisation, seed,
sizes, split blocks, counts, class balance, provenance). Images are stored raw and
normalised when read (:func:`make_tf_dataset`, :func:`load_split_arrays`), so one set of
shards serves every normalisation of :mod:`radioseg_utils.normalise`. :func:`make_tf_dataset`
streams one shard folder or several (e.g. fields of several bands and integrations, each
normalised with its own noise) as one dataset, with the mask or the mask and the centre map
as targets (:data:`TARGETS`).
"""

from __future__ import annotations

import itertools
import json
import logging
import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from . import __version__
from .bands import Band, get_band
from .centres import CENTRE_SIGMA, centre_heatmap
from .masks import DEFAULT_K_SIGMA, DEFAULT_SNR_MIN, DEFAULT_TILE, make_masks
from .noise import estimate_noise
from .normalise import NORMALISATIONS, normalise

__all__ = [
    "SPLITS",
    "SPLIT_FRACTIONS",
    "DEFAULT_SIZE",
    "TARGETS",
    "SplitLayout",
    "SplitArrays",
    "split_layout",
    "cutout_positions",
    "build_dataset",
    "read_metadata",
    "load_split_arrays",
    "make_tf_dataset",
]

logger = logging.getLogger(__name__)

#: Split names, in code order (0, 1, 2).
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Default fraction of the blocks in each split.
SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)
#: Default cutout side in pixels (the poster's U-Net input).
DEFAULT_SIZE: int = 256
#: Default block side in cutout sides.
BLOCK_IN_CUTOUTS: int = 4
#: Target uncompressed size of one shard in bytes.
SHARD_BYTES: int = 32 * 2**20
#: Default shuffle buffer of :func:`make_tf_dataset`, in cutouts.
SHUFFLE_BUFFER: int = 1024
#: Target maps a shard can give, in channel order.
TARGETS: tuple[str, ...] = ("mask", "centre")
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class SplitLayout:
    """Assignment of field blocks to the splits.

    Attributes
    ----------
    shape : (ny, nx)
        Field shape in pixels.
    block : (by, bx)
        Block shape in pixels (edge blocks may be smaller).
    guard : int
        Guard band in pixels between a cutout and any block of another split.
    blocks : ndarray of int8, shape (ceil(ny/by), ceil(nx/bx))
        Split code (index into :data:`SPLITS`) of each block.
    """

    shape: tuple[int, int]
    block: tuple[int, int]
    guard: int
    blocks: np.ndarray

    def pixel_map(self) -> np.ndarray:
        """Split code of every pixel, int8 array of :attr:`shape` (for small fields)."""
        by, bx = self.block
        full = np.repeat(np.repeat(self.blocks, by, axis=0), bx, axis=1)
        return full[: self.shape[0], : self.shape[1]]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready description (the block grid as nested lists of split names)."""
        return {"shape": list(self.shape), "block": list(self.block), "guard": self.guard,
                "blocks": [[SPLITS[c] for c in row] for row in self.blocks.tolist()]}


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


def split_layout(
    shape: tuple[int, int],
    *,
    block: int | tuple[int, int],
    guard: int,
    seed: int,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
) -> SplitLayout:
    """Deal the blocks of a field to train/val/test with a seeded permutation.

    Parameters
    ----------
    shape : (ny, nx)
        Field shape in pixels.
    block : int or (by, bx)
        Block side(s) in pixels; ``(h, nx)`` makes horizontal strips.
    guard : int
        Guard band in pixels (>= 0), see :class:`SplitLayout`.
    seed : int
        Seed of the permutation.
    fractions : (train, val, test)
        Fractions of the blocks; val and test get at least one block each.

    Raises
    ------
    ValueError
        If the field has fewer than 3 blocks, or the fractions are not positive.
    """
    by, bx = (block, block) if np.ndim(block) == 0 else (int(block[0]), int(block[1]))
    if by < 1 or bx < 1 or guard < 0:
        raise ValueError(f"block must be positive and guard >= 0, got block={block}, guard={guard}")
    if len(fractions) != 3 or min(fractions) <= 0:
        raise ValueError(f"need three positive split fractions, got {fractions}")
    nby, nbx = -(-shape[0] // by), -(-shape[1] // bx)
    n = nby * nbx
    if n < 3:
        raise ValueError(f"field {tuple(shape)} has only {n} block(s) of {by}x{bx} px; "
                         "need at least 3 (one per split): use a smaller block")
    total = sum(fractions)
    n_val = max(1, round(n * fractions[1] / total))
    n_test = max(1, round(n * fractions[2] / total))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{n} blocks are too few for fractions {fractions}; use a smaller block")
    codes = np.repeat(np.arange(3, dtype=np.int8), [n_train, n_val, n_test])
    blocks = codes[np.random.default_rng(seed).permutation(n)].reshape(nby, nbx)
    return SplitLayout(shape=(int(shape[0]), int(shape[1])), block=(by, bx), guard=int(guard),
                       blocks=blocks)


def _valid(layout: SplitLayout, code: int, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    """Which cutouts at (y, x) lie, with their guard band, in blocks of split ``code``."""
    (ny, nx), (by, bx), g = layout.shape, layout.block, layout.guard
    other = np.pad((layout.blocks != code).astype(np.int64), ((1, 0), (1, 0)))
    csum = other.cumsum(0).cumsum(1)
    nby, nbx = layout.blocks.shape
    r0 = np.clip((y - g) // by, 0, nby - 1)
    r1 = np.clip((y + size + g - 1) // by, 0, nby - 1) + 1
    c0 = np.clip((x - g) // bx, 0, nbx - 1)
    c1 = np.clip((x + size + g - 1) // bx, 0, nbx - 1) + 1
    n_other = csum[r1, c1] - csum[r0, c1] - csum[r1, c0] + csum[r0, c0]
    inside = (y >= 0) & (x >= 0) & (y + size <= ny) & (x + size <= nx)
    return inside & (n_other == 0)


def cutout_positions(
    layout: SplitLayout,
    split: str,
    *,
    size: int,
    stride: int | None = None,
    n_random: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """First pixels ``(y, x)`` of the cutouts of one split.

    Parameters
    ----------
    layout : SplitLayout
        Block assignment from :func:`split_layout`.
    split : {"train", "val", "test"}
        Split name.
    size : int
        Cutout side in pixels.
    stride : int, optional
        Sliding-grid step in pixels (``stride < size`` overlaps cutouts). Default
        ``size // 2``. Ignored when ``n_random`` is given.
    n_random : int, optional
        Draw this many random positions (uniform over the split's valid positions)
        instead of a sliding grid.
    seed : int
        Seed of the random positions.

    Returns
    -------
    ndarray of int64, shape (n, 2)
        ``(y, x)`` per cutout, sorted by row then column for the sliding grid.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    code = SPLITS.index(split)
    ny, nx = layout.shape
    if size < 1 or size > min(ny, nx):
        raise ValueError(f"cutout size {size} must be between 1 and the field side {min(ny, nx)}")
    if n_random is None:
        stride = (size // 2 or 1) if stride is None else int(stride)
        if stride < 1:
            raise ValueError(f"stride must be a positive number of pixels, got {stride}")
        y, x = (a.ravel() for a in np.meshgrid(np.arange(0, ny - size + 1, stride),
                                               np.arange(0, nx - size + 1, stride), indexing="ij"))
        keep = _valid(layout, code, y, x, size)
        return np.stack([y[keep], x[keep]], axis=1).astype(np.int64)
    rng = np.random.default_rng([seed, code])
    found: list[np.ndarray] = []
    n_found = 0
    for _ in range(100):  # rejection sampling over the whole field
        y = rng.integers(0, ny - size + 1, 4 * n_random)
        x = rng.integers(0, nx - size + 1, 4 * n_random)
        keep = _valid(layout, code, y, x, size)
        found.append(np.stack([y[keep], x[keep]], axis=1))
        n_found += int(keep.sum())
        if n_found >= n_random:
            return np.concatenate(found)[:n_random].astype(np.int64)
    raise ValueError(f"found only {n_found} valid positions for {n_random} random {split} cutouts "
                     f"of {size} px: the split regions are too small for this size and guard")


def _centre_cutouts(centres: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """Centre heat maps (float16) of the cutouts at ``positions`` from ``(x, y)`` centres."""
    x, y = centres
    reach = size + 4 * CENTRE_SIGMA
    maps = []
    for y0, x0 in positions:
        near = (x > x0 - reach) & (x < x0 + reach) & (y > y0 - reach) & (y < y0 + reach)
        maps.append(centre_heatmap(x[near], y[near], (size, size), origin=(int(y0), int(x0))))
    return np.stack(maps).astype(np.float16)


def _write_split(out_dir: Path, split: str, image: np.ndarray, binary: np.ndarray,
                 labels: np.ndarray, centres: np.ndarray, positions: np.ndarray,
                 size: int) -> dict[str, object]:
    """Write one split's cutouts as shards; return its counts."""
    per_shard = max(1, SHARD_BYTES // (size * size * 11))
    n_written = n_dropped = n_source_px = n_shards = 0
    sources: set[int] = set()
    for start in range(0, len(positions), per_shard):
        pos = positions[start:start + per_shard]
        cut = lambda a, dt: np.stack([np.asarray(a[y:y + size, x:x + size], dtype=dt)  # noqa: E731
                                      for y, x in pos])
        img, msk, lab = cut(image, np.float32), cut(binary, np.uint8), cut(labels, np.int32)
        finite = np.isfinite(img).all(axis=(1, 2))
        n_dropped += int((~finite).sum())
        if not finite.any():
            continue
        img, msk, lab, pos = img[finite], msk[finite], lab[finite], pos[finite]
        np.savez_compressed(out_dir / f"{split}-{n_shards:05d}.npz", image=img, mask=msk,
                            labels=lab, centre=_centre_cutouts(centres, pos, size), origin=pos)
        n_shards += 1
        n_written += len(img)
        n_source_px += int(msk.sum(dtype=np.int64))
        sources.update(np.unique(lab[lab > 0]).tolist())
    return {"n_cutouts": n_written, "n_shards": n_shards, "n_dropped_nonfinite": n_dropped,
            "n_sources": len(sources),
            "source_pixel_fraction": n_source_px / (n_written * size * size) if n_written else 0.0}


def build_dataset(
    image: np.ndarray,
    truth: Table,
    wcs: WCS,
    band: str | Band,
    *,
    out_dir: str | Path,
    size: int = DEFAULT_SIZE,
    stride: int | None = None,
    n_random: int | None = None,
    snr_min: float = DEFAULT_SNR_MIN,
    k_sigma: float = DEFAULT_K_SIGMA,
    footprint: str = "model",
    normalisation: str = "minmax",
    noise: float | None = None,
    integration: int | None = None,
    seed: int = 0,
    block: int | tuple[int, int] | None = None,
    guard: int | None = None,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
    primary_beam: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    provenance: dict[str, object] | None = None,
    overwrite: bool = False,
) -> dict[str, object]:
    """Masks → cutouts → shards of a field and its truth catalogue.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Field in Jy/beam (a memory map is fine).
    truth : astropy.table.Table
        Truth catalogue of the field (tidy columns).
    wcs : astropy.wcs.WCS
        Celestial WCS of ``image``.
    band : str or Band
        SDC1 band.
    out_dir : str or Path
        Shard folder; must be empty or absent unless ``overwrite``.
    size, stride, n_random
        Cutout side, sliding step (default ``size // 2``) or number of random cutouts
        (split between the splits by ``fractions``); see :func:`cutout_positions`.
    snr_min, k_sigma, footprint
        Mask options, see :func:`radioseg_utils.masks.make_masks`.
    normalisation : str
        Default normalisation applied when the shards are read (one of
        :data:`~radioseg_utils.normalise.NORMALISATIONS`); images are stored raw.
    noise : float, optional
        Image rms in Jy/beam. Default: the band's rms for ``integration`` if given, else
        the robust rms of the image (:func:`radioseg_utils.noise.estimate_noise`).
    integration : int, optional
        Integration time in hours (recorded; sets the default noise).
    seed : int
        Seed of the split assignment and of random cutouts.
    block, guard : optional
        Split block side (default ``4 * size``) and guard band (default ``size // 2``).
    fractions : (train, val, test)
        Block fractions of the splits.
    primary_beam : callable, optional
        Primary-beam attenuation for the masks (apparent fluxes).
    provenance : dict, optional
        Extra JSON-ready provenance (input file names, simulation parameters, ...).
    overwrite : bool
        Replace shards already in ``out_dir``.

    Returns
    -------
    dict
        The metadata written to ``out_dir / "metadata.json"``.

    Raises
    ------
    FileExistsError
        If ``out_dir`` holds shards and ``overwrite`` is False.
    ValueError
        On a bad option or image; :class:`~radioseg_utils.masks.EmptySelectionError` if no
        source passes the cut; if a split gets no cutout.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; expected one of "
                         f"{', '.join(NORMALISATIONS)}")
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    band = get_band(band)
    out_dir = Path(out_dir)
    old = sorted(out_dir.glob("*.npz")) if out_dir.is_dir() else []
    if old and not overwrite:
        raise FileExistsError(f"{out_dir} already holds {len(old)} shards; pass overwrite=True")
    for path in old:
        path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if noise is None:
        noise = band.noise(integration) if integration is not None else estimate_noise(image)[1]
    shape = image.shape
    big = shape[0] * shape[1] > DEFAULT_TILE**2
    binary, labels, report = make_masks(
        truth, wcs, band, shape=shape, noise=noise, snr_min=snr_min, k_sigma=k_sigma,
        footprint=footprint, primary_beam=primary_beam, out_dir=out_dir / "field" if big else None)
    # centres at the core positions the evaluation matches (the centroid if none is given)
    core = ("ra_core", "dec_core") if "ra_core" in truth.colnames else ("ra_cent", "dec_cent")
    centres = np.array(wcs.celestial.world_to_pixel_values(
        *(np.asarray(truth[c][report.rows], float) for c in core)))
    layout = split_layout(shape, block=block or BLOCK_IN_CUTOUTS * size,
                          guard=size // 2 if guard is None else guard, seed=seed,
                          fractions=fractions)
    splits: dict[str, object] = {}
    for code, split in enumerate(SPLITS):
        n = None if n_random is None else max(1, round(n_random * fractions[code] / sum(fractions)))
        pos = cutout_positions(layout, split, size=size, stride=stride, n_random=n, seed=seed)
        splits[split] = _write_split(out_dir, split, image, binary, labels, centres, pos, size)
        if splits[split]["n_cutouts"] == 0:
            raise ValueError(f"split {split!r} has no cutout of {size} px: use a smaller size, "
                             "block or guard, or a larger field")
        logger.info("dataset %s: %s", split, splits[split])
    metadata = {
        "band": band.name, "integration_h": integration, "noise_jy": float(noise),
        "normalisation": normalisation, "seed": seed, "size": size,
        "stride": None if n_random is not None else (stride or size // 2 or 1),
        "n_random": n_random, "shape": list(shape), "layout": layout.as_dict(),
        "masks": report.as_dict(), "splits": splits,
        "provenance": {"radioseg": __version__, "numpy": np.__version__,
                       "python": platform.python_version(),
                       "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       **(provenance or {})},
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
    return metadata


def read_metadata(shard_dir: str | Path) -> dict[str, object]:
    """The ``metadata.json`` of a shard folder written by :func:`build_dataset`."""
    path = Path(shard_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {METADATA_FILE} in {shard_dir}: not a dataset shard folder")
    return json.loads(path.read_text())


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
    if not targets or any(t not in TARGETS for t in targets) or len(set(targets)) < len(targets):
        raise ValueError(f"targets must be distinct names among {', '.join(TARGETS)}, "
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
        Target channels, names from :data:`TARGETS`: ``("mask",)`` for a segmentation
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
