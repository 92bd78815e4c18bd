"""FITS images in the SDC1 layout: reading, streaming in tiles, WCS construction, writing.

SDC1 images are 4-D ``(1, 1, ny, nx)`` big-endian float32 arrays in Jy/beam with a SIN
projection centred on RA 0, Dec -30; the headers carry BMAJ/BMIN but no BPA, and some have
an invalid BLANK keyword on float data (ignored here). Only the requested section is read
from disk, so a 32768² image (4.3 GB) is never loaded whole.

Pixel convention: 0-based ``(x, y)`` = ``(column, row)`` of the 2-D array. The SDC1
truth-catalogue ``x``, ``y`` columns put the field centre at 0-based pixel
``(nx/2 - 1, ny/2 - 1)``, i.e. FITS ``CRPIX = nx/2``, which :func:`sdc1_wcs` follows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS

from .bands import Band, UnknownBandError, get_band
from .catalogue import wrap_ra
from .noise import estimate_noise
from .paths import check_writable

__all__ = [
    "SDC1FormatError",
    "Beam",
    "SkyImage",
    "read_image",
    "iter_tiles",
    "tile_starts",
    "image_info",
    "sdc1_wcs",
    "sdc1_header",
    "write_image",
    "FitsStream",
    "image_shape",
    "SDC1_CENTRE",
    "DEFAULT_TILE",
    "DEFAULT_OVERLAP",
]

logger = logging.getLogger(__name__)

#: SDC1 field centre (RA, Dec) in degrees.
SDC1_CENTRE: tuple[float, float] = (0.0, -30.0)
#: Default tile side of :func:`iter_tiles`, in pixels.
DEFAULT_TILE: int = 1024
#: Default overlap of neighbouring tiles, in pixels (a few beams of the largest sources).
DEFAULT_OVERLAP: int = 64
#: Side of the central box sampled by :func:`image_info` for the noise estimate, in pixels.
INFO_NOISE_BOX: int = 1024
#: Rows read at a time when :func:`image_info` counts non-finite pixels.
INFO_SCAN_ROWS: int = 512

_FITS_MAGIC = b"SIMPLE  ="


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
    for key in ("CTYPE1", "CTYPE2"):
        if key not in header:
            raise SDC1FormatError(f"{path}: no WCS, header keyword {key} is missing")
    for key in ("BMAJ", "BMIN"):
        if key not in header:
            raise SDC1FormatError(f"{path}: no restoring beam, header keyword {key} is missing")
    wcs = WCS(header, naxis=2)
    if not wcs.has_celestial or wcs.celestial.naxis != 2:
        raise SDC1FormatError(
            f"{path}: CTYPE1/CTYPE2 = {header['CTYPE1']!r}/{header['CTYPE2']!r} are not celestial"
        )
    beam = Beam(
        bmaj=float(header["BMAJ"]) * 3600.0,
        bmin=float(header["BMIN"]) * 3600.0,
        bpa=float(header.get("BPA", 0.0)),
    )
    pixel_arcsec = float(abs(wcs.celestial.wcs.get_cdelt()[1]) * 3600.0)
    return _ImageMeta(
        path=path,
        header=header,
        wcs=wcs.celestial,
        band=_band_from_header(header, path),
        beam=beam,
        pixel_arcsec=pixel_arcsec,
        shape=(dims[1], dims[0]),
    )


@contextlib.contextmanager
def _open_image(path: str | Path) -> Iterator[tuple[fits.PrimaryHDU, _ImageMeta]]:
    """Open a FITS image and validate its header; yields ``(hdu, meta)``.

    Pixels are read later through ``hdu.section``, which reads only the requested bytes.
    ``memmap=False``: with a memory map, every page touched stays mapped (and counted in
    the resident memory) until the file is closed, e.g. 4.3 GB after a full NaN scan.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    with path.open("rb") as fh:
        if fh.read(len(_FITS_MAGIC)) != _FITS_MAGIC:
            raise SDC1FormatError(f"{path}: not a FITS file (does not start with 'SIMPLE  =')")
    with _ignore_blank_warning(), fits.open(path, memmap=False, mode="readonly") as hdul:
        hdu = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) > 0), None)
        if hdu is None:
            raise SDC1FormatError(f"{path}: no image data in any HDU")
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
        FITS file with a 2-D or 4-D ``(1, 1, ny, nx)`` image, a celestial WCS, BMAJ/BMIN
        and a frequency (FREQ axis or RESTFRQ) of an SDC1 band.
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
        If the file is not FITS, is a cube, or lacks CTYPE1/CTYPE2, BMAJ/BMIN or a known
        frequency; the message names the file and the keyword.
    ValueError
        If ``section`` is not two non-empty unit-step slices.
    """
    with _open_image(path) as (hdu, meta):
        image = _read_section(hdu, meta, section)
    logger.debug("read %s section %s: %d bad pixels", path, image.origin, image.n_bad)
    return image


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """0-based starts of tiles of side ``tile`` covering ``n`` pixels with ``overlap``.

    The last tile is aligned with the edge, so every tile is whole when ``n >= tile``
    (the last overlap may then be larger); a single tile of ``n`` when ``n <= tile``.

    Examples
    --------
    >>> tile_starts(10, 4, 1)
    [0, 3, 6]
    >>> tile_starts(3, 4, 1)
    [0]
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile, got {tile=}, {overlap=}")
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, tile - overlap))
    return starts + [n - tile]


