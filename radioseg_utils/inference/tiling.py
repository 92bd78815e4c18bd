"""Tiled inference of a segmentation model on images of any size, with blended seams.

:func:`predict_tiled` cuts the image into overlapping square tiles (the grid of
:func:`radioseg_utils.inference.tiling.tile_starts`), runs the model on batches of tiles and
accumulates the predictions with smooth weights, so that tile borders leave no seam:

* along every tile side shared with a neighbour the weight is 0 for the outer
  ``EDGE_MARGIN_FRACTION * overlap`` pixels (where a convolutional model sees the zero
  padding), then rises as a Hann (``sin^2``) ramp to 1 across the rest of the overlap;
  sides on the image border are not tapered;
* the weight of a tile is the product of a y and an x profile, so the sum of the weights
  over all tiles is separable too and is divided out with two 1-D arrays: memory is the
  output array plus one batch of tiles, and the output may be a :class:`numpy.memmap`.

The work is organised by rows of tiles (:class:`TileGrid`): :func:`predict_row` returns the
weighted contribution of one row of tiles as a strip of ``tile`` image rows, and the
probability map is the sum of the strips in row order (:func:`predict_tiled`). A row is the
unit that :mod:`radioseg_utils.inference.streaming` stores, resumes and distributes, so a streamed
or distributed run adds the same numbers in the same order as one in memory.

Models may have several output channels: ``(B, H, W, C)`` outputs give ``(ny, nx, C)``
maps (``(ny, nx)`` when ``C == 1``, as for a plain probability model).

Non-finite input pixels are set to 0 before normalisation and get probability 0;
non-finite model outputs become 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

__all__ = [
    "DEFAULT_TILE",
    "DEFAULT_OVERLAP",
    "DEFAULT_BATCH",
    "EDGE_MARGIN_FRACTION",
    "TileGrid",
    "tile_weights",
    "call_model",
    "predict_row",
    "predict_tiled",
    "tile_starts",
]

logger = logging.getLogger(__name__)

#: Tile side in pixels (a multiple of 2**depth of the U-Nets of radioseg).
DEFAULT_TILE: int = 256
#: Pixels shared by neighbouring tiles.
DEFAULT_OVERLAP: int = 32
#: Tiles per model call.
DEFAULT_BATCH: int = 8
#: Fraction of the overlap, at each shared tile side, given zero weight.
EDGE_MARGIN_FRACTION: float = 0.25

Model = Callable[[np.ndarray], np.ndarray]


def tile_weights(length: int, overlap: int, *, taper_start: bool, taper_end: bool) -> np.ndarray:
    """1-D blending profile of a tile side.

    Parameters
    ----------
    length : int
        Tile side in pixels.
    overlap : int
        Overlap with the neighbour in pixels.
    taper_start, taper_end : bool
        Whether the first / last ``overlap`` pixels are tapered (sides with a neighbour).

    Returns
    -------
    ndarray, shape (length,)
        0 over the outer ``floor(EDGE_MARGIN_FRACTION * overlap)`` pixels of a tapered
        side, a ``sin^2`` ramp over the rest of the overlap, 1 elsewhere. Two tiles that
        overlap by exactly ``overlap`` pixels have profiles summing to 1 there.

    Examples
    --------
    >>> tile_weights(8, 4, taper_start=True, taper_end=False).round(2).tolist()
    [0.0, 0.15, 0.85, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    w = np.ones(length)
    if overlap <= 0:
        return w
    margin = int(math.floor(EDGE_MARGIN_FRACTION * overlap))
    ramp_len = overlap - 2 * margin
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / ramp_len) ** 2
    profile = np.concatenate([np.zeros(margin), ramp, np.ones(margin)])[: min(overlap, length)]
    if taper_start:
        w[: profile.size] *= profile
    if taper_end:
        w[length - profile.size :] *= profile[::-1]
    return w


def _axis_profiles(n: int, tile: int, overlap: int) -> tuple[list[int], list[np.ndarray], np.ndarray]:
    """Tile starts, their (cropped) weight profiles, and 1 / sum of profiles per pixel.

    Every pixel has a positive sum: neighbours overlap by at least ``overlap`` pixels, more
    than the two zero margins together.
    """
    starts = tile_starts(n, tile, overlap)
    profiles = []
    total = np.zeros(n)
    for k, s in enumerate(starts):
        length = min(tile, n - s)
        w = tile_weights(length, overlap, taper_start=k > 0, taper_end=k < len(starts) - 1)
        profiles.append(w)
        total[s : s + length] += w
    return starts, profiles, 1.0 / total


