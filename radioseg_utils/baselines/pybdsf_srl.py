"""Reading PyBDSF's source list (``.srl``, FITS or ASCII as PyBDSF writes it) into the
project's catalogue schema, beside the adapter that runs PyBDSF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table

from radioseg_utils.io.catalogue import (
    CATALOGUE_COLUMNS,
    CatalogueFormatError,
    catalogue_table,
    read_text_lines,
    sdc1_pa,
    wrap_ra,
)

__all__ = [
    "read_pybdsf_srl",
]


#: PyBDSF ``.srl`` column -> (tidy column, factor to the schema unit).
_SRL_TO_TIDY: dict[str, tuple[str, float]] = {
    "Source_id": ("id", 1.0),
    "RA_max": ("ra_core", 1.0),
    "DEC_max": ("dec_core", 1.0),
    "RA": ("ra_cent", 1.0),
    "DEC": ("dec_cent", 1.0),
    "Total_flux": ("flux", 1.0),
    "DC_Maj": ("b_maj", 3600.0),
    "DC_Min": ("b_min", 3600.0),
    "DC_PA": ("pa", 1.0),
}


def read_pybdsf_srl(path: str | Path, *, allow_empty: bool = False) -> Table:
    """Read a PyBDSF source list (``write_catalog(format='ascii', catalog_type='srl')``).

    Parameters
    ----------
    path : str or Path
        ASCII source list: ``#`` comment lines, the last of which names the columns.
    allow_empty : bool
        Return an empty table instead of raising when the list holds no source.

    Returns
    -------
    astropy.table.Table
        All original PyBDSF columns (PyBDSF units: deg, Jy, Jy/beam) plus the tidy columns
        that PyBDSF measures: ``id`` (Source_id), ``ra_core``/``dec_core`` (RA_max/DEC_max,
        the peak), ``ra_cent``/``dec_cent`` (RA/DEC, the fitted centroid), ``flux``
        (Total_flux), ``b_maj``/``b_min`` (deconvolved DC_Maj/DC_Min, in arcsec), ``pa``
        (DC_PA converted to the SDC1 convention by :func:`sdc1_pa`), and ``size`` = 2 (Gaussian). ``core_frac`` and ``class`` are not measured
        by PyBDSF and are left out. RA in -180..180 deg.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CatalogueFormatError
        If no column-name line is found, a row has the wrong number of values (names the
        line), a required column is missing, or the list is empty unless ``allow_empty``.
    """
    from astropy.io import ascii as astropy_ascii

    path = Path(path)
    names: list[str] | None = None
    rows: list[str] = []
    comments: list[str] = []
    for lineno, line in enumerate(read_text_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            tokens = text.lstrip("#").split()
            if tokens and tokens[0] in ("Source_id", "Gaus_id"):
                names = tokens
            elif not rows:
                comments.append(text.lstrip("# "))
            continue
        if names is None:
            raise CatalogueFormatError(
                f"{path}, line {lineno}: data before the '# Source_id ...' column-name line"
            )
        if len(text.split()) != len(names):
            raise CatalogueFormatError(
                f"{path}, line {lineno}: {len(text.split())} values, expected {len(names)}"
            )
        rows.append(text)
    if names is None:
        raise CatalogueFormatError(f"{path}: no '# Source_id ...' column-name line")
    missing = [name for name in _SRL_TO_TIDY if name not in names]
    if missing:
        raise CatalogueFormatError(f"{path}: PyBDSF column(s) {missing} missing")
    if not rows and not allow_empty:
        raise CatalogueFormatError(f"{path}: no sources (pass allow_empty=True to accept)")
    if rows:
        original = astropy_ascii.read(rows, format="no_header", names=names, guess=False)
    else:
        original = Table(names=names, dtype=[float] * len(names))
    tidy = {
        tidy_name: np.asarray(original[srl_name], dtype=float) * factor
        for srl_name, (tidy_name, factor) in _SRL_TO_TIDY.items()
    }
    tidy["pa"] = sdc1_pa(tidy["pa"])  # PyBDSF: east of north
    tidy["ra_core"], tidy["ra_cent"] = wrap_ra(tidy["ra_core"]), wrap_ra(tidy["ra_cent"])
    tidy["size"] = np.full(len(original), 2)
    table = catalogue_table({name: tidy[name] for name in CATALOGUE_COLUMNS if name in tidy})
    for name in original.colnames:
        table[name] = original[name]
    table.meta.update(path=str(path), format="pybdsf-srl", comments=comments)
    return table
