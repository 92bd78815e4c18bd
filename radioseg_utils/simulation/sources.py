"""Beam-convolved models of catalogue sources ("postage stamps"), following the SDC1 recipe.

Every source of a tidy catalogue (:mod:`radioseg_utils.io.catalogue`) is described as a
small sum of elliptical Gaussian components, so that the convolution with the circular
restoring beam is analytic (covariances add) and thousands of sources are rendered at once
with array arithmetic:

- star-forming galaxies (``class`` 3): ``size`` 3 is an exponential (Sérsic n = 1) disc of
  scale lengths ``b_maj``, ``b_min``, drawn as the 6-Gaussian mixture of
  :data:`EXP_MIXTURE`; any other ``size`` (2, the vast majority) is an elliptical Gaussian
  of FWHM ``(b_maj, b_min)``. The SDC1 text speaks of scale lengths and a sqrt(2) factor,
  but on the real B1 cutout PyBDSF's deconvolved FWHM of resolved SIZE 2 galaxies is
  ``b_maj`` itself (median ratio 0.99 over 18 sources with S/N > 30), not ``sqrt(2) b_maj``;
- flat-spectrum AGN (``class`` 2): a core of flux ``flux * core_frac`` and FWHM g/10 at
  ``(ra_core, dec_core)`` plus an end-on circular lobe of flux ``flux * (1 - core_frac)``
  and FWHM ``b_maj / 2`` at the centroid;
- steep-spectrum AGN (``class`` 1, ``b_maj`` = largest angular size, LAS): a core of flux
  ``flux * core_frac`` at the core position plus two elliptical Gaussian lobes along the
  position angle, centred ``3/8 LAS`` either side of the core, each of FWHM ``LAS/4`` along
  the axis and ``b_min/2`` across it (so the double spans about one LAS end to end, and is
  the SDC1 "FWHM = LAS/2" Gaussian when unresolved). The lobe fluxes are split so that the
  flux-weighted centroid lies at ``(ra_cent, dec_cent)`` projected on the axis. This is a
  simple stand-in for the real FRI/FRII library images used by SDC1.

``core_frac`` is clipped to [0, 1] (the SDC1 catalogues hold a few values just above 1),
so the total flux is always ``flux`` (times the primary beam, when given).

SDC1 added a 2-pixel-FWHM gridding kernel g in quadrature to every source, then removed it
again in quadrature when convolving to the restoring beam (data description §6.4), so the
net kernel of the image is the restoring beam alone; a point source renders with the beam's
FWHM exactly.

Position angle
--------------
The SDC1 ``PA`` is "measured clockwise from the longitude-wise direction" (data
description §8: "clockwise from due west"), on the sky as displayed with north up and east
to the left (RA increasing to the left, as in the SDC1 images). A major axis at SDC1 PA
``p`` therefore has the astronomical position angle (east of north) ``90° - p``; on the
pixel grid it makes an angle ``-p`` with the +x axis, i.e. PA 0 is along x (RA) and PA 90 is
along y (Dec). :func:`pa_east_of_north` does the conversion. This orientation was checked
on the real B1 cutout (its truth catalogue rendered both ways; see ``tests/test_sources.py``).

Units: catalogue fluxes in Jy, sizes in arcsec, angles in degrees; stamps in Jy/beam, so
``stamp.data.sum() / band.beam_area_pix == flux`` (to float32 precision, when the stamp
lies inside the grid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.ndimage import map_coordinates

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.core.gaussian import FWHM_PER_SIGMA
from radioseg_utils.io.fits_read import read_plane

__all__ = [
    "SourceStamp",
    "GaussianComponents",
    "PrimaryBeam",
    "EXP_MIXTURE",
    "DEFAULT_PAD_FWHM",
    "gaussian_components",
    "source_stamps",
    "clip_stamp",
    "add_stamp",
    "pa_east_of_north",
]

#: Stamp half-size, in convolved FWHMs of the widest component, beyond its centre.
DEFAULT_PAD_FWHM: float = 3.0
#: Gridding kernel FWHM of SDC1 in pixels; the FS-AGN core has FWHM g/10.
GRIDDING_FWHM_PIX: float = 2.0
#: SS-AGN lobe centre distance from the core, in units of the LAS.
LOBE_OFFSET_LAS: float = 3.0 / 8.0
#: SS-AGN lobe FWHM along the axis, in units of the LAS.
LOBE_FWHM_LAS: float = 1.0 / 4.0
#: Exponential disc as Gaussians: (amplitude, variance in scale lengths²) pairs, fitted by
#: least squares to the flux-weighted profile r·exp(-r) over 0 < r < 12 scale lengths; the
#: enclosed flux (amplitudes renormalised to sum 1) matches the exponential to 5e-4.
EXP_MIXTURE: tuple[tuple[float, float], ...] = (
    (0.002637, 0.021627),
    (0.021712, 0.117960),
    (0.101946, 0.421651),
    (0.292869, 1.227455),
    (0.417246, 3.161034),
    (0.163164, 7.675896),
)
_REQUIRED = ("ra_core", "dec_core", "ra_cent", "dec_cent", "flux", "core_frac",
             "b_maj", "b_min", "pa", "class")
#: Stamp half-sizes (pixels) are rounded up to this ladder so sources batch together.
_HALF_LADDER = np.unique(np.round(4 * 1.25 ** np.arange(40)).astype(np.int64))
#: Upper bound on pixels evaluated in one vectorised batch (memory ~ 8 bytes × this × 2).
_BATCH_PIXELS = 1_000_000


@dataclass(frozen=True)
class SourceStamp:
    """Beam-convolved model of one source on a patch of the image grid.

    Attributes
    ----------
    index : int
        Row index of the source in the catalogue.
    y0, x0 : int
        Pixel of ``data[0, 0]`` in the full grid (0-based); may be negative or beyond the
        grid, see :func:`clip_stamp`.
    data : ndarray of float32, shape (h, w)
        Model in Jy/beam; ``data.sum() / band.beam_area_pix`` is the (apparent) flux in Jy.
    """

    index: int
    y0: int
    x0: int
    data: np.ndarray


@dataclass(frozen=True)
class GaussianComponents:
    """Beam-convolved Gaussian components of catalogue sources, in pixel units.

    All attributes are 1-D arrays of the same length (one entry per component).

    Attributes
    ----------
    index : ndarray of int
        Catalogue row of the source each component belongs to.
    x, y : ndarray of float
        Component centre, 0-based pixel coordinates.
    flux : ndarray of float
        Component flux in Jy (apparent if a primary beam was applied).
    cxx, cxy, cyy : ndarray of float
        Covariance (pixel²) of the component convolved with the restoring beam.
    """

    index: np.ndarray
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    cxx: np.ndarray
    cxy: np.ndarray
    cyy: np.ndarray


@dataclass(frozen=True)
class PrimaryBeam:
    """Primary-beam attenuation model on a coarse sky grid, interpolated bilinearly.

    Attributes
    ----------
    data : ndarray, shape (ny, nx)
        Attenuation (1 at the pointing centre) on the grid of ``header``.
    header : astropy.io.fits.Header
        FITS header holding the grid's celestial WCS (kept as a header, which pickles
        exactly, so every process interpolates identically).
    """

    data: np.ndarray
    header: fits.Header

    @classmethod
    def from_fits(cls, path: str | Path) -> PrimaryBeam:
        """Read an SDC1 primary-beam file (``PrimaryBeam_B*.fits``, 2-D or 4-D).

        Raises
        ------
        FileNotFoundError, radioseg_utils.io.fits_read.SDC1FormatError
            If the file is missing, not FITS, truncated or holds no single image plane
            (:func:`radioseg_utils.io.fits_read.read_plane`).
        """
        data, header = read_plane(path)
        return cls(data=data, header=header)

    @property
    def wcs(self) -> WCS:
        """Celestial WCS of the grid."""
        return WCS(self.header).celestial

    def __call__(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Attenuation at sky positions (deg); positions off the grid take the edge value."""
        x, y = self.wcs.wcs_world2pix(np.asarray(ra, float) % 360.0, np.asarray(dec, float), 0)
        return map_coordinates(self.data, [np.atleast_1d(y), np.atleast_1d(x)], order=1,
                               mode="nearest").reshape(np.shape(ra))


