"""Reading FITS images in the SDC1 layout: whole, by section, or their header only.

SDC1 images are 4-D ``(1, 1, ny, nx)`` big-endian float32 arrays in Jy/beam with a SIN
projection centred on RA 0, Dec -30; the headers carry BMAJ/BMIN but no BPA, and some have
an invalid BLANK keyword on float data (ignored here). Only the requested section is read
from disk, so a 32768² image (4.3 GB) is never loaded whole.

Every FITS file the package reads is opened by :func:`open_fits`, the one validated path:
a file that is not FITS (empty, text), whose header has no END card or whose data stop
before the size its header implies (a truncated download or copy) raises
:class:`SDC1FormatError` naming the file and what is wrong, before any pixel is read.

Pixel convention: 0-based ``(x, y)`` = ``(column, row)`` of the 2-D array. The SDC1
truth-catalogue ``x``, ``y`` columns put the field centre at 0-based pixel
``(nx/2 - 1, ny/2 - 1)``, i.e. FITS ``CRPIX = nx/2``, which
:func:`radioseg_utils.io.wcs.sdc1_wcs` follows. Writing is in :mod:`radioseg_utils.io.fits_write`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS

from radioseg_utils.core.bands import Band, UnknownBandError, get_band
from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.io.catalogue import wrap_ra

__all__ = [
    "SDC1FormatError",
    "Beam",
    "SkyImage",
    "FITS_BLOCK",
    "open_fits",
    "read_plane",
    "header_beam",
    "is_sdc1_image",
    "read_image",
    "image_info",
    "image_shape",
]

logger = logging.getLogger(__name__)

#: Side of the central box sampled by :func:`image_info` for the noise estimate, in pixels.
INFO_NOISE_BOX: int = 1024
#: Rows read at a time when :func:`image_info` counts non-finite pixels.
INFO_SCAN_ROWS: int = 512

_FITS_MAGIC = b"SIMPLE  ="
#: FITS headers and data come in records of this many bytes, of 80-byte cards.
FITS_BLOCK: int = 2880
_CARD = 80
#: Files longer than this are not scanned for the END card of their first header.
_MAX_HEADER = 1000 * FITS_BLOCK
#: An AIPS ``HISTORY`` card with the restoring beam (degrees), e.g.
#: ``AIPS   CLEAN BMAJ=  2.4000E-01 BMIN=  2.4000E-01 BPA=   0.00``.
_AIPS_BEAM = re.compile(r"BMAJ\s*=\s*(?P<bmaj>\S+)\s+BMIN\s*=\s*(?P<bmin>\S+)"
                        r"(?:\s+BPA\s*=\s*(?P<bpa>\S+))?", re.IGNORECASE)
#: Relative tolerance on the pixel size and beam of an SDC1 image (:func:`is_sdc1_image`).
SDC1_GRID_RTOL: float = 0.01


class SDC1FormatError(ValueError):
    """An input file is not an image (or catalogue) in the layout radioseg reads."""


@dataclass(frozen=True)
class Beam:
    """Restoring beam of an image.

    Attributes
    ----------
    bmaj, bmin : float
        Major and minor FWHM in arcsec.
    bpa : float
        Position angle in degrees (0 when the header has no BPA, as in SDC1).
    """

    bmaj: float
    bmin: float
    bpa: float = 0.0


@dataclass
class SkyImage:
    """A 2-D image (or a section of one) with its sky coordinates and beam.

    Attributes
    ----------
    data : ndarray, shape (ny, nx), float32
        Pixel values in ``header["BUNIT"]`` (Jy/beam for SDC1), native byte order.
        NaN/inf pixels are kept; see :attr:`finite_mask` and :attr:`n_bad`.
    wcs : astropy.wcs.WCS
        2-D celestial WCS of ``data`` (shifted to the section when one was read).
    header : astropy.io.fits.Header
        Header of the whole file, unchanged.
    band : Band
        SDC1 band found from the frequency in the header.
    beam : Beam
        Restoring beam.
    pixel_arcsec : float
        Pixel size in arcsec (``|CDELT2|``).
    path : Path
        File the image was read from.
    origin : (int, int)
        0-based ``(y0, x0)`` of ``data[0, 0]`` in the file's image.
    """

    data: np.ndarray
    wcs: WCS
    header: fits.Header
    band: Band
    beam: Beam
    pixel_arcsec: float
    path: Path
    origin: tuple[int, int] = (0, 0)

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of :attr:`data`."""
        return self.data.shape

    @property
    def finite_mask(self) -> np.ndarray:
        """Boolean array, shape (ny, nx), True where the pixel is finite."""
        return np.isfinite(self.data)

    @property
    def n_bad(self) -> int:
        """Number of NaN or infinite pixels."""
        return int(self.data.size - np.count_nonzero(self.finite_mask))

    @property
    def beam_fwhm_pix(self) -> tuple[float, float]:
        """Beam ``(bmaj, bmin)`` FWHM in pixels."""
        return self.beam.bmaj / self.pixel_arcsec, self.beam.bmin / self.pixel_arcsec


