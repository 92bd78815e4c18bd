"""Connected components of a binary mask, and optional splitting of blended sources.

:func:`label_components` labels a mask with OpenCV (``connectedComponentsWithStats``) and
returns a :class:`Components` record (label image, areas, boxes, centroids).
:func:`split_blends` divides components that hold several local maxima of the image by a
watershed on the image, and :func:`component_stats` recomputes the record for any label image.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import cv2
import numpy as np
from astropy.table import Table
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

__all__ = [
    "DEFAULT_CONNECTIVITY",
    "DEFAULT_MIN_AREA",
    "DEFAULT_MIN_DISTANCE",
    "Components",
    "label_components",
    "component_stats",
    "split_blends",
]

#: Pixel connectivity of components: 8 (diagonal neighbours join) or 4.
DEFAULT_CONNECTIVITY: int = 8
#: Smallest component kept by :func:`label_components`, in pixels.
DEFAULT_MIN_AREA: int = 1
#: Smallest distance in pixels between two peaks that :func:`split_blends` separates.
DEFAULT_MIN_DISTANCE: int = 2


@dataclass(frozen=True)
class Components:
    """Labelled components of a mask.

    Attributes
    ----------
    labels : ndarray of int32, shape (ny, nx)
        0 for background, ``1..n`` for the components (consecutive).
    area : ndarray of int64, shape (n,)
        Pixels per component; ``area[i]`` belongs to label ``i + 1``.
    bbox : ndarray of int64, shape (n, 4)
        ``(x0, y0, width, height)`` of each component, 0-based pixels.
    centroid : ndarray of float64, shape (n, 2)
        Unweighted ``(x, y)`` mean pixel position of each component.
    """

    labels: np.ndarray
    area: np.ndarray
    bbox: np.ndarray
    centroid: np.ndarray

    @property
    def n(self) -> int:
        """Number of components."""
        return int(self.area.size)

    def to_table(self) -> Table:
        """One row per component: label, area, x0, y0, width, height, x, y."""
        table = Table()
        table["label"] = np.arange(1, self.n + 1, dtype=np.int32)
        table["area"] = self.area * u.pix**2
        for i, name in enumerate(("x0", "y0", "width", "height")):
            table[name] = self.bbox[:, i] * u.pix
        table["x"] = self.centroid[:, 0] * u.pix
        table["y"] = self.centroid[:, 1] * u.pix
        return table


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    return mask


def label_components(
    mask: np.ndarray,
    *,
    connectivity: int = DEFAULT_CONNECTIVITY,
    min_area: int = DEFAULT_MIN_AREA,
) -> Components:
    """Label the connected components of a binary mask with OpenCV.

    Parameters
    ----------
    mask : ndarray, shape (ny, nx)
        Foreground where non-zero (bool, integer or float; NaN counts as background).
    connectivity : {8, 4}
        8 joins diagonal neighbours, 4 only edge neighbours.
    min_area : int
        Components smaller than this many pixels are dropped (set to background); the rest
        are relabelled ``1..n`` in OpenCV's raster order of first pixel.

    Returns
    -------
    Components

    Raises
    ------
    ValueError
        If the mask is not 2-D, ``connectivity`` is not 4 or 8, or ``min_area < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((4, 6), bool); m[0, 0] = m[1, 1] = True; m[2:4, 3:6] = True
    >>> label_components(m).area.tolist()
    [2, 6]
    """
    mask = _check_mask(mask)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    if int(min_area) < 1:
        raise ValueError(f"min_area must be >= 1 pixel, got {min_area}")
    binary = (np.nan_to_num(mask.astype(float, copy=False), nan=0.0) != 0).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(
        binary, connectivity=connectivity, ltype=cv2.CV_32S
    )
    area = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
    keep = area >= int(min_area)
    lut = np.zeros(n, np.int32)
    lut[1:][keep] = np.arange(1, keep.sum() + 1, dtype=np.int32)
    bbox = stats[1:, [cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]]
    return Components(
        labels=lut[labels],
        area=area[keep],
        bbox=bbox[keep].astype(np.int64),
        centroid=centroids[1:][keep].astype(np.float64),
    )


def component_stats(labels: np.ndarray) -> Components:
    """:class:`Components` of an existing label image (labels made consecutive first).

    Parameters
    ----------
    labels : ndarray of int, shape (ny, nx)
        0 for background, positive integers for components.
    """
    labels = _check_mask(labels)
    if labels.min(initial=0) < 0:
        raise ValueError("labels must be >= 0 (0 is background)")
    ids, inverse = np.unique(labels, return_inverse=True)
    offset = 0 if ids[0] == 0 else 1
    labels = (inverse.reshape(labels.shape) + offset).astype(np.int32)
    n = int(labels.max(initial=0))
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.int64)
    bbox = np.zeros((n, 4), np.int64)
    for i, sl in enumerate(ndimage.find_objects(labels)):
        bbox[i] = sl[1].start, sl[0].start, sl[1].stop - sl[1].start, sl[0].stop - sl[0].start
    centroid = np.array(ndimage.center_of_mass(np.ones(labels.shape), labels, np.arange(1, n + 1)))
    centroid = centroid.reshape(n, 2)[:, ::-1] if n else np.zeros((0, 2))
    return Components(labels=labels, area=area, bbox=bbox, centroid=centroid)


def split_blends(
    labels: np.ndarray,
    image: np.ndarray,
    *,
    min_distance: int = DEFAULT_MIN_DISTANCE,
    threshold_abs: float | None = None,
) -> np.ndarray:
    """Split components that contain several local maxima of the image (watershed).

    Every local maximum of ``image`` inside a component (at least ``min_distance`` pixels
    from a higher one and above ``threshold_abs``) seeds a watershed on ``-image``
    restricted to that component; a component without such a peak keeps one seed at its
    brightest pixel, so no component is lost.

    Parameters
    ----------
    labels : ndarray of int, shape (ny, nx)
        Label image, 0 for background (e.g. ``label_components(mask).labels``).
    image : ndarray, shape (ny, nx)
        Brightness map used for the peaks and the watershed (NaN treated as -inf).
    min_distance : int
        Minimum peak separation in pixels (about one beam FWHM is sensible).
    threshold_abs : float, optional
        Minimum brightness of a seed peak, e.g. a few times the noise.

    Returns
    -------
    ndarray of int32, shape (ny, nx)
        New labels ``1..m`` (``m >= number of input components``), 0 for background.

    Raises
    ------
    ValueError
        If the shapes differ or ``min_distance < 1``.
    """
    labels = _check_mask(labels)
    image = np.asarray(image, dtype=float)
    if image.shape != labels.shape:
        raise ValueError(f"image shape {image.shape} differs from labels shape {labels.shape}")
    if int(min_distance) < 1:
        raise ValueError(f"min_distance must be >= 1 pixel, got {min_distance}")
    work = np.where(np.isfinite(image), image, -np.inf)
    finite_min = work[np.isfinite(work)].min(initial=0.0)
    work = np.where(np.isfinite(work), work, finite_min)
    foreground = labels > 0
    peaks = peak_local_max(
        work,
        min_distance=int(min_distance),
        threshold_abs=threshold_abs,
        labels=labels,
        exclude_border=False,
    )
    markers = np.zeros(labels.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    ids = np.unique(labels[foreground])
    seeded = np.unique(labels[markers > 0])
    missing = np.setdiff1d(ids, seeded)
    if missing.size:
        positions = ndimage.maximum_position(work, labels, missing)
        for k, pos in enumerate(positions, start=len(peaks) + 1):
            markers[pos] = k
    split = watershed(-work, markers, mask=foreground, connectivity=2).astype(np.int64)
    # A watershed region never spans two input components: label by (input, region) pairs.
    pairs = np.where(foreground, labels.astype(np.int64) * (split.max() + 1) + split, 0)
    return component_stats(pairs).labels
