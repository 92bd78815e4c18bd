"""Faint sources next to bright ones: completeness against the brightness of the neighbours.

The poster's network missed faint sources in cutouts spanning a wide range of surface
brightness: a bright neighbour sets the scale of a min-max-normalised cutout and of the
features the network attends to. :func:`neighbour_completeness` measures exactly that on
a scored field: for each true source in a faint S/N range it finds the brightest other true
source within ``radius`` pixels, and returns the completeness of the faint sources in bins
of that neighbour's S/N (the first bin, below the faint range, means "no bright
neighbour"). :func:`neighbour_table` stacks it for several finders scored on the same field
(the U-Net, PyBDSF, Aegean, ...), one block of rows per finder. :func:`class_completeness`
instead classes every true source by the separation of its nearest brighter true source
(:data:`NEIGHBOUR_CLASSES`, :func:`neighbour_classes`: no brighter source within 3″, one at
1.5–3″, resolvable at a 1.5″ beam, or one within 1.5″) and returns the completeness per
class; :func:`class_bin_completeness` per class and bin of true peak S/N, :func:`class_table`
stacks that for several finders and :func:`class_pivot` shows it as a finder x class by
S/N bin table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from astropy.table import Table
from scipy.spatial import cKDTree

from radioseg_utils.evaluation.evaluate import Evaluation, truth_in_image
from radioseg_utils.evaluation.metrics import SNR_BINS
from radioseg_utils.io.fits_read import SkyImage

__all__ = [
    "NEIGHBOUR_RADIUS",
    "NEIGHBOUR_BINS",
    "NEIGHBOUR_CLASS_EDGES",
    "NEIGHBOUR_CLASSES",
    "TRUE_SOURCES_ROW",
    "class_bin_completeness",
    "class_completeness",
    "class_overview",
    "class_pivot",
    "class_table",
    "neighbour_classes",
    "neighbour_completeness",
    "neighbour_table",
]

#: Search radius for the brightest neighbour, in pixels (4 B1 beams).
NEIGHBOUR_RADIUS: float = 10.0
#: Bin edges of the neighbour's true peak S/N.
NEIGHBOUR_BINS: tuple[float, ...] = (0.0, 5.0, 20.0, 100.0, np.inf)
#: Separations (arcsec) from the nearest brighter true source that bound the classes.
NEIGHBOUR_CLASS_EDGES: tuple[float, float] = (1.5, 3.0)
#: Names of the classes of :func:`neighbour_classes`, farthest neighbour first.
NEIGHBOUR_CLASSES: tuple[str, str, str] = ("isolated", "1.5-3arcsec", "lt1.5arcsec")


def _scored_truth(evaluation: Evaluation, truth: Table,
                  sky: SkyImage) -> tuple[Table, np.ndarray, np.ndarray]:
    """The true sources on the image, their true S/N and whether each was found."""
    inside = truth_in_image(truth, sky)
    snr = np.asarray(evaluation.true_snr, float)
    if len(inside) != snr.size:
        raise ValueError(f"truth has {len(inside)} sources on the image but the evaluation "
                         f"scored {snr.size}: pass the truth and image it was computed with")
    return inside, snr, evaluation.match.true_found()


def _pixel_positions(truth: Table, sky: SkyImage) -> tuple[np.ndarray, np.ndarray]:
    return sky.wcs.celestial.world_to_pixel_values(np.asarray(truth["ra_core"], float),
                                                   np.asarray(truth["dec_core"], float))


def neighbour_completeness(
    evaluation: Evaluation,
    truth: Table,
    sky: SkyImage,
    *,
    faint: tuple[float, float] = (5.0, 10.0),
    radius: float = NEIGHBOUR_RADIUS,
    bins: Sequence[float] = NEIGHBOUR_BINS,
) -> pd.DataFrame:
    """Completeness of faint true sources in bins of their brightest neighbour's S/N.

    Parameters
    ----------
    evaluation : Evaluation
        A finder scored on a field (:func:`radioseg_utils.evaluation.evaluate.evaluate_finder`).
    truth : astropy.table.Table
        The truth catalogue given to that evaluation.
    sky : SkyImage
        The image it was computed on.
    faint : (lo, hi)
        True peak S/N range of the sources studied.
    radius : float
        Neighbour search radius in pixels.
    bins : sequence of float
        Edges of the neighbour S/N bins (a source with no neighbour counts as S/N 0).

    Returns
    -------
    pandas.DataFrame
        ``lo``, ``hi`` (neighbour S/N), ``n_true``, ``n_found``, ``completeness`` (NaN for
        an empty bin).

    Raises
    ------
    ValueError
        If ``truth`` does not hold the evaluation's true sources.
    """
    inside, snr, found = _scored_truth(evaluation, truth, sky)
    x, y = _pixel_positions(inside, sky)
    tree = cKDTree(np.column_stack([x, y]))
    studied = np.flatnonzero((snr >= faint[0]) & (snr < faint[1]))
    brightest = np.zeros(studied.size)
    for k, i in enumerate(studied):
        near = [j for j in tree.query_ball_point((x[i], y[i]), radius) if j != i]
        brightest[k] = snr[near].max() if near else 0.0
    edges = np.asarray(bins, float)
    which = np.digitize(brightest, edges) - 1
    rows = []
    for b in range(edges.size - 1):
        sel = studied[which == b]
        n = int(sel.size)
        rows.append({"lo": edges[b], "hi": edges[b + 1], "n_true": n,
                     "n_found": int(found[sel].sum()),
                     "completeness": found[sel].mean() if n else np.nan})
    return pd.DataFrame(rows)


def neighbour_classes(
    truth: Table,
    sky: SkyImage,
    snr: np.ndarray,
    *,
    edges: tuple[float, float] = NEIGHBOUR_CLASS_EDGES,
) -> np.ndarray:
    """Class of each true source by the separation of its nearest brighter true source.

    Parameters
    ----------
    truth : astropy.table.Table
        True sources (``ra_core``, ``dec_core``), e.g. those on the image.
    sky : SkyImage
        The image (WCS and pixel size).
    snr : ndarray, shape (len(truth),)
        Their true peak S/N: "brighter" means a higher S/N.
    edges : (inner, outer)
        Separations in arcsec bounding the classes.

    Returns
    -------
    ndarray of str, shape (len(truth),)
        :data:`NEIGHBOUR_CLASSES`: ``"isolated"`` (no brighter source within ``outer``),
        ``"1.5-3arcsec"`` (the nearest within ``[inner, outer)``), ``"lt1.5arcsec"``
        (within ``inner``).

    Raises
    ------
    ValueError
        If ``snr`` does not have one value per source or the edges are not increasing.
    """
    snr = np.asarray(snr, float)
    if snr.shape != (len(truth),):
        raise ValueError(f"snr has shape {snr.shape}, expected ({len(truth)},): one per source")
    inner, outer = edges
    if not 0 < inner < outer:
        raise ValueError(f"neighbour class edges must be 0 < inner < outer, got {edges}")
    x, y = _pixel_positions(truth, sky)
    xy = np.column_stack([x, y])
    nearest = np.full(snr.size, np.inf)
    if snr.size:
        for i, near in enumerate(cKDTree(xy).query_ball_point(xy, outer / sky.pixel_arcsec)):
            brighter = [j for j in near if snr[j] > snr[i]]
            if brighter:
                nearest[i] = np.hypot(*(xy[brighter] - xy[i]).T).min() * sky.pixel_arcsec
    out = np.full(snr.size, NEIGHBOUR_CLASSES[0], dtype=object)
    out[nearest < outer] = NEIGHBOUR_CLASSES[1]
    out[nearest < inner] = NEIGHBOUR_CLASSES[2]
    return out.astype(str)


def class_bin_completeness(
    evaluation: Evaluation,
    truth: Table,
    sky: SkyImage,
    *,
    snr_bins: Sequence[float] = SNR_BINS,
    edges: tuple[float, float] = NEIGHBOUR_CLASS_EDGES,
) -> pd.DataFrame:
    """Completeness of the true sources in each neighbour class and bin of true peak S/N.

    Parameters
    ----------
    evaluation : Evaluation
        A finder scored on a field.
    truth : astropy.table.Table
        The truth catalogue given to that evaluation.
    sky : SkyImage
        The image it was computed on.
    snr_bins : sequence of float
        Edges of the bins of true peak S/N (``[lo, hi)``; sources outside are left out).
    edges : (inner, outer)
        Class boundaries in arcsec (:func:`neighbour_classes`).

    Returns
    -------
    pandas.DataFrame
        One row per class of :data:`NEIGHBOUR_CLASSES` (outer loop) and S/N bin:
        ``neighbour_class``, ``snr_lo``, ``snr_hi``, ``n_true``, ``n_found``,
        ``completeness`` (NaN for an empty cell). Summed over the classes, ``n_true`` and
        ``n_found`` are those of the bin.

    Raises
    ------
    ValueError
        If ``truth`` does not hold the evaluation's true sources or the bins do not increase.
    """
    bins = np.asarray(snr_bins, float)
    if bins.ndim != 1 or bins.size < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"S/N bin edges must be at least two increasing values, got {list(snr_bins)}")
    inside, snr, found = _scored_truth(evaluation, truth, sky)
    classes = neighbour_classes(inside, sky, snr, edges=edges)
    rows = []
    for name in NEIGHBOUR_CLASSES:
        for lo, hi in zip(bins[:-1], bins[1:]):
            sel = (classes == name) & (snr >= lo) & (snr < hi)
            n = int(sel.sum())
            rows.append({"neighbour_class": name, "snr_lo": lo, "snr_hi": hi, "n_true": n,
                         "n_found": int(found[sel].sum()),
                         "completeness": found[sel].mean() if n else np.nan})
    return pd.DataFrame(rows)


def class_completeness(
    evaluation: Evaluation,
    truth: Table,
    sky: SkyImage,
    *,
    min_snr: float = 5.0,
    edges: tuple[float, float] = NEIGHBOUR_CLASS_EDGES,
) -> pd.DataFrame:
    """Completeness of the true sources of S/N >= ``min_snr`` in each neighbour class.

    :func:`class_bin_completeness` with the one S/N bin ``[min_snr, inf)``.

    Parameters
    ----------
    evaluation : Evaluation
        A finder scored on a field.
    truth : astropy.table.Table
        The truth catalogue given to that evaluation.
    sky : SkyImage
        The image it was computed on.
    min_snr : float
        Faintest true peak S/N counted.
    edges : (inner, outer)
        Class boundaries in arcsec (:func:`neighbour_classes`).

    Returns
    -------
    pandas.DataFrame
        One row per class of :data:`NEIGHBOUR_CLASSES`: ``neighbour_class``, ``n_true``,
        ``n_found``, ``completeness`` (NaN for an empty class).

    Raises
    ------
    ValueError
        If ``truth`` does not hold the evaluation's true sources.
    """
    table = class_bin_completeness(evaluation, truth, sky, snr_bins=(min_snr, np.inf), edges=edges)
    return table.drop(columns=["snr_lo", "snr_hi"])


def _stacked(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Tables of several finders, one block of rows each, ``finder`` first."""
    if not tables:
        raise ValueError("no evaluations given")
    table = pd.concat([t.assign(finder=name) for name, t in tables.items()], ignore_index=True)
    return table[["finder", *(c for c in table.columns if c != "finder")]]