def pa_east_of_north(pa_sdc1: np.ndarray | float) -> np.ndarray:
    """Astronomical position angle (deg, east of north, in [0, 180)) of an SDC1 ``pa``.

    SDC1 measures the major axis clockwise from due west, so the axis is at
    ``90 - pa`` east of north (axes are undirected: modulo 180).

    Examples
    --------
    >>> float(pa_east_of_north(0.0)), float(pa_east_of_north(30.0))
    (90.0, 60.0)
    """
    return np.mod(90.0 - np.asarray(pa_sdc1, dtype=float), 180.0)


def _validate(catalogue: Table) -> None:
    missing = [name for name in _REQUIRED if name not in catalogue.colnames]
    if missing:
        raise ValueError(f"catalogue lacks column(s) {', '.join(missing)} needed to render sources")
    for name in ("ra_cent", "dec_cent", "flux", "b_maj"):
        bad = ~np.isfinite(np.asarray(catalogue[name], dtype=float))
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"catalogue column {name!r} is not finite in row {row}")
    cls = np.asarray(catalogue["class"])
    bad = ~np.isin(cls, (1, 2, 3))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"catalogue row {row} has class {cls[row]}; expected 1, 2 or 3")


def _axis_vectors(wcs: WCS, ra: np.ndarray, dec: np.ndarray, pa: np.ndarray):
    """Pixel displacement per arcsec along the major axis (ux, uy) and across it (vx, vy)."""
    theta = np.radians(pa_east_of_north(pa))
    step = 1.0 / 3600.0
    x0, y0 = wcs.wcs_world2pix(ra % 360.0, dec, 0)
    cosd = np.cos(np.radians(dec))
    east, north = np.sin(theta) * step, np.cos(theta) * step
    x1, y1 = wcs.wcs_world2pix((ra + east / cosd) % 360.0, dec + north, 0)
    ux, uy = x1 - x0, y1 - y0
    return ux, uy, -uy, ux  # across-axis vector: major axis turned by 90 deg on the grid


