"""Test-time augmentation: average a model over the eight symmetries of the square.

A radio image has no preferred orientation, and the U-Net was trained on cutouts flipped
and rotated at random (:class:`radioseg_utils.data.loader.ShardLoader`). Averaging the
predictions on the eight flipped/rotated copies of a batch (each mapped back) removes
orientation-dependent noise from the probability and centre maps, at eight times the
inference cost. :func:`with_tta` wraps any model or callable taking ``(B, H, W, C)``
batches, so it plugs into :func:`radioseg_utils.inference.tiling.predict_tiled` and
:func:`radioseg_utils.inference.predict.segment` unchanged (square tiles keep their shape).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["N_SYMMETRIES", "dihedral", "undo_dihedral", "with_tta"]

#: Number of symmetries of the square (4 rotations, each with and without a flip).
N_SYMMETRIES: int = 8

Model = Callable[[np.ndarray], np.ndarray]


def dihedral(batch: np.ndarray, k: int) -> np.ndarray:
    """Symmetry ``k`` (0..7) of a ``(B, H, W, C)`` batch: ``k % 4`` rotations, then a flip if ``k >= 4``."""
    out = np.rot90(batch, k % 4, axes=(1, 2))
    return out[:, :, ::-1] if k >= 4 else out


def undo_dihedral(batch: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`dihedral`: ``undo_dihedral(dihedral(a, k), k) == a``.

    Examples
    --------
    >>> a = np.arange(12.0).reshape(1, 3, 4, 1)
    >>> all(np.array_equal(undo_dihedral(dihedral(a, k), k), a) for k in range(8))
    True
    """
    out = batch[:, :, ::-1] if k >= 4 else batch
    return np.rot90(out, -(k % 4), axes=(1, 2))


def with_tta(model: Model) -> Model:
    """A callable that averages ``model`` over the eight symmetries of its input batch.

    Parameters
    ----------
    model : callable
        Keras model or function ``(B, H, W, C) -> (B, H, W, K)``; for non-square tiles
        only the symmetries that keep the shape (identity, 180° rotation and the two flips
        along the axes) are used.

    Returns
    -------
    callable
        ``(B, H, W, C) float32 -> (B, H, W, K) float32``, the mean prediction.
    """
    def predict(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, np.float32)
        square = batch.shape[1] == batch.shape[2]
        ks = range(N_SYMMETRIES) if square else (0, 2, 4, 6)
        total = None
        for k in ks:
            out = np.asarray(model(np.ascontiguousarray(dihedral(batch, k))), np.float32)
            out = undo_dihedral(out, k)
            total = out if total is None else total + out
        return total / len(ks)

    return predict
