"""Source parameters measured on the image inside each labelled component.

:func:`measure_sources` turns a label image (from :mod:`radioseg_utils.postprocess.components`) and
the brightness image (Jy/beam) into a catalogue in the schema of
:data:`radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`, ready for the SDC1 scorer.

Per component, on the image pixels (not the mask), computed for all components at once
(per-label sums over the labelled pixels; no Python loop over sources):

* core position: the brightest pixel (the first in raster order on a tie), refined to
  sub-pixel by a quadratic fit to the log of its 3x3 neighbourhood;
* centroid: mean position weighted by the positive pixel values;
* integrated flux: sum of the pixel values / beam area in pixels (Jy/beam -> Jy), divided
  by the primary beam at the centroid when one is given (SDC1 truth fluxes are intrinsic);
  pixel sizes come from the WCS at its reference pixel (the SDC1 convention; the SDC1
  fields are small and centred on it), or, with ``local_scale``, from the WCS at each
  source (:func:`pixel_scale_at`): needed for wide fields and projections whose reference
  point lies far away, e.g. a SIN map centred on the celestial pole, whose pixels 24 deg
  from it cover 1 / cos 24 deg = 1.09 times more sky than at the pole;
* size: FWHM of the major and minor axes from the weighted second moments
  (``FWHM = sqrt(8 ln 2) sigma``), deconvolved from the circular restoring beam in
  quadrature (``sqrt(FWHM^2 - beam^2)``, 0 when unresolved); ``pa`` of the major axis in
  the SDC1 convention (clockwise from due west, ``90 - PA_east_of_north`` modulo 180; see
  :func:`radioseg_utils.simulation.sources.pa_east_of_north`, which is its own inverse), in [0, 180)
  deg, and the astronomical ``pa_eon`` (east of north) as an extra column;
* compactness: peak (Jy/beam) / integrated flux (Jy): 1 for a point source;
* peak S/N: peak / local noise (a scalar, a noise map, or the sigma-clipped rms of the
  image from :func:`radioseg_utils.core.noise.estimate_noise`).

Classification (:class:`ClassRule`, a simple documented rule, not a trained model): a
source whose deconvolved major axis exceeds ``extended_beams`` restoring-beam FWHMs is a
steep-spectrum AGN (CLASS 1) with SIZE 1, whose ``b_maj``/``b_min`` are reported as
largest angular sizes (``LAS = GAUSS_TO_LAS * FWHM``, the scorer's conversion) and whose
``core_frac`` is the compactness; every other source is a star-forming galaxy (CLASS 3)
with SIZE 2 (Gaussian FWHM) and ``core_frac = 0`` (SDC1: non-zero only for AGN). The
default threshold is set from the SDC1 B1 training truth (``TrainingSet_B1_v2_ML.txt``,
sources above 3 µJy): 98 % are SFGs, and SFGs outnumber AGN at every Gaussian FWHM
(AGN are 3 % of sources wider than 2″, 6 % wider than 5″, 7-10 % wider than 10″), so
only sources many beams across are called AGN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from skimage.segmentation import expand_labels

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.core.gaussian import FWHM_PER_SIGMA, deconvolve_fwhm, gaussian_area
from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.io.catalogue import catalogue_table, wrap_ra
from radioseg_utils.simulation.sources import pa_east_of_north

__all__ = [
    "GAUSS_TO_LAS",
    "ClassRule",
    "measure_sources",
    "values_at",
    "pixel_scale_at",
    "refined_peaks",
]

#: Largest angular size / Gaussian FWHM used by the SDC1 scorer (LAS = 5 sigma).
GAUSS_TO_LAS: float = 5.0 / 2.355

@dataclass(frozen=True)
class ClassRule:
    """Rule that assigns SDC1 SIZE and CLASS from measured parameters.

    Attributes
    ----------
    extended_beams : float
        Deconvolved major-axis FWHM, in restoring-beam FWHMs, above which a source is
        called an extended steep-spectrum AGN (CLASS 1, SIZE 1); otherwise SFG (3, 2).
    """

    extended_beams: float = 10.0

    def columns(self, b_maj: np.ndarray, b_min: np.ndarray, compactness: np.ndarray,
                beam_fwhm: float) -> dict[str, np.ndarray]:
        """SDC1 ``size``, ``class``, ``core_frac``, ``b_maj`` and ``b_min`` columns.

        Parameters
        ----------
        b_maj, b_min : ndarray
            Deconvolved major/minor-axis FWHM (arcsec).
        compactness : ndarray
            Peak / integrated flux (the core fraction of an extended source; NaN counts as
            0, and values are clipped to [0, 1]).
        beam_fwhm : float
            Restoring-beam FWHM (arcsec).

        Returns
        -------
        dict
            Extended sources (``b_maj > extended_beams * beam_fwhm``) get SIZE 1, CLASS 1
            (steep-spectrum AGN), their core fraction and sizes converted from Gaussian
            FWHM to largest angular size (:data:`GAUSS_TO_LAS`); the others SIZE 2,
            CLASS 3 (SFG), core fraction 0 and their FWHMs.

        Examples
        --------
        >>> cols = ClassRule(extended_beams=2.0).columns(np.array([1.0, 5.0]),
        ...                                              np.array([1.0, 2.0]),
        ...                                              np.array([0.9, 0.3]), 1.5)
        >>> cols["size"].tolist(), cols["class"].tolist(), cols["core_frac"].tolist()
        ([2, 1], [3, 1], [0.0, 0.3])
        """
        b_maj, b_min = np.asarray(b_maj, dtype=float), np.asarray(b_min, dtype=float)
        extended = b_maj > self.extended_beams * beam_fwhm
        scale = np.where(extended, GAUSS_TO_LAS, 1.0)
        core = np.clip(np.nan_to_num(np.asarray(compactness, dtype=float)), 0.0, 1.0)
        return {"core_frac": np.where(extended, core, 0.0), "b_maj": b_maj * scale,
                "b_min": b_min * scale, "size": np.where(extended, 1, 2),
                "class": np.where(extended, 1, 3)}


PrimaryBeamLike = float | np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray] | None


_DY, _DX = np.mgrid[-1:2, -1:2].reshape(2, 9)  # 3x3 neighbourhood offsets, raster order
_QUADRATIC = np.linalg.pinv(np.stack([np.ones(9), _DX, _DY, _DX**2, _DX * _DY, _DY**2], axis=1).astype(float))


def refined_peaks(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel peaks from 2-D quadratics fitted to the 3x3 neighbourhoods of pixels.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Finite image.
    y, x : ndarray of int, shape (n,)
        Rows and columns of the brightest pixels.

    Returns
    -------
    x, y : ndarray, shape (n,)
        Refined positions. Each fit is to the log of the values when all nine are positive
        (exact for any elliptical Gaussian), else to the values; the brightest pixel is
        kept when its neighbourhood leaves the image or the fit has no maximum (negative
        definite Hessian) within one pixel.
    """
    ny, nx = image.shape
    xr, yr = x.astype(float), y.astype(float)
    inside = np.flatnonzero((x > 0) & (x < nx - 1) & (y > 0) & (y < ny - 1))
    patch = image[y[inside, None] + _DY, x[inside, None] + _DX]
    positive = np.all(patch > 0, axis=1)
    patch = np.where(positive[:, None], np.log(np.where(positive[:, None], patch, 1.0)), patch)
    _, bx, by, axx, axy, ayy = (patch @ _QUADRATIC.T).T
    hxx, hyy = 2 * axx, 2 * ayy
    with np.errstate(invalid="ignore", over="ignore"):
        det = hxx * hyy - axy * axy
        ok = np.isfinite(hxx) & np.isfinite(axy) & np.isfinite(hyy) & (hxx < 0) & (det > 0)
        safe = np.where(ok, det, 1.0)
        dx = (axy * by - hyy * bx) / safe
        dy = (axy * bx - hxx * by) / safe
        ok &= np.maximum(np.abs(dx), np.abs(dy)) <= 1.0
    xr[inside[ok]] += dx[ok]
    yr[inside[ok]] += dy[ok]
    return xr, yr


