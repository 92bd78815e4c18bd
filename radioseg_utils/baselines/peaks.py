"""The floor to beat: plain local maxima above 4 sigma.

No model, no fitting: every pixel that is the maximum of its beam-sized neighbourhood and
lies more than ``threshold_snr`` robust standard deviations above the background is a
source, treated as unresolved (flux = background-subtracted peak, deconvolved size 0).
On the real SDC1 B1 1000 h cutout this beats PyBDSF's completeness at S/N 5-10
(``shared/docs/SDC1_FACTS.md``), so any learned finder must at least match it.

Label map: each peak owns the pixels above ``label_snr`` (2 sigma) that a watershed on the
inverted S/N map, started from the peaks, assigns to it; connected regions above 2 sigma
without a peak stay 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from radioseg_utils.baselines.result import (
    FinderResult,
    ResourceMeter,
    as_sky_image,
    noise_map,
    primary_beam_gain,
)
from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.io.catalogue import catalogue_table, wrap_ra
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.postprocess.measure import PrimaryBeamLike

__all__ = ["PeakSettings", "run_peaks", "find_local_maxima", "subpixel_offsets"]

#: SDC1 class and size given to every peak: unresolved sources are star-forming galaxies
#: (CLASS 3, SIZE 2, core fraction 0) under :class:`radioseg_utils.postprocess.measure.ClassRule`.
POINT_CLASS: int = 3
POINT_SIZE: int = 2


@dataclass(frozen=True)
class PeakSettings:
    """Parameters of :func:`run_peaks`.

    Attributes
    ----------
    threshold_snr : float
        Detection threshold: a peak must exceed ``background + threshold_snr * rms``.
    label_snr : float
        Pixels above ``background + label_snr * rms`` form the label map.
    min_distance : int or None
        Half-side in pixels of the square neighbourhood a peak must dominate. None: half
        the beam FWHM, rounded, at least 1 (1 px for every SDC1 band, ~2.5 px per beam).
    """

    threshold_snr: float = 4.0
    label_snr: float = 2.0
    min_distance: int | None = None

    def __post_init__(self) -> None:
        if not self.threshold_snr >= self.label_snr > 0:
            raise ValueError(
                f"need threshold_snr >= label_snr > 0, got {self.threshold_snr} and {self.label_snr}"
            )
        if self.min_distance is not None and self.min_distance < 1:
            raise ValueError(f"min_distance must be >= 1 pixel, got {self.min_distance}")


def find_local_maxima(snr: np.ndarray, *, threshold: float, min_distance: int) -> np.ndarray:
    """Pixels that are the maximum of their ``(2 min_distance + 1)^2`` box and above a threshold.

    Parameters
    ----------
    snr : ndarray, shape (ny, nx)
        Signal-to-noise map; NaN pixels are never peaks.
    threshold : float
        Minimum value of a peak (strictly above).
    min_distance : int
        Half-side of the neighbourhood in pixels.

    Returns
    -------
    ndarray of int, shape (n, 2)
        ``(y, x)`` of the peaks, brightest first.

    Examples
    --------
    >>> img = np.zeros((7, 7)); img[2, 3] = 5.0; img[2, 4] = 4.5; img[5, 5] = 6.0
    >>> find_local_maxima(img, threshold=4.0, min_distance=1).tolist()
    [[5, 5], [2, 3]]
    """
    filled = np.where(np.isfinite(snr), snr, -np.inf)
    peaks = peak_local_max(
        filled, min_distance=min_distance, threshold_abs=threshold, exclude_border=False
    )
    return peaks[filled[peaks[:, 0], peaks[:, 1]] > threshold]


def subpixel_offsets(image: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Parabolic sub-pixel refinement of peak positions along each axis.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
    peaks : ndarray of int, shape (n, 2)
        ``(y, x)`` of local maxima.

    Returns
    -------
    ndarray, shape (n, 2)
        ``(dy, dx)`` offsets in pixels, each within [-0.5, 0.5]; 0 at the image edge.

    Examples
    --------
    >>> y, x = np.mgrid[:9, :9]
    >>> img = -((x - 4.2) ** 2) - (y - 3.9) ** 2
    >>> np.round(subpixel_offsets(img, np.array([[4, 4]])), 6).tolist()
    [[-0.1, 0.2]]
    """
    padded = np.pad(np.nan_to_num(image, nan=0.0), 1, mode="edge")
    y, x = peaks[:, 0] + 1, peaks[:, 1] + 1
    out = np.zeros(peaks.shape, dtype=float)
    for axis, (dy, dx) in enumerate(((1, 0), (0, 1))):
        lo, mid, hi = padded[y - dy, x - dx], padded[y, x], padded[y + dy, x + dx]
        curvature = lo - 2.0 * mid + hi
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(curvature < 0, 0.5 * (lo - hi) / curvature, 0.0)
        out[:, axis] = np.clip(step, -0.5, 0.5)
    return out


