"""The SDC1 sky grid: the SIN-projection WCS and FITS header of an SDC1-like image in any
band (:func:`sdc1_wcs`, :func:`sdc1_header`), the SDC1 field centre and image side, and
the placement of simulated fields on the sky (:func:`field_centre`).
"""

from __future__ import annotations

from astropy.io import fits
from astropy.wcs import WCS

from radioseg_utils.core.bands import Band, get_band

__all__ = [
    "SDC1_SIDE",
    "SDC1_CENTRE",
    "sdc1_wcs",
    "sdc1_header",
    "field_centre",
]


#: Side of a full SDC1 image, in pixels (every band).
SDC1_SIDE: int = 32768


#: SDC1 field centre (RA, Dec) in degrees.
SDC1_CENTRE: tuple[float, float] = (0.0, -30.0)


def sdc1_wcs(
    band: str | Band,
    shape: tuple[int, int],
    *,
    centre: tuple[float, float] = SDC1_CENTRE,
    crpix: tuple[float, float] | None = None,
    pixel_arcsec: float | None = None,
) -> WCS:
    """Celestial SIN-projection WCS on the band's pixel grid.

    Parameters
    ----------
    band : str or Band
        SDC1 band (``"B1"``, ``"B2"``, ``"B5"``) or frequency.
    shape : (ny, nx)
        Image shape in pixels.
    centre : (ra, dec), optional
        Sky position (deg) of the reference pixel. Default: the SDC1 field centre.
    crpix : (x, y), optional
        1-based FITS reference pixel. Default ``(nx/2, ny/2)``, the SDC1 convention
        (the truth catalogues' 0-based ``x``, ``y`` put the field centre at ``nx/2 - 1``).

    pixel_arcsec : float, optional
        Pixel size in arcsec. Default: ``band.pixel_arcsec``. The SDC1 headers have
        ``|CDELT| = 1.67847e-4 deg`` = 0.604249" for B1 (5.5 deg / 32768 px).

    Returns
    -------
    astropy.wcs.WCS
        2-D celestial WCS, RA increasing to the left (CDELT1 < 0).
    """
    band = get_band(band)
    ny, nx = (int(n) for n in shape)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [centre[0] % 360.0, centre[1]]
    wcs.wcs.crpix = list(crpix) if crpix is not None else [nx / 2, ny / 2]
    pixel_deg = band.pixel_deg if pixel_arcsec is None else pixel_arcsec / 3600.0
    wcs.wcs.cdelt = [-pixel_deg, pixel_deg]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    return wcs


def sdc1_header(
    wcs: WCS, band: str | Band, *, ndim: int = 4, bunit: str = "JY/BEAM"
) -> fits.Header:
    """FITS header in the SDC1 style for a 2-D celestial WCS.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        2-D celestial WCS of the image.
    band : str or Band
        SDC1 band; sets BMAJ/BMIN (restoring beam) and the frequency axis.
    ndim : {2, 4}
        4 writes the SDC1 layout with degenerate FREQ and STOKES axes.
    bunit : str
        Brightness unit, ``"JY/BEAM"`` by default.
    """
    if ndim not in (2, 4):
        raise ValueError(f"ndim must be 2 or 4, got {ndim}")
    band = get_band(band)
    header = wcs.celestial.to_header()
    if ndim == 4:
        header["CTYPE3"], header["CRVAL3"], header["CDELT3"] = "FREQ", band.freq_hz, 1.0e6
        header["CRPIX3"], header["CUNIT3"] = 1.0, "Hz"
        header["CTYPE4"], header["CRVAL4"], header["CDELT4"] = "STOKES", 1.0, 1.0
        header["CRPIX4"], header["CUNIT4"] = 1.0, ""
    header["BMAJ"] = band.beam_fwhm_arcsec / 3600.0
    header["BMIN"] = band.beam_fwhm_arcsec / 3600.0
    header["BPA"] = 0.0
    header["BUNIT"] = bunit
    header["RESTFRQ"] = band.freq_hz
    header["TELESCOP"] = "SKA1-mid (simulated)"
    return header


def field_centre(b1_position: tuple[float, float], band: str | Band) -> tuple[float, float]:
    """Centre (RA, Dec) in deg of a simulated field of ``band`` placed at ``b1_position``.

    Fields are laid out on the B1 sky around :data:`SDC1_CENTRE`; in another band the
    offset from the SDC1 centre shrinks with the band's field of view, so that fields of
    the small B5 sky stay inside a plausible patch.

    Examples
    --------
    >>> field_centre((2.0, -30.0), "B1")
    (2.0, -30.0)
    >>> ra, dec = field_centre((2.0, -30.0), "B5")
    >>> round(ra, 4), dec
    (0.12, -30.0)
    """
    scale = get_band(band).fov_deg / get_band("B1").fov_deg
    return (SDC1_CENTRE[0] + (b1_position[0] - SDC1_CENTRE[0]) * scale,
            SDC1_CENTRE[1] + (b1_position[1] - SDC1_CENTRE[1]) * scale)

