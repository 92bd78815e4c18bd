"""Gaussian geometry shared by beams, sources and noise kernels.

One definition each of the FWHM-to-sigma factor, of the area of an elliptical Gaussian
(the beam solid angle that turns Jy/beam into Jy) and of the deconvolution of a measured
width by the beam's (in quadrature).

Examples
--------
>>> round(FWHM_PER_SIGMA, 6)
2.35482
>>> round(float(gaussian_area(2.0)), 4)  # a 2-pixel FWHM beam covers 4.53 pixels
4.5324
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["FWHM_PER_SIGMA", "fwhm_to_sigma", "sigma_to_fwhm", "gaussian_area", "deconvolve_fwhm"]

#: FWHM of a Gaussian in units of its standard deviation, ``sqrt(8 ln 2)``.
FWHM_PER_SIGMA: float = math.sqrt(8.0 * math.log(2.0))


def fwhm_to_sigma(fwhm):
    """Standard deviation of a Gaussian of full width at half maximum ``fwhm`` (same units)."""
    return np.divide(fwhm, FWHM_PER_SIGMA)


def sigma_to_fwhm(sigma):
    """Full width at half maximum of a Gaussian of standard deviation ``sigma``."""
    return np.multiply(sigma, FWHM_PER_SIGMA)


def gaussian_area(fwhm_maj, fwhm_min=None):
    """Integral of a unit-peak elliptical Gaussian, ``pi fwhm_maj fwhm_min / (4 ln 2)``.

    For a beam with FWHMs in pixels this is the beam area in pixels (the number of pixels
    per beam); ``fwhm_min`` defaults to ``fwhm_maj`` (a circular Gaussian).
    """
    fwhm_min = fwhm_maj if fwhm_min is None else fwhm_min
    return np.multiply(fwhm_maj, fwhm_min) * (math.pi / (4.0 * math.log(2.0)))


def deconvolve_fwhm(fwhm, beam_fwhm):
    """Intrinsic FWHM from a measured one: ``sqrt(max(fwhm^2 - beam^2, 0))`` (same units).

    Examples
    --------
    >>> deconvolve_fwhm([5.0, 1.0], 3.0).tolist()
    [4.0, 0.0]
    """
    fwhm = np.asarray(fwhm, dtype=float)
    return np.sqrt(np.clip(fwhm**2 - np.asarray(beam_fwhm, dtype=float) ** 2, 0.0, None))
