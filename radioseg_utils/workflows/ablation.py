"""Ablation of the levers against the poster's weaknesses: what each one buys.

The poster's U-Net took min-max-scaled cutouts, predicted a mask, cut it with Yen's
threshold and counted connected components; it produced many false positives and missed
faint sources in cutouts with a wide surface-brightness range. Each :class:`Variant` here
changes one lever from that chain:

* the input normalisation (min-max, log, histogram equalisation, asinh, noise-normalised);
* the threshold (Yen or the cross-entropy decision boundary p > 0.5);
* splitting blends (watershed on image peaks, or the learned centre head);
* test-time augmentation (:mod:`radioseg_utils.data.augment`).

:func:`train_ablation` trains every distinct model once, on the same simulated B1 1000 h
training set (the main field of :mod:`radioseg_utils.workflows.pretrain`, same seed, same cutouts),
with the same small U-Net and epochs, tunes the centre threshold of the centre-head model
on the validation field, and saves the models with a manifest (``radioseg ablation``).
:func:`evaluate_ablation` scores every variant on the held-out test field, with the same
matching and metrics as every other finder (:func:`radioseg_utils.evaluation.evaluate.evaluate_finder`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from radioseg_utils.core.paths import PROJECT_ROOT, generated_dir
from radioseg_utils.model.config import TrainConfig
from radioseg_utils.model.files import read_sidecar, write_sidecar

__all__ = ["Variant", "VARIANTS", "ABLATION_CONFIG", "ABLATION_DIR", "model_key",
           "train_ablation", "evaluate_ablation"]

logger = logging.getLogger(__name__)

#: Folder of the saved ablation models (committed with the project, small).
ABLATION_DIR: Path = PROJECT_ROOT / "data" / "ablation"


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: a model (normalisation, loss, head) and an inference chain.

    Attributes
    ----------
    name, description : str
        Short label and what changes.
    normalisation, loss : str
        Input normalisation and mask loss of the trained model.
    centre_head : bool
        The model has a centre head, whose peaks are the detections.
    threshold : str
        Mask threshold method (:class:`radioseg_utils.inference.config.PredictConfig`).
    split_blends : bool
        Split components at image peaks (mask-only models).
    tta : bool
        Test-time augmentation.
    """

    name: str
    description: str
    normalisation: str = "noise"
    loss: str = "bce_dice"
    centre_head: bool = False
    threshold: str = "fixed"
    split_blends: bool = False
    tta: bool = False


#: The variants, from the poster's chain to ours.
VARIANTS: tuple[Variant, ...] = (
    Variant("poster", "min-max input, mask, Yen threshold (the poster's chain)",
            normalisation="minmax", threshold="yen"),
    Variant("minmax", "min-max input, mask, p > 0.5", normalisation="minmax"),
    Variant("log", "log input", normalisation="log"),
    Variant("histeq", "histogram-equalised input", normalisation="histeq"),
    Variant("asinh", "asinh input", normalisation="asinh"),
    Variant("noise", "noise-normalised input (S/N units)"),
    Variant("asinh_split", "asinh input, blends split at image peaks", normalisation="asinh",
            split_blends=True),
    Variant("centre", "asinh input, learned centre head (the shipped design)",
            normalisation="asinh", centre_head=True),
    Variant("centre_tta", "centre head + test-time augmentation", normalisation="asinh",
            centre_head=True, tta=True),
)

#: Architecture and schedule shared by every ablation model (small, to train all on CPU).
ABLATION_CONFIG = TrainConfig(depth=3, base_filters=8, batch_norm=True, dropout=0.05,
                              learning_rate=1e-3, epochs=4, batch_size=16, patience=3,
                              lr_schedule="plateau", mixed_precision="off",
                              profile="ablation", tile_size=128, tensorboard=False)


def model_key(variant: Variant) -> str:
    """Name of the trained model a variant uses (variants differing at inference share one)."""
    return f"{variant.normalisation}_{variant.loss}" + ("_centre" if variant.centre_head else "")


def _models(variants: tuple[Variant, ...]) -> dict[str, Variant]:
    return {model_key(v): v for v in variants}


