"""Source parameters measured on the image inside each labelled component.

:func:`measure_sources` turns a label image (from :mod:`radioseg_utils.postprocess.components`) and
the brightness image (Jy/beam) into a catalogue in the schema of
:data:`radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`, ready for the SDC1 scorer.

Per component, on the image pixels (not the mask):

* core position: the brightest pixel, refined to sub-pixel by a quadratic fit to the log
  of its 3x3 neighbourhood;
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

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage
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


_DY, _DX = (g.ravel() for g in np.mgrid[-1:2, -1:2].astype(float))
_QUADRATIC = np.linalg.pinv(np.stack([np.ones(9), _DX, _DY, _DX**2, _DX * _DY, _DY**2], axis=1))


def _refined_peak(image: np.ndarray, y: int, x: int) -> tuple[float, float]:
    """Sub-pixel peak from a 2-D quadratic fitted to the 3x3 neighbourhood.

    The fit is to the log of the values when all nine are positive (exact for any
    elliptical Gaussian), else to the values; the brightest pixel is kept when the
    neighbourhood leaves the image or the fit has no maximum within one pixel.
    """
    ny, nx = image.shape
    if not (0 < x < nx - 1 and 0 < y < ny - 1):
        return float(x), float(y)
    patch = image[y - 1 : y + 2, x - 1 : x + 2].ravel()
    patch = np.log(patch) if np.all(patch > 0) else patch
    _, bx, by, axx, axy, ayy = _QUADRATIC @ patch
    hessian = np.array([[2 * axx, axy], [axy, 2 * ayy]])
    if not (np.all(np.isfinite(hessian)) and hessian[0, 0] < 0 and np.linalg.det(hessian) > 0):
        return float(x), float(y)
    dx, dy = np.linalg.solve(hessian, [-bx, -by])
    if max(abs(dx), abs(dy)) > 1.0:
        return float(x), float(y)
    return x + float(dx), y + float(dy)


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


def _moments(values: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    """Centroid (x, y) and 2x2 covariance (pix^2) weighted by the positive values."""
    w = np.clip(values, 0.0, None)
    total = w.sum()
    if total <= 0:
        return None
    xc, yc = (w * xs).sum() / total, (w * ys).sum() / total
    dx, dy = xs - xc, ys - yc
    cov = np.array([[(w * dx * dx).sum(), (w * dx * dy).sum()], [0.0, (w * dy * dy).sum()]])
    cov[1, 0] = cov[0, 1]
    return xc, yc, cov / total


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


def _sky_ellipse(cov_pix: np.ndarray, scale: np.ndarray) -> tuple[float, float, float]:
    """Major/minor FWHM (arcsec) and PA (deg east of north) of a pixel covariance."""
    cov = scale @ cov_pix @ scale.T * 3600.0**2  # (east, north) in arcsec^2
    evals, evecs = np.linalg.eigh(cov)
    east, north = evecs[:, 1]
    pa = math.degrees(math.atan2(east, north)) % 180.0
    fwhm = FWHM_PER_SIGMA * np.sqrt(np.clip(evals, 0.0, None))
    return float(fwhm[1]), float(fwhm[0]), pa


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
    clean = np.nan_to_num(image - background, nan=0.0, posinf=0.0, neginf=0.0)
    if grow > 0:
        labels = expand_labels(labels, distance=grow)
    if noise is None:
        noise = estimate_noise(image - background)[1]
    ids = np.flatnonzero(np.bincount(labels.ravel().astype(np.int64)))
    ids = ids[ids > 0]
    rows = {k: np.zeros(ids.size) for k in ("xp", "yp", "xc", "yc", "total", "peak", "maj", "min", "pa", "area")}
    covariances: list[np.ndarray | None] = []
    slices = ndimage.find_objects(labels)
    for k, lab in enumerate(ids):
        sl = slices[lab - 1]
        inside = labels[sl] == lab
        values = clean[sl][inside]
        ys, xs = np.nonzero(inside)
        xs, ys = xs + sl[1].start, ys + sl[0].start
        j = int(np.argmax(values))
        rows["xp"][k], rows["yp"][k] = _refined_peak(clean, ys[j], xs[j])
        rows["peak"][k], rows["total"][k], rows["area"][k] = values[j], values.sum(), values.size
        mom = _moments(values, xs.astype(float), ys.astype(float))
        if mom is None:
            rows["xc"][k], rows["yc"][k] = rows["xp"][k], rows["yp"][k]
            covariances.append(None)
            continue
        rows["xc"][k], rows["yc"][k], cov = mom
        covariances.append(cov)
    if local_scale:
        scales = pixel_scale_at(celestial, rows["xc"], rows["yc"])
        beam_area_pix = gaussian_area(beam) / (np.abs(np.linalg.det(scales)) * 3600.0**2)
    else:
        scales = np.broadcast_to(scale, (ids.size, 2, 2))
    for k, cov in enumerate(covariances):
        if cov is not None:
            rows["maj"][k], rows["min"][k], rows["pa"][k] = _sky_ellipse(cov, scales[k])

    ra_p, dec_p = celestial.pixel_to_world_values(rows["xp"], rows["yp"])
    ra_c, dec_c = celestial.pixel_to_world_values(rows["xc"], rows["yc"])
    local_noise = values_at(noise, rows["xp"], rows["yp"], ra_p, dec_p, "noise")
    if np.any(~(local_noise > 0)):
        raise ValueError("noise must be positive and finite at every source peak")
    apparent = rows["total"] / beam_area_pix
    with np.errstate(divide="ignore", invalid="ignore"):
        compactness = np.where(apparent > 0, rows["peak"] / apparent, np.nan)
    flux = apparent
    if primary_beam is not None:
        gain = values_at(primary_beam, rows["xc"], rows["yc"], ra_c, dec_c, "primary_beam")
        if np.any(~(gain > 0)):
            raise ValueError("primary_beam must be positive at every source centroid")
        flux = apparent / gain
    maj_d, min_d = deconvolve_fwhm(rows["maj"], beam), deconvolve_fwhm(rows["min"], beam)
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
        "pa": pa_east_of_north(rows["pa"]),  # east of north -> SDC1 (an involution)
        "size": sdc1["size"],
        "class": sdc1["class"],
        "x": rows["xc"],
        "y": rows["yc"],
        "peak_flux": rows["peak"],
        "peak_snr": rows["peak"] / local_noise,
        "noise": local_noise,
        "area_pix": rows["area"].astype(np.int64),
        "compactness": compactness,
        "fwhm_maj": rows["maj"],
        "fwhm_min": rows["min"],
        "pa_eon": rows["pa"],
    }
    table = catalogue_table(columns)
    table["label"] = ids.astype(np.int32)
    return table
