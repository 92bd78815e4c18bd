"""Gaussian components of the sources, as Aegean and PyBDSF list them.

A source catalogue has one row per source (the SDC1 convention); the classical finders
also list the Gaussian *components* each source is made of (Aegean's component table,
PyBDSF's Gaussian list), and that is what their users compare against. The components of
a segmented source are found the way Aegean seeds its fits (Hancock et al. 2012, MNRAS
422, 1812, section 3.2): the *summits* of a source are the connected regions of negative
curvature (the image's discrete Laplacian below zero) inside its segment, and each summit
whose brightest pixel reaches ``min_snr`` times the local rms is a candidate. The
source's brightest summit is always one (a source has at least one component).

Each component sits at the sub-pixel peak of its summit
(:func:`~radioseg_utils.postprocess.measure.refined_peaks`); its peak flux is the
amplitude of a restoring-beam-shaped Gaussian there, fitted jointly with the source's
other components to the segment's pixels (non-negative least squares, positions fixed:
robust where a free fit on a few pixels per beam is not). A further component whose
fitted amplitude is under ``min_snr`` times the rms is dropped (the weakest first) and
the rest refitted. Two equal point sources separate into two summits from about 1.25
beams apart (1.1 beams at a 2:1 flux ratio). The source's integrated flux is
shared among its components in proportion to those amplitudes, so the components of a
source add up to it exactly. A source of one component keeps its measured shape; the
components of a source of several take the restoring beam's shape (Aegean's
``FIXED2PSF``), flagged by ``fixed_beam``.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage as ndi
from scipy.optimize import nnls

from radioseg_utils.core.gaussian import FWHM_PER_SIGMA
from radioseg_utils.io.catalogue import catalogue_table, wrap_ra
from radioseg_utils.postprocess.measure import pixel_scale_at, refined_peaks

__all__ = ["COMPONENT_SNR", "curvature_summits", "decompose_sources"]

#: Smallest peak S/N of a further component of a source (Aegean's default seed clip).
COMPONENT_SNR: float = 5.0


def curvature_summits(image: np.ndarray, labels: np.ndarray, snr: np.ndarray,
                      min_snr: float = COMPONENT_SNR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The brightest pixel of each summit that makes a component.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Background-subtracted, finite image.
    labels : ndarray of int, shape (ny, nx)
        Source segments (0 = background).
    snr : ndarray, shape (ny, nx)
        Image S/N (``image`` over the local rms).
    min_snr : float
        Smallest S/N of the brightest pixel of a summit that is not its source's brightest.

    Returns
    -------
    label, y, x : ndarray of int, shape (n,)
        Source label and pixel of each component, sorted by label then by decreasing S/N.
        Every label present in ``labels`` has at least one (a segment without a summit
        gets its brightest pixel).
    """
    pixels = np.flatnonzero(labels > 0)
    lab_pix, snr_pix = labels.ravel()[pixels], snr.ravel()[pixels]
    summits = ndi.label((ndi.laplace(image) < 0) & (labels > 0))[0].ravel()[pixels]
    # a summit crossing two segments is one per segment
    key = summits.astype(np.int64) * (int(labels.max(initial=0)) + 1) + lab_pix
    top = _brightest(key[summits > 0], snr_pix[summits > 0])
    top = np.flatnonzero(summits > 0)[top]
    bare = ~np.isin(lab_pix, lab_pix[top])  # segments without a summit: their brightest pixel
    top = np.concatenate([top, np.flatnonzero(bare)[_brightest(lab_pix[bare], snr_pix[bare])]])
    lab, s = lab_pix[top], snr_pix[top]
    order = np.lexsort((-s, lab))
    top, lab, s = top[order], lab[order], s[order]
    keep = np.r_[True, lab[1:] != lab[:-1]] | (s >= min_snr)
    y, x = np.unravel_index(pixels[top[keep]], labels.shape)
    return lab[keep].astype(np.int64), y, x