def values_at(source: PrimaryBeamLike | np.ndarray, x: np.ndarray, y: np.ndarray, ra, dec, name: str):
    """Values of a scalar, a map (at the nearest pixel) or a callable of (RA, Dec) at sources.

    Used for primary-beam gains and local noise; ``name`` appears in the error message.
    """
    if callable(source):
        return np.asarray(source(ra, dec), dtype=float)
    arr = np.asarray(source, dtype=float)
    if arr.ndim == 0:
        return np.full(len(x), float(arr))
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a scalar, a 2-D map or a callable, got shape {arr.shape}")
    iy = np.clip(np.rint(y).astype(int), 0, arr.shape[0] - 1)
    ix = np.clip(np.rint(x).astype(int), 0, arr.shape[1] - 1)
    return arr[iy, ix]


def _component_stats(clean: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-label pixel statistics of a finite image, computed for all labels at once.

    Parameters
    ----------
    clean : ndarray, shape (ny, nx)
        Finite brightness image.
    labels : ndarray of int, shape (ny, nx)
        Component labels, 0 for background.

    Returns
    -------
    dict of ndarray
        ``ids`` (the positive labels, increasing) and, per label, ``area`` (pixels),
        ``total`` (sum of values), ``peak`` (largest value), ``px``, ``py`` (its pixel: the
        first in raster order when several share it), ``weight`` (sum of the positive
        values), ``xc``, ``yc`` (centroid weighted by the positive values; NaN where
        ``weight <= 0``) and ``cov`` (n, 2, 2), their weighted covariance in pix².
    """
    nx = labels.shape[1]
    flat = labels.ravel().astype(np.int64)
    ids = np.flatnonzero(np.bincount(flat))
    ids = ids[ids > 0]
    n = ids.size
    pixels = np.flatnonzero(flat > 0)  # raster order
    lookup = np.zeros(ids[-1] + 1 if n else 1, dtype=np.intp)
    lookup[ids] = np.arange(n)
    index = lookup[flat[pixels]]
    del flat
    values = clean.ravel()[pixels]
    area = np.bincount(index, minlength=n)
    total = np.bincount(index, weights=values, minlength=n)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, index, values)
    at_peak = np.flatnonzero(values == peak[index])  # raster order, so the first of a label
    first = np.unique(index[at_peak], return_index=True)[1]
    py, px = np.divmod(pixels[at_peak[first]], nx)
    ys, xs = np.divmod(pixels, nx)
    ys, xs = ys.astype(float), xs.astype(float)
    w = np.clip(values, 0.0, None)
    weight = np.bincount(index, weights=w, minlength=n)
    good = weight > 0
    denom = np.where(good, weight, 1.0)

    def mean(weights: np.ndarray) -> np.ndarray:
        return np.where(good, np.bincount(index, weights=weights, minlength=n) / denom, np.nan)

    xc, yc = mean(w * xs), mean(w * ys)
    dx, dy = xs - xc[index], ys - yc[index]
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = mean(w * dx * dx), mean(w * dy * dy)
    cov[:, 0, 1] = cov[:, 1, 0] = mean(w * dx * dy)
    return {"ids": ids, "area": area, "total": total, "peak": peak, "px": px, "py": py,
            "weight": weight, "xc": xc, "yc": yc, "cov": cov}


def pixel_scale_at(wcs: WCS, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Local pixel-to-sky Jacobians of a celestial WCS at 0-based pixel positions.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS (extra axes are dropped).
    x, y : array-like, shape (n,)
        Pixel positions.

    Returns
    -------
    ndarray, shape (n, 2, 2)
        Degrees on the sky per pixel: rows (east, north), columns (x, y), from the
        positions half a pixel either side (the same layout as
        :attr:`astropy.wcs.WCS.pixel_scale_matrix`, which is this at the reference pixel
        of a flat projection). ``abs(det)`` is the solid angle of a pixel in deg².

    Examples
    --------
    >>> from radioseg_utils.io.wcs import sdc1_wcs
    >>> m = pixel_scale_at(sdc1_wcs("B1", (100, 100)), [49.0], [49.0])[0] * 3600
    >>> np.round(m, 4).tolist()
    [[-0.6042, 0.0], [0.0, 0.6042]]
    """
    celestial = wcs.celestial
    x, y = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
    ra, dec = celestial.pixel_to_world_values(np.concatenate([x - 0.5, x + 0.5, x, x]),
                                              np.concatenate([y, y, y - 0.5, y + 0.5]))
    ra, dec = np.split(np.asarray(ra), 4), np.split(np.asarray(dec), 4)
    out = np.empty((x.size, 2, 2))
    for column, (a, b) in enumerate(((0, 1), (2, 3))):
        mean_dec = np.radians((dec[a] + dec[b]) / 2)
        out[:, 0, column] = ((ra[b] - ra[a] + 180.0) % 360.0 - 180.0) * np.cos(mean_dec)
        out[:, 1, column] = dec[b] - dec[a]
    return out


def _sky_ellipses(cov_pix: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Major/minor FWHM (arcsec) and PA (deg east of north) of pixel covariances.

    Parameters
    ----------
    cov_pix : ndarray, shape (n, 2, 2)
        Covariances in pix² (x, y).
    scales : ndarray, shape (n, 2, 2)
        Degrees per pixel, rows (east, north), columns (x, y) (:func:`pixel_scale_at`).

    Returns
    -------
    maj, min, pa : ndarray, shape (n,)
        FWHMs of the largest and smallest eigenvalues of the sky covariance, and the
        position angle of the former's eigenvector, in [0, 180).
    """
    cov = scales @ cov_pix @ np.swapaxes(scales, 1, 2) * 3600.0**2  # (east, north) in arcsec^2
    evals, evecs = np.linalg.eigh(cov)
    pa = np.degrees(np.arctan2(evecs[:, 0, 1], evecs[:, 1, 1])) % 180.0
    fwhm = FWHM_PER_SIGMA * np.sqrt(np.clip(evals, 0.0, None))
    return fwhm[:, 1], fwhm[:, 0], pa


def measure_sources(
    image: np.ndarray,
    labels: np.ndarray,
    wcs: WCS,
    band: str | Band,
    *,
    noise: float | np.ndarray | None = None,
    background: float | np.ndarray = 0.0,
    primary_beam: PrimaryBeamLike = None,
    beam_fwhm_arcsec: float | None = None,
    grow: float = 0.0,
    rule: ClassRule = ClassRule(),
    local_scale: bool = False,
) -> Table:
    """Measure each labelled component on the image and return the source catalogue.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Brightness in Jy/beam (NaN pixels count as 0).
    labels : ndarray of int, shape (ny, nx)
        Component labels, 0 for background; each positive label is one source.
    wcs : astropy.wcs.WCS
        Celestial WCS of ``image`` (extra axes are dropped).
    band : str or Band
        SDC1 band: gives the restoring beam unless ``beam_fwhm_arcsec`` is set.
    noise : float or ndarray (ny, nx), optional
        Local rms in Jy/beam (scalar or map, read at the peak). Default: the
        sigma-clipped rms of the image (:func:`radioseg_utils.core.noise.estimate_noise`).
    background : float or ndarray (ny, nx)
        Background level in Jy/beam subtracted before measuring (the SDC1 images sit
        about 0.7 sigma below zero), e.g. the median of
        :func:`radioseg_utils.core.noise.estimate_noise`. Default 0.
    primary_beam : float, ndarray (ny, nx) or callable, optional
        Primary-beam gain; fluxes are divided by its value at the centroid. A callable
        takes (ra, dec) in degrees. Default: no correction.
    beam_fwhm_arcsec : float, optional
        FWHM of the circular restoring beam (for an elliptical one, the geometric mean of
        its axes gives its area); default the band's.
    grow : float
        Expand every label by this many pixels (without merging neighbours) before
        measuring, to include the wings that a tight mask cuts off.
    rule : ClassRule
        SIZE/CLASS rule (see module docstring).
    local_scale : bool
        Pixel size and orientation from the WCS at each source (:func:`pixel_scale_at`)
        rather than at its reference pixel.

    Returns
    -------
    astropy.table.Table
        One row per label in increasing label order: the SDC1 submission columns, ``x``,
        ``y`` (0-based centroid pixel) and :data:`EXTRA_COLUMNS`, plus ``label``.

    Raises
    ------
    ValueError
        If shapes differ, the WCS is not celestial 2-D, or the noise is not positive.
    """
    image = np.asarray(image, dtype=float)
    labels = np.asarray(labels)
    if image.ndim != 2 or labels.shape != image.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} must be equal 2-D shapes")
    celestial = wcs.celestial
    if celestial.naxis != 2:
        raise ValueError("wcs must have two celestial axes")
    band = get_band(band)
    beam = float(beam_fwhm_arcsec if beam_fwhm_arcsec is not None else band.beam_fwhm_arcsec)
    scale = celestial.pixel_scale_matrix  # deg / pix, rows (east, north)
    pix_area_arcsec2 = abs(np.linalg.det(scale)) * 3600.0**2
    beam_area_pix = gaussian_area(beam) / pix_area_arcsec2
    clean = image - background
    clean[~np.isfinite(clean)] = 0.0
    if grow > 0:
        labels = expand_labels(labels, distance=grow)
    if noise is None:
        noise = estimate_noise(image - background)[1]
    stats = _component_stats(clean, labels)
    ids = stats["ids"]
    xp, yp = refined_peaks(clean, stats["py"], stats["px"])
    moments = stats["weight"] > 0  # else: centroid at the refined peak, no size
    xc, yc = np.where(moments, stats["xc"], xp), np.where(moments, stats["yc"], yp)
    if local_scale:
        scales = pixel_scale_at(celestial, xc, yc)
        beam_area_pix = gaussian_area(beam) / (np.abs(np.linalg.det(scales)) * 3600.0**2)
    else:
        scales = np.broadcast_to(scale, (ids.size, 2, 2))
    maj, mnr, pa = np.zeros(ids.size), np.zeros(ids.size), np.zeros(ids.size)
    maj[moments], mnr[moments], pa[moments] = _sky_ellipses(stats["cov"][moments], scales[moments])
    peak = stats["peak"]

    ra_p, dec_p = celestial.pixel_to_world_values(xp, yp)
    ra_c, dec_c = celestial.pixel_to_world_values(xc, yc)
    local_noise = values_at(noise, xp, yp, ra_p, dec_p, "noise")
    if np.any(~(local_noise > 0)):
        raise ValueError("noise must be positive and finite at every source peak")
    apparent = stats["total"] / beam_area_pix
    with np.errstate(divide="ignore", invalid="ignore"):
        compactness = np.where(apparent > 0, peak / apparent, np.nan)
    flux = apparent
    if primary_beam is not None:
        gain = values_at(primary_beam, xc, yc, ra_c, dec_c, "primary_beam")
        if np.any(~(gain > 0)):
            raise ValueError("primary_beam must be positive at every source centroid")
        flux = apparent / gain
    maj_d, min_d = deconvolve_fwhm(maj, beam), deconvolve_fwhm(mnr, beam)
    sdc1 = rule.columns(maj_d, min_d, compactness, beam)
    columns = {
        "id": ids,
        "ra_core": wrap_ra(ra_p),
        "dec_core": dec_p,
        "ra_cent": wrap_ra(ra_c),
        "dec_cent": dec_c,
        "flux": flux,
        "core_frac": sdc1["core_frac"],
        "b_maj": sdc1["b_maj"],
        "b_min": sdc1["b_min"],
        "pa": pa_east_of_north(pa),  # east of north -> SDC1 (an involution)
        "size": sdc1["size"],
        "class": sdc1["class"],
        "x": xc,
        "y": yc,
        "peak_flux": peak,
        "peak_snr": peak / local_noise,
        "noise": local_noise,
        "area_pix": stats["area"].astype(np.int64),
        "compactness": compactness,
        "fwhm_maj": maj,
        "fwhm_min": mnr,
        "pa_eon": pa,
    }
    table = catalogue_table(columns)
    table["label"] = ids.astype(np.int32)
    return table
