"""SDC1 source catalogues: one tidy table schema for truth, predictions and submissions.

Every catalogue in radioseg is an :class:`astropy.table.Table` with the columns of
:data:`CATALOGUE_COLUMNS` (lower-case names equal to the SDC1 scorer's submission
columns, plus optional extras such as ``selection``, ``x``, ``y``, ``peak_snr``).
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import Table

__all__ = ["CATALOGUE_COLUMNS", "SUBMISSION_COLUMNS", "empty_catalogue"]

#: name -> (unit, dtype, description). The first 12 are the SDC1 submission columns.
CATALOGUE_COLUMNS: dict[str, tuple[u.UnitBase | None, str, str]] = {
    "id": (None, "i8", "source identifier"),
    "ra_core": (u.deg, "f8", "right ascension of the core (-180..180 deg)"),
    "dec_core": (u.deg, "f8", "declination of the core"),
    "ra_cent": (u.deg, "f8", "right ascension of the centroid (-180..180 deg)"),
    "dec_cent": (u.deg, "f8", "declination of the centroid"),
    "flux": (u.Jy, "f8", "integrated flux density"),
    "core_frac": (None, "f8", "core flux / total flux"),
    "b_maj": (u.arcsec, "f8", "major axis (FWHM, or LAS for SIZE 1), before beam convolution"),
    "b_min": (u.arcsec, "f8", "minor axis, before beam convolution"),
    "pa": (u.deg, "f8", "position angle, east of north"),
    "size": (None, "i4", "1 LAS, 2 Gaussian, 3 exponential"),
    "class": (None, "i4", "1 SS-AGN, 2 FS-AGN, 3 SFG"),
    "selection": (None, "i4", "1 if injected above the noise selection"),
    "x": (u.pix, "f8", "0-based pixel x of the centroid"),
    "y": (u.pix, "f8", "0-based pixel y of the centroid"),
}

#: The 12 columns of an SDC1 submission / scorer truth file, in order.
SUBMISSION_COLUMNS: tuple[str, ...] = tuple(list(CATALOGUE_COLUMNS)[:12])


def empty_catalogue(columns: tuple[str, ...] = SUBMISSION_COLUMNS) -> Table:
    """Return an empty catalogue with the given standard columns, units and dtypes."""
    table = Table()
    for name in columns:
        unit, dtype, desc = CATALOGUE_COLUMNS[name]
        table[name] = np.zeros(0, dtype=dtype)
        table[name].unit = unit
        table[name].description = desc
    return table


def wrap_ra(ra: np.ndarray | float) -> np.ndarray | float:
    """Right ascension wrapped into the SDC1 convention -180 <= RA < 180 deg."""
    return (np.asarray(ra, dtype=float) + 180.0) % 360.0 - 180.0
