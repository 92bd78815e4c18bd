"""Writing FITS images that keep the input WCS: :func:`write_image` for an array in
memory and :class:`FitsStream` for an image written in row blocks, so that a 32768² map
is never held whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from radioseg_utils.core.paths import check_writable
from radioseg_utils.io.fits_read import FITS_BLOCK

__all__ = [
    "STREAM_BITPIX",
    "write_image",
    "FitsStream",
]

#: BITPIX of the images :class:`FitsStream` writes (IEEE float32).
STREAM_BITPIX: int = -32


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
        full = fits.Header([("SIMPLE", True), ("BITPIX", STREAM_BITPIX), ("NAXIS", naxis), ("NAXIS1", nx),
                            ("NAXIS2", ny)] + ([("NAXIS3", 1), ("NAXIS4", 1)] if naxis == 4 else []))
        full.extend(header, unique=True)
        text = full.tostring().encode("ascii")
        with open(self.path, "wb") as f:
            f.write(text)
            data_bytes = abs(STREAM_BITPIX) // 8 * nx * ny
            f.truncate(len(text) + -(-data_bytes // FITS_BLOCK) * FITS_BLOCK)
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
