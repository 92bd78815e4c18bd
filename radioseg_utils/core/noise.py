"""Robust noise and background estimates of radio images.

SDC1 images are mostly noise: a sigma-clipped median and a median-absolute-deviation rms
ignore the sources without masking them first. Non-finite pixels (NaN, inf) are always
ignored.
"""

from __future__ import annotations

import numpy as np
from astropy.stats import SigmaClip, mad_std

__all__ = ["estimate_noise", "background_rms_map", "DEFAULT_SIGMA_CLIP", "DEFAULT_BOX"]

#: Clipping threshold, in standard deviations, of :func:`estimate_noise`.
DEFAULT_SIGMA_CLIP: float = 3.0
#: Maximum number of clipping iterations.
DEFAULT_MAXITERS: int = 10
#: Box size in pixels of :func:`background_rms_map` (~20 beams of SDC1 B1 on a side).
DEFAULT_BOX: int = 50


def _valid_mask(data: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """True where a pixel is finite and not masked; validates shapes."""
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {data.shape}")
    valid = np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} differs from image shape {data.shape}")
        valid &= ~mask
    return valid


def estimate_noise(
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    sigma_clip: float = DEFAULT_SIGMA_CLIP,
    maxiters: int = DEFAULT_MAXITERS,
) -> tuple[float, float]:
    """Sigma-clipped median and robust rms of an image.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image, e.g. in Jy/beam. NaN and inf pixels are ignored.
    mask : ndarray of bool, shape (ny, nx), optional
        True for pixels to ignore (e.g. known sources).
    sigma_clip : float
        Clipping threshold in standard deviations (iterated, both tails).
    maxiters : int
        Maximum number of clipping iterations.

    Returns
    -------
    median : float
        Sigma-clipped median, in the units of ``data``.
    rms : float
        ``1.4826 × MAD`` of the clipped pixels (the Gaussian standard deviation), same
        units. Clipping uses the median and MAD too.

    Raises
    ------
    ValueError
        If the image is not 2-D, the mask shape differs, or no finite unmasked pixel is left.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> med, rms = estimate_noise(rng.normal(1.0, 2.0, (200, 200)))
    >>> round(med, 1), round(rms, 1)
    (1.0, 2.0)
    """
    data = np.asarray(data)
    valid = _valid_mask(data, mask)
    if not valid.any():
        raise ValueError("no finite, unmasked pixel to estimate the noise from")
    clipper = SigmaClip(sigma=sigma_clip, maxiters=maxiters, cenfunc="median", stdfunc="mad_std")
    kept = clipper(data[valid], masked=False)
    return float(np.median(kept)), float(mad_std(kept))


def background_rms_map(
    data: np.ndarray,
    *,
    box: int = DEFAULT_BOX,
    filter_size: int = 3,
    mask: np.ndarray | None = None,
    sigma_clip: float = DEFAULT_SIGMA_CLIP,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth background and rms maps from sigma-clipped statistics in boxes.

    A thin wrapper of :class:`photutils.background.Background2D` with median background
    and MAD rms per box, median-filtered over ``filter_size`` boxes.

    Parameters
    ----------
    data : ndarray, shape (ny, nx)
        Image; NaN and inf pixels are ignored (and are NaN in the outputs).
    box : int
        Box side in pixels; the image need not be a multiple of it.
    filter_size : int
        Median filter size, in boxes, applied to the low-resolution maps.
    mask : ndarray of bool, shape (ny, nx), optional
        True for pixels to ignore when computing the statistics.
    sigma_clip : float
        Clipping threshold in standard deviations within each box.

    Returns
    -------
    background, rms : ndarray, shape (ny, nx)
        Background level and rms, in the units of ``data``.

    Raises
    ------
    ValueError
        If the image is not 2-D, smaller than one box, or has no valid pixel.
    """
    from photutils.background import Background2D, MADStdBackgroundRMS, MedianBackground

    data = np.asarray(data, dtype=float)
    valid = _valid_mask(data, mask)
    if min(data.shape) < box:
        raise ValueError(f"image shape {data.shape} is smaller than the box size {box}")
    if not valid.any():
        raise ValueError("no finite, unmasked pixel to estimate the background from")
    finite = np.isfinite(data)
    clip = SigmaClip(sigma=sigma_clip, maxiters=DEFAULT_MAXITERS)
    bkg = Background2D(
        np.where(finite, data, 0.0),
        box,
        mask=~valid & finite,
        coverage_mask=~finite if not finite.all() else None,
        filter_size=filter_size,
        sigma_clip=clip,
        bkg_estimator=MedianBackground(sigma_clip=None),
        bkg_rms_estimator=MADStdBackgroundRMS(sigma_clip=None),
        fill_value=np.nan,
    )
    return np.asarray(bkg.background), np.asarray(bkg.background_rms)
