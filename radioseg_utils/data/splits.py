"""The train/validation/test split of a field: disjoint regions of the image, in the
poster's 80:10:10 proportions, and the cutout positions inside each so that no cutout
crosses a split border.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SPLITS",
    "SPLIT_FRACTIONS",
    "SplitLayout",
    "split_layout",
    "cutout_positions",
]


#: Split names, in code order (0, 1, 2).
SPLITS: tuple[str, ...] = ("train", "val", "test")


#: Default fraction of the blocks in each split.
SPLIT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


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
