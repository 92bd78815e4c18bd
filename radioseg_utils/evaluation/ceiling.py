"""The physical ceiling of a field: the SDC1 score of a perfect catalogue.

A finder cannot find what the noise hides. :func:`field_ceiling` scores, with the official
scorer (:func:`radioseg_utils.evaluation.scoring.sdc1_score`, on the same truth and scored
area as every finder), the *perfect catalogue* of a field above an apparent-S/N cut: every
true source on the image whose true peak S/N (:func:`radioseg_utils.evaluation.evaluate.truth_snr`:
truth peak times primary beam times the SDC1 flux scale over the noise) is at least the cut,
submitted with its true parameters (:func:`perfect_catalogue`). Each such source scores
about the maximum 1 and nothing is false, so the ceiling is roughly the number of true
sources above the cut; it is computed once per field, at the cuts
:data:`CEILING_SNR_CUTS` (3, 4 and 5). :meth:`Ceiling.columns` gives the table columns
(:data:`CEILING_COLUMNS`): the three ceilings and a finder's score as a fraction of the S/N 5
ceiling (:func:`fraction_of_ceiling`); :func:`add_ceiling` adds them to a table of several
fields. A finder above the S/N 5 ceiling scores more than a perfect catalogue of everything
above S/N 5 would.

This is not :func:`radioseg_utils.evaluation.targets.check_targets`'s
``perfect_parameters_ratio``, which keeps a finder's own detections and makes only their
parameters perfect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from astropy.table import Table

from radioseg_utils.evaluation.evaluate import truth_on_image
from radioseg_utils.evaluation.scoring import sdc1_score
from radioseg_utils.io.fits_read import SkyImage

__all__ = [
    "CEILING_SNR_CUTS",
    "CEILING_REFERENCE_SNR",
    "CEILING_COLUMNS",
    "FRACTION_COLUMN",
    "Ceiling",
    "add_ceiling",
    "ceiling_column",
    "field_ceiling",
    "fraction_of_ceiling",
    "perfect_catalogue",
]

#: Apparent true peak S/N cuts of the perfect catalogues.
CEILING_SNR_CUTS: tuple[float, ...] = (3.0, 4.0, 5.0)
#: The cut whose ceiling a finder's score is compared with.
CEILING_REFERENCE_SNR: float = 5.0


def ceiling_column(cut: float) -> str:
    """Name of the column of the ceiling at S/N ``cut``, e.g. ``"ceiling_snr5"``.

    Examples
    --------
    >>> ceiling_column(4.0), ceiling_column(4.5)
    ('ceiling_snr4', 'ceiling_snr4.5')
    """
    return f"ceiling_snr{cut:g}"


#: Column of a finder's SDC1 score over the ceiling at :data:`CEILING_REFERENCE_SNR`.
FRACTION_COLUMN: str = f"fraction_of_{ceiling_column(CEILING_REFERENCE_SNR)}"
#: Columns of :meth:`Ceiling.columns` at the default cuts, in order.
CEILING_COLUMNS: tuple[str, ...] = (*(ceiling_column(c) for c in CEILING_SNR_CUTS), FRACTION_COLUMN)


def perfect_catalogue(truth: Table, snr: np.ndarray, min_snr: float) -> Table:
    """The true sources of S/N >= ``min_snr``, as a submission with their true parameters.

    Parameters
    ----------
    truth : astropy.table.Table
        True sources (tidy schema, the 12 submission columns).
    snr : ndarray, shape (len(truth),)
        Their apparent true peak S/N (:func:`~radioseg_utils.evaluation.evaluate.truth_snr`).
    min_snr : float
        The cut.

    Returns
    -------
    astropy.table.Table
        The selected rows of ``truth``, in its order.

    Raises
    ------
    ValueError
        If ``snr`` does not have one value per source.
    """
    snr = np.asarray(snr, float)
    if snr.shape != (len(truth),):
        raise ValueError(f"snr has shape {snr.shape}, expected ({len(truth)},): one per source")
    return truth[snr >= min_snr]


def fraction_of_ceiling(score: float, ceiling: float) -> float:
    """A finder's SDC1 score over a ceiling; NaN when the ceiling is not positive.

    Examples
    --------
    >>> fraction_of_ceiling(50.0, 200.0)
    0.25
    """
    return float(score) / float(ceiling) if ceiling > 0 else float("nan")


@dataclass(frozen=True)
class Ceiling:
    """SDC1 scores of the perfect catalogues of one field.

    Attributes
    ----------
    cuts : tuple of float
        Apparent true peak S/N cuts.
    scores : tuple of float
        SDC1 score of the perfect catalogue above each cut (0 when it is empty).
    n_sources : tuple of int
        True sources in each perfect catalogue.
    """

    cuts: tuple[float, ...]
    scores: tuple[float, ...]
    n_sources: tuple[int, ...]

    def score(self, cut: float) -> float:
        """The ceiling at S/N ``cut``; raises KeyError for a cut not computed."""
        if cut not in self.cuts:
            raise KeyError(f"no ceiling at S/N {cut:g}; computed at {list(self.cuts)}")
        return self.scores[self.cuts.index(cut)]

    def columns(self, score: float = float("nan")) -> dict[str, float]:
        """Table columns: ``ceiling_snr<cut>`` per cut, then :data:`FRACTION_COLUMN`.

        ``score`` is a finder's SDC1 score on the field (NaN: the fraction is NaN); the
        fraction is NaN too when :data:`CEILING_REFERENCE_SNR` is not among the cuts.
        """
        out = {ceiling_column(c): s for c, s in zip(self.cuts, self.scores)}
        reference = (self.score(CEILING_REFERENCE_SNR) if CEILING_REFERENCE_SNR in self.cuts
                     else float("nan"))
        out[FRACTION_COLUMN] = fraction_of_ceiling(score, reference)
        return out


def field_ceiling(
    truth: Table,
    sky: SkyImage,
    *,
    integration: int | None = None,
    noise: float | None = None,
    primary_beam=None,
    train_area: bool = False,
    cuts: Sequence[float] = CEILING_SNR_CUTS,
) -> Ceiling:
    """SDC1 scores of the perfect catalogues of a field, one per S/N cut.

    The true sources on the image (:func:`~radioseg_utils.evaluation.evaluate.truth_in_image`)
    are scored as the truth, exactly as
    :func:`~radioseg_utils.evaluation.evaluate.evaluate_finder` scores a finder: pass the
    same ``integration``/``noise``, ``primary_beam`` and ``train_area``.

    Parameters
    ----------
    truth : astropy.table.Table
        Truth catalogue of the field (tidy schema); a ``peak_snr`` column is the true S/N.
    sky : SkyImage
        The image (grid, band).
    integration : int, optional
        Integration time in hours: the noise is ``band.noise(integration)``.
    noise : float, optional
        rms in Jy/beam (instead of ``integration``).
    primary_beam : callable, optional
        Attenuation from intrinsic to apparent flux (primary beam times the flux scale).
    train_area : bool
        Score only the SDC1 training area (the real cutout) or only outside it.
    cuts : sequence of float
        Apparent true peak S/N cuts.

    Returns
    -------
    Ceiling

    Raises
    ------
    ValueError
        Without ``noise`` and ``integration``, or without cuts.
    """
    if not len(cuts):
        raise ValueError("give at least one S/N cut")
    inside, snr, noise = truth_on_image(truth, sky, integration=integration, noise=noise,
                                        primary_beam=primary_beam)
    scores, counts = [], []
    for cut in cuts:
        perfect = perfect_catalogue(inside, snr, cut)
        counts.append(len(perfect))
        scores.append(sdc1_score(perfect, inside, sky.band, train=train_area).value
                      if len(perfect) else 0.0)
    return Ceiling(tuple(float(c) for c in cuts), tuple(scores), tuple(counts))


def add_ceiling(table: pd.DataFrame, ceilings: Mapping[str, Ceiling], *, on: str = "field",
                score: str = "sdc1_score") -> pd.DataFrame:
    """``table`` with the ceiling columns of each row's field and the fraction of its score.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of finders (e.g. :func:`~radioseg_utils.evaluation.evaluate.summary_table`).
    ceilings : mapping
        Field name (the values of column ``on``) -> its :class:`Ceiling`.
    on : str
        Column naming the field.
    score : str
        Column of the finders' SDC1 score.

    Returns
    -------
    pandas.DataFrame
        A copy with the columns of :meth:`Ceiling.columns` appended.

    Raises
    ------
    ValueError
        If a column is missing or a field has no ceiling.
    """
    missing = [c for c in (on, score) if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}")
    unknown = sorted(set(table[on]) - set(ceilings), key=str)
    if unknown:
        raise ValueError(f"no ceiling for field(s) {unknown}")
    rows = [ceilings[name].columns(value) for name, value in zip(table[on], table[score])]
    extra = pd.DataFrame(rows, index=table.index)
    return pd.concat([table.drop(columns=[c for c in extra.columns if c in table.columns]), extra],
                     axis=1)
