"""What every classical finder returns, and the bookkeeping they share.

A finder takes a :class:`~radioseg_utils.io.fits_read.SkyImage` and returns a
:class:`FinderResult`: a label map on the image grid (0 = background, ``k > 0`` = island or
segment ``k``), a catalogue in the schema of :data:`radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`,
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
from astropy.wcs import WCS

from radioseg_utils.io.fits_read import SkyImage, read_image
from radioseg_utils.postprocess.measure import PrimaryBeamLike, values_at

__all__ = [
    "FinderResult",
    "ResourceMeter",
    "as_sky_image",
    "noise_map",
    "primary_beam_gain",
]

_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class FinderResult:
    """Output of one finder run.

    Attributes
    ----------
    catalogue : astropy.table.Table
        One row per source, columns of :data:`~radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`
        (``id`` .. ``class``, plus ``x``, ``y`` and ``label``, the source's label in
        ``labels``). Positions in deg with RA in -180..180, flux in Jy, sizes in arcsec.
    labels : ndarray of int32, shape (ny, nx)
        Segmentation / island map on the input image grid: 0 outside any island,
        ``k > 0`` inside island ``k``.
    runtime_s : float
        Wall-clock time of the run in seconds (for PyBDSF and Aegean including the start of
        their subprocess).
    peak_rss_mb : float
        Peak increase of resident memory during the run, in MB (1e6 bytes), measured with
        the kernel's high-water mark (``VmHWM``); NaN where ``/proc`` is not available.
    finder : str
        Name of the finder, a key of :data:`radioseg_utils.baselines.FINDERS`.
    log_path : Path or None
        Log file written by the finder (PyBDSF and Aegean).
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


def as_sky_image(image: SkyImage | str | Path) -> SkyImage:
    """Return ``image`` if it is a :class:`~radioseg_utils.io.fits_read.SkyImage`, else read it.

    Parameters
    ----------
    image : SkyImage, str or Path
        An image already in memory, or a FITS file read with
        :func:`radioseg_utils.io.fits_read.read_image`.

    Raises
    ------
    TypeError
        If ``image`` is neither a SkyImage nor a path.
    """
    if isinstance(image, SkyImage):
        return image
    if isinstance(image, (str, Path)):
        return read_image(image)
    raise TypeError(f"expected a SkyImage or a FITS path, got {type(image).__name__}")


def primary_beam_gain(primary_beam: PrimaryBeamLike, wcs: WCS, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Primary-beam gain at 0-based pixel positions, read as in :mod:`radioseg_utils.postprocess.measure`.

    Parameters
    ----------
    primary_beam : float, ndarray (ny, nx) or callable
        Constant gain, a map on the image grid (nearest pixel), or a function of
        (RA, Dec) in degrees.
    wcs : astropy.wcs.WCS
        Celestial WCS of the image.
    x, y : ndarray, shape (n,)
        0-based pixel positions.

    Raises
    ------
    ValueError
        If the gain is not positive and finite at every position.
    """
    ra, dec = wcs.celestial.pixel_to_world_values(x, y)
    gain = values_at(primary_beam, x, y, ra, dec, "primary_beam")
    if np.any(~(gain > 0)):
        raise ValueError("primary_beam must be positive at every source position")
    return gain


def noise_map(noise: float | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A scalar or ``(ny, nx)`` rms broadcast to ``shape`` (read-only view).

    Raises
    ------
    ValueError
        If ``noise`` is neither a scalar nor an array of ``shape``, or is not positive
        (NaN pixels of a map are allowed: they mark pixels without data).
    """
    arr = np.asarray(noise, dtype=float)
    if arr.ndim not in (0, 2) or (arr.ndim == 2 and arr.shape != shape):
        raise ValueError(f"noise must be a scalar or an array of shape {shape}, got shape {arr.shape}")
    if np.any(arr <= 0) or np.all(np.isnan(arr)):
        raise ValueError("noise must be positive")
    return np.broadcast_to(arr, shape)