def train_ablation(
    *,
    variants: tuple[Variant, ...] = VARIANTS,
    config: TrainConfig = ABLATION_CONFIG,
    work_dir: str | Path | None = None,
    out_dir: str | Path = ABLATION_DIR,
    settings=None,
) -> dict[str, Any]:
    """Train every distinct model of ``variants`` on the default model's main training set.

    Fields and the main dataset come from :func:`radioseg_utils.workflows.pretrain.prepare`'s run
    folder layout (made if missing, reused if there); the centre threshold of centre-head
    models is tuned on the validation field. Models, sidecars and ``MANIFEST.json`` are
    written to ``out_dir``.

    Returns
    -------
    dict
        The manifest (settings, config, per-model training logs, timings, thresholds).
    """
    from radioseg_utils.workflows import pipeline
    from radioseg_utils.workflows.pretrain import (
        PretrainSettings,
        field_name,
        tune_centre_threshold,
    )

    settings = settings or PretrainSettings()
    band, hours, size = settings.fields[0]
    layout = pipeline.RunLayout.from_parameter(work_dir or generated_dir() / "pretrain")
    train = pipeline.ensure_field(layout, field_name(band, hours, 0), band=band,
                                  integration=hours, size=size, seed=settings.seed)
    val = pipeline.ensure_field(layout, "val", band=band, integration=hours,
                                size=settings.val_size, seed=settings.seed)
    pipeline.ensure_dataset(layout, train, size=settings.tile_size, stride=settings.tile_size,
                            snr_min=settings.snr_min, k_sigma=settings.k_sigma,
                            normalisation=settings.normalisation, integration=hours,
                            seed=settings.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"command": "radioseg ablation", "settings": asdict(settings),
                                "config": config.to_dict(), "models": {}}
    for key, variant in _models(variants).items():
        t0 = time.perf_counter()
        cfg = config.replace(normalisation=variant.normalisation, loss=variant.loss,
                             centre_head=variant.centre_head, seed=settings.seed, band=band,
                             integration=hours)
        path = pipeline.ensure_model(layout, cfg, name=f"ablation_{key}")
        record: dict[str, Any] = {"train_s": round(time.perf_counter() - t0, 1)}
        sidecar = read_sidecar(path)
        if variant.centre_head:
            sky, truth = pipeline.load_field(val)
            record["centre_threshold"], record["trials"] = tune_centre_threshold(
                path, sky, truth, integration=hours)
            sidecar["centre_threshold"] = record["centre_threshold"]
        target = out_dir / f"{key}.keras"
        shutil.copyfile(path, target)
        write_sidecar(target, sidecar)
        log = path.parent / "log.csv"
        record["training_log"] = log.read_text().splitlines() if log.is_file() else []
        manifest["models"][key] = record
        logger.info("ablation model %s ready (%s)", key, record["train_s"])
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


def evaluate_ablation(
    sky,
    truth,
    *,
    integration: int,
    variants: tuple[Variant, ...] = VARIANTS,
    models_dir: str | Path = ABLATION_DIR,
    extra: dict[str, Any] | None = None,
    primary_beam=None,
    progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score every variant on a held-out field: one row per variant.

    Parameters
    ----------
    sky, truth
        The held-out field (:class:`~radioseg_utils.io.fits_read.SkyImage`) and its truth.
    integration : int
        Integration time (h) of the field (sets the noise of the true S/N).
    variants : tuple of Variant
        Rows to compute; their models must be in ``models_dir``.
    models_dir : path
        Folder written by :func:`train_ablation`.
    extra : dict, optional
        More finders to put in the table, name to a callable ``sky -> FinderResult`` (e.g.
        the shipped model, the plain peak finder; give them the same ``primary_beam``).
    primary_beam : callable, optional
        Flux gain every variant divides by (e.g. ``Attenuation(None, FLUX_SCALE)`` of
        :mod:`radioseg_utils.simulation.simulate` for a simulated field), also used for the truth.
    progress : bool
        Show a progress bar over the rows.

    Returns
    -------
    table : pandas.DataFrame
        ``variant``, ``description``, detections, completeness per true-S/N bin
        (``c_<lo>-<hi>``), ``strict_completeness``, ``strict_reliability``, ``sdc1_score``,
        the field's physical ceiling and the score's fraction of it
        (:data:`~radioseg_utils.evaluation.ceiling.CEILING_COLUMNS`, computed once),
        ``flux_ratio``, ``runtime_s``.
    evaluations : dict
        Variant name to its :class:`~radioseg_utils.evaluation.evaluate.Evaluation`.

    Raises
    ------
    FileNotFoundError
        If a variant's model is not in ``models_dir`` (run ``radioseg ablation``).
    """
    from tqdm.auto import tqdm

    from radioseg_utils.baselines import run_unet
    from radioseg_utils.evaluation.ceiling import field_ceiling
    from radioseg_utils.evaluation.evaluate import evaluate_finder
    from radioseg_utils.inference.config import PredictConfig

    models_dir = Path(models_dir)
    runs: dict[str, tuple[str, Any]] = {}
    for v in variants:
        path = models_dir / f"{model_key(v)}.keras"
        if not path.is_file():
            raise FileNotFoundError(f"ablation model {path} not found: run `radioseg ablation`")
        config = PredictConfig(threshold=v.threshold, split_blends=v.split_blends, tta=v.tta)
        runs[v.name] = (v.description, lambda sky, p=path, c=config: run_unet(
            sky, model=p, config=c, primary_beam=primary_beam))
    for name, finder in (extra or {}).items():
        runs[name] = ("", finder)
    ceiling = field_ceiling(truth, sky, integration=integration, primary_beam=primary_beam)
    rows, evaluations = [], {}
    for name, (description, finder) in tqdm(runs.items(), desc="ablation", disable=not progress):
        ev = evaluations[name] = evaluate_finder(finder(sky), truth, sky, integration=integration,
                                                 pixels=False, primary_beam=primary_beam)
        row = {"variant": name, "description": description,
               "detections": len(ev.result.catalogue)}
        row.update({f"c_{lo:g}-{hi:g}": c for lo, hi, c in
                    zip(ev.bins["lo"], ev.bins["hi"], ev.bins["completeness"])})
        summary = ev.summary()
        row.update({k: summary[k] for k in ("strict_completeness", "strict_reliability",
                                             "sdc1_score")})
        row.update(ceiling.columns(summary["sdc1_score"]))
        row.update({k: summary[k] for k in ("flux_ratio", "runtime_s")})
        rows.append(row)
    return pd.DataFrame(rows), evaluations