def class_table(
    evaluations: Mapping[str, Evaluation],
    truth: Table,
    sky: SkyImage,
    **options,
) -> pd.DataFrame:
    """:func:`class_bin_completeness` of several finders on the same field, stacked.

    Parameters
    ----------
    evaluations : mapping
        Name (e.g. the finder) -> its evaluation on ``sky`` against ``truth``.
    truth, sky
        The truth catalogue and image every evaluation was computed with.
    **options
        ``snr_bins``, ``edges`` of :func:`class_bin_completeness`.

    Returns
    -------
    pandas.DataFrame
        ``finder`` then the columns of :func:`class_bin_completeness`, one block of rows per
        name in the order of ``evaluations``; :func:`class_pivot` makes the finder x class
        by S/N bin table.

    Raises
    ------
    ValueError
        If ``evaluations`` is empty, or an evaluation was not computed on ``truth``.
    """
    return _stacked({name: class_bin_completeness(evaluation, truth, sky, **options)
                     for name, evaluation in evaluations.items()})


def class_pivot(table: pd.DataFrame, *, keys: Sequence[str] = ("finder",),
                values: str = "completeness") -> pd.DataFrame:
    """A long table per neighbour class and S/N bin as a wide one, one column per bin.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`class_table` output, or any long table with ``keys``, ``neighbour_class``,
        ``snr_lo``, ``snr_hi`` and ``values``, one row per key, class and bin.
    keys : sequence of str
        Columns that, with the class, index the rows (in the order they first appear);
        none for a table of one finder, e.g. the true sources per cell: ``class_pivot(
        table[table["finder"] == name], keys=(), values="n_true")``.
    values : str
        The column shown.

    Returns
    -------
    pandas.DataFrame
        Rows (``*keys``, ``neighbour_class``), the classes in :data:`NEIGHBOUR_CLASSES`
        order; columns the S/N bins, labelled ``"5-10"`` (``">50"`` for an open last bin).

    Raises
    ------
    ValueError
        If a column is missing or a key, class and bin has several rows.
    """
    keys = list(keys)
    needed = [*keys, "neighbour_class", "snr_lo", "snr_hi", values]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"class table lacks column(s) {missing}")
    if table.duplicated([*keys, "neighbour_class", "snr_lo"]).any():
        raise ValueError(f"several rows per {[*keys, 'neighbour_class']} and S/N bin: "
                         "select one finder or give its key")
    bins = table.drop_duplicates("snr_lo")
    labels = {lo: f">{lo:g}" if np.isinf(hi) else f"{lo:g}-{hi:g}"
              for lo, hi in zip(bins["snr_lo"], bins["snr_hi"])}
    index = [*keys, "neighbour_class"]
    wide = table.pivot(index=index, columns="snr_lo", values=values)
    order = list(dict.fromkeys(zip(*(table[k] for k in keys)))) if keys else [()]
    rows = pd.MultiIndex.from_tuples([(*key, name) for key in order for name in NEIGHBOUR_CLASSES],
                                     names=index)
    wide = wide.reindex(rows if keys else rows.get_level_values(0))[list(labels)]
    wide.columns = pd.Index(list(labels.values()), name="true peak S/N")
    return wide