def _brightest(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the largest value of each distinct key."""
    order = np.lexsort((-values, keys))
    return order[np.r_[True, keys[order][1:] != keys[order][:-1]]] if keys.size else order


def _amplitudes(image: np.ndarray, rms: np.ndarray, mask: np.ndarray, x: np.ndarray,
                y: np.ndarray, sigma: float) -> np.ndarray:
    """Non-negative amplitudes of beam-shaped Gaussians at ``(x, y)`` fitted to the
    ``mask`` pixels (weights 1 / rms)."""
    yy, xx = np.nonzero(mask)
    design = np.exp(-0.5 * ((xx[:, None] - x) ** 2 + (yy[:, None] - y) ** 2) / sigma**2)
    weight = 1.0 / rms[yy, xx]
    amp, _ = nnls(design * weight[:, None], image[yy, xx] * weight)
    return amp


def decompose_sources(
    image: np.ndarray,
    labels: np.ndarray,
    catalogue: Table,
    wcs: WCS,
    *,
    noise: float | np.ndarray,
    background: float | np.ndarray = 0.0,
    beam_fwhm_arcsec: float,
    min_snr: float = COMPONENT_SNR,
) -> Table:
    """The Gaussian components of measured sources.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Brightness in Jy/beam; NaN pixels (blanked) take no part in the fits.
    labels : ndarray of int, shape (ny, nx)
        Source segments, the labels the catalogue was measured on.
    catalogue : astropy.table.Table
        The sources of ``labels``
        (:func:`~radioseg_utils.postprocess.measure.measure_sources`): ``label``,
        ``flux``, ``fwhm_maj``, ``fwhm_min``, ``pa_eon``, ``noise``.
    wcs : astropy.wcs.WCS
        Celestial WCS of ``image``.
    noise, background : float or ndarray (ny, nx)
        Local rms and background in Jy/beam.
    beam_fwhm_arcsec : float
        Restoring-beam FWHM (geometric mean of its axes).
    min_snr : float
        Smallest peak S/N of a source's further components.

    Returns
    -------
    astropy.table.Table
        One row per component, ordered by source then by decreasing S/N: ``label`` (of
        the source), ``ra``, ``dec``, ``x``, ``y`` (its peak), ``peak_flux`` (fitted
        amplitude, Jy/beam), ``peak_snr``, ``noise``, ``flux`` (its share of the source's
        ``flux``, Jy), ``fwhm_maj``, ``fwhm_min``, ``pa_eon`` and ``fixed_beam``.
    """
    celestial = wcs.celestial
    clean = np.asarray(image, dtype=float) - background
    rms = np.broadcast_to(np.asarray(noise, dtype=float), clean.shape)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(clean) & (rms > 0)  # blanked pixels take no part in the fits
    clean = np.where(valid, clean, 0.0)
    snr = np.divide(clean, rms, out=np.zeros_like(clean), where=valid)
    lab, yi, xi = curvature_summits(clean, labels, snr, min_snr)
    x, y = refined_peaks(clean, yi, xi)
    amp = clean[yi, xi]
    local = rms[yi, xi]
    known = np.asarray(catalogue["label"], dtype=np.int64)
    row_of = np.full(max(int(labels.max(initial=0)), int(known.max(initial=0))) + 1, -1, np.int64)
    row_of[known] = np.arange(len(catalogue))
    rows = row_of[lab]
    if np.any(rows < 0):
        raise ValueError("the catalogue lacks sources of the labels")
    keep = np.ones(lab.size, bool)
    counts = np.bincount(rows, minlength=len(catalogue))
    several = np.flatnonzero(counts > 1)
    if several.size:
        scale = np.sqrt(np.abs(np.linalg.det(pixel_scale_at(celestial, x, y))))
        sigma = beam_fwhm_arcsec / FWHM_PER_SIGMA / (float(np.median(scale)) * 3600.0)
        slices = ndi.find_objects(labels)
        grouped = np.argsort(rows, kind="stable")  # each source's brightest summit first
        starts = np.searchsorted(rows[grouped], several)
        for row, start in zip(several, starts):
            label = int(known[row])
            box = slices[label - 1]
            mine = grouped[start : start + counts[row]]
            while True:  # drop the weakest further component below min_snr, and refit
                amp[mine] = _amplitudes(clean[box], rms[box], (labels[box] == label) & valid[box],
                                        x[mine] - box[1].start, y[mine] - box[0].start, sigma)
                weak = amp[mine] / local[mine]
                weak[0] = np.inf
                if mine.size == 1 or weak.min() >= min_snr:
                    break
                keep[mine[np.argmin(weak)]] = False
                mine = mine[keep[mine]]
    lab, rows, x, y, amp, local, pixel = (v[keep] for v in (lab, rows, x, y, amp, local,
                                                             clean[yi, xi]))
    multi = np.bincount(rows, minlength=len(catalogue))[rows] > 1
    amp = np.where(multi, amp, pixel)  # a source left with one component: as never split
    total = np.bincount(rows, weights=amp, minlength=len(catalogue))[rows]
    share = np.divide(amp, total, out=np.ones_like(amp), where=multi & (total > 0))
    ra, dec = celestial.pixel_to_world_values(x, y)
    source = catalogue[rows]
    columns = {
        "label": lab,
        "ra": wrap_ra(ra),
        "dec": dec,
        "x": x,
        "y": y,
        "peak_flux": amp,
        "peak_snr": amp / local,
        "noise": local,
        "flux": np.asarray(source["flux"]) * share,
        "fwhm_maj": np.where(multi, beam_fwhm_arcsec, source["fwhm_maj"]),
        "fwhm_min": np.where(multi, beam_fwhm_arcsec, source["fwhm_min"]),
        "pa_eon": np.where(multi, 0.0, source["pa_eon"]),
        "fixed_beam": multi,
    }
    return catalogue_table(columns)