def header_beam(header: fits.Header, path: str | Path = "header") -> Beam:
    """The restoring beam of an image header.

    From the ``BMAJ``/``BMIN`` (and ``BPA``) keywords, in degrees; else from the last
    ``HISTORY`` card of AIPS that gives it (AIPS keeps the beam there, e.g.
    ``AIPS   CLEAN BMAJ=  2.4000E-01 BMIN=  2.4000E-01 BPA=   0.00``, degrees).

    Parameters
    ----------
    header : astropy.io.fits.Header
        Image header.
    path : str or Path
        Named in the error message.

    Returns
    -------
    Beam
        FWHMs in arcsec, position angle in degrees (0 when not given).

    Raises
    ------
    SDC1FormatError
        If neither the keywords nor such a card give a positive, finite beam.

    Examples
    --------
    >>> header = fits.Header()
    >>> header["HISTORY"] = "AIPS   CLEAN BMAJ=  2.4000E-01 BMIN=  1.2000E-01 BPA=  30.00"
    >>> header_beam(header)
    Beam(bmaj=864.0, bmin=432.0, bpa=30.0)
    """
    if "BMAJ" in header and "BMIN" in header:
        values, where = (header["BMAJ"], header["BMIN"], header.get("BPA", 0.0)), "BMAJ/BMIN"
    else:
        found = [m for card in header.get("HISTORY", []) if "AIPS" in str(card).upper()
                 for m in [_AIPS_BEAM.search(str(card))] if m]
        if not found:
            missing = "BMAJ" if "BMAJ" not in header else "BMIN"
            raise SDC1FormatError(
                f"{path}: no restoring beam: header keyword {missing} is missing and no AIPS "
                "HISTORY card gives 'BMAJ= ... BMIN= ...'"
            )
        match = found[-1]
        values, where = (match["bmaj"], match["bmin"], match["bpa"] or 0.0), "the AIPS HISTORY card"
    try:
        bmaj, bmin, bpa = (float(v) for v in values)
    except (TypeError, ValueError):
        raise SDC1FormatError(f"{path}: unreadable beam in {where}: {values!r}") from None
    if not (math.isfinite(bmaj) and math.isfinite(bmin) and bmaj > 0 and bmin > 0):
        raise SDC1FormatError(f"{path}: the beam in {where} is not positive: "
                              f"BMAJ = {bmaj}, BMIN = {bmin} deg")
    return Beam(bmaj=bmaj * 3600.0, bmin=bmin * 3600.0, bpa=bpa if math.isfinite(bpa) else 0.0)


def is_sdc1_image(image: SkyImage) -> bool:
    """Whether an image is an SDC1 image (or simulated like one): the one test of
    where the SDC1-specific corrections (primary beam, flux scale, calibration) are valid.

    An image is SDC1 when its frequency is that of an SDC1 band (which
    :attr:`SkyImage.band` already says) *and* its pixel size and both beam axes equal
    that band's (:data:`radioseg_utils.core.bands.BANDS`) within :data:`SDC1_GRID_RTOL`:
    the SDC1 images, their cutouts and the fields simulated by
    :func:`radioseg_utils.simulation.simulate.simulate_field` are; a real image at the
    same frequency almost never is (the Parkes 1.4 GHz map: 14.4' beam on 4' pixels,
    against B2's 0.6" on 0.24").

    Parameters
    ----------
    image : SkyImage
        The image, or any section of it (only its band, beam and pixel size are read).

    Returns
    -------
    bool
    """
    band = image.band
    return all(math.isclose(value, expected, rel_tol=SDC1_GRID_RTOL) for value, expected in (
        (image.pixel_arcsec, band.pixel_arcsec), (image.beam.bmaj, band.beam_fwhm_arcsec),
        (image.beam.bmin, band.beam_fwhm_arcsec)))


