"""Choosing between trained models on the validation fields, never the test field.

A new model replaces the shipped one only if it finds more on data that neither was
trained on, and the choice must not touch the test field that later scores it.
:func:`compare_on_validation` gives every model the same treatment on every validation
field: its centre threshold is tuned there (the lowest level whose strict reliability
reaches :data:`~radioseg_utils.workflows.pretrain.TARGET_RELIABILITY`, on the coarse grid
of :func:`radioseg_utils.workflows.pretrain.tune_centre_threshold` refined to
:data:`REFINE_STEP` below the chosen level, :func:`refined_levels`), so the models compare
at equal reliability (the completeness at exactly that reliability is read between the two
tried thresholds that bracket it, :func:`completeness_at_target`). The completeness of the
sources beside a brighter one (1.5-3", the class where learning pays, see
:mod:`radioseg_utils.evaluation.crowding`) and the true sources that one model finds and
the other misses, for the paired test of :func:`validation_verdict`, are counted with the
incumbent at its tuned level and the challenger at the stricter of the two tuned
reliabilities, so that what is left of the grid's step falls against the challenger. On
the coarse grid alone either symmetric count could be won by the step: of two CPU
continuations, each a tie in the pooled count, one read 160 against 90 discordant sources
with both models at their own tuned levels, the other 244 against 37 with both at the
stricter reliability (``benchmarks/results/cpu_pairs``, ``cpu_continued``). Sizes and
fluxes are not calibrated here, as a new model has no calibration yet; matching is by
position only. The verdict chooses between model files, not recipes: the paired test
counts sources, and a second random start of one recipe on the same machine beat the first
by it (p = 0.005, ``benchmarks/results/cpu_scratch_seed1``), so whether a recipe is better
needs several starts of each (:func:`found_by_field` sets them side by side).

:func:`comparison_by_field`, :func:`found_by_field`, :func:`verdict_line` and
:func:`training_history` read what such a comparison and the training stages of a model
left behind (the committed records in ``benchmarks/results/``, chapter 5 of the book).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from radioseg_utils.evaluation.metrics import STRICT_MIN_SNR
from radioseg_utils.workflows.pretrain import (
    TARGET_RELIABILITY,
    THRESHOLD_GRID,
    TRAINED_RECORD,
    chosen_threshold,
)

__all__ = ["COMPARED_CLASSES", "REFINE_STEP", "VERDICT_ALPHA", "compare_models",
           "compare_on_validation", "comparison_by_field", "completeness_at_target",
           "found_by_field", "refined_levels", "training_history",
           "validation_verdict", "verdict_line"]

#: ``(neighbour class, S/N low, S/N high)`` of the completeness columns of
#: :func:`compare_on_validation`.
COMPARED_CLASSES: tuple[tuple[str, float, float], ...] = (
    ("isolated", 5.0, 10.0), ("1.5-3arcsec", 5.0, 10.0), ("1.5-3arcsec", 10.0, np.inf),
)

#: Step of the centre thresholds that :func:`refined_levels` adds below the level chosen
#: on the coarse grid: a step of it moves the strict reliability by about 0.2 % on the
#: B1 1000 h validation field, a step of the grid's 0.05 by about 1 %.
REFINE_STEP: float = 0.01

#: Level of the paired test of :func:`validation_verdict`.
VERDICT_ALPHA: float = 0.05


def _column(kind: str, name: str, lo: float, hi: float) -> str:
    """``<kind>_<class>_snr<lo>-<hi>``: the ``completeness`` or ``n`` column of a class."""
    return f"{kind}_{name}_snr{lo:g}-{'' if np.isinf(hi) else f'{hi:g}'}"


def completeness_at_target(trials: list[dict], target: float = TARGET_RELIABILITY) -> float:
    """Strict completeness at exactly ``target`` strict reliability, between tried thresholds.

    The centre thresholds are tried on a grid, so the completeness of the tuned one jumps
    with where the grid happens to cross the target; the line between the two trials that
    bracket it gives a figure of merit without those jumps.

    Parameters
    ----------
    trials : list of dict
        ``threshold``, ``strict_completeness``, ``strict_reliability`` of each level
        (:func:`radioseg_utils.workflows.pretrain.tune_centre_threshold`).
    target : float
        Strict reliability.

    Returns
    -------
    float
        The interpolated completeness; that of the lowest threshold if even it is above the
        target; NaN if no threshold reaches it.

    Examples
    --------
    >>> completeness_at_target([
    ...     {"threshold": 0.3, "strict_completeness": 0.8, "strict_reliability": 0.94},
    ...     {"threshold": 0.4, "strict_completeness": 0.7, "strict_reliability": 0.98}], 0.96)
    0.75
    """
    rows = sorted(trials, key=lambda t: t["threshold"])
    for low, high in zip(rows[:-1], rows[1:]):
        if low["strict_reliability"] < target <= high["strict_reliability"]:
            w = ((target - low["strict_reliability"])
                 / (high["strict_reliability"] - low["strict_reliability"]))
            return float(round(low["strict_completeness"]
                               + w * (high["strict_completeness"] - low["strict_completeness"]), 12))
    if rows and rows[0]["strict_reliability"] >= target:
        return float(rows[0]["strict_completeness"])
    return float("nan")


def compare_on_validation(models: Mapping[str, str | Path], fields: Mapping, *,
                          incumbent: str, tta: Collection[str] = (),
                          progress: bool = True) -> pd.DataFrame:
    """Each model on each validation field at its own tuned centre threshold.

    Every model runs once per field (:class:`radioseg_utils.workflows.pretrain.LevelScan`)
    and is decoded at the levels of the threshold grid, then at :data:`REFINE_STEP` steps
    below the level chosen for the target reliability (:func:`refined_levels`), so that the
    tuned level lies within a fine step of the target. The counts of sources (those found,
    the classes, those no other model finds) are taken with ``incumbent`` at its tuned level
    and every other model at its lowest level reaching the highest of the models' tuned
    strict reliabilities on that field (refined there too). Whichever way a step falls, it
    falls against the challenger: at the incumbent's tuned level a laxer incumbent keeps
    what its laxity finds, and a laxer challenger is raised to the incumbent's reliability
    and loses what the step below would have found. A model that wins so wins by more than
    a step.

    Parameters
    ----------
    models : mapping of str to path
        Name and ``.keras`` file (with sidecar) of each model.
    fields : mapping of str to FieldFiles
        Validation fields (:class:`radioseg_utils.workflows.pipeline.FieldFiles`), by
        name; a field named ``"test"`` is refused.
    incumbent : str
        The name of the model the others must beat.
    tta : collection of str
        Names of the models run with test-time augmentation (``tta`` of
        :class:`radioseg_utils.workflows.pretrain.LevelScan`); one file can so be compared
        with and without it.
    progress : bool
        Show a progress bar over the fields.

    Returns
    -------
    pandas.DataFrame
        One row per model and field: ``model``, ``field``, ``band``, ``integration``,
        ``threshold``, ``detections``, ``strict_completeness``, ``strict_reliability``
        (at the tuned level), ``completeness_at_target`` (:func:`completeness_at_target`
        of all the levels tried), ``levels`` (how many), ``paired_threshold`` and
        ``paired_reliability`` (the level of the counts), and at that level
        ``strict_found`` and ``strict_true`` (true sources found, and all, above the strict
        S/N), ``strict_found_alone`` (of those found, the ones every other model missed)
        and ``n_`` / ``completeness_`` columns of each class of :data:`COMPARED_CLASSES`.

    Raises
    ------
    ValueError
        If the test field is among ``fields``, or ``incumbent`` or a name in ``tta`` is
        not among ``models``.
    """
    from radioseg_utils.workflows.pipeline import load_field
    from radioseg_utils.workflows.pretrain import LevelScan

    if "test" in fields:
        raise ValueError("the test field cannot choose a model: compare on validation fields")
    if incumbent not in models:
        raise ValueError(f"incumbent {incumbent!r} is not one of the models {sorted(models)}")
    if set(tta) - set(models):
        raise ValueError(f"tta names {sorted(set(tta) - set(models))}, not among the models "
                         f"{sorted(models)}")
    bins = sorted({b for _, lo, hi in COMPARED_CLASSES for b in (lo, hi)})
    rows = []
    for field, files in tqdm(fields.items(), desc="validation fields", unit="field",
                             disable=not progress):
        sky, truth = load_field(files)
        hours = int(files.saved_parameters()["integration"])
        decode, runs, tuned = {}, {}, {}
        for name, path in models.items():
            scan = LevelScan(path, sky, truth, integration=hours, tta=name in tta)
            decode[name] = _counted_levels(scan, truth, sky, bins)
            runs[name] = refined_levels(decode[name], TARGET_RELIABILITY)
            tuned[name] = _level_at(runs[name], TARGET_RELIABILITY)[0]
        floor = max(t["strict_reliability"] for t in tuned.values())
        for name in models:
            if name != incumbent:
                runs[name] = refined_levels(decode[name], floor, runs[name])
        paired = {name: _level_at(runs[name], TARGET_RELIABILITY if name == incumbent
                                  else floor) for name in models}
        for name, (trial, (counts, found)) in paired.items():
            others = [hit for other, (_, (_, hit)) in paired.items() if other != name]
            rows.append({"model": name, "field": field, "band": sky.band.name,
                         "integration": hours, **tuned[name],
                         "completeness_at_target": completeness_at_target(
                             [t for t, _ in runs[name]]),
                         "levels": len(runs[name]),
                         "paired_threshold": trial["threshold"],
                         "paired_reliability": trial["strict_reliability"], **counts,
                         "strict_found_alone": int(np.sum(found & ~np.any(others, axis=0)))})
    return pd.DataFrame(rows)


def refined_levels(at: Callable[[float], tuple[dict, Any]], target: float,
                   runs: list[tuple[dict, Any]] | None = None, *,
                   grid: tuple[float, ...] = THRESHOLD_GRID,
                   step: float = REFINE_STEP) -> list[tuple[dict, Any]]:
    """The levels of a model on a field, refined near the one chosen for ``target``.

    Parameters
    ----------
    at : callable
        ``at(threshold) -> (trial, result)``: one level (a trial as
        :meth:`radioseg_utils.workflows.pretrain.LevelScan.at` gives).
    target : float
        Strict reliability.
    runs : list of (trial, result), optional
        Levels already tried (default: none; then every level of ``grid`` is tried).
    grid, step
        The coarse levels, and the step of the refinement.

    Returns
    -------
    list of (trial, result)
        ``runs`` (or the grid's levels) and the levels ``step`` apart between the one
        :func:`radioseg_utils.workflows.pretrain.chosen_threshold` picks for ``target``
        and the highest tried level below it, sorted by threshold; unchanged if no level
        reaches ``target`` or the lowest does.

    Examples
    --------
    >>> def at(t):  # reliability rising with the threshold
    ...     return {"threshold": t, "strict_reliability": 0.8 + 0.4 * t}, None
    >>> [t["threshold"] for t, _ in refined_levels(at, 0.95, grid=(0.3, 0.35, 0.4))]
    [0.3, 0.35, 0.36, 0.37, 0.38, 0.39, 0.4]
    """
    runs = sorted(runs or [at(value) for value in grid], key=lambda run: run[0]["threshold"])
    trials = [trial for trial, _ in runs]
    if not any(t["strict_reliability"] >= target for t in trials):
        return runs
    chosen = chosen_threshold(trials, target)
    below = [t["threshold"] for t in trials if t["threshold"] < chosen]
    if not below:
        return runs
    tried = {t["threshold"] for t in trials}
    low = max(below)
    new = [at(float(value)) for value in np.round(np.arange(low + step, chosen - step / 2, step), 6)
           if float(value) not in tried]
    return sorted(runs + new, key=lambda run: run[0]["threshold"])


def _counted_levels(scan, truth, sky, bins: list[float]) -> Callable[[float], tuple[dict, Any]]:
    """``at(threshold) -> (trial, (counts, found))``: a level of ``scan``
    (:class:`radioseg_utils.workflows.pretrain.LevelScan`) as :func:`_level_counts` keeps it."""

    def at(value: float) -> tuple[dict, Any]:
        trial, ev = scan.at(value)
        return trial, _level_counts(ev, truth, sky, bins)

    return at


def _level_counts(ev, truth, sky, bins: list[float]) -> tuple[dict, np.ndarray]:
    """What a comparison keeps of one level's evaluation (not its label map): the counts
    of the table's columns, and which true sources above the strict S/N it found."""
    from radioseg_utils.evaluation.crowding import class_bin_completeness

    counts = {"strict_found": ev.strict.tp, "strict_true": ev.strict.tp + ev.strict.fn}
    table = class_bin_completeness(ev, truth, sky, snr_bins=bins)
    for cls, lo, hi in COMPARED_CLASSES:
        cell = table[(table.neighbour_class == cls) & (table.snr_lo == lo)
                     & (table.snr_hi == hi)].iloc[0]
        counts[_column("n", cls, lo, hi)] = int(cell.n_true)
        counts[_column("completeness", cls, lo, hi)] = float(cell.completeness)
    found = ev.match.true_found() & (np.asarray(ev.true_snr, float) >= STRICT_MIN_SNR)
    return counts, found


def _level_at(runs: list[tuple[dict, Any]], target: float) -> tuple[dict, Any]:
    """The ``(trial, counts)`` of the level that
    :func:`radioseg_utils.workflows.pretrain.chosen_threshold` picks for ``target``:
    the tuned level (the target reliability), or where a challenger is counted (the
    stricter of the tuned reliabilities)."""
    value = chosen_threshold([trial for trial, _ in runs], target)
    return next(run for run in runs if run[0]["threshold"] == value)


def found_by_field(table: pd.DataFrame, model: str) -> pd.Series:
    """True sources ``model`` finds on each field at exactly the target reliability.

    Each model's threshold is tuned on its own, so this count does not depend on the model
    it was compared with: the starts of one recipe can be set side by side from several
    comparisons.

    Parameters
    ----------
    table : pandas.DataFrame
        The rows of :func:`compare_on_validation` (a comparison record's ``table``).
    model : str
        ``model`` column of the rows to count (``"candidate"``, ``"incumbent"``).

    Returns
    -------
    pandas.Series
        ``completeness_at_target`` times ``strict_true``, indexed by field (NaN where no
        tried threshold reached the target).

    Examples
    --------
    >>> rows = pd.DataFrame({"model": ["a", "b"], "field": ["val", "val"],
    ...                      "completeness_at_target": [0.5, 0.25], "strict_true": [10, 10]})
    >>> found_by_field(rows, "b").to_dict()
    {'val': 2.5}
    """
    part = table[table.model == model]
    if part.empty:
        raise ValueError(f"no rows of model {model!r} in the table")
    return (part.completeness_at_target * part.strict_true).set_axis(part.field).rename(model)


def validation_verdict(table: pd.DataFrame, candidate: str, incumbent: str, *,
                       alpha: float = VERDICT_ALPHA) -> dict:
    """Whether ``candidate`` beats ``incumbent`` on the fields of :func:`compare_on_validation`.

    The candidate wins if, pooled over the fields (sources counted, not fields averaged),
    it finds more true sources at exactly the target reliability
    (``completeness_at_target`` times ``strict_true``), no fewer in the 1.5-3" class at
    S/N 5-10, and if the sources that only one of the two finds (``strict_found_alone``:
    the same true sources) fall to it more often than chance allows, by a one-sided exact
    McNemar test at level ``alpha``; the class and the paired counts are those at
    ``paired_threshold`` (the incumbent at its tuned level, the candidate at the stricter
    of the two tuned reliabilities). A handful of sources more is no reason to replace a
    model.

    Returns
    -------
    dict
        ``better`` (bool), ``p_value`` of the paired test, and the pooled ``found``,
        ``found_1.5-3arcsec_snr5-10`` and ``found_alone`` of both models.
    """
    from scipy.stats import binomtest

    pooled = {}
    key, n_key = (_column(kind, "1.5-3arcsec", 5.0, 10.0) for kind in ("completeness", "n"))
    for name in (candidate, incumbent):
        part = table[table.model == name]
        pooled[name] = {
            "found": float(round(np.nansum(found_by_field(table, name)), 1)),
            "found_1.5-3arcsec_snr5-10": int(round(np.nansum(part[key] * part[n_key]))),
            "found_alone": int(part.strict_found_alone.sum()),
        }
    new, old = pooled[candidate], pooled[incumbent]
    discordant = new["found_alone"] + old["found_alone"]
    p_value = (binomtest(new["found_alone"], discordant, 0.5, alternative="greater").pvalue
               if discordant else 1.0)
    better = (new["found"] > old["found"]
              and new["found_1.5-3arcsec_snr5-10"] >= old["found_1.5-3arcsec_snr5-10"]
              and p_value < alpha)
    return {"better": bool(better), "p_value": float(p_value), candidate: new, incumbent: old}


def compare_models(candidate: str | Path, incumbent: str | Path | None = None, *,
                   candidate_tta: bool = False, settings=None,
                   work_dir: str | Path | None = None, n_workers: int = 1) -> dict[str, Any]:
    """:func:`compare_on_validation` of two model files on a recipe's validation fields.

    Parameters
    ----------
    candidate : path
        The new model (e.g. the ``model.keras`` of ``radioseg pretrain --until train``).
    incumbent : path, optional
        The model it would replace (default: the shipped ``unet_<band>.keras``).
    candidate_tta : bool
        Run the candidate with test-time augmentation (the incumbent runs without): with
        ``candidate`` the incumbent's own file, what the augmentation buys.
    settings : PretrainSettings, optional
        The recipe's data settings (default :class:`PretrainSettings`, whose validation
        fields every recipe shares): its validation fields are simulated into ``work_dir``
        unless they are there.
    work_dir : path, optional
        Run folder of the fields (default ``generated_dir() / "pretrain"``).
    n_workers : int
        Processes for simulating fields.

    Returns
    -------
    dict
        ``candidate``, ``incumbent`` (file names), ``candidate_tta``, ``verdict``
        (:func:`validation_verdict`) and ``table`` (the rows, as records).

    Raises
    ------
    FileNotFoundError
        If a model file is missing.
    """
    from radioseg_utils.core.paths import PRETRAINED_DIR, generated_dir
    from radioseg_utils.workflows import pipeline
    from radioseg_utils.workflows.pretrain import (
        PretrainSettings,
        held_out_fields,
        validation_fields,
    )

    settings = settings or PretrainSettings()
    incumbent = Path(incumbent or PRETRAINED_DIR / f"unet_{settings.band}.keras")
    models = {"candidate": Path(candidate), "incumbent": incumbent}
    for path in models.values():
        if not path.is_file():
            raise FileNotFoundError(f"model {path} not found")
    layout = pipeline.RunLayout.from_parameter(work_dir or generated_dir() / "pretrain")
    fields = validation_fields(held_out_fields(settings, layout, n_workers=n_workers))
    table = compare_on_validation(models, fields, incumbent="incumbent",
                                  tta=("candidate",) if candidate_tta else ())
    return {"candidate": models["candidate"].name, "incumbent": incumbent.name,
            "candidate_tta": candidate_tta,
            "verdict": validation_verdict(table, "candidate", "incumbent"),
            "table": table.to_dict("records")}


def comparison_by_field(info: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of a :func:`compare_models` result side by side, one line per field.

    Parameters
    ----------
    info : mapping
        What :func:`compare_models` returned (or its JSON, as ``radioseg pretrain --compare``
        prints it).

    Returns
    -------
    pandas.DataFrame
        Indexed by field; columns ``(quantity, model)`` for ``threshold``,
        ``completeness_at_target``, ``paired_threshold`` (records made before it: the
        tuned one), the 1.5-3" class at S/N 5-10 and ``strict_found_alone``, with
        ``strict_true`` and that class's ``n_`` once.
    """
    table = pd.DataFrame(info["table"])
    if "paired_threshold" not in table:  # counted at the tuned levels then
        table["paired_threshold"] = table.threshold
    pair = _column("completeness", "1.5-3arcsec", 5.0, 10.0)
    quantities = ["threshold", "completeness_at_target", "paired_threshold", pair,
                  "strict_found_alone"]
    side = table.pivot(index="field", columns="model", values=quantities)
    side = side.reindex(columns=["candidate", "incumbent"], level=1)
    counts = table[table.model == "incumbent"].set_index("field")[
        ["band", "integration", "strict_true", _column("n", "1.5-3arcsec", 5.0, 10.0)]]
    counts.columns = pd.MultiIndex.from_product([counts.columns, [""]])
    return counts.join(side).loc[list(dict.fromkeys(table.field))]


def training_history(stages: list[str | Path]) -> pd.DataFrame:
    """The epochs of a model trained in stages (say on a GPU, then further on a CPU), in order.

    Parameters
    ----------
    stages : list of path
        Folders written by ``radioseg pretrain --until train``, first stage first: each
        holds the Keras ``log.csv`` and the record ``TRAINED.json``. A stage after the first
        must have started from weights (``init_weights_sha256``).

    Returns
    -------
    pandas.DataFrame
        The ``log.csv`` rows with ``epoch`` counted on across the stages (from 1),
        ``stage`` (its number, from 1), ``device`` (the accelerator, or ``CPU``) and
        ``best`` (the epoch whose weights the stage kept).

    Raises
    ------
    ValueError
        If a later stage does not say it continued from weights.
    """
    parts, start = [], 0
    for number, folder in enumerate(map(Path, stages), start=1):
        record = json.loads((folder / TRAINED_RECORD).read_text())
        if number > 1 and not record.get("init_weights_sha256"):
            raise ValueError(f"{folder / TRAINED_RECORD} does not start from the weights of an "
                             "earlier stage (no init_weights_sha256)")
        log = pd.read_csv(folder / "log.csv")
        log["best"] = log.epoch == record["best_epoch"]
        log["epoch"] = log.epoch + start + 1
        log["stage"] = number
        log["device"] = record.get("accelerator") or record["device"]
        parts.append(log)
        start += len(log)
    return pd.concat(parts, ignore_index=True)


def verdict_line(info: Mapping[str, Any]) -> str:
    """One sentence of what a :func:`compare_models` result decided, and on which counts.

    Examples
    --------
    >>> verdict_line({"candidate": "new.keras", "incumbent": "unet_B1.keras", "verdict": {
    ...     "better": False, "p_value": 0.17,
    ...     "candidate": {"found": 1004.0, "found_1.5-3arcsec_snr5-10": 50, "found_alone": 7},
    ...     "incumbent": {"found": 1000.0, "found_1.5-3arcsec_snr5-10": 50, "found_alone": 3}}})
    'new.keras does not beat unet_B1.keras on the validation fields: 1004.0 against 1000.0 true sources found at 96 % strict reliability, 50 against 50 1.5-3" from a brighter one at S/N 5-10, 7 against 3 found by one model only (paired p = 0.17)'
    """
    verdict = info["verdict"]
    new, old = verdict["candidate"], verdict["incumbent"]
    name = info["candidate"] + (" with test-time augmentation" if info.get("candidate_tta")
                                else "")
    return (f"{name} {'beats' if verdict['better'] else 'does not beat'} "
            f"{info['incumbent']} on the validation fields: {new['found']:.1f} against "
            f"{old['found']:.1f} true sources found at {TARGET_RELIABILITY * 100:g} % strict "
            f"reliability, {new['found_1.5-3arcsec_snr5-10']} against "
            f"{old['found_1.5-3arcsec_snr5-10']} 1.5-3\" from a brighter one at S/N 5-10, "
            f"{new['found_alone']} against {old['found_alone']} found by one model only "
            f"(paired p = {verdict['p_value']:.2g})")
