"""One fair comparison of all finders: the same image, the same truth, the same metrics.

:func:`evaluate_finder` scores one :class:`~radioseg_utils.baselines.FinderResult` against
a truth catalogue:

* sources: one-to-one position matching within ``radius_arcsec``, brightest truth first
  (:func:`radioseg_utils.core.matching.match_positions`); completeness in bins of the true peak
  S/N (the truth's ``peak_snr`` column, else :func:`radioseg_utils.simulation.truth.true_peak_snr`)
  and reliability in the same bins of the measured ``peak_snr``
  (:func:`radioseg_utils.evaluation.metrics.completeness_reliability`); reliability, and the
  *strict* reliability in which a detection is real only if it matches a true source of
  S/N >= ``strict_min_snr`` (the truth is so dense that a random position often lies
  within a beam of some faint source); the source F1 of the strict completeness and strict
  reliability (:func:`labelled_detections` gives the same real/false label of every row
  of any catalogue: what ``p_real`` is fitted and checked on);
* pixels: precision, recall, F1 and IoU of the finder's label map (``> 0``) against the
  binary truth mask of :func:`radioseg_utils.data.masks.make_masks` at the training set's S/N
  cut (:func:`truth_mask`), over the finite pixels;
* the official SDC1 score (:func:`radioseg_utils.evaluation.scoring.sdc1_score`); a finder without
  detections scores 0 (the scorer needs one), with a note;
* the median flux ratio (detected / true) of matched sources above ``FLUX_RATIO_MIN_SNR``;
* the runtime and peak memory measured by the finder's run.

``compare_finders(..., denoise="dip")`` denoises the image once
(:func:`radioseg_utils.inference.denoise.denoise_sky`, the one switch every finder goes
through) and runs every finder on the denoised image; each :class:`Evaluation` records
the method and its cost.

Only true sources whose core lies on the image grid are counted (truth files of real
cutouts list a few beyond the edges). :func:`compare_finders` runs every finder on the
same image and evaluates each; :func:`comparison_table` (one row per finder, field and S/N
bin), :func:`summary_table` (one row per finder and field) and :func:`write_tables` give
the tidy results.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.table import Table
from tqdm.auto import tqdm

from radioseg_utils.baselines import FINDERS, FinderResult
from radioseg_utils.core.matching import DEFAULT_RADIUS_ARCSEC, Match, match_positions
from radioseg_utils.data.masks import DEFAULT_K_SIGMA, DEFAULT_SNR_MIN, make_masks
from radioseg_utils.evaluation.metrics import (
    SNR_BINS,
    STRICT_MIN_SNR,
    PixelMetrics,
    SourceMetrics,
    completeness_reliability,
    pixel_metrics,
    real_detections,
    source_metrics,
)
from radioseg_utils.evaluation.scoring import ScoreResult, sdc1_score
from radioseg_utils.inference.denoise import denoise_sky
from radioseg_utils.io.catalogue import SUBMISSION_COLUMNS
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.simulation.truth import true_peak_snr

__all__ = [
    "DEFAULT_FINDERS",
    "FLUX_RATIO_MIN_SNR",
    "SUMMARY_COLUMNS",
    "Evaluation",
    "comparison_table",
    "compare_finders",
    "evaluate_finder",
    "labelled_detections",
    "summary_table",
    "truth_in_image",
    "truth_mask",
    "truth_on_image",
    "truth_snr",
    "write_tables",
]

logger = logging.getLogger(__name__)

#: Finders compared by default, in this order.
DEFAULT_FINDERS: tuple[str, ...] = ("unet", "pybdsf", "aegean", "photutils", "peaks")
#: True peak S/N above which matched sources enter the median flux ratio.
FLUX_RATIO_MIN_SNR: float = 10.0
#: Per-finder columns of :func:`summary_table`, repeated in every row of :func:`comparison_table`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "detections", "n_true_strict", "strict_completeness", "reliability",
    "strict_reliability", "f1",
    "pixel_precision", "pixel_recall", "pixel_f1", "iou", "sdc1_score", "sdc1_matched",
    "sdc1_false", "flux_ratio", "runtime_s", "peak_rss_mb", "notes",
)
_KEYS: tuple[str, ...] = ("finder", "field", "band", "integration")
_TRUTH_COLUMNS: tuple[str, ...] = ("ra_core", "dec_core", "flux")


@dataclass(frozen=True)
class Evaluation:
    """Scores of one finder on one image.

    Attributes
    ----------
    finder, field, band : str
        Finder name, image name (e.g. ``"test"``, ``"real cutout"``) and SDC1 band.
    integration : int or None
        Integration time of the image in hours.
    result : FinderResult
        The finder's output (label map, catalogue, runtime, memory).
    match : Match
        Detections matched to the true sources in the image.
    true_snr : ndarray, shape (n_true,)
        True peak S/N of every true source in the image.
    bins : pandas.DataFrame
        :func:`~radioseg_utils.evaluation.metrics.completeness_reliability` in bins of S/N.
    source : SourceMetrics
        All true sources count.
    strict : SourceMetrics
        Only true sources of S/N >= ``strict_min_snr`` are real.
    pixel : PixelMetrics or None
        Label map against the truth mask (None when no mask was computed).
    score : ScoreResult or None
        Official SDC1 score (None when scoring was off or there was no detection).
    flux_ratio : float
        Median detected / true flux of matched sources of S/N >= ``FLUX_RATIO_MIN_SNR``
        (NaN without such matches).
    notes : tuple of str
        What was unusual (no detection, rows the scorer could not take).
    denoise : str
        Denoising applied to the image before the finder (``""``: none).
    denoise_s : float
        Wall-clock seconds of that denoising (0 without; once per image, not per finder).
    """

    finder: str
    field: str
    band: str
    integration: int | None
    result: FinderResult
    match: Match
    true_snr: np.ndarray
    bins: pd.DataFrame
    source: SourceMetrics
    strict: SourceMetrics
    pixel: PixelMetrics | None
    score: ScoreResult | None
    flux_ratio: float
    notes: tuple[str, ...] = ()
    denoise: str = ""
    denoise_s: float = 0.0

    @property
    def sdc1_score(self) -> float:
        """SDC1 score (0 without detections, NaN when scoring was off)."""
        if self.score is not None:
            return self.score.value
        return 0.0 if len(self.result.catalogue) == 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        """One flat row: the keys and :data:`SUMMARY_COLUMNS`."""
        pixel = self.pixel.as_dict() if self.pixel is not None else {}
        nan = float("nan")
        return {
            "finder": self.finder, "field": self.field, "band": self.band,
            "integration": self.integration,
            "detections": len(self.result.catalogue),
            "n_true_strict": self.strict.tp + self.strict.fn,
            "strict_completeness": self.strict.completeness,
            "reliability": self.source.reliability,
            "strict_reliability": self.strict.reliability,
            "f1": self.strict.f1,
            "pixel_precision": pixel.get("precision", nan),
            "pixel_recall": pixel.get("recall", nan),
            "pixel_f1": pixel.get("f1", nan),
            "iou": pixel.get("iou", nan),
            "sdc1_score": self.sdc1_score,
            "sdc1_matched": self.score.n_match if self.score is not None else 0,
            "sdc1_false": self.score.n_false if self.score is not None else 0,
            "flux_ratio": self.flux_ratio,
            "runtime_s": float(self.result.runtime_s),
            "peak_rss_mb": float(self.result.peak_rss_mb),
            "notes": "; ".join(self.notes),
        }


def truth_in_image(truth: Table, sky: SkyImage) -> Table:
    """The true sources whose core position falls on the image grid.

    Raises
    ------
    ValueError
        If the truth lacks ``ra_core``, ``dec_core`` or ``flux``.
    """
    missing = [c for c in _TRUTH_COLUMNS if c not in truth.colnames]
    if missing:
        raise ValueError(f"truth catalogue lacks column(s) {', '.join(missing)}")
    x, y = sky.wcs.celestial.world_to_pixel_values(np.asarray(truth["ra_core"], float),
                                                   np.asarray(truth["dec_core"], float))
    ny, nx = sky.shape
    inside = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    return truth[inside]


def truth_snr(truth: Table, sky: SkyImage, *, noise: float, primary_beam=None) -> np.ndarray:
    """True peak S/N of true sources in ``sky``: the one definition every metric bins by.

    The truth's ``peak_snr`` column when it has one (simulated fields), else
    :func:`radioseg_utils.simulation.truth.true_peak_snr` on the image grid: the peak of the
    beam-convolved model times ``primary_beam`` (e.g. the primary beam times the SDC1 flux
    scale, :class:`~radioseg_utils.simulation.simulate.Attenuation`) over ``noise``, i.e.
    the apparent S/N.

    Parameters
    ----------
    truth : astropy.table.Table
        True sources (tidy schema), e.g. :func:`truth_in_image` of a truth catalogue.
    sky : SkyImage
        The image (band and WCS).
    noise : float
        rms in Jy/beam.
    primary_beam : callable, optional
        Attenuation ``primary_beam(ra, dec)`` from intrinsic to apparent flux.

    Returns
    -------
    ndarray, shape (len(truth),)
    """
    if "peak_snr" in truth.colnames:
        return np.asarray(truth["peak_snr"], dtype=float)
    return true_peak_snr(truth, sky.band, noise=noise, wcs=sky.wcs, primary_beam=primary_beam)


def truth_mask(
    sky: SkyImage,
    truth: Table,
    *,
    noise: float,
    snr_min: float = DEFAULT_SNR_MIN,
    k_sigma: float = DEFAULT_K_SIGMA,
    primary_beam=None,
) -> np.ndarray:
    """Binary truth mask on the image grid, made as for the training set.

    Parameters
    ----------
    sky : SkyImage
        Image whose grid, WCS and band are used.
    truth : astropy.table.Table
        Truth catalogue (tidy schema).
    noise : float
        rms in Jy/beam (the dataset's: ``band.noise(integration)``).
    snr_min, k_sigma : float
        Selection and footprint levels of :func:`radioseg_utils.data.masks.make_masks`.
    primary_beam : callable, optional
        Attenuation ``primary_beam(ra, dec)`` (apparent fluxes in the image).

    Returns
    -------
    ndarray of bool, shape (ny, nx)
    """
    masks = make_masks(truth, sky.wcs, sky.band, shape=sky.shape, noise=noise, snr_min=snr_min,
                       k_sigma=k_sigma, primary_beam=primary_beam, allow_empty=True)
    return np.asarray(masks.binary, dtype=bool)


def _scored(catalogue: Table, truth: Table, band: str, train: bool) -> tuple[ScoreResult | None, list[str]]:
    """SDC1 score of the rows the scorer can take, and notes on the rest."""
    if len(catalogue) == 0:
        return None, ["no detections: SDC1 score 0"]
    finite = np.ones(len(catalogue), bool)
    for name in SUBMISSION_COLUMNS:
        finite &= np.isfinite(np.asarray(catalogue[name], dtype=float))
    notes = [] if finite.all() else [f"{int((~finite).sum())} detection(s) with non-finite "
                                     "parameters left out of the SDC1 score"]
    if not finite.any():
        return None, notes + ["SDC1 score 0"]
    return sdc1_score(catalogue[finite], truth, band, train=train), notes


def evaluate_finder(
    result: FinderResult,
    truth: Table,
    sky: SkyImage,
    *,
    integration: int | None,
    noise: float | None = None,
    true_mask: np.ndarray | None = None,
    primary_beam=None,
    field: str = "",
    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
    snr_bins: Sequence[float] = SNR_BINS,
    strict_min_snr: float = STRICT_MIN_SNR,
    pixels: bool = True,
    score: bool = True,
    train_area: bool = False,
) -> Evaluation:
    """Score one finder's output on ``sky`` against the truth.

    Parameters
    ----------
    result : FinderResult
        Output of a finder of :data:`radioseg_utils.baselines.FINDERS` run on ``sky``.
    truth : astropy.table.Table
        Truth catalogue (tidy schema); sources off the grid are ignored
        (:func:`truth_in_image`). A ``peak_snr`` column is used as the true S/N.
    sky : SkyImage
        The image the finder ran on.
    integration : int or None
        Integration time in hours: sets the default noise and labels the results.
    noise : float, optional
        rms in Jy/beam for the true S/N and the truth mask; default
        ``band.noise(integration)``, as for the training set.
    true_mask : ndarray of bool, shape (ny, nx), optional
        Binary truth mask (:func:`truth_mask`); computed here when None and ``pixels``.
        Pass it to score several finders on the same image without recomputing it.
    primary_beam : callable, optional
        Attenuation ``primary_beam(ra, dec)`` for the true S/N and mask (apparent flux).
    field : str
        Name of the image in the tables.
    radius_arcsec : float
        Largest separation of a match.
    snr_bins : sequence of float
        Bin edges of true (and measured) peak S/N.
    strict_min_snr : float
        True S/N from which a true source counts as real in the strict metrics.
    pixels : bool
        Compute pixel metrics.
    score : bool
        Run the official SDC1 scorer.
    train_area : bool
        Score only the SDC1 training area (``True`` for cutouts inside it).

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        If the label map or mask does not have the image's shape, the truth lacks a
        column, or neither ``noise`` nor ``integration`` is given.
    """
    if result.labels.shape != sky.shape:
        raise ValueError(f"{result.finder}: label map shape {result.labels.shape} differs "
                         f"from the image shape {sky.shape}")
    cat = result.catalogue
    truth, true_snr, match, noise = _match_truth(cat, truth, sky, integration=integration,
                                                 noise=noise, primary_beam=primary_beam,
                                                 radius_arcsec=radius_arcsec)
    pred_snr = np.asarray(cat["peak_snr"], float) if "peak_snr" in cat.colnames else None
    bins = completeness_reliability(match, true_values=true_snr, pred_values=pred_snr,
                                    bins=snr_bins)
    pixel = None
    if pixels:
        if true_mask is None:
            true_mask = truth_mask(sky, truth, noise=noise, primary_beam=primary_beam)
        elif np.shape(true_mask) != sky.shape:
            raise ValueError(f"true_mask shape {np.shape(true_mask)} differs from the image "
                             f"shape {sky.shape}")
        pixel = pixel_metrics(result.labels > 0, true_mask, valid=sky.finite_mask)
    notes: list[str] = []
    scored = None
    if score:
        scored, notes = _scored(cat, truth, sky.band.name, train_area)
    bright = true_snr[match.true] >= FLUX_RATIO_MIN_SNR
    ratios = (np.asarray(cat["flux"], float)[match.pred[bright]]
              / np.asarray(truth["flux"], float)[match.true[bright]])
    flux_ratio = float(np.median(ratios)) if ratios.size else float("nan")
    evaluation = Evaluation(
        finder=result.finder, field=field, band=sky.band.name,
        integration=None if integration is None else int(integration), result=result,
        match=match, true_snr=true_snr, bins=bins, source=source_metrics(match),
        strict=source_metrics(match, true_snr=true_snr, min_snr=strict_min_snr),
        pixel=pixel, score=scored, flux_ratio=flux_ratio, notes=tuple(notes))
    logger.info("%s on %s: %d detections, strict reliability %.3f, SDC1 score %.1f",
                result.finder, field or "image", len(cat), evaluation.strict.reliability,
                evaluation.sdc1_score)
    return evaluation


def truth_on_image(truth: Table, sky: SkyImage, *, integration: int | None,
                   noise: float | None = None,
                   primary_beam=None) -> tuple[Table, np.ndarray, float]:
    """The true sources on the image, their apparent S/N (:func:`truth_snr`) and the noise.

    The noise is ``noise``, else the band's nominal rms at ``integration`` hours.

    Raises
    ------
    ValueError
        Without ``noise`` and ``integration``.
    """
    if noise is None:
        if integration is None:
            raise ValueError("give the noise or the integration time of the image")
        noise = sky.band.noise(integration)
    inside = truth_in_image(truth, sky)
    return inside, truth_snr(inside, sky, noise=noise, primary_beam=primary_beam), noise


def _match_truth(catalogue: Table, truth: Table, sky: SkyImage, *, integration: int | None,
                 noise: float | None, primary_beam, radius_arcsec: float):
    """:func:`truth_on_image` and the match of the catalogue to those sources."""
    truth, true_snr, noise = truth_on_image(truth, sky, integration=integration, noise=noise,
                                            primary_beam=primary_beam)
    match = match_positions(catalogue, truth, radius_arcsec=radius_arcsec)
    return truth, true_snr, match, noise


def labelled_detections(
    catalogue: Table,
    truth: Table,
    sky: SkyImage,
    *,
    integration: int | None,
    noise: float | None = None,
    primary_beam=None,
    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC,
    strict_min_snr: float = STRICT_MIN_SNR,
) -> np.ndarray:
    """Which rows of a catalogue are real, as the strict reliability of
    :func:`evaluate_finder` counts them (the labels ``p_real`` is fitted and checked on).

    Parameters are those of :func:`evaluate_finder`; the catalogue is any finder's on
    ``sky``.

    Returns
    -------
    ndarray of bool, shape (len(catalogue),)
        True for a detection matched to a true source of S/N >= ``strict_min_snr``
        (:func:`radioseg_utils.evaluation.metrics.real_detections`).
    """
    _, true_snr, match, _ = _match_truth(catalogue, truth, sky, integration=integration,
                                         noise=noise, primary_beam=primary_beam,
                                         radius_arcsec=radius_arcsec)
    return real_detections(match, true_snr=true_snr, min_snr=strict_min_snr)


def compare_finders(
    sky: SkyImage,
    truth: Table,
    *,
    integration: int | None,
    finders: Sequence[str] = DEFAULT_FINDERS,
    model=None,
    noise: float | None = None,
    primary_beam=None,
    field: str = "",
    finder_options: Mapping[str, Mapping[str, Any]] | None = None,
    true_mask: np.ndarray | None = None,
    progress: bool = False,
    denoise: str | None = None,
    denoise_options: Mapping[str, Any] | None = None,
    **evaluate_options: Any,
) -> list[Evaluation]:
    """Run each finder on the same image and evaluate it with the same metrics.

    Every finder estimates the image noise itself, as it would in use; ``noise`` only sets
    the true S/N and truth mask of the evaluation. With ``denoise``, the image is denoised
    once and every finder runs on (and is scored on the grid of) the denoised image.

    Parameters
    ----------
    sky : SkyImage
        The image.
    truth : astropy.table.Table
        Its truth catalogue.
    integration : int or None
        Integration time in hours (see :func:`evaluate_finder`).
    finders : sequence of str
        Names in :data:`radioseg_utils.baselines.FINDERS`, run in this order.
    model : path or callable, optional
        U-Net model for ``"unet"`` (default :data:`radioseg_utils.model.files.DEFAULT_MODEL`); a
        model file is read once per process, before the finder's clock starts.
    noise : float, optional
        rms for the evaluation (default ``band.noise(integration)``).
    primary_beam : callable, optional
        Primary beam ``primary_beam(ra, dec)``: finders divide their fluxes by it, the
        evaluation applies it to the true S/N and mask.
    field : str
        Name of the image in the tables.
    finder_options : mapping, optional
        Extra keyword arguments per finder name, e.g. ``{"pybdsf": {"workdir": path}}``.
    true_mask : ndarray of bool, optional
        Binary truth mask; computed once here when None.
    progress : bool
        Show a progress bar over finders.
    denoise : str, optional
        Denoising method before the finders (``"dip"``, see
        :data:`radioseg_utils.inference.denoise.DENOISERS`); None: the image as it is.
    denoise_options : mapping, optional
        Keyword arguments of :func:`radioseg_utils.inference.denoise.denoise_sky`
        (``settings``, ``tile``, ``overlap``, ``cache``, ``progress``).
    **evaluate_options
        Passed to :func:`evaluate_finder` (``radius_arcsec``, ``snr_bins``,
        ``strict_min_snr``, ``pixels``, ``score``, ``train_area``).

    Returns
    -------
    list of Evaluation
        In the order of ``finders``.

    Raises
    ------
    ValueError
        For an unknown finder name or denoising method, or without ``noise`` and
        ``integration``.
    """
    unknown = [name for name in finders if name not in FINDERS]
    if unknown:
        raise ValueError(f"unknown finder(s) {unknown}; expected names in {list(FINDERS)}")
    if noise is None:
        if integration is None:
            raise ValueError("give the noise or the integration time of the image")
        noise = sky.band.noise(integration)
    denoise_s = 0.0
    if denoise is not None:
        sky, record = denoise_sky(sky, denoise, **(denoise_options or {}))
        denoise_s = record.runtime_s
    if true_mask is None and evaluate_options.get("pixels", True):
        true_mask = truth_mask(sky, truth_in_image(truth, sky), noise=noise,
                               primary_beam=primary_beam)
    options = {name: dict((finder_options or {}).get(name, {})) for name in finders}
    if "unet" in finders and "model" not in options["unet"] and model is not None:
        options["unet"]["model"] = model
    evaluations = []
    for name in tqdm(finders, desc="finders", disable=not progress):
        if primary_beam is not None:
            options[name].setdefault("primary_beam", primary_beam)
        result = FINDERS[name](sky, **options[name])
        evaluation = evaluate_finder(
            result, truth, sky, integration=integration, noise=noise, true_mask=true_mask,
            primary_beam=primary_beam, field=field, **evaluate_options)
        evaluations.append(replace(evaluation, denoise=denoise or "",
                                               denoise_s=denoise_s))
    return evaluations


def summary_table(evaluations: Sequence[Evaluation]) -> pd.DataFrame:
    """One row per finder and field: the keys and :data:`SUMMARY_COLUMNS`.

    ``n_true_strict`` counts the true sources of S/N >= ``strict_min_snr`` in the image,
    ``strict_completeness`` the fraction of them found; ``f1`` combines it with the strict
    reliability; ``reliability`` counts a match to any true source as real.
    """
    return pd.DataFrame([e.summary() for e in evaluations], columns=[*_KEYS, *SUMMARY_COLUMNS])


def _bin_label(lo: float, hi: float) -> str:
    return f">{lo:g}" if np.isinf(hi) else f"{lo:g}-{hi:g}"


def comparison_table(evaluations: Sequence[Evaluation]) -> pd.DataFrame:
    """Tidy table: one row per finder, field, band, integration and S/N bin.

    Columns: ``finder``, ``field``, ``band``, ``integration``, ``snr_bin`` (e.g.
    ``"5-10"``, ``">50"``), ``snr_lo``, ``snr_hi``, ``n_true``, ``n_found``,
    ``completeness`` (per bin of true S/N), ``n_pred``, ``bin_reliability`` (per bin of
    measured S/N), then the per-finder :data:`SUMMARY_COLUMNS`, repeated on every bin row.
    """
    frames = []
    for e in evaluations:
        bins = e.bins.rename(columns={"lo": "snr_lo", "hi": "snr_hi",
                                      "reliability": "bin_reliability"})
        bins = bins.drop(columns="n_matched")
        bins.insert(0, "snr_bin", [_bin_label(lo, hi) for lo, hi in zip(bins.snr_lo, bins.snr_hi)])
        summary = e.summary()
        for k, key in enumerate(_KEYS):
            bins.insert(k, key, summary.pop(key))
        frames.append(bins.assign(**summary))
    if not frames:
        return pd.DataFrame(columns=[*_KEYS, "snr_bin"])
    return pd.concat(frames, ignore_index=True)


def write_tables(evaluations: Sequence[Evaluation], folder: str | Path, *,
                 stem: str = "finders") -> dict[str, Path]:
    """Write :func:`comparison_table` and :func:`summary_table` as CSV and ECSV.

    Returns
    -------
    dict
        Paths by kind: ``bins_csv``, ``bins_ecsv``, ``summary_csv``, ``summary_ecsv``
        (``<stem>_bins.csv`` ... in ``folder``, created; existing files are replaced).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, frame in (("bins", comparison_table(evaluations)),
                        ("summary", summary_table(evaluations))):
        paths[f"{kind}_csv"] = folder / f"{stem}_{kind}.csv"
        paths[f"{kind}_ecsv"] = folder / f"{stem}_{kind}.ecsv"
        frame.to_csv(paths[f"{kind}_csv"], index=False)
        Table.from_pandas(frame).write(paths[f"{kind}_ecsv"], format="ascii.ecsv", overwrite=True)
    return paths
