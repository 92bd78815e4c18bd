"""Source centres: decoding the U-Net's centre head.

The segmentation head of a U-Net says *where there is emission*; it cannot say how many
sources a blob holds, and a faint source is a handful of pixels that a mask loss hardly
notices. The centre head (as in CenterNet, Zhou et al. 2019) predicts, for every pixel,
how close it is to the centre of a true source:

* :func:`radioseg_utils.data.heatmaps.centre_heatmap` draws the training target, a Gaussian
  at each selected source;
* :func:`find_centres` decodes a predicted map: its local maxima above a threshold, at
  least ``min_distance`` pixels apart;
* :func:`seeded_labels` turns the centres and the predicted mask into one segment per
  centre (a watershed of the image seeded at the centres, inside the mask grown by a
  small disc around every centre, so that a centre with no mask pixel still gets the
  pixels of its beam), so blends are split where, and only where, the network saw two
  sources.

Positions follow the project convention: pixel ``(x, y)`` are 0-based, pixel centres at
integers.

References
----------
Zhou, X., Wang, D. & Krähenbühl, P. 2019, "Objects as Points", arXiv:1904.07850
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

__all__ = [
    "CENTRE_RADIUS",
    "DEFAULT_CENTRE_THRESHOLD",
    "find_centres",
    "seeded_labels",
]

#: Radius (pixels) of the disc every centre owns even where the mask is empty.
CENTRE_RADIUS: float = 1.5
#: Default heat-map level of a detection (tuned on validation fields, see the book).
DEFAULT_CENTRE_THRESHOLD: float = 0.3


def find_centres(
    heat: np.ndarray,
    *,
    threshold: float = DEFAULT_CENTRE_THRESHOLD,
    min_distance: int = 1,
) -> np.ndarray:
    """Local maxima of a centre heat map: the detected sources.

    Parameters
    ----------
    heat : ndarray, shape (ny, nx)
        Predicted centre map in [0, 1] (NaN counts as 0).
    threshold : float
        Smallest heat of a detection.
    min_distance : int
        Smallest separation of two detections, in pixels (Chebyshev distance; the higher
        peak wins).

    Returns
    -------
    ndarray of int64, shape (n, 2)
        ``(row, column)`` of each detection, in order of decreasing heat.

    Raises
    ------
    ValueError
        If ``heat`` is not 2-D or ``min_distance < 1``.

    Examples
    --------
    >>> from radioseg_utils.data.heatmaps import centre_heatmap
    >>> heat = centre_heatmap([3, 9], [4, 4], (9, 14))
    >>> find_centres(heat, threshold=0.5).tolist()
    [[4, 3], [4, 9]]
    """
    heat = np.asarray(heat, float)
    if heat.ndim != 2:
        raise ValueError(f"expected a 2-D heat map, got shape {heat.shape}")
    if int(min_distance) < 1:
        raise ValueError(f"min_distance must be >= 1 pixel, got {min_distance}")
    heat = np.nan_to_num(heat, nan=0.0)
    peaks = peak_local_max(heat, min_distance=int(min_distance), threshold_abs=float(threshold),
                           exclude_border=False)
    # peak_local_max returns rows with equal heat in an undefined order: sort stably
    order = np.lexsort((peaks[:, 1], peaks[:, 0], -heat[tuple(peaks.T)])) if len(peaks) else []
    return np.asarray(peaks, np.int64).reshape(-1, 2)[order]


def seeded_labels(
    mask: np.ndarray,
    centres: np.ndarray,
    image: np.ndarray,
    *,
    radius: float = CENTRE_RADIUS,
) -> np.ndarray:
    """One segment per centre: a watershed of the image seeded at the centres.

    The region shared out is the mask plus a disc of ``radius`` pixels around every
    centre; mask pixels not connected to any centre are background (the centre head
    decides what is a source).

    Parameters
    ----------
    mask : ndarray of bool, shape (ny, nx)
        Predicted source pixels.
    centres : ndarray of int, shape (n, 2)
        ``(row, column)`` of the detections (:func:`find_centres`).
    image : ndarray, shape (ny, nx)
        Brightness map that the watershed descends (NaN treated as its minimum).
    radius : float
        Radius of the disc each centre owns, in pixels.

    Returns
    -------
    ndarray of int32, shape (ny, nx)
        ``k + 1`` on the pixels of centre ``k``, 0 elsewhere; every centre owns at least
        its own pixel.

    Raises
    ------
    ValueError
        If the shapes differ or a centre lies off the map.

    Examples
    --------
    >>> from radioseg_utils.data.heatmaps import centre_heatmap
    >>> image = centre_heatmap([2, 7], [2, 2], (5, 10))
    >>> seeded_labels(image > 0.1, np.array([[2, 2], [2, 7]]), image)[2].tolist()
    [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    """
    mask = np.asarray(mask, bool)
    image = np.asarray(image, float)
    centres = np.asarray(centres, np.int64).reshape(-1, 2)
    if mask.ndim != 2 or image.shape != mask.shape:
        raise ValueError(f"mask {mask.shape} and image {image.shape} must be 2-D and equal")
    ny, nx = mask.shape
    if len(centres) and not ((centres >= 0).all() and (centres[:, 0] < ny).all()
                             and (centres[:, 1] < nx).all()):
        raise ValueError(f"a centre lies off the {ny}x{nx} map")
    markers = np.zeros(mask.shape, np.int32)
    if not len(centres):
        return markers
    markers[centres[:, 0], centres[:, 1]] = np.arange(1, len(centres) + 1)
    r = int(np.floor(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = ndimage.binary_dilation(markers > 0, structure=(yy**2 + xx**2) <= radius**2)
    region = mask | disc
    finite = np.isfinite(image)
    work = np.where(finite, image, image[finite].min(initial=0.0))
    labels = watershed(-work, markers, mask=region)
    return labels.astype(np.int32)
