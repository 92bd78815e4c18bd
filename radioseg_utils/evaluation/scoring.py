"""The official SKA SDC1 score of a catalogue, through the ``ska-sdc`` package.

:func:`sdc1_score` wraps :class:`ska_sdc.Sdc1Scorer` (Bonaldi et al. 2021, MNRAS 500,
3821, doi:10.1093/mnras/staa3023): each submitted source matched to a true source scores
the mean of seven capped accuracies (position, flux, b_maj, b_min, pa, core_frac, class),
and each false detection costs one point; :attr:`ScoreResult.components` holds the mean of
each accuracy over the matched sources. With ``train=True`` only sources inside the band's
training area are scored; with ``train=False`` that area is excluded.

``ska_sdc`` needs pandas < 3; importing it warns about a deprecated ``pd.read_csv``
keyword, so that warning is silenced around the import only, and the data file it leaves
open is closed. The scorer calls :func:`logging.basicConfig`; :func:`sdc1_score` keeps the root
logger unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

from astropy.table import Table

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.io.catalogue import to_scorer_dataframe

__all__ = ["MODE_CORE", "MODE_CENTROID", "SCORE_COMPONENTS", "ScoreResult", "sdc1_score"]

#: Scorer position mode: match on core positions.
MODE_CORE: int = 0
#: Scorer position mode: match on centroid positions.
MODE_CENTROID: int = 1
#: The seven per-source accuracies of the scorer, each capped at 1.
SCORE_COMPONENTS: tuple[str, ...] = ("position", "flux", "b_maj", "b_min", "pa", "core_frac", "class")


@dataclass(frozen=True)
class ScoreResult:
    """Outcome of the SDC1 scorer.

    Attributes
    ----------
    value : float
        The score: sum of per-source scores of the matches minus the false detections.
    n_det : int
        Submitted sources inside the scored area.
    n_match : int
        Matched sources.
    n_bad : int
        Matches rejected as too inaccurate (multi-dimensional distance above 5 sigma).
    n_false : int
        False detections.
    acc_pc : float
        Mean accuracy of the matched sources, in percent.
    mode : int
        0 core, 1 centroid positions.
    train : bool
        Whether only the training area was scored.
    components : dict
        Mean over the matched sources of each accuracy of :data:`SCORE_COMPONENTS`
        (0..1; the per-source score is their mean); NaN without matches.
    """

    value: float
    n_det: int
    n_match: int
    n_bad: int
    n_false: int
    acc_pc: float
    mode: int
    train: bool
    components: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """The scalar fields in one flat dictionary (without ``components``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "components"}


def _scorer_class():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*delim_whitespace.*", category=FutureWarning)
        from ska_sdc import Sdc1Scorer
        from ska_sdc.data import data_resources
    # ska_sdc reads a data file at import and leaves it open (a ResourceWarning at exit)
    data_resources.pb_info_stream.close()
    return Sdc1Scorer


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Make the scorer's ``logging.basicConfig`` a no-op and drop its INFO messages."""
    root = logging.getLogger()
    added = None
    if not root.handlers:
        added = logging.NullHandler()
        root.addHandler(added)
    try:
        yield
    finally:
        if added is not None:
            root.removeHandler(added)


def sdc1_score(
    submission: Table,
    truth: Table,
    band: str | Band,
    *,
    mode: int = MODE_CORE,
    train: bool = False,
) -> ScoreResult:
    """Score a catalogue against the truth with the official SDC1 scorer.

    Parameters
    ----------
    submission, truth : astropy.table.Table
        Catalogues with the 12 SDC1 submission columns (tidy schema; RA in any convention,
        Quantity columns converted to deg, Jy, arcsec).
    band : str or Band
        SDC1 band (560, 1400 or 9200 MHz).
    mode : {0, 1}
        Match on core (0) or centroid (1) positions.
    train : bool
        Score only the training area (True) or only outside it (False).

    Returns
    -------
    ScoreResult

    Raises
    ------
    ValueError
        For a bad ``mode``.
    radioseg_utils.io.catalogue.CatalogueFormatError
        If a catalogue lacks a column, holds NaN, or is empty.
    """
    if mode not in (MODE_CORE, MODE_CENTROID):
        raise ValueError(f"mode must be {MODE_CORE} (core) or {MODE_CENTROID} (centroid), got {mode!r}")
    freq = int(round(get_band(band).freq_mhz))
    sub_df = to_scorer_dataframe(submission)
    truth_df = to_scorer_dataframe(truth)
    scorer_cls = _scorer_class()
    with _quiet_root_logger():
        result = scorer_cls(sub_df, truth_df, freq).run(mode=mode, train=train, detail=True)
    per_source = result.scores_df if result.n_match else None
    components = {name: float(per_source[name].mean()) if per_source is not None else float("nan")
                  for name in SCORE_COMPONENTS}
    return ScoreResult(
        value=float(result.value),
        n_det=int(result.n_det),
        n_match=int(result.n_match),
        n_bad=int(result.n_bad),
        n_false=int(result.n_false),
        acc_pc=float(result.acc_pc),
        mode=mode,
        train=bool(train),
        components=components,
    )
