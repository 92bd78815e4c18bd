"""FITS images in the SDC1 layout: WCS construction and writing.

SDC1 images are 4-D ``(1, 1, ny, nx)`` big-endian float32 arrays in Jy/beam with a SIN
projection centred on RA 0, Dec -30; the headers carry BMAJ/BMIN but no BPA.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .bands import Band, get_band

__all__ = ["sdc1_wcs", "sdc1_header", "write_image"]

#: SDC1 field centre (RA, Dec) in degrees.
SDC1_CENTRE: tuple[float, float] = (0.0, -30.0)


def sdc1_wcs(
    band: str | Band,
    shape: tuple[int, int],
    *,
    centre: tuple[float, float] = SDC1_CENTRE,
    crpix: tuple[float, float] | None = None,
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
        1-based FITS reference pixel. Default: the image centre, ``(nx/2 + 1, ny/2 + 1)``
        as in the SDC1 images.

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
    wcs.wcs.crpix = list(crpix) if crpix is not None else [nx / 2 + 1, ny / 2 + 1]
    wcs.wcs.cdelt = [-band.pixel_deg, band.pixel_deg]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    return wcs


def sdc1_header(wcs: WCS, band: str | Band, *, ndim: int = 4, bunit: str = "JY/BEAM") -> fits.Header:
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


def write_image(
    path: str | Path,
    data: np.ndarray,
    header: fits.Header,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a 2-D image with the given header, 4-D if the header has 4 axes.

    Parameters
    ----------
    path : str or Path
        Output file. An existing file is only replaced when ``overwrite`` is True.
    data : ndarray, shape (ny, nx)
        Image in the header's BUNIT; written as big-endian float32.
    header : astropy.io.fits.Header
        Header from :func:`sdc1_header` or one copied from an input image.
    overwrite : bool
        Replace an existing file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {data.shape}")
    naxis = sum(1 for k in ("CTYPE1", "CTYPE2", "CTYPE3", "CTYPE4") if k in header)
    out = data.astype(">f4")[None, None] if naxis == 4 else data.astype(">f4")
    tmp = path.with_name(path.name + ".part")
    fits.PrimaryHDU(out, header=header).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path
