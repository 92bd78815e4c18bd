"""A second classical finder: photutils image segmentation, the Python analogue of ProFound.

Steps (as ProFound: sky, smoothing, watershed-deblended segments):

1. background and rms maps from sigma-clipped statistics in boxes
   (:func:`radioseg_utils.core.noise.background_rms_map`, photutils ``Background2D``);
2. the background-subtracted image convolved with the restoring beam (a matched filter
   for point sources), whose noise is rescaled so the threshold is ``nsigma`` standard
   deviations *of the convolved image* (beam-correlated noise is not reduced by the
   white-noise factor);
3. :func:`photutils.segmentation.detect_sources`: connected regions of at least
   ``npixels`` pixels above the threshold;
4. :func:`photutils.segmentation.deblend_sources`: multi-threshold watershed deblending;
5. parameters of every segment from :func:`radioseg_utils.postprocess.measure.measure_sources`, the
   same code that measures the U-Net's components.

References
----------
Robotham, A. S. G. et al. 2018, MNRAS 476, 3137, "ProFound: Source Extraction and
Application to Modern Survey Data", doi:10.1093/mnras/sty440.
Bradley, L. et al., photutils, doi:10.5281/zenodo.596036.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.convolution import Gaussian2DKernel, convolve_fft
from photutils.segmentation import deblend_sources, detect_sources
from photutils.utils.exceptions import NoDetectionsWarning

from radioseg_utils.baselines.result import (
    FinderResult,
    ResourceMeter,
    as_sky_image,
    noise_map,
)
from radioseg_utils.core.gaussian import FWHM_PER_SIGMA, gaussian_area
from radioseg_utils.core.noise import DEFAULT_BOX, background_rms_map, estimate_noise
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.postprocess.measure import (
    ClassRule,
    PrimaryBeamLike,
    measure_sources,
)

__all__ = ["PhotutilsSettings", "run_photutils"]


@dataclass(frozen=True)
class PhotutilsSettings:
    """Parameters of :func:`run_photutils`.

    Attributes
    ----------
    nsigma : float
        Detection threshold in standard deviations of the beam-convolved image.
    npixels : int or None
        Smallest segment in pixels. None: the beam area in pixels, rounded up
        (8 px for every SDC1 band).
    box : int
        Box side in pixels of the background and rms maps.
    nlevels : int
        Number of multi-thresholding levels of the deblending.
    contrast : float
        Fraction of a segment's flux a component needs to be deblended.
    rule : ClassRule
        SIZE/CLASS rule passed to :func:`~radioseg_utils.postprocess.measure.measure_sources`.
    """

    nsigma: float = 3.0
    npixels: int | None = None
    box: int = DEFAULT_BOX
    nlevels: int = 32
    contrast: float = 0.001
    rule: ClassRule = ClassRule()

    def __post_init__(self) -> None:
        if not self.nsigma > 0:
            raise ValueError(f"nsigma must be positive, got {self.nsigma}")
        if self.npixels is not None and self.npixels < 1:
            raise ValueError(f"npixels must be >= 1, got {self.npixels}")


def run_photutils(
    image: SkyImage | str | Path,
    *,
    noise: float | np.ndarray | None = None,
    settings: PhotutilsSettings = PhotutilsSettings(),
    primary_beam: PrimaryBeamLike = None,
) -> FinderResult:
    """Segment an image with photutils and measure the segments.

    Parameters
    ----------
    image : SkyImage or path
        2-D image in Jy/beam (a FITS path is read with
        :func:`radioseg_utils.io.fits_read.read_image`); NaN pixels are masked.
    noise : float or ndarray of shape (ny, nx), optional
        rms of the image in Jy/beam. Default: the box rms map.
    settings : PhotutilsSettings
        Thresholds, box size and deblending parameters.
    primary_beam : float, ndarray (ny, nx) or callable, optional
        Primary-beam gain, passed to :func:`~radioseg_utils.postprocess.measure.measure_sources`.

    Returns
    -------
    FinderResult
        ``finder="photutils"``; ``labels`` = deblended segmentation map, catalogue from
        :func:`~radioseg_utils.postprocess.measure.measure_sources` on the background-subtracted image.

    Raises
    ------
    ValueError
        If the image is smaller than ``settings.box``, or ``noise`` has the wrong shape or
        is not positive.
    """
    image = as_sky_image(image)
    data = np.asarray(image.data, dtype=float)
    finite = np.isfinite(data)
    beam_fwhm_pix = float(np.mean(image.beam_fwhm_pix))
    npixels = settings.npixels or math.ceil(gaussian_area(beam_fwhm_pix))
    with ResourceMeter() as meter:
        background, rms = background_rms_map(data, box=settings.box)
        if noise is not None:
            rms = noise_map(noise, data.shape)
        residual = np.where(finite, data - background, 0.0)
        kernel = Gaussian2DKernel(beam_fwhm_pix / FWHM_PER_SIGMA)
        smooth = convolve_fft(residual, kernel, normalize_kernel=True, mask=~finite)
        # rms of the smoothed image relative to the input: measured, not assumed
        ratio = estimate_noise(smooth, mask=~finite)[1] / estimate_noise(residual, mask=~finite)[1]
        threshold = settings.nsigma * ratio * np.where(finite, rms, np.inf)
        with warnings.catch_warnings():  # no detection is a valid, empty answer
            warnings.simplefilter("ignore", NoDetectionsWarning)
            segments = detect_sources(smooth, threshold, npixels, mask=~finite)
        if segments is None:
            labels = np.zeros(data.shape, dtype=np.int32)
        else:
            segments = deblend_sources(
                smooth,
                segments,
                npixels,
                n_levels=settings.nlevels,
                contrast=settings.contrast,
                progress_bar=False,
            )
            labels = segments.data.astype(np.int32)
        catalogue = measure_sources(
            residual,
            labels,
            image.wcs,
            image.band,
            noise=rms,
            primary_beam=primary_beam,
            beam_fwhm_arcsec=image.beam.bmaj,
            rule=settings.rule,
        )
    return FinderResult(catalogue, labels, meter.runtime_s, meter.peak_rss_mb, finder="photutils")