@dataclass(frozen=True)
class _ImageMeta:
    """What :func:`_open_image` validated: everything but the pixel values."""

    path: Path
    header: fits.Header
    wcs: WCS
    band: Band
    beam: Beam
    pixel_arcsec: float
    shape: tuple[int, int]


@contextlib.contextmanager
def _ignore_blank_warning() -> Iterator[None]:
    """Silence only astropy's warning about a BLANK keyword on float data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*BLANK.*", category=VerifyWarning)
        yield


def _header_has_end(fh, size: int) -> bool:
    """Whether the first header of an open FITS file ends with an END card in the file
    (True, leaving the question to astropy, when none is in the first :data:`_MAX_HEADER`
    bytes of a longer file)."""
    fh.seek(0)
    while fh.tell() < min(size, _MAX_HEADER):
        block = fh.read(FITS_BLOCK)
        if any(block[i:i + _CARD].rstrip() == b"END" for i in range(0, len(block), _CARD)):
            return True
    return size > _MAX_HEADER


@contextlib.contextmanager
def open_fits(path: str | Path) -> Iterator[fits.HDUList]:
    """Open a FITS file read-only after checking that it is one and that it is complete.

    The one way the package opens FITS files (images, primary beams): it reads the headers
    only, compares the data size each header implies with the bytes in the file, and
    yields the HDU list (data are read lazily, e.g. through ``hdu.section``).

    Parameters
    ----------
    path : str or Path
        The file.

    Yields
    ------
    astropy.io.fits.HDUList
        Opened with ``memmap=False``: with a memory map, every page touched stays mapped
        (and counted in the resident memory) until the file is closed.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    SDC1FormatError
        ``"<path> is not a FITS file ..."`` (empty, or not starting with ``SIMPLE  =``);
        ``"<path> is truncated: ..."`` (no END card, or fewer data bytes than the header
        implies: ``expected N bytes of data, found M``); or astropy's reason when it
        cannot parse the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    with path.open("rb") as fh:
        if fh.read(len(_FITS_MAGIC)) != _FITS_MAGIC:
            why = "it is empty" if size == 0 else "it does not start with 'SIMPLE  ='"
            raise SDC1FormatError(f"{path} is not a FITS file ({why})")
        if not _header_has_end(fh, size):
            raise SDC1FormatError(
                f"{path} is truncated: its header stops after {size} bytes without an END card")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*BLANK.*", category=VerifyWarning)
        warnings.filterwarnings("ignore", message=r".*(truncated|extra bytes after).*")
        hdul = None
        try:
            hdul = fits.open(path, memmap=False, mode="readonly")
            hdul.readall()  # every header (not the data), so that every data size is checked
        except (OSError, ValueError) as exc:
            if hdul is not None:
                hdul.close()
            raise SDC1FormatError(f"{path} is not a readable FITS file: {exc}") from None
    with hdul:
        for index, hdu in enumerate(hdul):
            start = hdul.fileinfo(index)["datLoc"]
            if start + hdu.size > size:
                where = f" in HDU {index}" if index else ""
                raise SDC1FormatError(
                    f"{path} is truncated: expected {hdu.size} bytes of data{where}, "
                    f"found {max(size - start, 0)}")
        yield hdul


def _image_hdu(hdul: fits.HDUList, path: Path) -> fits.PrimaryHDU | fits.ImageHDU:
    """The first HDU holding an image, else :class:`SDC1FormatError`."""
    hdu = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) > 0), None)
    if hdu is None:
        kinds = ", ".join(type(h).__name__ for h in hdul)
        raise SDC1FormatError(f"{path}: no image data in any HDU (it holds {kinds})")
    return hdu


def _plane_shape(header: fits.Header, path: Path) -> tuple[int, int]:
    """``(ny, nx)`` of an image of 2 axes, or more of length 1; else :class:`SDC1FormatError`."""
    naxis = int(header.get("NAXIS", 0))
    dims = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    if naxis < 2:
        raise SDC1FormatError(f"{path}: expected a 2-D or 4-D image, found NAXIS = {naxis}")
    extra = {f"NAXIS{i + 1}": n for i, n in enumerate(dims) if i >= 2 and n != 1}
    if extra:
        raise SDC1FormatError(
            f"{path}: expected one plane, but {', '.join(f'{k} = {v}' for k, v in extra.items())}"
            " (cubes are not supported; extract a plane first)"
        )
    return dims[1], dims[0]