def _covariance(ux, uy, vx, vy, fwhm_maj, fwhm_min, beam_var):
    """Pixel covariance of an elliptical Gaussian (FWHM in arcsec) convolved with the beam."""
    s_maj = (fwhm_maj / FWHM_PER_SIGMA) ** 2
    s_min = (fwhm_min / FWHM_PER_SIGMA) ** 2
    cxx = s_maj * ux * ux + s_min * vx * vx + beam_var
    cxy = s_maj * ux * uy + s_min * vx * vy
    cyy = s_maj * uy * uy + s_min * vy * vy + beam_var
    return cxx, cxy, cyy


def gaussian_components(
    catalogue: Table,
    wcs: WCS,
    band: str | Band,
    *,
    primary_beam: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> GaussianComponents:
    """Describe every catalogue source as beam-convolved Gaussian components.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Tidy catalogue (columns of :data:`radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`;
        ``size`` optional, taken as 2 when absent). Fluxes in Jy, sizes in arcsec.
    wcs : astropy.wcs.WCS
        Celestial WCS of the image grid.
    band : str or Band
        SDC1 band; sets the restoring beam.
    primary_beam : callable, optional
        ``primary_beam(ra_deg, dec_deg) -> attenuation``, e.g. a :class:`PrimaryBeam`;
        multiplies each source's flux at its centroid (apparent flux). None: intrinsic.

    Returns
    -------
    GaussianComponents
        Components in catalogue order (sources with several components are contiguous).

    Raises
    ------
    ValueError
        If a needed column is missing, a position/flux/size is not finite, or a class is
        not 1, 2 or 3.
    """
    _validate(catalogue)
    band = get_band(band)
    col = {name: np.asarray(catalogue[name], dtype=float) for name in _REQUIRED}
    size = (np.asarray(catalogue["size"], dtype=int) if "size" in catalogue.colnames
            else np.full(len(catalogue), 2))
    cls = np.asarray(catalogue["class"], dtype=int)
    flux = col["flux"].copy()
    if primary_beam is not None:
        flux *= np.asarray(primary_beam(col["ra_cent"], col["dec_cent"]), dtype=float)
    core_frac = np.clip(np.nan_to_num(col["core_frac"]), 0.0, 1.0)
    b_maj = np.abs(col["b_maj"])
    b_min = np.abs(np.nan_to_num(col["b_min"], nan=0.0))
    ra_c, dec_c = col["ra_cent"], col["dec_cent"]
    ra_k = np.where(np.isfinite(col["ra_core"]), col["ra_core"], ra_c)
    dec_k = np.where(np.isfinite(col["dec_core"]), col["dec_core"], dec_c)
    xc, yc = wcs.wcs_world2pix(ra_c % 360.0, dec_c, 0)
    xk, yk = wcs.wcs_world2pix(ra_k % 360.0, dec_k, 0)
    ux, uy, vx, vy = _axis_vectors(wcs, ra_c, dec_c, np.nan_to_num(col["pa"]))
    pix_per_arcsec = np.hypot(ux, uy)
    beam_var = (band.beam_fwhm_pix / FWHM_PER_SIGMA) ** 2
    core_fwhm = GRIDDING_FWHM_PIX / 10.0 / pix_per_arcsec

    parts: list[tuple] = []  # (rows, x, y, flux, fwhm_maj, fwhm_min)
    sfg = cls == 3
    disc = sfg & (size == 3)
    gauss = sfg & ~disc
    parts.append((gauss, xc, yc, flux, b_maj, b_min))
    for amp, var in EXP_MIXTURE:
        scale = FWHM_PER_SIGMA * np.sqrt(var)
        parts.append((disc, xc, yc, flux * amp / sum(a for a, _ in EXP_MIXTURE),
                      scale * b_maj, scale * b_min))
    agn = cls != 3
    parts.append((agn, xk, yk, flux * core_frac, core_fwhm, core_fwhm))
    fs = cls == 2
    parts.append((fs, xc, yc, flux * (1 - core_frac), b_maj / 2, b_maj / 2))
    ss = cls == 1
    lobe_flux = flux * (1 - core_frac)
    offset = LOBE_OFFSET_LAS * b_maj  # arcsec; times (ux, uy) gives pixels
    # centroid offset from the core along the axis (arcsec) sets the lobe flux asymmetry
    along = ((xc - xk) * ux + (yc - yk) * uy) / np.maximum(pix_per_arcsec**2, 1e-30)
    shift = np.divide(flux * along, 2 * offset, out=np.zeros_like(flux), where=offset > 0)
    for sign in (1.0, -1.0):
        f_lobe = np.clip(lobe_flux / 2 + sign * shift, 0.0, lobe_flux)
        parts.append((ss, xk + sign * offset * ux, yk + sign * offset * uy, f_lobe,
                      LOBE_FWHM_LAS * b_maj, b_min / 2))

    index, xs, ys, fl, cxx, cxy, cyy = ([] for _ in range(7))
    for rows, x, y, f, w_maj, w_min in parts:
        sel = np.flatnonzero(rows)
        index.append(sel)
        xs.append(x[sel]), ys.append(y[sel]), fl.append(f[sel])
        cov = _covariance(ux[sel], uy[sel], vx[sel], vy[sel], w_maj[sel], w_min[sel], beam_var)
        cxx.append(cov[0]), cxy.append(cov[1]), cyy.append(cov[2])
    order = np.argsort(np.concatenate(index), kind="stable")
    keep = order[np.concatenate(fl)[order] > 0]  # zero-flux cores/lobes are dropped
    packed = [np.concatenate(arrays)[keep] for arrays in (index, xs, ys, fl, cxx, cxy, cyy)]
    return GaussianComponents(*packed)


def _render_batch(comp: GaussianComponents, first: np.ndarray, ncomp: int, x0: np.ndarray,
                  y0: np.ndarray, side: int, beam_area: float) -> np.ndarray:
    """Evaluate stamps (n, side, side) of n sources of ``ncomp`` components each.

    Computed in float64 and rounded to float32, so that the bytes do not depend on how the
    vectorised maths is laid out in memory (SIMD and scalar code paths differ in the last
    bits).

    The exponent ``a dx² + 2 b dx dy + c dy²`` is built from a row term, a column term and
    one outer product, so each component costs one (n, side, side) multiply and exp.
    """
    out = np.zeros((first.size, side, side))
    grid = np.arange(side, dtype=float)
    for k in range(ncomp):
        idx = first + k
        det = comp.cxx[idx] * comp.cyy[idx] - comp.cxy[idx] ** 2
        a, b, c = (-0.5 * comp.cyy[idx] / det, comp.cxy[idx] / det, -0.5 * comp.cxx[idx] / det)
        dx = grid[None, :] - (comp.x[idx] - x0)[:, None]
        dy = grid[None, :] - (comp.y[idx] - y0)[:, None]
        norm = comp.flux[idx] * beam_area / (2 * np.pi * np.sqrt(det))
        term = (b[:, None] * dy)[:, :, None] * dx[:, None, :]
        term += (a[:, None] * dx**2)[:, None, :]
        term += (c[:, None] * dy**2 + np.log(norm)[:, None])[:, :, None]
        out += np.exp(term, out=term)
    return out.astype(np.float32)


def source_stamps(
    catalogue: Table,
    wcs: WCS,
    band: str | Band,
    *,
    shape: tuple[int, int],
    primary_beam: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    pad_fwhm: float = DEFAULT_PAD_FWHM,
) -> Iterator[SourceStamp]:
    """Yield a beam-convolved model stamp for every catalogue source touching the grid.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Tidy catalogue, see :func:`gaussian_components`.
    wcs : astropy.wcs.WCS
        Celestial WCS of the image grid.
    band : str or Band
        SDC1 band; sets the restoring beam and the Jy/beam conversion.
    shape : (ny, nx)
        Shape of the image grid; sources whose stamp misses it entirely are skipped.
    primary_beam : callable, optional
        ``primary_beam(ra, dec) -> attenuation`` (e.g. :class:`PrimaryBeam`); None for
        intrinsic fluxes.
    pad_fwhm : float
        Stamp half-size beyond each component centre, in convolved FWHMs of its major
        axis (3 FWHM ~ 7 sigma: the flux outside is < 1e-10).

    Yields
    ------
    SourceStamp
        Stamps, batched by size (not in catalogue order); ``index`` gives the row.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from radioseg_utils.io.wcs import sdc1_wcs
    >>> wcs = sdc1_wcs("B1", (64, 64))
    >>> cat = Table({"ra_core": [0.0], "dec_core": [-30.0], "ra_cent": [0.0],
    ...              "dec_cent": [-30.0], "flux": [1e-3], "core_frac": [0.0], "b_maj": [0.0],
    ...              "b_min": [0.0], "pa": [0.0], "size": [2], "class": [3]})
    >>> stamp = next(source_stamps(cat, wcs, "B1", shape=(64, 64)))
    >>> round(float(stamp.data.max()) * 1e3, 4)  # a point source peaks at its flux
    1.0
    """
    if pad_fwhm <= 0:
        raise ValueError(f"pad_fwhm must be positive, got {pad_fwhm}")
    ny, nx = (int(n) for n in shape)
    band = get_band(band)
    comp = gaussian_components(catalogue, wcs, band, primary_beam=primary_beam)
    if comp.index.size == 0:
        return
    sources, starts, counts = np.unique(comp.index, return_index=True, return_counts=True)
    # flux-weighted centre and extent of each source
    w = comp.flux / np.add.reduceat(comp.flux, starts)[np.repeat(np.arange(sources.size), counts)]
    xm = np.add.reduceat(comp.x * w, starts)
    ym = np.add.reduceat(comp.y * w, starts)
    lam = 0.5 * (comp.cxx + comp.cyy) + np.sqrt(0.25 * (comp.cxx - comp.cyy) ** 2 + comp.cxy**2)
    src_of_comp = np.repeat(np.arange(sources.size), counts)
    reach = (np.hypot(comp.x - xm[src_of_comp], comp.y - ym[src_of_comp])
             + pad_fwhm * FWHM_PER_SIGMA * np.sqrt(lam))
    half_needed = np.ceil(np.maximum.reduceat(reach, starts)).astype(np.int64)
    ladder = np.searchsorted(_HALF_LADDER, half_needed)
    top = _HALF_LADDER.size - 1
    half = np.where(ladder <= top, _HALF_LADDER[np.minimum(ladder, top)], half_needed)
    xi, yi = np.rint(xm).astype(np.int64), np.rint(ym).astype(np.int64)
    x0, y0 = xi - half, yi - half
    on_grid = (x0 + 2 * half >= 0) & (x0 < nx) & (y0 + 2 * half >= 0) & (y0 < ny)
    groups = np.unique(np.stack([half, counts])[:, on_grid], axis=1)
    for h, ncomp in groups.T:
        members = np.flatnonzero(on_grid & (half == h) & (counts == ncomp))
        side = int(2 * h + 1)
        step = max(1, _BATCH_PIXELS // (side * side))
        for lo in range(0, members.size, step):
            sel = members[lo:lo + step]
            stamps = _render_batch(comp, starts[sel], int(ncomp), x0[sel].astype(float),
                                   y0[sel].astype(float), side, band.beam_area_pix)
            for j, s in enumerate(sel):
                yield SourceStamp(index=int(sources[s]), y0=int(y0[s]), x0=int(x0[s]),
                                  data=stamps[j])


def clip_stamp(stamp: SourceStamp, shape: tuple[int, int]) -> tuple[tuple[slice, slice],
                                                                    tuple[slice, slice]] | None:
    """Slices of the image and of ``stamp.data`` where they overlap; None if they do not.

    Parameters
    ----------
    stamp : SourceStamp
        Stamp with its origin on the image grid.
    shape : (ny, nx)
        Image shape.

    Returns
    -------
    (image_slices, stamp_slices) or None
        ``image[image_slices]`` and ``stamp.data[stamp_slices]`` have the same shape.

    Examples
    --------
    >>> s = SourceStamp(index=0, y0=-1, x0=3, data=np.ones((3, 3), np.float32))
    >>> clip_stamp(s, (4, 5))
    ((slice(0, 2, None), slice(3, 5, None)), (slice(1, 3, None), slice(0, 2, None)))
    """
    h, w = stamp.data.shape
    ylo, xlo = max(stamp.y0, 0), max(stamp.x0, 0)
    yhi, xhi = min(stamp.y0 + h, shape[0]), min(stamp.x0 + w, shape[1])
    if ylo >= yhi or xlo >= xhi:
        return None
    image_sl = (slice(ylo, yhi), slice(xlo, xhi))
    stamp_sl = (slice(ylo - stamp.y0, yhi - stamp.y0), slice(xlo - stamp.x0, xhi - stamp.x0))
    return image_sl, stamp_sl


def add_stamp(image: np.ndarray, stamp: SourceStamp) -> None:
    """Add the part of ``stamp`` that falls on ``image`` (2-D, Jy/beam) in place."""
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    sl = clip_stamp(stamp, image.shape)
    if sl is not None:
        image[sl[0]] += stamp.data[sl[1]]