@dataclass(frozen=True)
class TileGrid:
    """The overlapping tiles of an image and their blending weights.

    Parameters
    ----------
    shape : (ny, nx)
        Image shape in pixels.
    tile : int
        Tile side in pixels (tiles of an image smaller than ``tile`` are cropped).
    overlap : int
        Pixels shared by neighbouring tiles, ``0 <= overlap < tile``.

    Raises
    ------
    ValueError
        For bad tile or overlap sizes.

    Examples
    --------
    >>> grid = TileGrid((100, 300), tile=64, overlap=16)
    >>> grid.n_rows, grid.n_cols, grid.row_span(1)
    (2, 6, (36, 100))
    """

    shape: tuple[int, int]
    tile: int
    overlap: int
    _y: tuple = field(init=False, repr=False, compare=False)
    _x: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tile < 1 or not 0 <= self.overlap < self.tile:
            raise ValueError("need tile >= 1 and 0 <= overlap < tile, "
                             f"got tile={self.tile}, overlap={self.overlap}")
        object.__setattr__(self, "_y", _axis_profiles(self.shape[0], self.tile, self.overlap))
        object.__setattr__(self, "_x", _axis_profiles(self.shape[1], self.tile, self.overlap))

    @property
    def n_rows(self) -> int:
        """Rows of tiles."""
        return len(self._y[0])

    @property
    def n_cols(self) -> int:
        """Tiles per row."""
        return len(self._x[0])

    def row_span(self, iy: int) -> tuple[int, int]:
        """Image rows ``[y0, y1)`` covered by row ``iy`` of tiles."""
        y0 = self._y[0][iy]
        return y0, y0 + self._y[1][iy].size