def run_peaks(
    image: SkyImage | str | Path,
    *,
    noise: float | np.ndarray | None = None,
    settings: PeakSettings = PeakSettings(),
    primary_beam: PrimaryBeamLike = None,
) -> FinderResult:
    """Local maxima above ``settings.threshold_snr`` sigma, as point sources.

    Parameters
    ----------
    image : SkyImage or path
        2-D image in Jy/beam with its celestial WCS (a FITS path is read with
        :func:`radioseg_utils.io.fits_read.read_image`).
    noise : float or ndarray of shape (ny, nx), optional
        rms in Jy/beam. Default: the sigma-clipped MAD rms of the image
        (:func:`radioseg_utils.core.noise.estimate_noise`). The background is always the
        sigma-clipped median of the image.
    settings : PeakSettings
        Thresholds and neighbourhood size (the default neighbourhood follows the
        image's restoring beam).
    primary_beam : float, ndarray (ny, nx) or callable, optional
        Primary-beam gain (a map on the image grid, or a function of RA, Dec in deg);
        fluxes are divided by it at each peak, as in
        :func:`radioseg_utils.postprocess.measure.measure_sources`.

    Returns
    -------
    FinderResult
        ``finder="peaks"``. Catalogue, brightest first: the SDC1 submission columns,
        ``x``, ``y``, ``peak_flux``, ``peak_snr`` (above the background), ``noise`` and
        ``label``; ``ra_core = ra_cent`` at the parabola-refined peak, ``flux`` = peak
        minus background (Jy/beam = Jy for a point source), ``b_maj = b_min = pa =
        core_frac = 0``, SIZE 2, CLASS 3.

    Raises
    ------
    ValueError
        If ``noise`` does not match the image or is not positive, or the primary beam is
        not positive at a peak.
    """
    image = as_sky_image(image)
    data = np.asarray(image.data, dtype=float)
    min_distance = settings.min_distance or max(1, round(min(image.beam_fwhm_pix) / 2))
    with ResourceMeter() as meter:
        background, rms = estimate_noise(data)
        rms = noise_map(rms if noise is None else noise, data.shape)
        snr = (data - background) / rms
        peaks = find_local_maxima(
            snr, threshold=settings.threshold_snr, min_distance=min_distance
        )
        markers = np.zeros(data.shape, dtype=np.int32)
        markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
        mask = np.nan_to_num(snr, nan=-np.inf) > settings.label_snr
        labels = watershed(-np.nan_to_num(snr, nan=0.0), markers, mask=mask).astype(np.int32)
        offsets = subpixel_offsets(data, peaks)
        flux = data[peaks[:, 0], peaks[:, 1]] - background
        x, y = peaks[:, 1] + offsets[:, 1], peaks[:, 0] + offsets[:, 0]
        if primary_beam is not None:
            flux = flux / primary_beam_gain(primary_beam, image.wcs, x, y)
        catalogue = _point_catalogue(
            image.wcs,
            x=x,
            y=y,
            flux=flux,
            peak_flux=data[peaks[:, 0], peaks[:, 1]],
            noise=rms[peaks[:, 0], peaks[:, 1]],
            peak_snr=snr[peaks[:, 0], peaks[:, 1]],
        )
    return FinderResult(catalogue, labels, meter.runtime_s, meter.peak_rss_mb, finder="peaks")


def _point_catalogue(wcs, *, x, y, flux, peak_flux, noise, peak_snr) -> Table:
    """SDC1-schema catalogue of unresolved sources at 0-based pixel positions ``x, y``."""
    n = len(x)
    ra, dec = wcs.celestial.pixel_to_world_values(x, y) if n else (np.zeros(0), np.zeros(0))
    ra = wrap_ra(ra)
    zeros = np.zeros(n)
    return catalogue_table(
        {
            "id": np.arange(n),
            "ra_core": ra,
            "dec_core": dec,
            "ra_cent": ra,
            "dec_cent": dec,
            "flux": flux,
            "core_frac": zeros,
            "b_maj": zeros,
            "b_min": zeros,
            "pa": zeros,
            "size": np.full(n, POINT_SIZE),
            "class": np.full(n, POINT_CLASS),
            "x": x,
            "y": y,
            "peak_flux": peak_flux,
            "peak_snr": peak_snr,
            "noise": noise,
            "label": np.arange(1, n + 1),
        }
    )
