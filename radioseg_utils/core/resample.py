"""Linear resampling between two pixel grids covering the same area of an image.

An image whose beam spans another number of pixels than the model was trained on is shown
to the model on a zoomed grid, and the model's outputs are mapped back
(:mod:`radioseg_utils.inference.conditioning`). :class:`Regrid` is that map: pixel ``j``
of an axis of ``m`` pixels covers the same stretch as source pixels ``[j n/m, (j+1) n/m)``
of an axis of ``n``, so its centre lies at source coordinate ``(j + 0.5) n / m - 0.5``
(edges aligned, coordinates clamped to the outer source pixel centres).

Values are interpolated linearly along each axis in turn (:func:`linear_sample`), from
coordinates computed on the whole grid: the value of an output pixel depends only on its
two-by-two source neighbours, so a window computed from a section of the source equals
the same window of the whole resampled image bit for bit (what lets the streamed and the
in-memory predictions agree). NaN neighbours are left out and the weights of the others
renormalised (an output pixel is NaN only when all its neighbours are), so blanked
regions keep their extent and the valid pixels at their edge their values.

Examples
--------
>>> grid = Regrid((4, 4), (2, 2))
>>> grid.coords(0, slice(0, 2)).tolist()
[0.5, 2.5]
>>> data = np.arange(16.0).reshape(4, 4)
>>> grid.apply(data, (0, 0), slice(0, 2), slice(0, 2)).tolist()
[[2.5, 4.5], [10.5, 12.5]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Regrid", "linear_sample"]


def _split(coords: np.ndarray, origin: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper neighbour indices within a window of ``size`` starting at ``origin``,
    and the weight of the upper one."""
    below = np.floor(coords)
    weight = coords - below
    lower = below.astype(np.int64) - origin
    upper = np.where(weight > 0, lower + 1, lower)
    if lower.size and (lower.min() < 0 or upper.max() >= size):
        raise ValueError(f"coordinates {coords.min():.3f}..{coords.max():.3f} need source "
                         f"pixels outside the window [{origin}, {origin + size})")
    return lower, upper, weight


def linear_sample(src: np.ndarray, rows: np.ndarray, cols: np.ndarray, *,
                  origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Values of a 2-D array (or of a stack ``(h, w, C)``) at a separable grid of coordinates.

    Parameters
    ----------
    src : ndarray, shape (h, w) or (h, w, C)
        A window of the source grid.
    rows, cols : ndarray of float, 1-D
        Source coordinates (0-based pixel centres, in the whole source grid) of the output
        rows and columns.
    origin : (int, int)
        Source-grid ``(y, x)`` of ``src[0, 0]``.

    Returns
    -------
    ndarray of float32, shape (len(rows), len(cols)) (+ (C,))
        Bilinear interpolation over the finite neighbours (weights renormalised), computed
        in float32 (memory: a few output-sized arrays); NaN where every neighbour with a
        non-zero weight is NaN.

    Raises
    ------
    ValueError
        If a coordinate needs a pixel outside ``src``.

    Examples
    --------
    >>> linear_sample(np.array([[0.0, 2.0]]), np.array([0.0]), np.array([0.25, 1.0])).tolist()
    [[0.5, 2.0]]
    """
    src = np.asarray(src, dtype=np.float32)
    r_lo, r_hi, r_w = _split(np.asarray(rows, dtype=np.float64), origin[0], src.shape[0])
    c_lo, c_hi, c_w = _split(np.asarray(cols, dtype=np.float64), origin[1], src.shape[1])
    extra = (None,) * (src.ndim - 2)
    r_w = r_w.astype(np.float32)[(slice(None), None, *extra)]
    c_w = c_w.astype(np.float32)[(None, slice(None), *extra)]

    def separable(a: np.ndarray) -> np.ndarray:
        a = a[r_lo] * (1 - r_w) + a[r_hi] * r_w
        return a[:, c_lo] * (1 - c_w) + a[:, c_hi] * c_w

    good = np.isfinite(src)
    if good.all():
        return separable(src)
    # sum_ij wy_i wx_j g_ij v_ij = sum_j wx_j (sum_i wy_i g_ij v_ij), and the same for the
    # weights g_ij (1 where finite): two separable passes, over values and over weights
    total, weight = separable(np.where(good, src, np.float32(0))), separable(good.astype(np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.float32(np.nan))


@dataclass(frozen=True)
class Regrid:
    """The map from a source grid of ``shape`` to a grid of ``new_shape`` over the same area.

    Attributes
    ----------
    shape : (ny, nx)
        Source grid.
    new_shape : (my, mx)
        Output grid.
    """

    shape: tuple[int, int]
    new_shape: tuple[int, int]

    @classmethod
    def zoom(cls, shape: tuple[int, int], zoom: float) -> Regrid:
        """The grid of ``round(zoom * n)`` pixels per axis (at least 1) over ``shape``."""
        if not zoom > 0:
            raise ValueError(f"zoom must be positive, got {zoom}")
        return cls(tuple(int(n) for n in shape),
                   tuple(max(1, int(round(zoom * n))) for n in shape))

    @property
    def identity(self) -> bool:
        """True when both grids are the same."""
        return self.shape == self.new_shape

    @property
    def scale(self) -> tuple[float, float]:
        """Output pixels per source pixel along ``(y, x)``."""
        return self.new_shape[0] / self.shape[0], self.new_shape[1] / self.shape[1]

    def inverse(self) -> Regrid:
        """The map back from the output grid to the source grid."""
        return Regrid(self.new_shape, self.shape)

    def coords(self, axis: int, out: slice) -> np.ndarray:
        """Source coordinates of the output pixels ``out`` along ``axis`` (0: y, 1: x)."""
        n, m = self.shape[axis], self.new_shape[axis]
        j = np.arange(out.start, out.stop, dtype=np.float64)
        return np.clip((j + 0.5) * (n / m) - 0.5, 0.0, n - 1.0)

    def source_span(self, rows: slice, cols: slice) -> tuple[slice, slice]:
        """The source window an output window ``(rows, cols)`` is interpolated from."""
        spans = []
        for axis, out in enumerate((rows, cols)):
            c = self.coords(axis, out)
            spans.append(slice(int(np.floor(c.min())),
                               min(int(np.floor(c.max())) + 2, self.shape[axis])))
        return spans[0], spans[1]

    def apply(self, src: np.ndarray, origin: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
        """Output window ``(rows, cols)`` from a source window ``src`` starting at ``origin``
        (which must hold :meth:`source_span`)."""
        return linear_sample(src, self.coords(0, rows), self.coords(1, cols), origin=origin)
