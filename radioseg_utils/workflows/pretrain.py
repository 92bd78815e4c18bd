"""The pretrained default model that ``radioseg predict`` uses out of the box.

:func:`train_default_model` reproduces it from nothing: it simulates the training fields of
:data:`TRAIN_FIELDS` (B1 at the three integrations, B2 and B5, each on its own patch of sky
with its own seed), validation fields (one per band and integration) and a held-out test
field (B1 1000 h, other seeds, other patches), cuts every training field into the spatially
disjoint dataset, trains the U-Net with a centre head of :data:`DEFAULT_CONFIG` on CPU,
chooses the centre threshold of each band and integration on its validation field
(:func:`tune_centre_thresholds`), fits the size and flux calibration on the training and
validation fields (:func:`calibrate_model`), evaluates on the test field only, and writes
into ``radioseg_utils/pretrained/``:

- ``unet_B1.keras`` and its sidecar ``unet_B1.json`` (what :func:`radioseg_utils.model.files.load_model`
  checks: bands, normalisation, input; the tuned ``centre_threshold``; the name of the
  calibration file);
- ``unet_B1.calibration.npz``: the size and flux corrections of
  :mod:`radioseg_utils.postprocess.calibrate`, fitted on the model's detections in the training and
  validation fields (:func:`calibrate_model`);
- ``MANIFEST.json``: data (bands, integrations, field sizes, seeds, sky positions, dataset
  counts), the training configuration, package versions, timings and the held-out scores.

The command is ``radioseg pretrain`` (about 50 minutes on 2 CPU cores).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from radioseg_utils.core.paths import PRETRAINED_DIR, generated_dir
from radioseg_utils.inference.tiling import call_model
from radioseg_utils.model.config import TrainConfig
from radioseg_utils.model.files import read_sidecar, write_sidecar

__all__ = ["DEFAULT_CONFIG", "PRETRAINED_DIR", "TRAIN_FIELDS", "VALIDATION_FIELDS", "THRESHOLD_GRID",
           "TARGET_RELIABILITY", "PretrainSettings", "train_default_model",
           "tune_centre_threshold", "tune_centre_thresholds", "calibrate_model", "calibration_path", "field_name",
           "validation_name", "prepare"]

logger = logging.getLogger(__name__)

#: Training fields of the default model: (band, integration in h, side in px). The first
#: is the main one (B1 1000 h, the band and depth of the real cutout); the others teach the
#: model other noise levels, source densities and pixel scales.
TRAIN_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("B1", 1000, 4096), ("B1", 100, 2048), ("B1", 8, 1536), ("B2", 1000, 2048),
    ("B5", 1000, 1024),
)
#: Further validation fields, (band, integration in h, side in px): one per band and
#: integration besides the main one (``"val"``, the band and integration of the first
#: training field), on which the centre threshold of that band and depth is tuned. B5
#: fields cover 0.037" pixels and need more of them to hold enough sources.
VALIDATION_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("B1", 100, 1024), ("B1", 8, 1536), ("B2", 1000, 1024), ("B2", 100, 1024),
    ("B2", 8, 1536), ("B5", 1000, 4096), ("B5", 100, 4096), ("B5", 8, 4096),
)
#: Centre-heat levels tried by :func:`tune_centre_threshold`.
THRESHOLD_GRID: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)
#: Strict reliability the tuned threshold must reach on the validation field.
TARGET_RELIABILITY: float = 0.96


def field_name(band: str, integration: int, index: int) -> str:
    """Run-folder name of training field ``index`` (``"train"`` for the first)."""
    return "train" if index == 0 else f"train_{band}_{integration}h"


def validation_name(band: str, integration: int) -> str:
    """Run-folder name of a further validation field (:data:`VALIDATION_FIELDS`)."""
    return f"val_{band}_{integration}h"


@dataclass(frozen=True)
class PretrainSettings:
    """Data settings of the default model.

    Attributes
    ----------
    fields : tuple of (band, integration, side)
        Training fields; the first gives the band and integration of the validation and
        test fields.
    val_size, test_size : int
        Sides (px) of the main validation field (threshold choice) and the held-out test
        field.
    val_fields : tuple of (band, integration, side)
        Further validation fields: the centre threshold of each band and integration.
    tile_size : int
        Side of the training cutouts (px); cutouts do not overlap.
    snr_min, k_sigma : float
        Truth-map selection (peak S/N) and footprint level (in noise rms).
    normalisation : str
        Input normalisation of the model.
    seed : int
        Base seed; the fields get :func:`radioseg_utils.workflows.pipeline.field_seed` of it.
    """

    fields: tuple[tuple[str, int, int], ...] = TRAIN_FIELDS
    val_size: int = 1024
    test_size: int = 2048
    val_fields: tuple[tuple[str, int, int], ...] = VALIDATION_FIELDS
    tile_size: int = 128
    snr_min: float = 4.0
    k_sigma: float = 1.0
    normalisation: str = "asinh"
    seed: int = 2026

    @property
    def band(self) -> str:
        """Band of the main training field."""
        return self.fields[0][0]

    @property
    def integration(self) -> int:
        """Integration (h) of the main training field."""
        return self.fields[0][1]


#: Training configuration of the default model (a 3-level, 16-filter U-Net, centre head).
DEFAULT_CONFIG = TrainConfig(depth=3, base_filters=16, batch_norm=True, dropout=0.05,
                             loss="bce_dice", centre_head=True, learning_rate=1e-3, epochs=12,
                             batch_size=16, patience=3, lr_schedule="plateau",
                             mixed_precision="off", profile="pretrained",
                             normalisation=PretrainSettings.normalisation, tile_size=128,
                             tensorboard=False)


class _Replay:
    """A model whose outputs for a sequence of batches are computed once and replayed.

    Segmenting one image at several centre thresholds sends the same batches of tiles to
    the network in the same order; after :meth:`rewind` the recorded outputs are returned
    (a batch of another shape than the recorded one raises).
    """

    def __init__(self, net):
        self.net = net
        self.outputs: list[tuple[tuple[int, ...], np.ndarray]] = []
        self.calls = 0

    def rewind(self) -> None:
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.calls == len(self.outputs):
            self.outputs.append((batch.shape, call_model(self.net, batch)))
        shape, out = self.outputs[self.calls]
        if shape != batch.shape:
            raise RuntimeError(f"replayed model got a batch of shape {batch.shape}, "
                               f"recorded {shape}")
        self.calls += 1
        return out


def tune_centre_threshold(model_path: str | Path, sky, truth, *, integration: int,
                          grid: tuple[float, ...] = THRESHOLD_GRID,
                          target: float = TARGET_RELIABILITY) -> tuple[float, list[dict]]:
    """The lowest centre threshold whose strict reliability on a validation field is >= target.

    Lower thresholds find fainter sources and more noise; the lowest one that keeps the
    strict reliability (:func:`radioseg_utils.evaluation.evaluate.evaluate_finder`) at ``target``
    maximises completeness at that reliability. Use a field never used for training or
    testing.

    Returns
    -------
    threshold : float
        The chosen level (the highest of ``grid`` if none reaches ``target``).
    trials : list of dict
        ``threshold``, ``detections``, ``strict_completeness``, ``strict_reliability`` of
        every level tried.
    """
    from radioseg_utils.baselines import run_unet
    from radioseg_utils.evaluation.evaluate import evaluate_finder
    from radioseg_utils.inference.config import PredictConfig
    from radioseg_utils.model.files import load_model_cached

    net, normalisation = load_model_cached(model_path, sky.band.name)
    replay = _Replay(net)  # the same tiles at every level: run the network once
    trials = []
    for value in sorted(grid):
        replay.rewind()
        result = run_unet(sky, model=replay, normalisation=normalisation,
                          config=PredictConfig(centre_threshold=value, calibration=None))
        ev = evaluate_finder(result, truth, sky, integration=integration, pixels=False,
                             score=False)
        trials.append({"threshold": value, "detections": len(result.catalogue),
                       "strict_completeness": ev.strict.completeness,
                       "strict_reliability": ev.strict.reliability})
    good = [t["threshold"] for t in trials if t["strict_reliability"] >= target]
    return (min(good) if good else max(grid)), trials


def tune_centre_thresholds(model_path: str | Path, held_out: dict,
                           settings: PretrainSettings) -> tuple[dict, dict]:
    """:func:`tune_centre_threshold` on the main and every further validation field.

    Returns
    -------
    thresholds : dict
        ``{band: {str(integration): threshold}}`` (what the sidecar's ``centre_thresholds``
        holds; :func:`radioseg_utils.inference.config.resolve_config` picks the entry of the image's
        band whose nominal noise is nearest to the image's).
    trials : dict
        The trials of each validation field, by field name.
    """
    from radioseg_utils.workflows.pipeline import load_field

    fields = {"val": (settings.band, settings.integration),
              **{validation_name(b, h): (b, h) for b, h, _ in settings.val_fields}}
    thresholds: dict[str, dict[str, float]] = {}
    trials: dict[str, list[dict]] = {}
    for name, (band, hours) in fields.items():
        sky, truth = load_field(held_out[name])
        value, trials[name] = tune_centre_threshold(model_path, sky, truth, integration=hours)
        thresholds.setdefault(band, {})[str(hours)] = value
    return thresholds, trials


def calibration_path(model_path: str | Path) -> Path:
    """Calibration file of a model: ``x.keras`` -> ``x.calibration.npz`` beside it."""
    return Path(model_path).with_suffix(".calibration.npz")


def calibrate_model(model_path: str | Path, fields: dict, *, seed: int) -> dict[str, Any]:
    """Fit the size and flux calibration of a model on its training and validation fields.

    The model (with its tuned centre threshold, without calibration) finds the sources of
    each field; detections matched to true star-forming galaxies train
    :func:`radioseg_utils.postprocess.calibrate.fit_calibration`. The validation fields cover every band
    and integration, which the training fields do not. The result is saved as
    :func:`calibration_path` and named in the model's sidecar (``calibration``), so that
    :func:`radioseg_utils.inference.config.resolve_config` applies it from then on.

    Parameters
    ----------
    model_path : path
        The ``.keras`` model with its sidecar.
    fields : dict
        Name -> :class:`~radioseg_utils.workflows.pipeline.FieldFiles` of training and validation
        fields (never a field that scores are reported on).
    seed : int
        Random state of the trees.

    Returns
    -------
    dict
        The calibration's provenance (fields, pairs, seed), or ``{"skipped": reason}``
        when the model matched too few sources to fit one (then nothing is written and
        the sidecar names no calibration).
    """
    from radioseg_utils.baselines import run_unet
    from radioseg_utils.inference.config import PredictConfig
    from radioseg_utils.postprocess.calibrate import fit_calibration
    from radioseg_utils.simulation.simulate import FLUX_SCALE, Attenuation
    from radioseg_utils.workflows.pipeline import load_field

    model_path = Path(model_path)
    gain = Attenuation(None, FLUX_SCALE)  # the simulated images carry the SDC1 flux scale
    catalogues, truths, bands = [], [], []
    for files in fields.values():
        sky, truth = load_field(files)
        result = run_unet(sky, model=model_path, config=PredictConfig(calibration=None),
                          primary_beam=gain)
        catalogues.append(result.catalogue)
        truths.append(truth)
        bands.append(sky.band.name)
    path = calibration_path(model_path)
    sidecar = read_sidecar(model_path)
    sidecar.pop("calibration", None)
    path.unlink(missing_ok=True)
    try:
        calibration = fit_calibration(catalogues, truths, bands, seed=seed,
                                      meta={"name": path.name, "model": model_path.name,
                                            "fields": list(fields)})
    except ValueError as exc:
        logger.warning("no calibration for %s: %s", model_path, exc)
        write_sidecar(model_path, sidecar)
        return {"skipped": str(exc)}
    calibration.save(path)
    sidecar["calibration"] = path.name
    write_sidecar(model_path, sidecar)
    return calibration.meta


def prepare(settings: PretrainSettings, config: TrainConfig, layout) -> tuple:
    """Simulate the fields, cut the datasets and train (each only if not done yet).

    Returns ``(train fields, held-out fields, dataset metadata, model path, timings)``;
    the fields are dicts of name to :class:`~radioseg_utils.workflows.pipeline.FieldFiles`.
    """
    from radioseg_utils.workflows import pipeline

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    train = {field_name(band, hours, i): pipeline.ensure_field(
                 layout, field_name(band, hours, i), band=band, integration=hours, size=size,
                 seed=settings.seed)
             for i, (band, hours, size) in enumerate(settings.fields)}
    held_out = {name: pipeline.ensure_field(layout, name, band=settings.band,
                                            integration=settings.integration, size=size,
                                            seed=settings.seed)
                for name, size in (("val", settings.val_size), ("test", settings.test_size))}
    held_out.update({validation_name(band, hours): pipeline.ensure_field(
                         layout, validation_name(band, hours), band=band, integration=hours,
                         size=size, seed=settings.seed)
                     for band, hours, size in settings.val_fields})
    timings["simulate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    datasets = {}
    for (name, files), (_, hours, _) in zip(train.items(), settings.fields):
        dataset = "dataset" if name == "train" else f"dataset_{name}"
        datasets[dataset] = pipeline.ensure_dataset(
            layout, files, size=settings.tile_size, stride=settings.tile_size,
            snr_min=settings.snr_min, k_sigma=settings.k_sigma,
            normalisation=settings.normalisation, integration=hours, seed=settings.seed,
            name=dataset)
    timings["dataset_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model_path = pipeline.ensure_model(layout, config, dataset=list(datasets))
    timings["train_s"] = time.perf_counter() - t0
    return train, held_out, datasets, model_path, timings


def train_default_model(
    *,
    settings: PretrainSettings = PretrainSettings(),
    config: TrainConfig | None = None,
    work_dir: str | Path | None = None,
    out_dir: str | Path = PRETRAINED_DIR,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Simulate, train, tune on a validation field, evaluate on a test field, write the model.

    Interrupted runs resume: fields, datasets and checkpoints in ``work_dir`` are reused.

    Parameters
    ----------
    settings : PretrainSettings
        Data settings.
    config : TrainConfig, optional
        Training configuration; default :data:`DEFAULT_CONFIG` with ``settings.seed``.
    work_dir : path, optional
        Run folder for fields, datasets and checkpoints (default
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
    from radioseg_utils.postprocess.calibrate import load_calibration
    from radioseg_utils.workflows import pipeline

    config = (config or DEFAULT_CONFIG).replace(seed=settings.seed, band=settings.band,
                                                integration=settings.integration)
    layout = pipeline.RunLayout.from_parameter(work_dir or generated_dir() / "pretrain")
    train, held_out, datasets, model_path, timings = prepare(settings, config, layout)
    t0 = time.perf_counter()
    thresholds, trials = tune_centre_thresholds(model_path, held_out, settings)
    threshold = thresholds[settings.band][str(settings.integration)]
    sidecar = read_sidecar(model_path)
    sidecar["centre_threshold"] = threshold
    sidecar["centre_thresholds"] = thresholds
    write_sidecar(model_path, sidecar)
    timings["tune_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    calibration = calibrate_model(
        model_path, {**train, **{k: v for k, v in held_out.items() if k != "test"}},
        seed=settings.seed)
    timings["calibrate_s"] = time.perf_counter() - t0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"unet_{settings.band}.keras"
    shutil.copyfile(model_path, target)
    sidecar = read_sidecar(model_path)
    calibration_path(target).unlink(missing_ok=True)
    if "calibration" in sidecar:
        calibration = {**calibration, "name": calibration_path(target).name, "model": target.name}
        fitted = load_calibration(calibration_path(model_path))
        replace(fitted, meta=calibration).save(calibration_path(target))
        sidecar["calibration"] = calibration_path(target).name
    write_sidecar(target, sidecar)
    log = model_path.parent / "log.csv"
    manifest: dict[str, Any] = {
        "model": target.name,
        "command": "radioseg pretrain",
        "settings": asdict(settings),
        "config": config.to_dict(),
        "fields": {name: files.saved_parameters()
                   for name, files in {**train, **held_out}.items()},
        "datasets": {name: {k: meta[k] for k in ("size", "stride", "normalisation", "splits",
                                                 "masks", "integration_h") if k in meta}
                     for name, meta in datasets.items()},
        "training_log": log.read_text().splitlines() if log.is_file() else [],
        "centre_threshold": {"chosen": threshold, "per_band_integration": thresholds,
                             "target_strict_reliability": TARGET_RELIABILITY,
                             "fields": "val and val_<band>_<h>h (held out)", "trials": trials},
        "calibration": calibration,
        "sidecar": read_sidecar(target),
        # seconds of this invocation; stages found done in work_dir take ~0 s
        "timings_this_run": {k: round(v, 1) for k, v in timings.items()},
    }
    if evaluate:
        t0 = time.perf_counter()
        manifest["held_out_scores"] = _evaluate(target, held_out["test"], settings)
        manifest["timings_this_run"]["evaluate_s"] = round(time.perf_counter() - t0, 1)
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    logger.info("default model written to %s", target)
    return manifest


def _evaluate(model_path: Path, test, settings: PretrainSettings) -> dict[str, Any]:
    """Scores of the model (with and without its calibration) and of the plain peak finder
    on the held-out field.

    Also the best pixel F1 that any single global threshold on the raw image reaches
    (chosen on this very field, so an optimistic baseline).
    """
    from radioseg_utils.baselines import run_peaks, run_unet
    from radioseg_utils.core.bands import get_band
    from radioseg_utils.evaluation.evaluate import evaluate_finder, truth_mask
    from radioseg_utils.evaluation.threshold_scan import best_f1_threshold
    from radioseg_utils.inference.config import PredictConfig
    from radioseg_utils.simulation.simulate import FLUX_SCALE, Attenuation
    from radioseg_utils.workflows.pipeline import load_field

    sky, truth = load_field(test)
    noise = get_band(settings.band).noise(settings.integration)
    gain = Attenuation(None, FLUX_SCALE)  # the simulated images carry the SDC1 flux scale
    mask = truth_mask(sky, truth, noise=noise, snr_min=settings.snr_min, k_sigma=settings.k_sigma,
                      primary_beam=gain)
    scores: dict[str, Any] = {"field": "test (held out)", "integration": settings.integration}
    raw = PredictConfig(calibration=None)
    for name, finder in (("unet", lambda: run_unet(sky, model=model_path, primary_beam=gain)),
                         ("unet_uncalibrated", lambda: run_unet(sky, model=model_path, config=raw,
                                                                primary_beam=gain)),
                         ("peaks", lambda: run_peaks(sky, primary_beam=gain))):
        ev = evaluate_finder(finder(), truth, sky, integration=settings.integration,
                             true_mask=mask, field="test", primary_beam=gain)
        row = {k: v for k, v in ev.summary().items() if isinstance(v, (int, float, str))}
        row["completeness_by_snr"] = {f"{lo:g}-{hi:g}": float(c) for lo, hi, c in
                                      zip(ev.bins["lo"], ev.bins["hi"], ev.bins["completeness"])}
        scores[name] = row
    scores["raw_image_best_threshold_pixel_f1"] = float(best_f1_threshold(sky.data, mask).best.f1)
    return scores
