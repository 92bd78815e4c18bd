"""Faint sources next to bright ones: completeness against the brightness of the neighbours.

The poster's network missed faint sources in cutouts spanning a wide range of surface
brightness: a bright neighbour sets the scale of a min-max-normalised cutout and of the
features the network attends to. :func:`neighbour_completeness` measures exactly that on
a scored field: for each true source in a faint S/N range it finds the brightest other true
source within ``radius`` pixels, and returns the completeness of the faint sources in bins
of that neighbour's S/N (the first bin, below the faint range, means "no bright
neighbour"). :func:`neighbour_table` stacks it for several finders scored on the same field
(the U-Net, PyBDSF, Aegean, ...), one block of rows per finder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from astropy.table import Table
from scipy.spatial import cKDTree

from radioseg_utils.evaluation.evaluate import Evaluation, truth_in_image
from radioseg_utils.io.fits_read import SkyImage

__all__ = ["NEIGHBOUR_RADIUS", "NEIGHBOUR_BINS", "neighbour_completeness", "neighbour_table"]

#: Search radius for the brightest neighbour, in pixels (4 B1 beams).
NEIGHBOUR_RADIUS: float = 10.0
#: Bin edges of the neighbour's true peak S/N.
NEIGHBOUR_BINS: tuple[float, ...] = (0.0, 5.0, 20.0, 100.0, np.inf)


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
    inside = truth_in_image(truth, sky)
    snr = np.asarray(evaluation.true_snr, float)
    if len(inside) != snr.size:
        raise ValueError(f"truth has {len(inside)} sources on the image but the evaluation "
                         f"scored {snr.size}: pass the truth and image it was computed with")
    x, y = sky.wcs.celestial.world_to_pixel_values(np.asarray(inside["ra_core"], float),
                                     np.asarray(inside["dec_core"], float))
    tree = cKDTree(np.column_stack([x, y]))
    found = np.zeros(snr.size, bool)
    found[evaluation.match.true] = True
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
    if not evaluations:
        raise ValueError("no evaluations given")
    table = pd.concat([neighbour_completeness(evaluation, truth, sky, **options).assign(finder=name)
                       for name, evaluation in evaluations.items()], ignore_index=True)
    return table[["finder", *(c for c in table.columns if c != "finder")]]