#: Row label of the true sources in :func:`class_overview`.
TRUE_SOURCES_ROW: str = "true sources"


def class_overview(table: pd.DataFrame) -> pd.DataFrame:
    """One field's completeness per neighbour class and S/N bin, finders as row blocks.

    Parameters
    ----------
    table : pandas.DataFrame
        Long rows of one field (:func:`class_table`, or one field of
        :func:`radioseg_utils.workflows.grid.grid_class_table`): ``finder``,
        ``neighbour_class``, ``snr_lo``, ``snr_hi``, ``n_true``, ``completeness``; rows of
        a finder that failed (NaN ``n_true``) give NaN completeness.

    Returns
    -------
    pandas.DataFrame
        Rows (``finder``, ``neighbour_class``): first :data:`TRUE_SOURCES_ROW`, the true
        sources of each class and bin, then each finder's completeness; one column per S/N
        bin (:func:`class_pivot`).

    Raises
    ------
    ValueError
        If a column is missing, or the true sources of a class and bin differ between
        finders (rows of several fields).
    """
    needed = ["finder", "neighbour_class", "snr_lo", "snr_hi", "n_true", "completeness"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"class table lacks column(s) {missing}")
    cells = table.dropna(subset=["n_true"]).drop_duplicates(["neighbour_class", "snr_lo", "n_true"])
    if cells.duplicated(["neighbour_class", "snr_lo"]).any():
        raise ValueError("the true sources of a class and S/N bin differ between finders: "
                         "give the rows of one field")
    counts = class_pivot(cells, keys=(), values="n_true")
    counts.index = pd.MultiIndex.from_product([[TRUE_SOURCES_ROW], counts.index],
                                              names=["finder", "neighbour_class"])
    return pd.concat([counts, class_pivot(table)])


def neighbour_table(
    evaluations: Mapping[str, Evaluation],
    truth: Table,
    sky: SkyImage,
    **options,
) -> pd.DataFrame:
    """:func:`neighbour_completeness` of several finders on the same field, stacked.

    Parameters
    ----------
    evaluations : mapping
        Name (e.g. the finder) -> its evaluation on ``sky`` against ``truth``.
    truth, sky
        The truth catalogue and image every evaluation was computed with.
    **options
        ``faint``, ``radius``, ``bins`` of :func:`neighbour_completeness`.

    Returns
    -------
    pandas.DataFrame
        ``finder`` then the columns of :func:`neighbour_completeness`, one block of rows
        per name in the order of ``evaluations``; pivot it for a finder-by-class table:
        ``table.pivot(index="finder", columns="lo", values="completeness")``.

    Raises
    ------
    ValueError
        If ``evaluations`` is empty, or an evaluation was not computed on ``truth``.
    """
    return _stacked({name: neighbour_completeness(evaluation, truth, sky, **options)
                     for name, evaluation in evaluations.items()})
