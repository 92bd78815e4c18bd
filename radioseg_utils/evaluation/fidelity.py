"""How close an image is to the true sky, and what its residual looks like.

For simulated fields the noise-free sky is known (``simulate_field(..., add_noise=False)``
with the same seed), so a denoised image can be compared with the truth pixel by pixel:

* :func:`sky_error_table` gives the rms error against the true sky (in units of the noise
  rms) and the PSNR, over all pixels, over the background far from every true source, and
  near the true sources of each bin of true peak S/N, with the median ratio of the
  image's to the true sky's value at their peaks (1: the source is kept, < 1: it was
  flattened);
* :func:`acf_table` gives the autocorrelation of several images along x and y
  (:func:`radioseg_utils.simulation.noise_model.autocorrelation`), e.g. the image's noise
  (image minus true sky) against a denoiser's residual (image minus denoised): a denoiser
  that keeps the beam-scale correlated part of the noise leaves a whiter residual.

Errors are measured after removing one constant, the median of image minus true sky (the
background every finder subtracts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from astropy.table import Table

from radioseg_utils.evaluation.evaluate import truth_in_image
from radioseg_utils.evaluation.metrics import SNR_BINS
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.simulation.noise_model import autocorrelation
from radioseg_utils.simulation.truth import true_peak_snr

__all__ = ["SOURCE_RADIUS_BEAMS", "BACKGROUND_RADIUS_BEAMS", "acf_table", "sky_error_table"]

#: Radius (in beam FWHM) around a true source core of the pixels that measure its error.
SOURCE_RADIUS_BEAMS: float = 0.5
#: Background pixels lie farther than this (in beam FWHM) from every true source of S/N >=
#: the first S/N bin edge.
BACKGROUND_RADIUS_BEAMS: float = 2.0


def _disc_mask(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Pixels within ``radius`` px of any of the positions."""
    mask = np.zeros(shape, bool)
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = dy**2 + dx**2 <= radius**2
    for xc, yc in zip(np.rint(x).astype(int), np.rint(y).astype(int)):
        y0, x0 = yc - r, xc - r
        ys, xs = slice(max(y0, 0), min(yc + r + 1, shape[0])), slice(max(x0, 0), min(xc + r + 1, shape[1]))
        if ys.start < ys.stop and xs.start < xs.stop:
            mask[ys, xs] |= disc[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return mask


def sky_error_table(
    images: Mapping[str, np.ndarray],
    clean: np.ndarray,
    truth: Table,
    sky: SkyImage,
    *,
    noise: float,
    snr_bins: Sequence[float] = SNR_BINS,
) -> pd.DataFrame:
    """Error of each image against the true sky, overall, in the background and per S/N.

    Parameters
    ----------
    images : mapping of str to ndarray, shape (ny, nx)
        Images to compare, by name (e.g. ``{"noisy": ..., "dip": ...}``), in the units of
        ``clean``.
    clean : ndarray, shape (ny, nx)
        The noise-free sky on the same grid.
    truth : astropy.table.Table
        The true sources (``ra_core``, ``dec_core``, ``flux``; ``peak_snr`` if known, else
        computed at ``noise``).
    sky : SkyImage
        The image grid (WCS, band, beam).
    noise : float
        Noise rms (same units): the unit of the errors.
    snr_bins : sequence of float
        Edges of the bins of true peak S/N.

    Returns
    -------
    pandas.DataFrame
        One row per image and region (``"all"``, ``"background"``, then ``"snr lo-hi"``
        per bin): ``image``, ``region``, ``n_sources``, ``n_pixels``, ``rms_error``
        (units of ``noise``), ``psnr_db`` (``20 log10(max(clean) / rms error)``),
        ``peak_ratio`` (median over the region's sources of the image's over the true
        sky's value at their core pixel; NaN outside source bins).

    Raises
    ------
    ValueError
        If an image does not have the shape of ``clean`` or ``noise`` is not positive.
    """
    clean = np.asarray(clean, float)
    if not (np.ndim(noise) == 0 and np.isfinite(noise) and noise > 0):
        raise ValueError(f"noise must be a positive number, got {noise!r}")
    for name, image in images.items():
        if np.shape(image) != clean.shape:
            raise ValueError(f"image {name!r} has shape {np.shape(image)}, the true sky "
                             f"{clean.shape}")
    inside = truth_in_image(truth, sky)
    x, y = sky.wcs.celestial.world_to_pixel_values(np.asarray(inside["ra_core"], float),
                                                   np.asarray(inside["dec_core"], float))
    snr = (np.asarray(inside["peak_snr"], float) if "peak_snr" in inside.colnames
           else true_peak_snr(inside, sky.band, noise=noise, wcs=sky.wcs))
    beam = float(np.mean(sky.beam_fwhm_pix))
    xi = np.clip(np.rint(x).astype(int), 0, clean.shape[1] - 1)
    yi = np.clip(np.rint(y).astype(int), 0, clean.shape[0] - 1)
    edges = np.asarray(snr_bins, float)
    regions = [("all", None, np.ones(clean.shape, bool)),
               ("background", None,
                ~_disc_mask(clean.shape, x[snr >= edges[0]], y[snr >= edges[0]],
                            BACKGROUND_RADIUS_BEAMS * beam))]
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = np.flatnonzero((snr >= lo) & (snr < hi))
        label = f"snr >{lo:g}" if np.isinf(hi) else f"snr {lo:g}-{hi:g}"
        regions.append((label, sel, _disc_mask(clean.shape, x[sel], y[sel],
                                               SOURCE_RADIUS_BEAMS * beam)))
    peak = np.nanmax(clean)
    rows = []
    for name, image in images.items():
        diff = np.asarray(image, float) - clean
        finite = np.isfinite(diff)
        offset = np.median(diff[finite])
        err = (diff - offset) / noise
        for region, sel, mask in regions:
            use = mask & finite
            rms = float(np.sqrt(np.mean(err[use] ** 2))) if use.any() else np.nan
            ratio = np.nan
            if sel is not None and sel.size:
                truth_peak = clean[yi[sel], xi[sel]]
                ratio = float(np.nanmedian((np.asarray(image, float)[yi[sel], xi[sel]] - offset)
                                           / truth_peak))
            rows.append({"image": name, "region": region,
                         "n_sources": int(sel.size) if sel is not None else len(inside),
                         "n_pixels": int(use.sum()), "rms_error": rms,
                         "psnr_db": 20 * np.log10(peak / (rms * noise)) if rms > 0 else np.inf,
                         "peak_ratio": ratio})
    return pd.DataFrame(rows)


def acf_table(
    images: Mapping[str, np.ndarray],
    *,
    max_lag: int = 5,
    mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Autocorrelation along x and y of each image, at lags 0..``max_lag`` px.

    Parameters
    ----------
    images : mapping of str to ndarray, shape (ny, nx)
        By name, e.g. ``{"image noise": image - clean, "DIP residual": image - dip}``.
    max_lag : int
        Largest lag in pixels.
    mask : ndarray of bool, shape (ny, nx), optional
        Pixels left out of every image (e.g. bright sources,
        :func:`radioseg_utils.simulation.noise_model.bright_pixel_mask`).

    Returns
    -------
    pandas.DataFrame
        ``series``, ``lag``, ``acf_x``, ``acf_y``, ``acf`` (their mean); 1 at lag 0.

    Raises
    ------
    ValueError
        As :func:`~radioseg_utils.simulation.noise_model.autocorrelation` (not 2-D, bad lag).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = acf_table({"white": rng.normal(size=(128, 128))}, max_lag=2)
    >>> t["lag"].tolist(), bool(abs(t["acf"].iloc[1]) < 0.05)
    ([0, 1, 2], True)
    """
    frames = []
    for name, image in images.items():
        acf_x, acf_y = autocorrelation(image, max_lag=max_lag, mask=mask)
        frames.append(pd.DataFrame({"series": name, "lag": np.arange(max_lag + 1),
                                    "acf_x": acf_x, "acf_y": acf_y, "acf": (acf_x + acf_y) / 2}))
    return pd.concat(frames, ignore_index=True)