def call_model(model, batch: np.ndarray) -> np.ndarray:
    """Float32 outputs ``(B, H, W, C)`` of a Keras model (``predict_on_batch``) or any
    callable for a batch ``(B, H, W, 1)``; raises ValueError for outputs of another size."""
    if hasattr(model, "predict_on_batch"):
        out = model.predict_on_batch(batch)
    else:
        out = model(batch)
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 4 or out.shape[:3] != batch.shape[:3] or out.shape[3] < 1:
        raise ValueError(f"model returned shape {out.shape} for a batch of shape {batch.shape}; "
                         "expected (B, H, W, C) outputs of the same size")
    return out


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def predict_row(
    model: Model,
    strip: np.ndarray,
    grid: TileGrid,
    iy: int,
    *,
    batch_size: int = DEFAULT_BATCH,
    normalise: Callable[[np.ndarray], np.ndarray] | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Weighted model outputs of one row of tiles, to be summed into the full map.

    Parameters
    ----------
    model : callable or keras.Model
        As in :func:`predict_tiled`.
    strip : array-like, shape (y1 - y0, nx)
        The image rows ``[y0, y1) = grid.row_span(iy)``.
    grid : TileGrid
        Tiles of the whole image.
    iy : int
        Row of tiles.
    batch_size, normalise
        As in :func:`predict_tiled`.
    on_batch : callable, optional
        Called with the number of tiles after each model call (progress bars).

    Returns
    -------
    ndarray of float32, shape (y1 - y0, nx, C)
        Outputs times the normalised blending weights; 0 at non-finite input pixels.
        The sum over all rows (in row order) is the output of :func:`predict_tiled`.
    """
    y0, y1 = grid.row_span(iy)
    if strip.shape != (y1 - y0, grid.shape[1]):
        raise ValueError(f"strip of row {iy} has shape {strip.shape}, expected {(y1 - y0, grid.shape[1])}")
    tile = grid.tile
    wy = (grid._y[1][iy] * grid._y[2][y0:y1])[:, None]
    xs, wxs, inv_x = grid._x
    acc = None
    for group in _batches(list(range(len(xs))), batch_size):
        # always a full batch (the last one padded with blank tiles): one input shape per
        # model, so backends that compile per shape (XLA under JAX) compile once
        batch = np.zeros((batch_size, tile, tile, 1), np.float32)
        regions = []
        for b, ix in enumerate(group):
            sx = slice(xs[ix], xs[ix] + wxs[ix].size)
            data = np.asarray(strip[:, sx], dtype=np.float32)
            good = np.isfinite(data)
            data = np.where(good, data, np.float32(0.0))
            if normalise is not None:
                data = np.asarray(normalise(data), dtype=np.float32)
            batch[b, : data.shape[0], : data.shape[1], 0] = data
            regions.append((sx, good, ix))
        pred = call_model(model, batch)
        if acc is None:
            acc = np.zeros((y1 - y0, grid.shape[1], pred.shape[3]), np.float32)
        for b, (sx, good, ix) in enumerate(regions):
            p = pred[b, : good.shape[0], : good.shape[1], :]
            p = np.where(good[..., None] & np.isfinite(p), p, np.float32(0.0))
            w = (wy * (wxs[ix] * inv_x[sx])[None, :]).astype(np.float32)
            acc[:, sx] += w[..., None] * p
        if on_batch is not None:
            on_batch(len(group))
    return acc


def predict_tiled(
    model: Model,
    image: np.ndarray,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = DEFAULT_BATCH,
    normalise: Callable[[np.ndarray], np.ndarray] | None = None,
    out: np.ndarray | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Run a segmentation model over an image of any size, tile by tile, blending seams.

    Parameters
    ----------
    model : callable or keras.Model
        Maps a float32 batch ``(B, tile, tile, 1)`` to outputs ``(B, tile, tile, C)``,
        e.g. probabilities with ``C = 1`` (``predict_on_batch`` is used when the object
        has it).
    image : array-like, shape (ny, nx)
        Image, e.g. in Jy/beam; may be a memory map (only rows of tiles are read).
    tile : int
        Tile side in pixels; edge tiles of an image smaller than ``tile`` are zero-padded.
    overlap : int
        Pixels shared by neighbouring tiles, ``0 <= overlap < tile``; it should exceed
        about ``1 / EDGE_MARGIN_FRACTION`` times the reach of the model's border effects.
    batch_size : int
        Tiles per model call (bounds the memory of one step).
    normalise : callable, optional
        Applied to each tile (NaN already set to 0) before the model, e.g.
        ``functools.partial(radioseg_utils.data.normalise.normalise, method="minmax")``, as
        the training cutouts were normalised one by one. Default: none.
    out : ndarray, shape (ny, nx) or (ny, nx, C), optional
        Float array receiving the result (e.g. a :class:`numpy.memmap`); overwritten.
    progress : bool
        Show a tqdm progress bar over tiles (with the remaining time).

    Returns
    -------
    ndarray of float32, shape (ny, nx) for one output channel, else (ny, nx, C)
        Blended outputs (``out`` when given); 0 at non-finite input pixels.

    Raises
    ------
    ValueError
        For a non-2-D image, bad tile/overlap/batch sizes, an ``out`` of the wrong shape,
        or a model output of the wrong shape.
    """
    if len(getattr(image, "shape", ())) != 2:
        raise ValueError(f"expected a 2-D image, got shape {getattr(image, 'shape', None)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    grid = TileGrid(tuple(image.shape), tile, overlap)
    ny, nx = grid.shape
    if out is not None:
        if out.shape[:2] != (ny, nx) or out.ndim not in (2, 3):
            raise ValueError(f"out has shape {out.shape}, expected {(ny, nx)} or {(ny, nx)} + (C,)")
        out[...] = 0.0
    logger.info("tiled inference: %d x %d image, %d tiles of %d px", ny, nx,
                grid.n_rows * grid.n_cols, tile)
    with tqdm(total=grid.n_rows * grid.n_cols, desc="tiles", unit="tile",
              disable=not progress) as bar:
        for iy in range(grid.n_rows):
            y0, y1 = grid.row_span(iy)
            strip = predict_row(model, image[y0:y1, 0:nx], grid, iy, batch_size=batch_size,
                                normalise=normalise, on_batch=bar.update)
            if out is None:
                shape = (ny, nx) if strip.shape[2] == 1 else (ny, nx, strip.shape[2])
                out = np.zeros(shape, np.float32)
            if out.ndim == 2 and strip.shape[2] == 1:
                out[y0:y1] += strip[..., 0]
            elif out.shape[2:] == strip.shape[2:]:
                out[y0:y1] += strip
            else:
                raise ValueError(f"out has shape {out.shape} but the model has "
                                 f"{strip.shape[2]} output channels")
    return out


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """0-based starts of tiles of side ``tile`` covering ``n`` pixels with ``overlap``.

    The last tile is aligned with the edge, so every tile is whole when ``n >= tile``
    (the last overlap may then be larger); a single tile of ``n`` when ``n <= tile``.

    Examples
    --------
    >>> tile_starts(10, 4, 1)
    [0, 3, 6]
    >>> tile_starts(3, 4, 1)
    [0]
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile, got {tile=}, {overlap=}")
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, tile - overlap))
    return starts + [n - tile]
