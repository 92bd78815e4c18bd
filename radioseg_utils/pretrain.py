"""The pretrained default model that ``radioseg predict`` uses out of the box.

:func:`train_default_model` reproduces it from nothing: it simulates a training field and a
held-out test field (other seed, other patch of sky), cuts the training field into the
spatially disjoint dataset, trains the U-Net of :data:`DEFAULT_CONFIG` on CPU, evaluates it
on the held-out field only, and writes into ``radioseg_utils/pretrained/``:

- ``unet_B1.keras`` and its sidecar ``unet_B1.json`` (what :func:`radioseg_utils.modelio.load_model`
  checks: band, normalisation, input);
- ``MANIFEST.json``: data (band, integration, field sizes, seeds, sky positions, dataset
  counts), the training configuration, package versions, timings and the held-out scores.

The command is ``radioseg pretrain`` (about 35 minutes on 2 CPU cores).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .paths import generated_dir
from .trainconfig import TrainConfig

__all__ = ["DEFAULT_CONFIG", "PRETRAINED_DIR", "PretrainSettings", "train_default_model"]

logger = logging.getLogger(__name__)

#: Folder of the shipped model, inside the package.
PRETRAINED_DIR: Path = Path(__file__).resolve().parent / "pretrained"


@dataclass(frozen=True)
class PretrainSettings:
    """Data settings of the default model.

    Attributes
    ----------
    band, integration : str, int
        SDC1 band and integration time (h) of the simulated fields.
    train_size, test_size : int
        Sides (px) of the training and held-out test fields.
    tile_size : int
        Side of the training cutouts (px); cutouts do not overlap.
    snr_min, k_sigma : float
        Truth-map selection (peak S/N) and footprint level (in noise rms).
    normalisation : str
        Input normalisation of the model.
    seed : int
        Base seed; the fields get :func:`radioseg_utils.pipeline.field_seed` of it.
    """

    band: str = "B1"
    integration: int = 1000
    train_size: int = 4096
    test_size: int = 2048
    tile_size: int = 128
    snr_min: float = 5.0
    k_sigma: float = 1.0
    normalisation: str = "noise"
    seed: int = 2026


#: Training configuration of the default model (a 3-level, 16-filter U-Net).
DEFAULT_CONFIG = TrainConfig(depth=3, base_filters=16, batch_norm=True, dropout=0.05,
                             loss="bce_dice", learning_rate=1e-3, epochs=14, batch_size=16,
                             patience=4, lr_schedule="plateau", mixed_precision="off",
                             profile="pretrained", normalisation=PretrainSettings.normalisation,
                             tile_size=128, tensorboard=False)


def train_default_model(
    *,
    settings: PretrainSettings = PretrainSettings(),
    config: TrainConfig | None = None,
    work_dir: str | Path | None = None,
    out_dir: str | Path = PRETRAINED_DIR,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Simulate, train, evaluate on held-out data and write the default model.

    Interrupted runs resume: fields, dataset and checkpoints in ``work_dir`` are reused.

    Parameters
    ----------
    settings : PretrainSettings
        Data settings.
    config : TrainConfig, optional
        Training configuration; default :data:`DEFAULT_CONFIG` with ``settings.seed``.
    work_dir : path, optional
        Run folder for fields, dataset and checkpoints (default
        ``generated_dir() / "pretrain"``).
    out_dir : path
        Where the model, its sidecar and ``MANIFEST.json`` go.
    evaluate : bool
        Score the model on the held-out field (recorded in the manifest).

    Returns
    -------
    dict
        The manifest.
    """
    from . import pipeline

    config = (config or DEFAULT_CONFIG).replace(seed=settings.seed, band=settings.band,
                                                integration=settings.integration)
    layout = pipeline.RunLayout.from_parameter(work_dir or generated_dir() / "pretrain")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    train = pipeline.ensure_field(layout, "train", band=settings.band,
                                  integration=settings.integration, size=settings.train_size,
                                  seed=settings.seed)
    test = pipeline.ensure_field(layout, "test", band=settings.band,
                                 integration=settings.integration, size=settings.test_size,
                                 seed=settings.seed)
    timings["simulate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    meta = pipeline.ensure_dataset(layout, train, size=settings.tile_size,
                                   stride=settings.tile_size, snr_min=settings.snr_min,
                                   k_sigma=settings.k_sigma, normalisation=settings.normalisation,
                                   integration=settings.integration, seed=settings.seed)
    timings["dataset_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model_path = pipeline.ensure_model(layout, config)
    timings["train_s"] = time.perf_counter() - t0

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"unet_{settings.band}.keras"
    shutil.copyfile(model_path, target)
    shutil.copyfile(model_path.with_suffix(".json"), target.with_suffix(".json"))
    log = model_path.parent / "log.csv"
    manifest: dict[str, Any] = {
        "model": target.name,
        "command": "radioseg pretrain",
        "settings": asdict(settings),
        "config": config.to_dict(),
        "fields": {name: json.loads(files.image.with_suffix(".json").read_text())
                   for name, files in (("train", train), ("test", test))},
        "dataset": {k: meta[k] for k in ("size", "stride", "normalisation", "splits", "masks")
                    if k in meta},
        "training_log": log.read_text().splitlines() if log.is_file() else [],
        "sidecar": json.loads(target.with_suffix(".json").read_text()),
        # seconds of this invocation; stages found done in work_dir take ~0 s
        "timings_this_run": {k: round(v, 1) for k, v in timings.items()},
    }
    if evaluate:
        t0 = time.perf_counter()
        manifest["held_out_scores"] = _evaluate(target, test, settings)
        manifest["timings_this_run"]["evaluate_s"] = round(time.perf_counter() - t0, 1)
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    logger.info("default model written to %s", target)
    return manifest



def _evaluate(model_path: Path, test, settings: PretrainSettings) -> dict[str, Any]:
    """Scores of the model and of the plain peak finder on the held-out field.

    Also the best pixel F1 that any single global threshold on the raw image reaches
    (chosen on this very field, so an optimistic baseline).
    """
    from .bands import get_band
    from .baselines import run_peaks, run_unet
    from .evaluate import evaluate_finder, truth_mask
    from .pipeline import load_field
    from .threshold import best_f1_threshold

    sky, truth = load_field(test)
    noise = get_band(settings.band).noise(settings.integration)
    mask = truth_mask(sky, truth, noise=noise, snr_min=settings.snr_min, k_sigma=settings.k_sigma)
    scores: dict[str, Any] = {"field": "test (held out)", "integration": settings.integration}
    for name, finder in (("unet", lambda: run_unet(sky, model=model_path)),
                         ("peaks", lambda: run_peaks(sky))):
        ev = evaluate_finder(finder(), truth, sky, integration=settings.integration,
                             true_mask=mask, field="test")
        row = {k: v for k, v in ev.summary().items() if isinstance(v, (int, float, str))}
        row["completeness_by_snr"] = {f"{lo:g}-{hi:g}": float(c) for lo, hi, c in
                                      zip(ev.bins["lo"], ev.bins["hi"], ev.bins["completeness"])}
        scores[name] = row
    scores["raw_image_best_threshold_pixel_f1"] = float(best_f1_threshold(sky.data, mask).best.f1)
    return scores
