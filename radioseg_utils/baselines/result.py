"""What every classical finder returns, and the bookkeeping they share.

A finder takes a :class:`~radioseg_utils.fitsio.SkyImage` and returns a
:class:`FinderResult`: a label map on the image grid (0 = background, ``k > 0`` = island or
segment ``k``), a catalogue in the schema of :data:`radioseg_utils.catalogue.CATALOGUE_COLUMNS`,
the wall-clock runtime and the peak memory it needed, so all finders are scored and
benchmarked the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from ..bands import Band, get_band

__all__ = ["FinderResult", "ResourceMeter", "as_sky_image", "image_band", "wrap_ra"]

_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class FinderResult:
    """Output of one finder run.

    Attributes
    ----------
    catalogue : astropy.table.Table
        One row per source, columns of :data:`~radioseg_utils.catalogue.CATALOGUE_COLUMNS`
        (``id`` .. ``class``, plus ``x``, ``y`` and ``label``, the source's label in
        ``labels``). Positions in deg with RA in -180..180, flux in Jy, sizes in arcsec.
    labels : ndarray of int32, shape (ny, nx)
        Segmentation / island map on the input image grid: 0 outside any island,
        ``k > 0`` inside island ``k``.
    runtime_s : float
        Wall-clock time of the run in seconds (for PyBDSF including its subprocess start).
    peak_rss_mb : float
        Peak increase of resident memory during the run, in MB (1e6 bytes), measured with
        the kernel's high-water mark (``VmHWM``); NaN where ``/proc`` is not available.
    finder : str
        Name of the finder, a key of :data:`radioseg_utils.baselines.FINDERS`.
    log_path : Path or None
        Log file written by the finder (PyBDSF only).
    """

    catalogue: Table
    labels: np.ndarray
    runtime_s: float
    peak_rss_mb: float
    finder: str
    log_path: Path | None = None


def _proc_kb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in kB, NaN if absent."""
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


class ResourceMeter:
    """Context manager measuring wall-clock time and peak resident-memory increase.

    On entry the kernel's resident-memory high-water mark is reset (``/proc/self/clear_refs``,
    Linux >= 4.0); on exit ``peak_rss_mb`` is ``VmHWM - VmRSS(entry)`` in MB, so it counts
    only what the code inside the block needed, not the memory the process already held.

    Examples
    --------
    >>> with ResourceMeter() as meter:
    ...     _ = np.ones(10)
    >>> meter.runtime_s >= 0
    True
    """

    def __enter__(self) -> ResourceMeter:
        try:
            _PROC_CLEAR_REFS.write_text("5")
        except OSError:
            pass
        self._rss0 = _proc_kb("VmRSS")
        self._t0 = time.perf_counter()
        self.runtime_s = float("nan")
        self.peak_rss_mb = float("nan")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.runtime_s = time.perf_counter() - self._t0
        self.peak_rss_mb = max(0.0, (_proc_kb("VmHWM") - self._rss0) * 1e3 / 1e6)


def as_sky_image(image: Any) -> Any:
    """Return a :class:`~radioseg_utils.fitsio.SkyImage`, reading it if given a path.

    Parameters
    ----------
    image : SkyImage, str or Path
        An image already in memory, or a FITS file read with
        :func:`radioseg_utils.fitsio.read_image`.

    Raises
    ------
    TypeError
        If ``image`` is neither a path nor an object with 2-D ``data`` and a ``wcs``.
    """
    if isinstance(image, (str, Path)):
        from ..fitsio import read_image

        return read_image(image)
    data = getattr(image, "data", None)
    if data is None or getattr(image, "wcs", None) is None:
        raise TypeError(
            f"expected a SkyImage (with .data and .wcs) or a FITS path, got {type(image).__name__}"
        )
    if np.ndim(data) != 2:
        raise ValueError(f"expected a 2-D image, got data of shape {np.shape(data)}")
    return image


def image_band(image: Any, band: str | Band | None = None) -> Band:
    """The band of an image: ``band`` if given, else the image's own ``band`` attribute.

    Raises
    ------
    ValueError
        If neither gives a band.
    """
    band = band if band is not None else getattr(image, "band", None)
    if band is None:
        raise ValueError("the image has no band; pass band='B1', 'B2' or 'B5'")
    return get_band(band)


def wrap_ra(ra_deg: np.ndarray) -> np.ndarray:
    """Right ascension wrapped to -180..180 deg, the SDC1 convention.

    Examples
    --------
    >>> wrap_ra(np.array([359.5, 0.25, 180.0])).tolist()
    [-0.5, 0.25, 180.0]
    """
    ra = np.asarray(ra_deg, dtype=float) % 360.0
    return np.where(ra > 180.0, ra - 360.0, ra)