def iter_tiles(
    path: str | Path,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> Iterator[tuple[int, int, SkyImage]]:
    """Stream an image as overlapping square tiles, row by row.

    Parameters
    ----------
    path : str or Path
        Image file (see :func:`read_image`); opened once, read tile by tile.
    tile : int
        Tile side in pixels (smaller at the edges of images smaller than a tile).
    overlap : int
        Pixels shared by neighbouring tiles.

    Notes
    -----
    Each row of tiles is read as one strip of ``tile × nx`` pixels (512 MB for a 32768-px
    wide image and 4096-px tiles), then cut into tiles.

    Yields
    ------
    y0, x0 : int
        0-based position of the tile's first pixel in the image.
    image : SkyImage
        The tile, with its own WCS.
    """
    with _open_image(path) as (hdu, meta):
        ny, nx = meta.shape
        for y0 in tile_starts(ny, tile, overlap):
            # one contiguous read per row of tiles (tile × nx pixels), then cut the tiles
            strip = _read_section(hdu, meta, (slice(y0, min(y0 + tile, ny)), slice(0, nx)))
            for x0 in tile_starts(nx, tile, overlap):
                xs = slice(x0, min(x0 + tile, nx))
                yield y0, x0, dataclasses.replace(
                    strip,
                    data=strip.data[:, xs].copy(),
                    wcs=strip.wcs.slice((slice(None), xs)),
                    origin=(y0, x0),
                )


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
    path = check_writable(path, overwrite=overwrite)
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {data.shape}")
    naxis = sum(1 for k in ("CTYPE1", "CTYPE2", "CTYPE3", "CTYPE4") if k in header)
    out = data.astype(">f4")[None, None] if naxis == 4 else data.astype(">f4")
    tmp = path.with_name(path.name + ".part")
    fits.PrimaryHDU(out, header=header).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path


def image_shape(path: str | Path) -> tuple[int, int]:
    """``(ny, nx)`` of the image in a FITS file, read from its header only."""
    with warnings.catch_warnings():  # SDC1 headers carry a BLANK card on float data
        warnings.filterwarnings("ignore", message=".*BLANK.*", category=VerifyWarning)
        header = fits.getheader(path)
    return int(header["NAXIS2"]), int(header["NAXIS1"])


class FitsStream:
    """A float32 FITS image written block by block into a preallocated file.

    The header is written and the file sized at once; blocks go in with positioned writes
    (not a memory map), which keep the written pages out of this process's resident memory,
    so a 32768² image streams with bounded memory.

    Parameters
    ----------
    path : str or Path
        File to write (replaced if it exists, e.g. by an interrupted run).
    header : astropy.io.fits.Header
        Header of the image (e.g. the input's); 4-D ``(1, 1, ny, nx)`` if it has CTYPE3.
    shape : (ny, nx)
        Image shape.

    Examples
    --------
    >>> with FitsStream(tmp / "x.fits", header, (ny, nx)) as out:  # doctest: +SKIP
    ...     out.write(0, 0, block)
    """

    def __init__(self, path: str | Path, header: fits.Header, shape: tuple[int, int]) -> None:
        self.path, self.shape = Path(path), (int(shape[0]), int(shape[1]))
        ny, nx = self.shape
        naxis = 4 if "CTYPE3" in header else 2
        full = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", naxis), ("NAXIS1", nx),
                            ("NAXIS2", ny)] + ([("NAXIS3", 1), ("NAXIS4", 1)] if naxis == 4 else []))
        full.extend(header, unique=True)
        text = full.tostring().encode("ascii")
        with open(self.path, "wb") as f:
            f.write(text)
            f.truncate(len(text) + -(-4 * nx * ny // 2880) * 2880)
        self._offset = len(text)
        self._fd = os.open(self.path, os.O_WRONLY)

    def write(self, y0: int, x0: int, block: np.ndarray) -> None:
        """Write a 2-D block with its first pixel at 0-based ``(y0, x0)``."""
        block = np.asarray(block)
        if (block.ndim != 2 or y0 < 0 or x0 < 0 or y0 + block.shape[0] > self.shape[0]
                or x0 + block.shape[1] > self.shape[1]):
            raise ValueError(f"{self.path}: block of shape {block.shape} at ({y0}, {x0}) "
                             f"does not fit an image of shape {self.shape}")
        rows = np.ascontiguousarray(block, dtype=">f4")
        nx = self.shape[1]
        for j in range(rows.shape[0]):
            os.pwrite(self._fd, rows[j].tobytes(), self._offset + 4 * ((y0 + j) * nx + x0))

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)

    def __enter__(self) -> FitsStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