def read_plane(path: str | Path) -> tuple[np.ndarray, fits.Header]:
    """The 2-D plane of the first image in a FITS file, and its header, without the SDC1
    checks of :func:`read_image` (e.g. a primary-beam model, which has no beam or band).

    Returns
    -------
    data : ndarray, shape (ny, nx), float64
        Native byte order.
    header : astropy.io.fits.Header
        A copy of the image HDU's header.

    Raises
    ------
    FileNotFoundError, SDC1FormatError
        As :func:`open_fits`; also if no HDU holds an image of one plane.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        hdu = _image_hdu(hdul, path)
        ny, nx = _plane_shape(hdu.header, path)
        index = (0,) * (hdu.header["NAXIS"] - 2) + (slice(0, ny), slice(0, nx))
        with _ignore_blank_warning():
            data = np.asarray(hdu.section[index], dtype=np.float64)
        return data, hdu.header.copy()


def _band_from_header(header: fits.Header, path: Path) -> Band:
    """Band from the FREQ axis (CRVALn), else RESTFRQ/RESTFREQ."""
    candidates = [
        (f"CRVAL{i}", header.get(f"CRVAL{i}"))
        for i in range(1, header.get("NAXIS", 0) + 1)
        if str(header.get(f"CTYPE{i}", "")).strip().upper().startswith("FREQ")
    ]
    candidates += [(key, header.get(key)) for key in ("RESTFRQ", "RESTFREQ") if key in header]
    if not candidates:
        raise SDC1FormatError(
            f"{path}: no frequency in the header (no FREQ axis, RESTFRQ or RESTFREQ)"
        )
    key, value = candidates[0]
    try:
        return get_band(float(value))
    except (UnknownBandError, TypeError, ValueError):
        raise SDC1FormatError(
            f"{path}: unknown frequency {key} = {value!r} Hz; expected 560, 1400 or 9200 MHz"
        ) from None


def _meta_from_hdu(hdu: fits.ImageHDU | fits.PrimaryHDU, path: Path) -> _ImageMeta:
    header = hdu.header
    shape = _plane_shape(header, path)
    for key in ("CTYPE1", "CTYPE2"):
        if key not in header:
            raise SDC1FormatError(f"{path}: no WCS, header keyword {key} is missing")
    beam = header_beam(header, path)
    wcs = WCS(header, naxis=2)
    if not wcs.has_celestial or wcs.celestial.naxis != 2:
        raise SDC1FormatError(
            f"{path}: CTYPE1/CTYPE2 = {header['CTYPE1']!r}/{header['CTYPE2']!r} are not celestial"
        )
    pixel_arcsec = float(abs(wcs.celestial.wcs.get_cdelt()[1]) * 3600.0)
    return _ImageMeta(
        path=path,
        header=header,
        wcs=wcs.celestial,
        band=_band_from_header(header, path),
        beam=beam,
        pixel_arcsec=pixel_arcsec,
        shape=shape,
    )


@contextlib.contextmanager
def _open_image(path: str | Path) -> Iterator[tuple[fits.PrimaryHDU, _ImageMeta]]:
    """Open a FITS image (:func:`open_fits`) and validate its header; yields ``(hdu, meta)``.

    Pixels are read later through ``hdu.section``, which reads only the requested bytes.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        hdu = _image_hdu(hdul, path)
        yield hdu, _meta_from_hdu(hdu, path)


def _check_section(section: tuple[slice, slice] | None, shape: tuple[int, int], path: Path):
    """Normalise ``section`` to two unit-step slices inside ``shape``."""
    if section is None:
        return slice(0, shape[0]), slice(0, shape[1])
    if len(section) != 2 or not all(isinstance(s, slice) for s in section):
        raise ValueError(f"{path}: section must be a pair of slices (slice_y, slice_x)")
    out = []
    for s, n, axis in zip(section, shape, "yx"):
        start, stop, step = s.indices(n)
        if step != 1 or stop <= start:
            raise ValueError(
                f"{path}: section along {axis} {s} is empty or strided in an axis of {n} pixels"
            )
        out.append(slice(start, stop))
    return tuple(out)


def _read_section(hdu, meta: _ImageMeta, section) -> SkyImage:
    ys, xs = _check_section(section, meta.shape, meta.path)
    index = (0,) * (hdu.header["NAXIS"] - 2) + (ys, xs)
    with _ignore_blank_warning():
        data = np.ascontiguousarray(hdu.section[index], dtype=np.float32)
    shared = {k: getattr(meta, k) for k in ("header", "band", "beam", "pixel_arcsec", "path")}
    return SkyImage(data=data, wcs=meta.wcs.slice((ys, xs)), origin=(ys.start, xs.start), **shared)


