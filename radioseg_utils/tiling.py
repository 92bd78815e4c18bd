"""Tiled inference of a segmentation model on images of any size, with blended seams.

:func:`predict_tiled` cuts the image into overlapping square tiles (the grid of
:func:`radioseg_utils.fitsio.tile_starts`), runs the model on batches of tiles and
accumulates the predictions with smooth weights, so that tile borders leave no seam:

* along every tile side shared with a neighbour the weight is 0 for the outer
  ``EDGE_MARGIN_FRACTION * overlap`` pixels (where a convolutional model sees the zero
  padding), then rises as a Hann (``sin^2``) ramp to 1 across the rest of the overlap;
  sides on the image border are not tapered;
* the weight of a tile is the product of a y and an x profile, so the sum of the weights
  over all tiles is separable too and is divided out with two 1-D arrays: memory is the
  output array plus one batch of tiles, and the output may be a :class:`numpy.memmap`.

Non-finite input pixels are set to 0 before normalisation and get probability 0;
non-finite model outputs become 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import logging
import math

import numpy as np
from tqdm.auto import tqdm

from .fitsio import tile_starts

__all__ = ["DEFAULT_TILE", "DEFAULT_OVERLAP", "DEFAULT_BATCH", "EDGE_MARGIN_FRACTION",
           "tile_weights", "predict_tiled"]

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


def _call_model(model, batch: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_on_batch"):
        out = model.predict_on_batch(batch)
    else:
        out = model(batch)
    out = np.asarray(out, dtype=np.float32)
    if out.shape != batch.shape:
        raise ValueError(f"model returned shape {out.shape} for a batch of shape {batch.shape}; "
                         "expected (B, H, W, 1) probabilities of the same size")
    return out


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
        Maps a float32 batch ``(B, tile, tile, 1)`` to probabilities of the same shape
        (``predict_on_batch`` is used when the object has it).
    image : array-like, shape (ny, nx)
        Image, e.g. in Jy/beam; may be a memory map (only tile slices are read).
    tile : int
        Tile side in pixels; edge tiles of an image smaller than ``tile`` are zero-padded.
    overlap : int
        Pixels shared by neighbouring tiles, ``0 <= overlap < tile``; it should exceed
        about ``1 / EDGE_MARGIN_FRACTION`` times the reach of the model's border effects.
    batch_size : int
        Tiles per model call (bounds the memory of one step).
    normalise : callable, optional
        Applied to each tile (NaN already set to 0) before the model, e.g.
        ``functools.partial(radioseg_utils.normalise.normalise, method="minmax")``, as
        the training cutouts were normalised one by one. Default: none.
    out : ndarray, shape (ny, nx), optional
        Float array receiving the result (e.g. a :class:`numpy.memmap`); overwritten.
    progress : bool
        Show a tqdm progress bar over tiles.

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        Blended probabilities (``out`` when given); 0 at non-finite input pixels.

    Raises
    ------
    ValueError
        For a non-2-D image, bad tile/overlap/batch sizes, an ``out`` of the wrong shape,
        or a model output of the wrong shape.
    """
    if len(getattr(image, "shape", ())) != 2:
        raise ValueError(f"expected a 2-D image, got shape {getattr(image, 'shape', None)}")
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile, got {tile=}, {overlap=}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ny, nx = image.shape
    if out is None:
        out = np.zeros((ny, nx), np.float32)
    elif out.shape != (ny, nx):
        raise ValueError(f"out has shape {out.shape}, expected {(ny, nx)}")
    else:
        out[...] = 0.0
    ys, wys, inv_y = _axis_profiles(ny, tile, overlap)
    xs, wxs, inv_x = _axis_profiles(nx, tile, overlap)
    jobs = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    logger.info("tiled inference: %d x %d image, %d tiles of %d px", ny, nx, len(jobs), tile)
    bar = tqdm(total=len(jobs), desc="tiles", unit="tile", disable=not progress)
    try:
        for group in _batches(jobs, batch_size):
            batch = np.zeros((len(group), tile, tile, 1), np.float32)
            regions = []
            for b, (iy, ix) in enumerate(group):
                sy = slice(ys[iy], ys[iy] + wys[iy].size)
                sx = slice(xs[ix], xs[ix] + wxs[ix].size)
                data = np.asarray(image[sy, sx], dtype=np.float32)
                good = np.isfinite(data)
                data = np.where(good, data, np.float32(0.0))
                if normalise is not None:
                    data = np.asarray(normalise(data), dtype=np.float32)
                batch[b, : data.shape[0], : data.shape[1], 0] = data
                regions.append((sy, sx, good, iy, ix))
            pred = _call_model(model, batch)
            for b, (sy, sx, good, iy, ix) in enumerate(regions):
                p = pred[b, : good.shape[0], : good.shape[1], 0]
                p = np.where(good & np.isfinite(p), p, np.float32(0.0))
                w = np.outer(wys[iy] * inv_y[sy], wxs[ix] * inv_x[sx]).astype(np.float32)
                out[sy, sx] += w * p
            bar.update(len(group))
    finally:
        bar.close()
    return out
