"""The science targets of the project, checked row by row on an evaluation table.

A learned finder is worth having here only if, on held-out fields, it clearly beats PyBDSF
and the plain local-maximum finder. :data:`BOOK_TARGETS` states the bar (issue 9 of the
project): completeness at true peak S/N 5–10 and above 10, strict reliability, the median
flux ratio above S/N 10 and the official SDC1 score relative to PyBDSF on the same field.
:func:`check_targets` reads a table of :func:`radioseg_utils.workflows.grid.evaluate_grid` /
:func:`~radioseg_utils.workflows.grid.evaluate_real_cutout` and says, per field, which are met.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Targets", "BOOK_TARGETS", "check_targets"]


@dataclass(frozen=True)
class Targets:
    """The bar a finder must clear on every field.

    Attributes
    ----------
    completeness_5_10, completeness_gt10 : float
        Least completeness at true peak S/N 5–10 and above 10.
    strict_reliability : float
        Least strict reliability (detections matching a true source of S/N >= 3).
    flux_ratio_tolerance : float
        Largest ``|median measured / true flux - 1|`` above S/N 10.
    score_over_pybdsf : float
        Least ratio of the SDC1 score to PyBDSF's on the same field.
    """

    completeness_5_10: float = 0.80
    completeness_gt10: float = 0.95
    strict_reliability: float = 0.95
    flux_ratio_tolerance: float = 0.05
    score_over_pybdsf: float = 2.0


#: The targets of the project.
BOOK_TARGETS = Targets()
_KEYS = ["field", "band", "integration"]


def check_targets(table: pd.DataFrame, finder: str = "unet", *, reference: str = "pybdsf",
                  targets: Targets = BOOK_TARGETS) -> pd.DataFrame:
    """Which targets ``finder`` meets on each field of an evaluation table.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :data:`radioseg_utils.workflows.grid.GRID_COLUMNS` (several fields and finders).
    finder : str
        The finder checked.
    reference : str
        The finder whose SDC1 score is the reference (its rows must be in ``table``).
    targets : Targets
        The bar.

    Returns
    -------
    pandas.DataFrame
        One row per field: the values (``completeness_5_10``, ``completeness_gt10``,
        ``strict_reliability``, ``flux_ratio``, ``score_ratio``), a boolean ``ok_<value>``
        for each and ``all_met``. With the columns ``sdc1_matched`` and ``sdc1_false``,
        also ``perfect_parameters_ratio``: the score the same detections would reach if
        every matched source had perfect parameters (matched minus false), over the
        reference's score, i.e. how far better parameters alone could take the score ratio
        (the score of a perfect catalogue of every true source above an S/N cut is
        :mod:`radioseg_utils.evaluation.ceiling`'s). A field where either finder failed has
        NaN values and False flags.

    Raises
    ------
    ValueError
        If ``table`` has no row of ``finder``.
    """
    if finder not in set(table["finder"]):
        raise ValueError(f"no row of finder {finder!r} in the table")
    ours = table[table["finder"] == finder].set_index(_KEYS)
    ref = table[table["finder"] == reference].set_index(_KEYS)["sdc1_score"]
    out = pd.DataFrame(index=ours.index)
    out["completeness_5_10"] = ours["completeness_5_10"]
    out["completeness_gt10"] = ours["completeness_gt10"]
    out["strict_reliability"] = ours["strict_reliability"]
    out["flux_ratio"] = ours["flux_ratio"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["score_ratio"] = ours["sdc1_score"] / ref.reindex(out.index)
        if {"sdc1_matched", "sdc1_false"} <= set(ours.columns):
            # every matched source scoring the maximum 1: the most these detections can give
            out["perfect_parameters_ratio"] = ((ours["sdc1_matched"] - ours["sdc1_false"])
                                    / ref.reindex(out.index))
    out["ok_completeness_5_10"] = out["completeness_5_10"] >= targets.completeness_5_10
    out["ok_completeness_gt10"] = out["completeness_gt10"] >= targets.completeness_gt10
    out["ok_strict_reliability"] = out["strict_reliability"] >= targets.strict_reliability
    out["ok_flux_ratio"] = (out["flux_ratio"] - 1).abs() <= targets.flux_ratio_tolerance
    # a negative or zero reference score (all false) counts as beaten by any positive score
    positive_ref = ref.reindex(out.index) > 0
    out["ok_score_ratio"] = np.where(positive_ref, out["score_ratio"] >= targets.score_over_pybdsf,
                                     ours["sdc1_score"] > ref.reindex(out.index))
    flags = [c for c in out.columns if c.startswith("ok_")]
    out["all_met"] = out[flags].all(axis=1)
    return out.reset_index()
