"""The training target of the U-Net's centre head: a Gaussian heat map of source centres
(CenterNet, Zhou et al. 2019), decoded by :mod:`radioseg_utils.postprocess.centres`.

:func:`centre_heatmap` draws a Gaussian of ``sigma`` pixels (default :data:`CENTRE_SIGMA`,
about half the B1 beam FWHM) at each selected source, 1 exactly at the pixel nearest the
source position, the maximum where sources overlap.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CENTRE_SIGMA",
    "centre_heatmap",
]


#: Width (pixels, Gaussian sigma) of the centre target: FWHM 2.4 px, about one SDC1 beam.
CENTRE_SIGMA: float = 1.0


#: Half-width of the drawn Gaussians, in sigmas.
_TRUNCATE: float = 4.0


def centre_heatmap(
    x: np.ndarray,
    y: np.ndarray,
    shape: tuple[int, int],
    *,
    sigma: float = CENTRE_SIGMA,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Heat map of source centres: Gaussian peaks of height 1 at the nearest pixels.

    Parameters
    ----------
    x, y : array_like
        Source positions in pixels of the full grid (0-based).
    shape : (ny, nx)
        Shape of the map.
    sigma : float
        Gaussian sigma in pixels.
    origin : (y0, x0)
        Grid pixel of the map's first pixel (for a cutout of a larger field).

    Returns
    -------
    ndarray of float32, shape ``shape``
        Maximum over sources of ``exp(-r**2 / (2 sigma**2))``, ``r`` the distance to the
        source's nearest pixel; sources off the map still contribute their wings.

    Raises
    ------
    ValueError
        If ``x`` and ``y`` differ in length, a position is not finite or ``sigma <= 0``.

    Examples
    --------
    >>> heat = centre_heatmap([2.2], [1.0], (3, 5))
    >>> heat[1].astype(float).round(2).tolist()
    [0.14, 0.61, 1.0, 0.61, 0.14]
    """
    x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("source positions must be finite")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    ny, nx = shape
    heat = np.zeros((ny, nx), np.float32)
    half = int(np.ceil(_TRUNCATE * sigma))
    offsets = np.arange(-half, half + 1)
    profile = np.exp(-0.5 * (offsets / sigma) ** 2)
    stamp = np.outer(profile, profile).astype(np.float32)
    cx = np.rint(x).astype(np.int64) - origin[1]
    cy = np.rint(y).astype(np.int64) - origin[0]
    near = (cx >= -half) & (cx < nx + half) & (cy >= -half) & (cy < ny + half)
    for i, j in zip(cy[near], cx[near]):
        y0, y1, x0, x1 = max(0, i - half), min(ny, i + half + 1), max(0, j - half), min(nx, j + half + 1)
        cut = stamp[y0 - (i - half): y1 - (i - half), x0 - (j - half): x1 - (j - half)]
        np.maximum(heat[y0:y1, x0:x1], cut, out=heat[y0:y1, x0:x1])
    return heat