def read_image(path: str | Path, *, section: tuple[slice, slice] | None = None) -> SkyImage:
    """Read an SDC1-style image, or only a section of it.

    Parameters
    ----------
    path : str or Path
        FITS file with a 2-D or 4-D ``(1, 1, ny, nx)`` image, a celestial WCS, a restoring
        beam (BMAJ/BMIN, or an AIPS HISTORY card: :func:`header_beam`) and a frequency
        (FREQ axis or RESTFRQ) of an SDC1 band.
    section : (slice_y, slice_x), optional
        0-based unit-step slices of the 2-D image; only these pixels are read from disk.
        Default: the whole image.

    Returns
    -------
    SkyImage
        Native-endian float32 data and the WCS shifted to the section.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    SDC1FormatError
        If the file is not FITS or is truncated (:func:`open_fits`), is a cube, or lacks
        CTYPE1/CTYPE2, a beam or a known frequency; the message names the file and the
        keyword.
    ValueError
        If ``section`` is not two non-empty unit-step slices.
    """
    with _open_image(path) as (hdu, meta):
        image = _read_section(hdu, meta, section)
    logger.debug("read %s section %s: %d bad pixels", path, image.origin, image.n_bad)
    return image


def _count_bad(hdu, meta: _ImageMeta) -> int:
    ny, nx = meta.shape
    bad = 0
    for y0 in range(0, ny, INFO_SCAN_ROWS):
        block = _read_section(hdu, meta, (slice(y0, min(y0 + INFO_SCAN_ROWS, ny)), slice(0, nx)))
        bad += block.n_bad
    return bad


def image_info(path: str | Path, *, noise_box: int = INFO_NOISE_BOX) -> dict:
    """Summary of an image file, reading only a central sample and streaming the rest.

    Parameters
    ----------
    path : str or Path
        Image file (see :func:`read_image`).
    noise_box : int
        Side, in pixels, of the central box used for the noise estimate.

    Returns
    -------
    dict
        JSON-serialisable: ``path``, ``shape`` [ny, nx], ``band``, ``freq_mhz``,
        ``beam_arcsec`` [bmaj, bmin], ``beam_pa_deg``, ``pixel_arcsec``, ``bunit``,
        ``noise_median`` and ``noise_rms`` (sigma-clipped, image units, from the central
        box), ``noise_box`` [ny, nx] actually used, ``corners_radec`` (4 × [RA, Dec] in deg,
        RA in -180..180, from :meth:`astropy.wcs.WCS.calc_footprint`), ``centre_radec``
        and ``n_bad`` (NaN/inf pixels in the whole image).
    """
    with _open_image(path) as (hdu, meta):
        ny, nx = meta.shape
        by, bx = min(noise_box, ny), min(noise_box, nx)
        y0, x0 = (ny - by) // 2, (nx - bx) // 2
        sample = _read_section(hdu, meta, (slice(y0, y0 + by), slice(x0, x0 + bx)))
        n_bad = _count_bad(hdu, meta)
    try:
        median, rms = estimate_noise(sample.data)
    except ValueError:
        median = rms = math.nan
    corners = meta.wcs.calc_footprint(axes=(nx, ny))
    centre = meta.wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    return {
        "path": str(meta.path),
        "shape": [ny, nx],
        "band": meta.band.name,
        "freq_mhz": meta.band.freq_mhz,
        "beam_arcsec": [meta.beam.bmaj, meta.beam.bmin],
        "beam_pa_deg": meta.beam.bpa,
        "pixel_arcsec": meta.pixel_arcsec,
        "bunit": str(meta.header.get("BUNIT", "")).strip(),
        "noise_median": median,
        "noise_rms": rms,
        "noise_box": [by, bx],
        "corners_radec": [[float(wrap_ra(ra)), float(dec)] for ra, dec in corners],
        "centre_radec": [float(wrap_ra(centre[0])), float(centre[1])],
        "n_bad": n_bad,
    }


def image_shape(path: str | Path) -> tuple[int, int]:
    """``(ny, nx)`` of the image in a FITS file, from its header (checked by :func:`open_fits`).

    Raises
    ------
    FileNotFoundError, SDC1FormatError
        As :func:`read_plane`.
    """
    path = Path(path)
    with open_fits(path) as hdul:
        return _plane_shape(_image_hdu(hdul, path).header, path)
