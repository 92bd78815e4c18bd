"""SDC1 source catalogues: one tidy table schema for truth, predictions and submissions.

Every catalogue in radioseg is an :class:`astropy.table.Table` with the columns of
:data:`CATALOGUE_COLUMNS` (lower-case names equal to the SDC1 scorer's submission
columns, plus optional extras such as ``selection``, ``x``, ``y``, ``peak_snr``).

Readers and writers for the published SDC1 text formats:

- training-set truth (``TrainingSet_B1_v2_ML.txt``): ``COLUMNn:`` description lines
  (some wrapped over two lines), a header row, then 15 columns ending ``SELECTION x y``;
- scorer truth / submissions: 12 whitespace-separated columns in the order of
  :data:`SUBMISSION_COLUMNS`, optionally after ``#`` comments or one header row;
- the component tables of the Aegean source finder (Hancock et al. 2012, 2018), FITS
  binary tables (:func:`read_aegean_components`), as a reference for images that are not
  SDC1;

RA is always returned in the SDC1 convention -180 <= RA < 180 deg.

The sky region reserved for independent evaluation (:data:`RESERVED_REGIONS`) is owned
here: :func:`cut_reserved_region` removes its sources from a training catalogue, and
every fit or tuning on an SDC1 training catalogue calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.core.gaussian import deconvolve_fwhm
from radioseg_utils.core.paths import check_writable

__all__ = [
    "CATALOGUE_COLUMNS",
    "SUBMISSION_COLUMNS",
    "SUBMISSION_HEADER",
    "submission_lines",
    "TRAINING_COLUMNS",
    "CatalogueFormatError",
    "empty_catalogue",
    "sdc1_pa",
    "wrap_ra",
    "RESERVED_REGIONS",
    "cut_reserved_region",
    "read_truth_catalogue",
    "read_submission",
    "write_submission",
    "to_scorer_dataframe",
    "EXTRA_COLUMNS",
    "catalogue_table",
    "set_column",
    "CLASS_NAMES",
    "SIZE_NAMES",
    "AEGEAN_COLUMNS",
    "read_aegean_components",
]

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
    "pa": (u.deg, "f8", "position angle in the SDC1 convention (clockwise from west: 90 - PA east of north)"),
    "size": (None, "i4", "1 LAS, 2 Gaussian, 3 exponential"),
    "class": (None, "i4", "1 SS-AGN, 2 FS-AGN, 3 SFG"),
    "selection": (None, "i4", "1 if injected above the noise selection"),
    "x": (u.pix, "f8", "0-based pixel x of the centroid"),
    "y": (u.pix, "f8", "0-based pixel y of the centroid"),
}

#: Source class (``class`` column) -> short name: T-RECS steep-spectrum AGN, flat-spectrum
#: AGN and star-forming galaxies.
CLASS_NAMES: dict[int, str] = {1: "SS-AGN", 2: "FS-AGN", 3: "SFG"}

#: Size type (``size`` column) -> meaning of ``b_maj``: largest angular size, Gaussian FWHM
#: or exponential scale length.
SIZE_NAMES: dict[int, str] = {1: "LAS", 2: "Gaussian", 3: "exponential"}

#: Extra catalogue columns: name -> (unit, description). The measurements of
#: :func:`~radioseg_utils.postprocess.measure.measure_sources`, the detection columns of a
#: model's catalogue (``prob_peak``, ``centre_peak``, ``neighbour_dist``:
#: :func:`~radioseg_utils.postprocess.reliability.detection_columns`) and its per-source
#: reliability ``p_real`` (:class:`~radioseg_utils.postprocess.reliability.ReliabilityModel`).
EXTRA_COLUMNS: dict[str, tuple[u.UnitBase | None, str]] = {
    "peak_flux": (u.Jy / u.beam, "brightest pixel value (apparent)"),
    "peak_snr": (None, "peak_flux / local noise"),
    "noise": (u.Jy / u.beam, "local noise used for peak_snr"),
    "area_pix": (u.pix**2, "pixels in the component"),
    "compactness": (None, "peak_flux / integrated apparent flux (1 for a point source)"),
    "fwhm_maj": (u.arcsec, "measured major-axis FWHM, beam included"),
    "fwhm_min": (u.arcsec, "measured minor-axis FWHM, beam included"),
    "pa_eon": (u.deg, "position angle of the major axis, east of north"),
    "prob_peak": (None, "highest source probability of the model (channel 0) in the segment"),
    "centre_peak": (None, "highest centre-map value of the model (channel 1) in the segment; "
                          "NaN for a model without a centre head"),
    "neighbour_dist": (u.arcsec, "distance to the nearest detection with a brighter peak; NaN "
                                 "if none within radioseg_utils.postprocess.reliability."
                                 "NEIGHBOUR_CAP_BEAMS restoring-beam FWHMs"),
    "p_real": (None, "calibrated probability (unit-less, 0..1) that the detection is a true "
                     "source; radioseg_utils.postprocess.reliability"),
    "component": (None, "component identifier"),
    "source_id": (None, "id of the source (row of the source catalogue) the component is part of"),
    "ra": (u.deg, "right ascension of the component's peak (-180..180 deg)"),
    "dec": (u.deg, "declination of the component's peak"),
    "fixed_beam": (None, "true where the component's shape is the restoring beam (one of "
                         "several components of its source), not measured"),
}

#: The 12 columns of an SDC1 submission / scorer truth file, in order.
SUBMISSION_COLUMNS: tuple[str, ...] = tuple(list(CATALOGUE_COLUMNS)[:12])
#: First row of a submission file written with ``header=True``: the column names.
SUBMISSION_HEADER: str = " ".join(SUBMISSION_COLUMNS) + "\n"


#: The 15 columns of an SDC1 training-set truth file, in order.
TRAINING_COLUMNS: tuple[str, ...] = (*SUBMISSION_COLUMNS, "selection", "x", "y")

#: Columns holding positions: NaN there is always an error.
_POSITION_COLUMNS = ("ra_core", "dec_core", "ra_cent", "dec_cent")
#: Columns written as integers in a submission.
_INTEGER_COLUMNS = ("id", "size", "class")


class CatalogueFormatError(ValueError):
    """A catalogue file or table does not have the expected SDC1 layout."""


def catalogue_table(columns: dict[str, np.ndarray]) -> Table:
    """Catalogue from named columns, with the units and descriptions of the schema.

    Standard names take dtype, unit and description from :data:`CATALOGUE_COLUMNS`, the
    measured extras from :data:`EXTRA_COLUMNS`; ``label`` (a source's value in a label
    map) is int32; other names are kept as given, without a unit.

    Examples
    --------
    >>> t = catalogue_table({"flux": [1e-5], "peak_snr": [7.0], "label": [3]})
    >>> str(t["flux"].unit), t["label"].dtype.name
    ('Jy', 'int32')
    """
    table = Table()
    for name, values in columns.items():
        set_column(table, name, values)
    return table


def set_column(table: Table, name: str, values) -> None:
    """Add (or replace) column ``name`` of ``table`` in place, with the unit, dtype and
    description of the schema (see :func:`catalogue_table`).

    Examples
    --------
    >>> t = catalogue_table({"id": [1, 2]})
    >>> set_column(t, "p_real", np.array([0.2, 0.9], np.float32))
    >>> t["p_real"].dtype.name, t["p_real"].description[:22]
    ('float32', 'calibrated probability')
    """
    if name in CATALOGUE_COLUMNS:
        unit, dtype, desc = CATALOGUE_COLUMNS[name]
    else:
        (unit, desc), dtype = EXTRA_COLUMNS.get(name, (None, "")), None
    if name == "label":
        dtype, desc = "i4", "label of the source in the finder's label map"
    table[name] = np.asarray(values, dtype=dtype)
    table[name].unit = unit
    table[name].description = desc


def empty_catalogue(columns: tuple[str, ...] = SUBMISSION_COLUMNS) -> Table:
    """Return an empty catalogue with the given standard columns, units and dtypes."""
    return catalogue_table({name: np.zeros(0) for name in columns})


def sdc1_pa(pa: np.ndarray | float) -> np.ndarray:
    """Convert between SDC1 position angles and astronomical ones (east of north).

    SDC1 measures the major axis clockwise from due west ("from the longitude-wise
    direction"), so ``PA_SDC1 = 90 - PA_east_of_north`` modulo 180 (axes are undirected).
    The map is its own inverse. Checked on the real B1 cutout: PyBDSF's DC_PA of resolved
    sources equals ``90 - PA`` of their truth within a few degrees.

    Examples
    --------
    >>> float(sdc1_pa(0.0)), float(sdc1_pa(30.0)), float(sdc1_pa(sdc1_pa(30.0)))
    (90.0, 60.0, 30.0)
    """
    return np.mod(90.0 - np.asarray(pa, dtype=float), 180.0)


def wrap_ra(ra: np.ndarray | float) -> np.ndarray:
    """Right ascension wrapped into the SDC1 convention -180 <= RA < 180 deg.

    Values already in range are returned unchanged (bit for bit).

    Examples
    --------
    >>> wrap_ra([359.5, -0.25, 180.0]).tolist()
    [-0.5, -0.25, -180.0]
    """
    ra = np.array(ra, dtype=float)
    outside = (ra < -180.0) | (ra >= 180.0)
    ra[outside] = (ra[outside] + 180.0) % 360.0 - 180.0
    return ra


#: Sky boxes reserved for independent evaluation, never trained or tuned on: band ->
#: ``((ra_min, ra_max), (dec_min, dec_max))`` in deg (RA in -180..180), open intervals.
#: The B1 box holds, with a margin, the 1041 x 957 px cutout of the real B1 1000 h image
#: (RA -0.44..-0.24, Dec -29.75..-29.59) on which the project is judged by others
#: (``shared/docs/SDC1_FACTS.md``). The copy of ``TrainingSet_B1_v2_ML.txt`` in
#: ``shared/data/sdc1`` was made with the sources of this box removed (its README); the
#: published file keeps them, so the cut is made in code (:func:`cut_reserved_region`).
RESERVED_REGIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "B1": ((-0.46, -0.21), (-29.78, -29.57)),
}


def cut_reserved_region(catalogue: Table, band: str | Band) -> Table:
    """The catalogue without the sources of the band's reserved region.

    A source is dropped when its core or its centroid lies inside the box of
    :data:`RESERVED_REGIONS` (bands without a box are returned whole). Call it on every
    SDC1 training catalogue that anything is fitted or tuned on.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Tidy catalogue with ``ra_core``, ``dec_core``, ``ra_cent``, ``dec_cent`` (deg).
    band : str or Band
        Band of the catalogue.

    Returns
    -------
    astropy.table.Table
        The rows outside the region, in their order (the table itself when none is cut).

    Raises
    ------
    CatalogueFormatError
        If a position column is missing.

    Examples
    --------
    >>> t = catalogue_table({"ra_core": [-0.3, -0.1], "dec_core": [-29.7, -29.7],
    ...                      "ra_cent": [-0.3, -0.1], "dec_cent": [-29.7, -29.7]})
    >>> len(cut_reserved_region(t, "B1")), len(cut_reserved_region(t, "B2"))
    (1, 2)
    """
    region = RESERVED_REGIONS.get(get_band(band).name)
    if region is None:
        return catalogue
    missing = [name for name in _POSITION_COLUMNS if name not in catalogue.colnames]
    if missing:
        raise CatalogueFormatError(f"catalogue lacks position column(s) {', '.join(missing)}")
    (ra_lo, ra_hi), (dec_lo, dec_hi) = region
    inside = np.zeros(len(catalogue), bool)
    for kind in ("core", "cent"):
        ra = wrap_ra(np.asarray(catalogue[f"ra_{kind}"], float))
        dec = np.asarray(catalogue[f"dec_{kind}"], float)
        inside |= (ra > ra_lo) & (ra < ra_hi) & (dec > dec_lo) & (dec < dec_hi)
    return catalogue[~inside] if inside.any() else catalogue


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_text_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such catalogue file")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise CatalogueFormatError(f"{path}: not a text catalogue (binary content)") from None


def _parse_rows(path: Path, ncols: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Numeric rows of a whitespace-separated catalogue.

    Blank and ``#`` lines are skipped anywhere; lines whose first token is not a number are
    header lines, allowed only before the first data row.

    Returns
    -------
    values : ndarray, shape (n, k)
        One row per source, ``k`` in ``ncols``.
    line_numbers : ndarray of int, shape (n,)
        1-based line number of each row in the file.
    """
    rows: list[list[float]] = []
    numbers: list[int] = []
    width = None
    for lineno, line in enumerate(read_text_lines(path), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if width is None and not _is_number(tokens[0]):
            continue  # header: column descriptions or names
        if width is None:
            if len(tokens) not in ncols:
                raise CatalogueFormatError(
                    f"{path}, line {lineno}: {len(tokens)} columns, expected "
                    f"{' or '.join(map(str, ncols))}"
                )
            width = len(tokens)
        elif len(tokens) != width:
            raise CatalogueFormatError(
                f"{path}, line {lineno}: {len(tokens)} columns, expected {width} as above"
            )
        try:
            rows.append([float(t) for t in tokens])
        except ValueError:
            bad = next(i for i, t in enumerate(tokens) if not _is_number(t))
            raise CatalogueFormatError(
                f"{path}, line {lineno}: non-numeric value {tokens[bad]!r} in column {bad + 1}"
            ) from None
        numbers.append(lineno)
    return np.array(rows, dtype=float).reshape(len(rows), width or 0), np.array(numbers, int)


def _table_from_rows(
    path: Path, values: np.ndarray, lines: np.ndarray, names: Sequence[str]
) -> Table:
    """Tidy catalogue from numeric rows; checks positions and integer columns."""
    columns = dict(zip(names, values.T, strict=True))
    for name in _POSITION_COLUMNS:
        bad = ~np.isfinite(columns[name])
        if bad.any():
            raise CatalogueFormatError(
                f"{path}, line {lines[bad][0]}: non-finite {name} ({int(bad.sum())} rows)"
            )
    for name in (*_INTEGER_COLUMNS, "selection"):
        if name in columns:
            bad = columns[name] != np.round(columns[name])
            if bad.any():
                raise CatalogueFormatError(
                    f"{path}, line {lines[bad][0]}: {name} = {columns[name][bad][0]:g} "
                    "is not an integer"
                )
    for name in ("ra_core", "ra_cent"):
        columns[name] = wrap_ra(columns[name])
    return catalogue_table(columns)


def _read_numeric_catalogue(
    path: str | Path, layouts: dict[int, tuple[str, ...]], allow_empty: bool, fmt: dict[int, str]
) -> Table:
    path = Path(path)
    values, lines = _parse_rows(path, tuple(layouts))
    if len(values) == 0:
        if not allow_empty:
            raise CatalogueFormatError(f"{path}: no sources (pass allow_empty=True to accept)")
        table = empty_catalogue(SUBMISSION_COLUMNS)
        table.meta.update(path=str(path), format="empty")
        return table
    width = values.shape[1]
    table = _table_from_rows(path, values, lines, layouts[width])
    table.meta.update(path=str(path), format=fmt[width])
    return table


def read_truth_catalogue(path: str | Path, *, allow_empty: bool = False) -> Table:
    """Read an SDC1 truth catalogue in either published text format.

    Parameters
    ----------
    path : str or Path
        A training-set file (``COLUMNn:`` description lines, a header row, 15 columns
        ending ``SELECTION x y``) or a scorer truth file (12 columns, no header, ``#``
        comments allowed). The layout is detected from the number of columns.
    allow_empty : bool
        Return an empty catalogue instead of raising when the file holds no source.

    Returns
    -------
    astropy.table.Table
        Columns of :data:`SUBMISSION_COLUMNS` (plus ``selection``, ``x``, ``y`` for a
        training file) with the units of :data:`CATALOGUE_COLUMNS`; RA in -180..180 deg.
        ``meta["format"]`` is ``"sdc1-training"`` or ``"sdc1-scorer"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CatalogueFormatError
        On a binary file, a wrong column count, a non-numeric value, a non-finite position
        or a non-integer id/size/class (the message names the file and line), or an
        empty catalogue unless ``allow_empty``.
    """
    return _read_numeric_catalogue(
        path,
        {12: SUBMISSION_COLUMNS, 15: TRAINING_COLUMNS},
        allow_empty,
        {12: "sdc1-scorer", 15: "sdc1-training"},
    )


def read_submission(path: str | Path, *, allow_empty: bool = False) -> Table:
    """Read a 12-column SDC1 submission (with or without one header row).

    Parameters and errors as :func:`read_truth_catalogue`, but exactly 12 columns.
    """
    return _read_numeric_catalogue(
        path, {12: SUBMISSION_COLUMNS}, allow_empty, {12: "sdc1-submission"}
    )


def _column_values(table: Table, name: str) -> np.ndarray:
    """Values of a standard column in the schema's unit (converting Quantity columns)."""
    unit = CATALOGUE_COLUMNS[name][0]
    column = table[name]
    if unit is not None and getattr(column, "unit", None) not in (None, unit):
        return u.Quantity(column).to_value(unit)
    return np.asarray(column, dtype=float)


def _submission_columns(table: Table, *, allow_empty: bool) -> dict[str, np.ndarray]:
    """The 12 submission columns as finite float arrays, RA wrapped; validates."""
    missing = [name for name in SUBMISSION_COLUMNS if name not in table.colnames]
    if missing:
        raise CatalogueFormatError(f"catalogue lacks the submission column(s) {missing}")
    if len(table) == 0 and not allow_empty:
        raise CatalogueFormatError("catalogue has no sources (pass allow_empty=True to accept)")
    columns = {}
    for name in SUBMISSION_COLUMNS:
        values = _column_values(table, name)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CatalogueFormatError(
                f"catalogue column {name} is not finite in {int(bad.sum())} row(s), "
                f"first at row {row} (id {table['id'][row]})"
            )
        columns[name] = values
    for name in ("ra_core", "ra_cent"):
        columns[name] = wrap_ra(columns[name])
    return columns


def write_submission(
    table: Table,
    path: str | Path,
    *,
    overwrite: bool = False,
    header: bool = True,
    allow_empty: bool = False,
) -> Path:
    """Write a catalogue as an SDC1 submission text file.

    Twelve space-separated columns in the order of :data:`SUBMISSION_COLUMNS`, RA in
    -180..180 deg. With ``header`` the first line holds the column names: the official
    ``ska_sdc.Sdc1Scorer.from_txt`` skips one row of a submission by default
    (``sub_skiprows=1``) and none of a truth file (``truth_skiprows=0``), so write
    truth files for the scorer with ``header=False``.

    Parameters
    ----------
    table : astropy.table.Table
        Catalogue with at least the 12 submission columns (Quantity columns are converted
        to the schema units: deg, Jy, arcsec).
    path : str or Path
        Output file; replaced only when ``overwrite`` is True.
    overwrite : bool
        Replace an existing file.
    header : bool
        Write one row of column names first.
    allow_empty : bool
        Accept a catalogue without sources.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    CatalogueFormatError
        If a column is missing, a value is NaN/inf, or the table is empty (unless
        ``allow_empty``).
    """
    path = Path(path)
    lines = submission_lines(table, allow_empty=allow_empty)
    check_writable(path, overwrite=overwrite)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("".join(([SUBMISSION_HEADER] if header else []) + lines))
    tmp.replace(path)
    return path


def submission_lines(table: Table, *, allow_empty: bool = False) -> list[str]:
    r"""The rows of :func:`write_submission` (without the header row), each ending in a
    newline: 12 space-separated values, integers for ``size`` and ``class``.

    Examples
    --------
    >>> t = catalogue_table({"id": [7], "ra_core": [359.5], "dec_core": [-30.0],
    ...     "ra_cent": [359.5], "dec_cent": [-30.0], "flux": [1.5e-5], "core_frac": [0.0],
    ...     "b_maj": [1.2], "b_min": [0.8], "pa": [30.0], "size": [2], "class": [3]})
    >>> submission_lines(t)
    ['7 -0.5 -30 -0.5 -30 1.5e-05 0 1.2 0.8 30 2 3\n']
    """
    columns = _submission_columns(table, allow_empty=allow_empty)
    text = [list(map(("%d" if name in _INTEGER_COLUMNS else "%.10g").__mod__,
                     columns[name].tolist())) for name in SUBMISSION_COLUMNS]
    return [" ".join(row) + "\n" for row in zip(*text, strict=True)]


def to_scorer_dataframe(table: Table, *, allow_empty: bool = False):
    """Catalogue as the :class:`pandas.DataFrame` that ``ska_sdc.Sdc1Scorer`` takes.

    Parameters
    ----------
    table : astropy.table.Table
        Catalogue with the 12 submission columns (see :func:`write_submission`).
    allow_empty : bool
        Accept a catalogue without sources.

    Returns
    -------
    pandas.DataFrame
        Columns named as the scorer's ``CAT_COLUMNS`` (= :data:`SUBMISSION_COLUMNS`);
        ``id``, ``size``, ``class`` int64, the rest float64, RA in -180..180 deg.

    Raises
    ------
    CatalogueFormatError
        As :func:`write_submission`.
    """
    import pandas as pd

    columns = _submission_columns(table, allow_empty=allow_empty)
    return pd.DataFrame(
        {
            name: values.astype(np.int64) if name in _INTEGER_COLUMNS else values
            for name, values in columns.items()
        }
    )


#: Columns of an Aegean component table that :func:`read_aegean_components` needs.
AEGEAN_COLUMNS: tuple[str, ...] = ("ra", "dec", "peak_flux", "int_flux", "a", "b", "pa",
                                   "local_rms", "background", "psf_a", "psf_b")


def read_aegean_components(path: str | Path) -> Table:
    """Read a component catalogue of the Aegean source finder (FITS binary table).

    Aegean writes, per fitted Gaussian component, ``ra``/``dec`` (deg), ``peak_flux``
    (Jy/beam), ``int_flux`` (Jy), ``a``/``b`` (FWHM, arcsec, the beam included), ``pa``
    (deg east of north), ``local_rms`` and ``background`` (Jy/beam), ``psf_a``/``psf_b``
    (the beam, arcsec), ``island``/``source`` numbers, fit ``flags`` and errors, without
    units in the FITS table.

    Parameters
    ----------
    path : str or Path
        The ``*_comp.fits`` table.

    Returns
    -------
    astropy.table.Table
        The catalogue schema (:data:`CATALOGUE_COLUMNS`, :data:`EXTRA_COLUMNS`, with
        units): ``id`` (1..n), ``ra_core`` = ``ra_cent`` (RA in -180..180), ``dec_core`` =
        ``dec_cent``, ``flux`` (``int_flux``), ``peak_flux``, ``b_maj``/``b_min`` (FWHM
        deconvolved from the beam in quadrature), ``pa`` (SDC1 convention), ``pa_eon``,
        ``fwhm_maj``/``fwhm_min`` (``a``/``b``), ``noise`` (``local_rms``), ``peak_snr``,
        ``size`` 2 and ``class`` 3; then every other Aegean column as it is (``island``,
        ``source``, ``flags``, ``err_*``, ``background``, ``psf_*`` …).

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    CatalogueFormatError
        If it is not a FITS table or lacks a needed column (the message names them).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such Aegean catalogue")
    try:
        raw = Table.read(path, format="fits")
    except (OSError, ValueError, TypeError) as exc:
        raise CatalogueFormatError(f"{path}: not a FITS table of Aegean components ({exc})") from None
    missing = [name for name in AEGEAN_COLUMNS if name not in raw.colnames]
    if missing:
        raise CatalogueFormatError(f"{path}: not an Aegean component table, column(s) "
                                   f"{', '.join(missing)} missing")

    def col(name: str) -> np.ndarray:
        return np.ma.filled(np.ma.asarray(raw[name], dtype=float), np.nan)

    ra, dec, pa = wrap_ra(col("ra")), col("dec"), col("pa") % 180.0
    n = len(raw)
    table = catalogue_table({
        "id": np.arange(1, n + 1), "ra_core": ra, "dec_core": dec, "ra_cent": ra,
        "dec_cent": dec, "flux": col("int_flux"), "core_frac": np.zeros(n),
        "b_maj": deconvolve_fwhm(col("a"), col("psf_a")),
        "b_min": deconvolve_fwhm(col("b"), col("psf_b")), "pa": sdc1_pa(pa),
        "size": np.full(n, 2), "class": np.full(n, 3), "peak_flux": col("peak_flux"),
        "peak_snr": col("peak_flux") / col("local_rms"), "noise": col("local_rms"),
        "fwhm_maj": col("a"), "fwhm_min": col("b"), "pa_eon": pa,
    })
    table["peak_flux"].description = "fitted peak brightness (Aegean)"
    table["fwhm_maj"].description = "fitted major-axis FWHM, beam included (Aegean a)"
    table["fwhm_min"].description = "fitted minor-axis FWHM, beam included (Aegean b)"
    used = {"ra", "dec", "int_flux", "peak_flux", "a", "b", "pa", "local_rms"}
    for name in raw.colnames:
        if name not in used:
            table[name] = raw[name]
    table.meta.update({"CATALOG": "aegean", "SOURCE": path.name})
    return table
