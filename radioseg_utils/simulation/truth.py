"""The true peak signal-to-noise ratio of catalogue sources: the peak of each beam-convolved
model divided by the noise, one definition for simulated fields, the real cutout and
every metric binned by S/N.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.io.wcs import SDC1_SIDE, sdc1_wcs
from radioseg_utils.simulation.sources import gaussian_components

__all__ = [
    "true_peak_snr",
]


def _component_value(comp, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Brightness (Jy/pixel) of components ``b`` at the centres of components ``a``."""
    det = comp.cxx[b] * comp.cyy[b] - comp.cxy[b] ** 2
    dx, dy = comp.x[a] - comp.x[b], comp.y[a] - comp.y[b]
    q = (comp.cyy[b] * dx * dx - 2 * comp.cxy[b] * dx * dy + comp.cxx[b] * dy * dy) / det
    return comp.flux[b] / (2 * np.pi * np.sqrt(det)) * np.exp(-0.5 * q)


def true_peak_snr(
    truth: Table,
    band: str | Band,
    *,
    noise: float | np.ndarray,
    wcs: WCS | None = None,
    primary_beam: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Peak S/N each true source should have in the image.

    The peak (Jy/beam) is the model of :func:`radioseg_utils.simulation.sources.gaussian_components`
    (beam-convolved Gaussian components) evaluated at the brightest of its component
    centres, summing all components of the source there; neighbours are ignored.

    Parameters
    ----------
    truth : astropy.table.Table
        Truth catalogue (tidy schema; intrinsic fluxes in Jy, sizes in arcsec).
    band : str or Band
        SDC1 band (restoring beam).
    noise : float or ndarray (n,)
        Image rms in Jy/beam (e.g. ``band.noise(1000)``), scalar or per source.
    wcs : astropy.wcs.WCS, optional
        Grid on which the sizes are converted to pixels; default the full SDC1 image grid.
    primary_beam : callable, optional
        Attenuation ``primary_beam(ra, dec)``; without it the peak is intrinsic.

    Returns
    -------
    ndarray, shape (n,)
    """
    band = get_band(band)
    if wcs is None:
        wcs = sdc1_wcs(band, (SDC1_SIDE, SDC1_SIDE))
    comp = gaussian_components(truth, wcs, band, primary_beam=primary_beam)
    starts = np.searchsorted(comp.index, np.arange(len(truth)))
    counts = np.bincount(comp.index, minlength=len(truth))
    kmax = int(counts.max(initial=0))
    peak = np.zeros(len(truth))
    for k in range(kmax):  # at the centre of each source's k-th component ...
        src = np.flatnonzero(counts > k)
        total = np.zeros(src.size)
        for j in range(kmax):  # ... sum the source's j-th components
            sel = counts[src] > j
            total[sel] += _component_value(comp, starts[src[sel]] + j, starts[src[sel]] + k)
        peak[src] = np.maximum(peak[src], total)
    noise = np.asarray(noise, dtype=float)
    if np.any(~(noise > 0)):
        raise ValueError("noise must be positive")
    return peak * band.beam_area_pix / noise
