"""The pretrained default model that ``radioseg predict`` uses out of the box.

:func:`train_default_model` reproduces it from nothing: it simulates the training fields of
:data:`TRAIN_FIELDS` (B1 at the three integrations, B2 and B5, each on its own patch of sky
with its own seed), validation fields (one per band and integration) and a held-out test
field (B1 1000 h, other seeds, other patches), cuts every training field into the spatially
disjoint dataset, trains the U-Net with a centre head of :data:`DEFAULT_CONFIG` on CPU,
chooses the centre threshold of each band and integration on its validation field
(:func:`tune_centre_thresholds`), fits the size and flux calibration on the training and
validation fields (:func:`calibrate_model`) and the per-source reliability ``p_real`` on
the validation fields only (:func:`fit_model_reliability`), evaluates on the test field
only, and writes into ``radioseg_utils/pretrained/``:

- ``unet_B1.keras`` and its sidecar ``unet_B1.json`` (what :func:`radioseg_utils.model.files.load_model`
  checks: bands, normalisation, input; the tuned ``centre_threshold``; the name of the
  calibration file);
- ``unet_B1.calibration.npz``: the size and flux corrections of
  :mod:`radioseg_utils.postprocess.calibrate`, fitted on the model's detections in the training and
  validation fields (:func:`calibrate_model`);
- ``unet_B1.reliability.npz``: the ``p_real`` model of
  :mod:`radioseg_utils.postprocess.reliability`, fitted on the model's detections in the
  validation fields (:func:`fit_model_reliability`) and checked on the test field;
- ``MANIFEST.json``: data (bands, integrations, field sizes, seeds, sky positions, dataset
  counts), the training configuration, package versions, timings and the held-out scores.

:func:`add_reliability` (``radioseg pretrain --reliability-only``) fits the ``p_real``
model of a model already trained and tuned, without training again.

The command is ``radioseg pretrain`` (about 50 minutes on 2 CPU cores).
``radioseg pretrain --profile full`` (:data:`PRETRAIN_PROFILES`) trains a deeper model on
3.6 times the data, sized for a GPU; ``--until train`` on the GPU machine and
``--trained FOLDER`` back here split the work (``benchmarks/gpu_session.sh``).
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from radioseg_utils.core.paths import PRETRAINED_DIR, generated_dir
from radioseg_utils.inference.config import SCORE_SELECTION
from radioseg_utils.inference.tiling import call_model
from radioseg_utils.model.config import TrainConfig
from radioseg_utils.model.files import read_sidecar, save_inference_copy, write_sidecar
from radioseg_utils.postprocess.reliability import CENTRE_THRESHOLD_MIN
from radioseg_utils.simulation.simulate import PAIR_SIGMA

__all__ = ["DEFAULT_CONFIG", "FULL_TRAIN_FIELDS", "PRETRAIN_PROFILES", "TRAINED_RECORD",
           "training_field_names", "PRETRAINED_DIR", "TRAIN_FIELDS", "VALIDATION_FIELDS", "THRESHOLD_GRID",
           "TARGET_RELIABILITY", "P_REAL_FLOOR", "p_real_floor",
           "P_REAL_CUTS", "TUNED", "tune_score_selection", "PretrainSettings", "train_default_model",
           "LevelScan", "threshold_levels", "chosen_threshold", "tune_centre_threshold",
           "tune_centre_thresholds", "calibrate_model", "calibration_path", "field_name",
           "validation_name", "validation_fields", "held_out_fields", "prepare", "reliability_path",
           "fit_model_reliability", "add_reliability", "tune_and_fit", "tune_model"]

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
#: Centre threshold at which ``p_real`` is fitted (or the model's lowest tuned one, if
#: lower): below its tuned level a model finds fainter sources and more noise peaks, and
#: ``p_real`` is valid for every threshold from this one up.
P_REAL_FLOOR: float = 0.25
#: ``p_real`` cuts tried by :func:`tune_score_selection`.
P_REAL_CUTS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Name of the model's own catalogue (tuned thresholds, no cut) among those candidates.
TUNED: str = "reliability"


def field_name(band: str, integration: int, index: int, repeat: int = 0) -> str:
    """Run-folder name of training field ``index`` (``"train"`` for the first).

    ``repeat`` counts earlier training fields of the same band and integration (the
    second B1 1000 h field is ``train_B1_1000h_2``).
    """
    if index == 0:
        return "train"
    return f"train_{band}_{integration}h" + (f"_{repeat + 1}" if repeat else "")


def training_field_names(fields: tuple[tuple[str, int, int], ...]) -> list[str]:
    """:func:`field_name` of every training field, in order (repeats numbered)."""
    seen: dict[tuple[str, int], int] = {}
    names = []
    for i, (band, hours, _) in enumerate(fields):
        repeat = seen.get((band, hours), 0)
        seen[(band, hours)] = repeat + 1
        names.append(field_name(band, hours, i, repeat))
    return names


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
    pair_fraction : float
        Fraction of the training fields' sources above 3 rms moved 1-2 beams from a
        brighter one (:func:`radioseg_utils.simulation.population.place_pairs`): more
        blended examples to learn from. The validation and test fields keep the
        population's own positions.
    pair_min_integration : int
        Integration (h) below which a training field gets no moved pairs
        (:meth:`pair_fraction_for`): 100 keeps the 8 h fields' population as drawn.
    pair_sigma : float
        Faintest source (integrated flux in rms) moved, or moved beside
        (:data:`radioseg_utils.simulation.simulate.PAIR_SIGMA` by default).
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
    pair_fraction: float = 0.0
    pair_min_integration: int = 0
    pair_sigma: float = PAIR_SIGMA

    def pair_fraction_for(self, integration: int) -> float:
        """The pair fraction of a training field of this integration (h).

        Examples
        --------
        >>> deep = PretrainSettings(pair_fraction=0.15, pair_min_integration=100)
        >>> deep.pair_fraction_for(1000), deep.pair_fraction_for(8)
        (0.15, 0.0)
        """
        return self.pair_fraction if integration >= self.pair_min_integration else 0.0

    @property
    def band(self) -> str:
        """Band of the main training field."""
        return self.fields[0][0]

    @property
    def integration(self) -> int:
        """Integration (h) of the main training field."""
        return self.fields[0][1]


#: Training configuration of the ``default`` recipe (a 3-level, 16-filter U-Net, centre head).
DEFAULT_CONFIG = TrainConfig(depth=3, base_filters=16, batch_norm=True, dropout=0.05,
                             loss="bce_dice", centre_head=True, learning_rate=1e-3, epochs=12,
                             batch_size=16, patience=3, lr_schedule="plateau",
                             mixed_precision="off", profile="pretrained",
                             normalisation=PretrainSettings.normalisation, tile_size=128,
                             tensorboard=False)

#: Training fields of the ``full`` profile: 3.6 times the default's area (102 Mpx), three
#: B1 1000 h fields and more of every other band and depth, each on its own sky.
FULL_TRAIN_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("B1", 1000, 4096), ("B1", 1000, 4096), ("B1", 1000, 4096), ("B1", 100, 4096),
    ("B1", 8, 3072), ("B2", 1000, 4096), ("B2", 100, 2048), ("B5", 1000, 2048),
)

#: Named pretraining recipes, ``(data settings, training configuration)``. ``default``
#: is the shipped model's (about 50 min on 2 CPU cores); ``full`` is sized for a GPU:
#: 4 levels (twice the receptive field), 3.6x the training area and up to 80 epochs
#: (use a time budget on a lent machine). Both share the validation and test fields, so
#: their tuned models compare on the same held-out data.
PRETRAIN_PROFILES: dict[str, tuple[PretrainSettings, TrainConfig]] = {
    "default": (PretrainSettings(), DEFAULT_CONFIG),
    "full": (PretrainSettings(fields=FULL_TRAIN_FIELDS),
             DEFAULT_CONFIG.replace(depth=4, epochs=80, batch_size=16, gpu_batch_size=32,
                                    patience=10, profile="pretrained-full")),
}
#: ``full-continued``: the ``full`` recipe's data and network, its training continued from
#: the shipped model's weights (a GPU run cut short by its time budget, the validation
#: loss still falling) with a cosine decay from a lower learning rate over 6 epochs: a
#: run for a CPU (about 17 min per epoch on 2 cores) that resumes after an interrupt.
PRETRAIN_PROFILES["full-continued"] = (
    PRETRAIN_PROFILES["full"][0],
    PRETRAIN_PROFILES["full"][1].replace(init_weights="unet_B1.keras", learning_rate=3e-4,
                                         lr_schedule="cosine", epochs=6, patience=8,
                                         profile="pretrained-full-continued"))
#: ``full-pairs``: as ``full-continued`` over 4 epochs, with the centre loss's penalty
#: reduction weakened near close pairs of sources (``centre_pair_beta``: a blob that
#: merges two sources 1.5-3 arcsec apart costs more), the lever aimed at the close-pair
#: class that the plain continuation did not lift.
PRETRAIN_PROFILES["full-pairs"] = (
    PRETRAIN_PROFILES["full"][0],
    PRETRAIN_PROFILES["full-continued"][1].replace(centre_pair_beta=1.0, epochs=4,
                                                   profile="pretrained-full-pairs"))
#: ``full-blends``: as ``full-continued`` over 4 epochs, on training fields where 15 % of
#: the sources above 3 rms are moved 1-2 beams from a brighter one (``pair_fraction``; on
#: the main training field the sources 1.5-3" from a brighter one become 1.8 times as many
#: at S/N 5-10 and 3.3 times above S/N 10), the data lever aimed at that class.
PRETRAIN_PROFILES["full-blends"] = (
    replace(PRETRAIN_PROFILES["full"][0], pair_fraction=0.15),
    PRETRAIN_PROFILES["full-continued"][1].replace(epochs=4, profile="pretrained-full-blends"))
#: ``full-deep-blends``: as ``full-blends`` with the pairs in the 100 h and 1000 h training
#: fields only (``pair_min_integration``); ``full-blends`` lifted the close-pair class on the
#: deep fields but lost sources on the 8 h ones.
PRETRAIN_PROFILES["full-deep-blends"] = (
    replace(PRETRAIN_PROFILES["full-blends"][0], pair_min_integration=100),
    PRETRAIN_PROFILES["full-blends"][1].replace(profile="pretrained-full-deep-blends"))
#: ``full-bright-blends``: as ``full-deep-blends``, moving only sources of at least 6 rms
#: beside ones as bright (``pair_sigma``): ``full-deep-blends`` still lost sources at 8 h,
#: where a faint companion beside a bright source looks like a noise peak beside it.
PRETRAIN_PROFILES["full-bright-blends"] = (
    replace(PRETRAIN_PROFILES["full-deep-blends"][0], pair_sigma=6.0),
    PRETRAIN_PROFILES["full-blends"][1].replace(profile="pretrained-full-bright-blends"))
#: ``full-wide-blends``: as ``full-bright-blends`` with two more training fields, B2 8 h
#: (2048 px) and another B5 1000 h (4096 px): every CPU continuation lost a few sources on
#: the B2 8 h and B5 1000 h validation fields, which ``full``'s fields hold little of.
PRETRAIN_PROFILES["full-wide-blends"] = (
    replace(PRETRAIN_PROFILES["full-bright-blends"][0],
            fields=FULL_TRAIN_FIELDS + (("B2", 8, 2048), ("B5", 1000, 4096))),
    PRETRAIN_PROFILES["full-blends"][1].replace(profile="pretrained-full-wide-blends"))
#: ``full-scratch``: the shipped model's own run, ``full`` from scratch for the 20 epochs
#: at batch 32 that it had on the GPU, trained on a CPU: the control of
#: ``full-scratch-blends``, whose only difference is the close pairs in its fields.
PRETRAIN_PROFILES["full-scratch"] = (
    PRETRAIN_PROFILES["full"][0],
    PRETRAIN_PROFILES["full"][1].replace(
        epochs=20, batch_size=PRETRAIN_PROFILES["full"][1].gpu_batch_size,
        profile="pretrained-full-scratch"))
#: ``full-scratch-blends``: ``full-scratch`` on ``full-bright-blends``' fields: every
#: continuation started from weights fitted without close pairs, and moved the shallow and
#: B5 thresholds whatever its data. About 65 min on 2 Xeon cores.
PRETRAIN_PROFILES["full-scratch-blends"] = (
    PRETRAIN_PROFILES["full-bright-blends"][0],
    PRETRAIN_PROFILES["full-scratch"][1].replace(profile="pretrained-full-scratch-blends"))


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


class LevelScan:
    """A model's detections on one field at any centre threshold; the network runs once.

    Every level decodes the same network outputs (recorded at the first level and replayed
    after, :class:`_Replay`), so trying one more level costs a decoding, not a network pass.

    Parameters
    ----------
    model_path : path
        ``.keras`` file with sidecar.
    sky : SkyImage
        The field's image.
    truth : astropy.table.Table
        Its true sources.
    integration : int
        Its integration in h (the strict S/N cut of the evaluation).
    tta : bool
        Run the model with test-time augmentation
        (:func:`radioseg_utils.data.augment.with_tta`: the mean over the eight flips and
        rotations of each tile, eight network passes).
    """

    def __init__(self, model_path: str | Path, sky, truth, *, integration: int,
                 tta: bool = False):
        from radioseg_utils.inference.config import segmenter

        net, self.normalisation = segmenter(model_path, sky.band.name, None, tta=tta)
        self.replay = _Replay(net)
        self.sky, self.truth, self.integration = sky, truth, integration

    def at(self, value: float) -> tuple[dict, Any]:
        """The detections at centre threshold ``value``.

        Returns
        -------
        trial : dict
            ``threshold``, ``detections``, ``strict_completeness``, ``strict_reliability``.
        evaluation : radioseg_utils.evaluation.evaluate.Evaluation
            The detections scored against the truth (no pixel metrics, no SDC1 score).
        """
        from radioseg_utils.baselines import run_unet
        from radioseg_utils.evaluation.evaluate import evaluate_finder
        from radioseg_utils.inference.config import PredictConfig

        self.replay.rewind()
        result = run_unet(self.sky, model=self.replay, normalisation=self.normalisation,
                          config=PredictConfig(centre_threshold=value, calibration=None))
        ev = evaluate_finder(result, self.truth, self.sky, integration=self.integration,
                             pixels=False, score=False)
        return ({"threshold": value, "detections": len(result.catalogue),
                 "strict_completeness": ev.strict.completeness,
                 "strict_reliability": ev.strict.reliability}, ev)


def threshold_levels(model_path: str | Path, sky, truth, *, integration: int,
                     grid: tuple[float, ...] = THRESHOLD_GRID) -> Iterator[tuple[dict, Any]]:
    """:meth:`LevelScan.at` of a model on a field at every threshold of ``grid``, lowest first."""
    scan = LevelScan(model_path, sky, truth, integration=integration)
    for value in sorted(grid):
        yield scan.at(value)


def chosen_threshold(trials: list[dict], target: float = TARGET_RELIABILITY) -> float:
    """The lowest tried threshold whose strict reliability is >= ``target``.

    The highest tried one if none reaches it.
    """
    good = [t["threshold"] for t in trials if t["strict_reliability"] >= target]
    return min(good) if good else max(t["threshold"] for t in trials)


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
        The chosen level (:func:`chosen_threshold`).
    trials : list of dict
        The trial of every level of :func:`threshold_levels`.
    """
    trials = [trial for trial, _ in threshold_levels(model_path, sky, truth,
                                                      integration=integration, grid=grid)]
    return chosen_threshold(trials, target), trials


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


def reliability_path(model_path: str | Path) -> Path:
    """Reliability file of a model: ``x.keras`` -> ``x.reliability.npz`` beside it."""
    return Path(model_path).with_suffix(".reliability.npz")


def validation_fields(held_out: dict) -> dict:
    """The validation fields among the held-out ones: every field but ``"test"``."""
    return {name: files for name, files in held_out.items() if name != "test"}


def _model_detections(model_path: Path, files, *, reliability: bool = True,
                      centre_threshold: float | None = None):
    """The model's catalogue of a field (at its tuned centre threshold, or at
    ``centre_threshold``) and which detections are real (strict matching)."""
    from radioseg_utils.baselines import run_unet
    from radioseg_utils.evaluation.evaluate import labelled_detections
    from radioseg_utils.inference.config import PredictConfig
    from radioseg_utils.simulation.simulate import FLUX_SCALE, Attenuation
    from radioseg_utils.workflows.pipeline import load_field

    sky, truth = load_field(files)
    gain = Attenuation(None, FLUX_SCALE)  # the simulated images carry the SDC1 flux scale
    config = PredictConfig(centre_threshold=centre_threshold,
                           reliability="model" if reliability else None)
    catalogue = run_unet(sky, model=model_path, config=config, primary_beam=gain).catalogue
    real = labelled_detections(catalogue, truth, sky,
                               integration=files.saved_parameters()["integration"],
                               primary_beam=gain)
    return sky, catalogue, real


def p_real_floor(sidecar: dict) -> float:
    """The centre threshold ``p_real`` is fitted at: :data:`P_REAL_FLOOR`, or the lowest
    centre threshold the sidecar holds if that is lower."""
    tuned = [float(v) for table in sidecar.get("centre_thresholds", {}).values()
             for v in table.values()]
    if "centre_threshold" in sidecar:
        tuned.append(float(sidecar["centre_threshold"]))
    return min([P_REAL_FLOOR, *tuned])


def fit_model_reliability(model_path: str | Path, fields: dict, *, seed: int) -> dict[str, Any]:
    """Fit the per-source reliability ``p_real`` of a model on validation fields.

    The model (calibration, no reliability) finds the sources of each field at the
    centre threshold :func:`p_real_floor`, below its tuned levels, so that ``p_real`` holds
    for every threshold a user may choose from there up (``predict`` gives no ``p_real``
    below it); each detection is real when it matches a true source of S/N >= 3
    (:func:`radioseg_utils.evaluation.evaluate.labelled_detections`, the strict reliability
    of :func:`radioseg_utils.evaluation.evaluate.evaluate_finder`), and
    :func:`radioseg_utils.postprocess.reliability.fit_reliability` learns the probability of
    that from the detection's features. The result is saved as :func:`reliability_path`
    and named in the sidecar (``reliability``), so that predictions carry ``p_real`` from
    then on; :func:`tune_score_selection` then chooses the model's score selection with it.

    Parameters
    ----------
    model_path : path
        The ``.keras`` model with its sidecar.
    fields : dict
        Name -> :class:`~radioseg_utils.workflows.pipeline.FieldFiles` of validation fields
        (:func:`validation_fields`); a field named ``test`` is refused.
    seed : int
        Random state of the folds.

    Returns
    -------
    dict
        The model's provenance (fields, counts, seed, ``centre_threshold_min``) with what
        :func:`tune_score_selection` returns under ``score_selection``, or ``{"skipped":
        reason, "fields": names}`` when the model gave too few real or false detections to
        fit one (then nothing is written and the sidecar names neither a reliability file
        nor a score selection).

    Raises
    ------
    ValueError
        If a field is a test field.
    """
    from radioseg_utils.postprocess.reliability import (
        fit_reliability,
        refuse_test_fields,
        reliability_features,
    )

    model_path = Path(model_path)
    refuse_test_fields(list(fields))  # before any work
    sidecar = read_sidecar(model_path)
    floor = p_real_floor(sidecar)
    features, labels = [], []
    for files in fields.values():
        sky, catalogue, real = _model_detections(model_path, files, reliability=False,
                                                 centre_threshold=floor)
        features.append(reliability_features(catalogue, sky.band.beam_fwhm_arcsec))
        labels.append(real)
    path = reliability_path(model_path)
    sidecar.pop("reliability", None)
    sidecar.pop(SCORE_SELECTION, None)  # chosen with p_real: chosen again after it
    path.unlink(missing_ok=True)
    try:
        model = fit_reliability(features, labels, list(fields), seed=seed,
                                meta={"name": path.name, "model": model_path.name,
                                      CENTRE_THRESHOLD_MIN: floor})
    except ValueError as exc:
        logger.warning("no reliability model for %s: %s", model_path, exc)
        write_sidecar(model_path, sidecar)
        return {"skipped": str(exc), "fields": list(fields)}
    model.save(path)
    sidecar["reliability"] = path.name
    write_sidecar(model_path, sidecar)
    return {**model.meta, SCORE_SELECTION: tune_score_selection(model_path, fields)}


def _sdc1_score(result, *, truth, sky, integration: int, primary_beam) -> float:
    """The official SDC1 score of a finder's result on a simulated field."""
    from radioseg_utils.evaluation.evaluate import evaluate_finder

    return float(evaluate_finder(result, truth, sky, integration=integration,
                                 primary_beam=primary_beam, pixels=False).summary()["sdc1_score"])


def tune_score_selection(model_path: str | Path, fields: dict, *,
                         cuts: tuple[float, ...] = P_REAL_CUTS) -> dict[str, Any]:
    """Choose, per band, the detections of the ``"score"`` selection on validation fields.

    The model finds the sources of every field at the lowest centre threshold its
    ``p_real`` holds for (``centre_threshold_min`` of its reliability file); each cut of
    ``cuts`` keeps the rows with ``p_real`` at least that, and the official SDC1 score of
    what is kept is summed over the fields of each band. The model's own catalogue (tuned
    thresholds, no cut, ``"reliability"``) is scored too and competes: in a band where it
    scores highest (nearly empty fields, where every noise peak costs a point), the score
    selection is the tuned one. The choice per band is written into the sidecar
    (:data:`~radioseg_utils.inference.config.SCORE_SELECTION`), so that ``radioseg predict
    --selection score`` uses it.

    Parameters
    ----------
    model_path : path
        The ``.keras`` model with its sidecar, tuned thresholds and reliability file.
    fields : dict
        Name -> :class:`~radioseg_utils.workflows.pipeline.FieldFiles` of validation fields;
        a field named ``test`` is refused.
    cuts : tuple of float
        The cuts tried.

    Returns
    -------
    dict
        ``bands`` (per band, ``centre_threshold`` and ``min_p_real``, both None where the
        tuned catalogue won), ``fields`` and ``pooled`` (per band, the summed score of
        every candidate), which the sidecar gets, and ``scores`` (per field).

    Raises
    ------
    ValueError
        If a field is a test field, or the model has no reliability file or one that does
        not record its centre threshold.
    """
    from radioseg_utils.baselines import run_unet
    from radioseg_utils.inference.config import PredictConfig, p_real_cut
    from radioseg_utils.model.files import companion_file
    from radioseg_utils.postprocess.reliability import load_reliability, refuse_test_fields
    from radioseg_utils.simulation.simulate import FLUX_SCALE, Attenuation
    from radioseg_utils.workflows.pipeline import load_field

    model_path = Path(model_path)
    refuse_test_fields(list(fields))
    sidecar = read_sidecar(model_path)
    reliability = companion_file(model_path, sidecar, "reliability")
    if reliability is None:
        raise ValueError(f"{model_path.name} has no reliability file: fit p_real first")
    floor = load_reliability(reliability).centre_threshold_min
    if floor is None:
        raise ValueError(f"{reliability.name} does not say from which centre threshold it "
                         "holds: fit p_real again (`radioseg pretrain --reliability-only`)")
    gain = Attenuation(None, FLUX_SCALE)
    scores: dict[str, dict[str, float]] = {}
    pooled: dict[str, dict[str, float]] = {}
    for name, files in fields.items():
        sky, truth = load_field(files)
        score = functools.partial(_sdc1_score, truth=truth, sky=sky, primary_beam=gain,
                                  integration=files.saved_parameters()["integration"])
        deep = run_unet(sky, model=model_path, config=PredictConfig(centre_threshold=floor),
                        primary_beam=gain)
        scores[name] = {f"{cut:g}": score(replace(deep, catalogue=deep.catalogue[
                            p_real_cut(deep.catalogue, cut)])) for cut in cuts}
        scores[name][TUNED] = score(run_unet(sky, model=model_path, primary_beam=gain))
        band = pooled.setdefault(sky.band.name, dict.fromkeys(scores[name], 0.0))
        for key, value in scores[name].items():
            band[key] += value
    chosen = {"bands": {band: _score_choice(totals, floor) for band, totals in pooled.items()},
              "fields": list(fields), "pooled": pooled, "scores": scores}
    sidecar[SCORE_SELECTION] = {key: chosen[key] for key in ("bands", "fields", "pooled")}
    write_sidecar(model_path, sidecar)
    for band, totals in pooled.items():
        logger.info("score selection of %s in %s: %s, SDC1 score %.1f over its validation fields "
                    "(%.1f at the tuned thresholds)", model_path.name, band,
                    chosen["bands"][band], max(totals.values()), totals[TUNED])
    return chosen


def _score_choice(totals: dict[str, float], floor: float) -> dict[str, float | None]:
    """The centre threshold and ``p_real`` cut of the candidate with the highest total
    (both None for the tuned catalogue, :data:`TUNED`, which wins a tie)."""
    best = max(totals, key=lambda key: (totals[key], key == TUNED))
    if best == TUNED:
        return {"centre_threshold": None, "min_p_real": None}
    return {"centre_threshold": floor, "min_p_real": float(best)}


def _p_real_check(catalogue, real) -> dict[str, Any]:
    """Deciles of ``p_real`` against the observed fraction of real detections
    (``{"skipped": reason}`` for fewer than ten detections)."""
    from radioseg_utils.evaluation.reliability import P_REAL_TOLERANCE, reliability_diagram

    if len(catalogue) < 10:
        return {"skipped": f"{len(catalogue)} detections: too few for deciles"}
    table = reliability_diagram(np.asarray(catalogue["p_real"], float), real)
    gap = float(np.abs(table["gap"]).max())
    return {"largest_gap": gap, "calibrated": gap <= P_REAL_TOLERANCE,
            "tolerance": P_REAL_TOLERANCE, "deciles": table.round(4).to_dict("records")}


def _p_real_on_test(model: Path, held_out: dict) -> dict[str, dict[str, Any]]:
    """:func:`_p_real_check` of the model's catalogues of the test field: ``test`` at its
    tuned threshold, ``test_floor`` at the lowest threshold ``p_real`` holds for."""
    from radioseg_utils.model.files import companion_file
    from radioseg_utils.postprocess.reliability import load_reliability

    _, catalogue, real = _model_detections(model, held_out["test"])
    checks = {"test": _p_real_check(catalogue, real)}
    path = companion_file(model, read_sidecar(model), "reliability")
    floor = load_reliability(path).centre_threshold_min
    if floor is not None:
        _, catalogue, real = _model_detections(model, held_out["test"], centre_threshold=floor)
        checks["test_floor"] = {CENTRE_THRESHOLD_MIN: floor, **_p_real_check(catalogue, real)}
    return checks


def add_reliability(model: str | Path | None = None, *,
                    settings: PretrainSettings = PretrainSettings(),
                    work_dir: str | Path | None = None, n_workers: int = 1,
                    evaluate: bool = True) -> dict[str, Any]:
    """Fit ``p_real`` for a model already trained and tuned (no training).

    The validation and test fields of ``settings`` are simulated into ``work_dir`` unless
    they are there (a ``radioseg pretrain`` work folder of the same seed has them);
    :func:`fit_model_reliability` fits on the validation fields only, writes the file
    beside the model and names it in its sidecar, and :func:`tune_score_selection`
    chooses the score selection with it on the same fields; the test field only shows
    the result (``test`` at the tuned thresholds, ``test_floor`` at the lowest threshold
    ``p_real`` holds for).
    A ``MANIFEST.json`` beside the model that describes it gets the provenance under
    ``reliability``.

    Parameters
    ----------
    model : path, optional
        The ``.keras`` model (default: the shipped ``unet_<band>.keras``).
    settings : PretrainSettings
        The model's data settings (its validation and test fields).
    work_dir : path, optional
        Run folder of the fields (default ``generated_dir() / "pretrain"``).
    n_workers : int
        Processes for simulating fields.
    evaluate : bool
        Check ``p_real`` on the test field (deciles in the result, ``test``).

    Returns
    -------
    dict
        What :func:`fit_model_reliability` returns, plus ``test`` and ``test_floor`` with
        ``evaluate``.
    """
    from radioseg_utils.workflows import pipeline

    model = Path(model) if model is not None else PRETRAINED_DIR / f"unet_{settings.band}.keras"
    if not model.is_file():
        raise FileNotFoundError(f"model {model} not found")
    layout = pipeline.RunLayout.from_parameter(work_dir or generated_dir() / "pretrain")
    held_out = held_out_fields(settings, layout, n_workers=n_workers)
    info = fit_model_reliability(model, validation_fields(held_out), seed=settings.seed)
    if evaluate and "skipped" not in info:
        info.update(_p_real_on_test(model, held_out))
    manifest_path = model.parent / "MANIFEST.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("model") == model.name:
            manifest["reliability"] = info
            manifest["sidecar"] = read_sidecar(model)
            manifest_path.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return info


def tune_and_fit(model_path: str | Path, held_out: dict, settings: PretrainSettings, *,
                 calibration_fields: dict) -> dict[str, Any]:
    """Tune a model's centre thresholds, then fit its calibration and ``p_real``, in place.

    The thresholds are tuned on every validation field (:func:`tune_centre_thresholds`)
    and written into the sidecar; :func:`calibrate_model` fits on ``calibration_fields``
    and the validation fields, :func:`fit_model_reliability` on the validation fields
    only. The test field of ``held_out`` is never used.

    Parameters
    ----------
    model_path : path
        The ``.keras`` model with its sidecar; its sidecar and companion files change.
    held_out : dict
        :func:`held_out_fields`.
    settings : PretrainSettings
        The recipe whose validation fields these are (its band and integration name the
        main threshold).
    calibration_fields : dict
        Further fields to calibrate on, e.g. the training fields (``{}``: none).

    Returns
    -------
    dict
        ``centre_threshold``, ``centre_thresholds``, ``trials``, ``calibration``,
        ``reliability`` (provenance, or ``{"skipped": reason}``) and ``timings`` (s).
    """
    timings = {}
    t0 = time.perf_counter()
    thresholds, trials = tune_centre_thresholds(model_path, held_out, settings)
    threshold = thresholds[settings.band][str(settings.integration)]
    sidecar = read_sidecar(model_path)
    sidecar["centre_threshold"] = threshold
    sidecar["centre_thresholds"] = thresholds
    write_sidecar(model_path, sidecar)
    timings["tune_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    calibration = calibrate_model(model_path,
                                  {**calibration_fields, **validation_fields(held_out)},
                                  seed=settings.seed)
    timings["calibrate_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    reliability = fit_model_reliability(model_path, validation_fields(held_out),
                                        seed=settings.seed)
    timings["reliability_s"] = time.perf_counter() - t0
    return {"centre_threshold": threshold, "centre_thresholds": thresholds, "trials": trials,
            "calibration": calibration, "reliability": reliability, "timings": timings}


def tune_model(model: str | Path, *, settings: PretrainSettings = PretrainSettings(),
               work_dir: str | Path | None = None, n_workers: int = 1,
               evaluate: bool = True) -> dict[str, Any]:
    """Make a model file trained or assembled elsewhere ready to predict (no training).

    An ensemble (:mod:`radioseg_utils.model.ensemble`) or a model from another machine has
    no tuned centre thresholds, calibration or ``p_real``. :func:`tune_and_fit` fits
    them on the validation fields of ``settings`` (simulated into ``work_dir`` unless
    they are there; no training fields), writes them beside the model and names them in
    its sidecar; the test field only checks ``p_real``.

    Parameters
    ----------
    model : path
        The ``.keras`` model with its sidecar; not the shipped model, which
        :func:`train_default_model` tunes with its training fields.
    settings : PretrainSettings
        The recipe whose validation and test fields are used.
    work_dir : path, optional
        Run folder of the fields (default ``generated_dir() / "pretrain"``).
    n_workers : int
        Processes for simulating fields.
    evaluate : bool
        Check ``p_real`` on the test field (``test`` and ``test_floor`` in the result).

    Returns
    -------
    dict
        What :func:`tune_and_fit` returns, plus ``test`` and ``test_floor`` with ``evaluate``.

    Raises
    ------
    FileNotFoundError
        If the model is missing.
    ValueError
        If ``model`` is the shipped model.
    """
    from radioseg_utils.workflows import pipeline

    model = Path(model)
    if not model.is_file():
        raise FileNotFoundError(f"model {model} not found")
    shipped = PRETRAINED_DIR / f"unet_{settings.band}.keras"
    if shipped.is_file() and model.resolve() == shipped.resolve():
        raise ValueError(f"{model} is the shipped model, tuned by `radioseg pretrain` with "
                         "its training fields; tune a copy instead")
    layout = pipeline.RunLayout.from_parameter(work_dir or generated_dir() / "pretrain")
    held_out = held_out_fields(settings, layout, n_workers=n_workers)
    info = tune_and_fit(model, held_out, settings, calibration_fields={})
    if evaluate and "skipped" not in info["reliability"]:
        info.update(_p_real_on_test(model, held_out))
    return info


def _simulated_training_field(layout, name: str, band: str, hours: int, size: int,
                              settings: PretrainSettings, n_workers: int):
    """One training field with the recipe's close pairs, simulated unless it is there."""
    from radioseg_utils.workflows import pipeline

    return pipeline.ensure_field(layout, name, band=band, integration=hours, size=size,
                                 seed=settings.seed, n_workers=n_workers,
                                 pair_fraction=settings.pair_fraction_for(hours),
                                 pair_sigma=settings.pair_sigma)


def _training_field(layout, name: str, band: str, hours: int, size: int,
                    settings: PretrainSettings, dataset: str, n_workers: int) -> tuple:
    """Simulate one training field and cut its dataset (each only if not done yet)."""
    from radioseg_utils.workflows import pipeline

    files = _simulated_training_field(layout, name, band, hours, size, settings, n_workers)
    meta = pipeline.ensure_dataset(
        layout, files, size=settings.tile_size, stride=settings.tile_size,
        snr_min=settings.snr_min, k_sigma=settings.k_sigma,
        normalisation=settings.normalisation, integration=hours, seed=settings.seed,
        name=dataset)
    return files, meta


def _training_fields(settings: PretrainSettings, layout, *, n_workers: int,
                     datasets: bool) -> tuple[dict, dict]:
    """The training fields (and, with ``datasets``, their shards), in parallel processes
    when ``n_workers`` > 1 (one field per process; the results do not depend on it)."""
    names = training_field_names(settings.fields)
    jobs = [(name, band, hours, size, "dataset" if name == "train" else f"dataset_{name}")
            for name, (band, hours, size) in zip(names, settings.fields)]
    if not datasets:
        return {name: _simulated_training_field(layout, name, band, hours, size, settings,
                                                n_workers)
                for name, band, hours, size, _ in jobs}, {}
    if n_workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        per_field = max(1, n_workers // len(jobs))
        with ProcessPoolExecutor(min(n_workers, len(jobs)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_training_field, layout, name, band, hours, size, settings,
                                   dataset, per_field)
                       for name, band, hours, size, dataset in jobs]
            results = [f.result() for f in futures]
    else:
        results = [_training_field(layout, name, band, hours, size, settings, dataset,
                                   n_workers)
                   for name, band, hours, size, dataset in jobs]
    train = {job[0]: files for job, (files, _) in zip(jobs, results)}
    metas = {job[4]: meta for job, (_, meta) in zip(jobs, results)}
    return train, metas


def held_out_fields(settings: PretrainSettings, layout, *, n_workers: int = 1) -> dict:
    """The main validation field, the test field and the further validation fields.

    Each is simulated into the run folder ``layout`` unless it is there already.

    Returns
    -------
    dict
        ``{name: FieldFiles}``: ``"val"``, ``"test"`` and ``val_<band>_<h>h``.
    """
    from radioseg_utils.workflows import pipeline

    held_out = {name: pipeline.ensure_field(layout, name, band=settings.band,
                                            integration=settings.integration, size=size,
                                            seed=settings.seed, n_workers=n_workers)
                for name, size in (("val", settings.val_size), ("test", settings.test_size))}
    held_out.update({validation_name(band, hours): pipeline.ensure_field(
                         layout, validation_name(band, hours), band=band, integration=hours,
                         size=size, seed=settings.seed, n_workers=n_workers)
                     for band, hours, size in settings.val_fields})
    return held_out


#: Name of the record that the training stage writes beside the trained model.
TRAINED_RECORD = "TRAINED.json"


def prepare(settings: PretrainSettings, config: TrainConfig, layout, *, n_workers: int = 1,
            time_budget: float | None = None, held_out: bool = True,
            trained: str | Path | None = None) -> tuple:
    """Simulate the fields, cut the datasets and train (each only if not done yet).

    Parameters
    ----------
    settings, config
        Data settings and training configuration.
    layout : radioseg_utils.workflows.pipeline.RunLayout
        The run folder.
    n_workers : int
        Processes for simulating and cutting the fields.
    time_budget : float, optional
        Wall-clock seconds the training may take.
    held_out : bool
        Also simulate the validation and test fields.
    trained : path, optional
        Folder written by the training stage elsewhere (:func:`train_default_model` with
        ``until="train"``, e.g. on a GPU machine): its model is used instead of training
        here, after checking it was trained with ``config`` on these settings; the
        datasets are then not cut again (their record comes from that folder).

    Returns
    -------
    tuple
        ``(train fields, held-out fields, dataset metadata, model path, timings)``; the
        fields are dicts of name to :class:`~radioseg_utils.workflows.pipeline.FieldFiles`
        (held-out: empty without ``held_out``).
    """
    from radioseg_utils.workflows import pipeline

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    record = _adopt_trained(trained, settings, config, layout) if trained else None
    train, datasets = _training_fields(settings, layout, n_workers=n_workers,
                                       datasets=record is None)
    timings["fields_and_datasets_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fields_out = held_out_fields(settings, layout, n_workers=n_workers) if held_out else {}
    timings["held_out_fields_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if record is not None:
        datasets = record["datasets"]
        model_path = layout.model_dir() / "model.keras"
        timings.update({f"trained_elsewhere_{k}": v for k, v in record["timings"].items()})
    else:
        model_path = pipeline.ensure_model(layout, config, dataset=list(datasets),
                                           time_budget=time_budget)
    timings["train_s"] = time.perf_counter() - t0
    return train, fields_out, datasets, model_path, timings


def _adopt_trained(folder: str | Path, settings: PretrainSettings, config: TrainConfig,
                   layout) -> dict[str, Any]:
    """Check the training-stage folder against the recipe and copy its model into the run."""
    folder = Path(folder)
    path = folder / TRAINED_RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no {TRAINED_RECORD}: not a folder written by "
                                "`radioseg pretrain --until train`")
    record = json.loads(path.read_text())
    wanted = {"settings": json.loads(json.dumps(asdict(settings))),
              "config": {k: v for k, v in config.to_dict().items() if k != "tensorboard"}}
    # a record made before a setting existed was made with its default
    defaults = json.loads(json.dumps(asdict(PretrainSettings())))
    got = {"settings": {**defaults, **record["settings"]} if record.get("settings") else None,
           "config": {k: v for k, v in TrainConfig.completed(record.get("config", {})).items()
                      if k in wanted["config"]}}
    for key in wanted:
        diff = sorted(k for k in wanted[key] if wanted[key][k] != (got[key] or {}).get(k))
        if diff:
            raise ValueError(f"{path}: trained with other {key} ({', '.join(diff)}) than this "
                             "recipe; use the same --profile, --seed and --train-seed")
    target = layout.model_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.keras", "model.json", "log.csv"):
        shutil.copyfile(folder / name, target / name)
    return record


def train_default_model(
    *,
    settings: PretrainSettings = PretrainSettings(),
    config: TrainConfig | None = None,
    work_dir: str | Path | None = None,
    out_dir: str | Path = PRETRAINED_DIR,
    evaluate: bool = True,
    n_workers: int = 1,
    time_budget: float | None = None,
    until: str = "all",
    trained: str | Path | None = None,
    train_seed: int | None = None,
) -> dict[str, Any]:
    """Simulate, train, tune on a validation field, evaluate on a test field, write the model.

    Interrupted runs resume: fields, datasets and checkpoints in ``work_dir`` are reused.
    The work can be split between machines: ``until="train"`` stops after training (on a
    GPU machine, say) and writes the model with a :data:`TRAINED_RECORD` to ``out_dir``;
    ``trained=`` that folder then does the rest elsewhere (the fields are simulated again,
    bit for bit, from their seeds).

    Parameters
    ----------
    settings : PretrainSettings
        Data settings.
    config : TrainConfig, optional
        Training configuration; default :data:`DEFAULT_CONFIG`. Its seed is
        ``train_seed``.
    work_dir : path, optional
        Run folder for fields, datasets and checkpoints (default
        ``generated_dir() / "pretrain"``).
    out_dir : path
        Where the model, its sidecar and ``MANIFEST.json`` go.
    evaluate : bool
        Score the model on the held-out field (recorded in the manifest).
    n_workers : int
        Processes for simulating and cutting the fields.
    time_budget : float, optional
        Wall-clock seconds the training may take
        (:class:`radioseg_utils.model.train.TimeBudget`).
    until : {"all", "train"}
        Stop after training (``"train"``): no validation or test fields, no tuning.
    trained : path, optional
        A folder written with ``until="train"``: use its model instead of training.
    train_seed : int, optional
        Seed of the training only: the network's initial weights, the order of the
        training cutouts and dropout (default ``settings.seed``, which also makes the
        fields): another random start on the same data. A run folder holds one model:
        train another start in another ``work_dir``.

    Returns
    -------
    dict
        The manifest (with ``until="train"``: the training record).
    """
    if until not in ("all", "train"):
        raise ValueError(f"until={until!r}: expected 'all' or 'train'")
    from radioseg_utils.postprocess.calibrate import load_calibration
    from radioseg_utils.postprocess.reliability import load_reliability
    from radioseg_utils.workflows import pipeline

    config = (config or DEFAULT_CONFIG).replace(
        seed=settings.seed if train_seed is None else train_seed, band=settings.band,
        integration=settings.integration)
    layout = pipeline.RunLayout.from_parameter(work_dir or generated_dir() / "pretrain")
    lineage = _lineage(config)  # before a model written into out_dir can replace it
    train, held_out, datasets, model_path, timings = prepare(
        settings, config, layout, n_workers=n_workers, time_budget=time_budget,
        held_out=until == "all", trained=trained)
    started = read_sidecar(model_path).get("init_weights_sha256")
    if lineage and started and started != lineage["sha256"]:  # that file was replaced since
        lineage = {"init_weights": config.init_weights, "sha256": started, "command": None,
                   "trained": None, "note": f"{config.init_weights} is no longer the file "
                                            "trained from; its record is not known here"}
    if until == "train":
        return _write_trained(model_path, Path(out_dir), settings=settings, config=config,
                              fields=train, datasets=datasets, timings=timings)
    fitted = tune_and_fit(model_path, held_out, settings, calibration_fields=train)
    threshold, thresholds = fitted["centre_threshold"], fitted["centre_thresholds"]
    calibration, reliability = fitted["calibration"], fitted["reliability"]
    timings.update(fitted["timings"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"unet_{settings.band}.keras"
    save_inference_copy(model_path, target)
    sidecar = read_sidecar(model_path)
    calibration = _copy_companion(model_path, target, sidecar, "calibration", calibration,
                                  path_of=calibration_path, load=load_calibration)
    reliability = _copy_companion(model_path, target, sidecar, "reliability", reliability,
                                  path_of=reliability_path, load=load_reliability)
    write_sidecar(target, sidecar)
    log = model_path.parent / "log.csv"
    manifest: dict[str, Any] = {
        "model": target.name,
        "command": _command(config, trained),
        "trained": _trained_where(model_path, trained),
        **({"continued_from": lineage} if lineage else {}),
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
                             "fields": "val and val_<band>_<h>h (held out)",
                             "trials": fitted["trials"]},
        "calibration": calibration,
        "reliability": reliability,
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


def _copy_companion(model_path: Path, target: Path, sidecar: dict, key: str,
                    meta: dict[str, Any], *, path_of, load) -> dict[str, Any]:
    """Copy the companion file ``key`` (calibration, reliability) of a model to ``target``'s.

    Any old file beside ``target`` is removed; when ``sidecar`` names one, the fitted
    companion is saved beside ``target`` with ``meta`` naming the new files, and
    ``sidecar[key]`` is updated. Returns the provenance to record (``meta`` as given when
    there is none).
    """
    path_of(target).unlink(missing_ok=True)
    if key not in sidecar:
        return meta
    meta = {**meta, "name": path_of(target).name, "model": target.name}
    replace(load(path_of(model_path)), meta=meta).save(path_of(target))
    sidecar[key] = path_of(target).name
    return meta


def _write_trained(model_path: Path, out_dir: Path, *, settings: PretrainSettings,
                   config: TrainConfig, fields: dict, datasets: dict,
                   timings: dict[str, float]) -> dict[str, Any]:
    """Copy a trained model with its log into ``out_dir`` and write its training record."""
    import keras

    from radioseg_utils.core.provenance import versions

    out_dir.mkdir(parents=True, exist_ok=True)
    save_inference_copy(model_path, out_dir / "model.keras")
    shutil.copyfile(model_path.parent / "log.csv", out_dir / "log.csv")
    sidecar = read_sidecar(model_path)
    record = {
        "settings": asdict(settings), "config": config.to_dict(),
        "fields": {name: files.saved_parameters() for name, files in fields.items()},
        "datasets": {name: {k: meta[k] for k in ("size", "stride", "normalisation", "splits",
                                                 "masks", "integration_h") if k in meta}
                     for name, meta in datasets.items()},
        "device": sidecar.get("device"), "backend": keras.backend.backend(),
        "accelerator": _accelerator_name(),
        "epochs_done": sidecar.get("epochs_done"), "best_epoch": sidecar.get("best_epoch"),
        "stopped_by_time_budget": sidecar.get("stopped_by_time_budget", False),
        "init_weights_sha256": sidecar.get("init_weights_sha256"),
        "versions": versions("keras", "jax", "jaxlib", "torch", "tensorflow", "tensorflow-cpu",
                             "numpy"),
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }
    (out_dir / TRAINED_RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def _accelerator_name() -> str:
    """Name of the first accelerator the Keras backend sees ("" on CPU)."""
    from radioseg_utils.model.train import gpu_available

    if not gpu_available():
        return ""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.get_device_name(0)
    return "GPU"


def _command(config: TrainConfig, trained: str | Path | None) -> str:
    """The command line that reproduces a model of ``config`` (its :data:`PRETRAIN_PROFILES` name)."""
    names = [name for name, (_, c) in PRETRAIN_PROFILES.items() if c.profile == config.profile]
    command = "radioseg pretrain" + (f" --profile {names[0]}" if names and names[0] != "default"
                                     else "")
    if trained:
        return f"{command} --until train --out DIR (elsewhere), then {command} --trained DIR"
    return command


def _lineage(config: TrainConfig) -> dict[str, Any] | None:
    """For a warm-started recipe: the model its training starts from, and how that was made.

    The file's SHA-256 and, when it is a model with a ``MANIFEST.json`` beside it (the
    shipped one), that manifest's ``command`` and ``trained`` record (device, epochs,
    timings), so a model continued on a CPU keeps the record of its GPU start.
    """
    if not config.init_weights:
        return None
    from radioseg_utils.io.registry import sha256sum
    from radioseg_utils.model.train import init_weights_file

    path = init_weights_file(config.init_weights)
    manifest = path.parent / "MANIFEST.json"
    earlier = json.loads(manifest.read_text()) if manifest.is_file() else {}
    mine = earlier.get("model") == path.name
    return {"init_weights": config.init_weights,
            "sha256": sha256sum(path),
            "command": earlier.get("command") if mine else None,
            "trained": earlier.get("trained") if mine else None}


def _trained_where(model_path: Path, trained: str | Path | None) -> dict[str, Any]:
    """Where and how the model was trained, for the manifest."""
    if trained:
        record = json.loads((Path(trained) / TRAINED_RECORD).read_text())
        return {key: record.get(key) for key in ("device", "accelerator", "backend",
                                                 "epochs_done", "best_epoch",
                                                 "stopped_by_time_budget",
                                                 "init_weights_sha256", "versions",
                                                 "timings")}
    sidecar = read_sidecar(model_path)
    return {key: sidecar.get(key) for key in ("device", "backend", "epochs_done",
                                              "best_epoch", "stopped_by_time_budget",
                                              "init_weights_sha256")}


def _evaluate(model_path: Path, test, settings: PretrainSettings) -> dict[str, Any]:
    """Scores of the model (with and without its calibration) and of the plain peak finder
    on the held-out field; for a model with a reliability file, the deciles of its
    ``p_real`` against the observed fraction of real detections (``p_real``).

    Also the best pixel F1 that any single global threshold on the raw image reaches
    (chosen on this very field, so an optimistic baseline).
    """
    from radioseg_utils.baselines import run_peaks, run_unet
    from radioseg_utils.core.bands import get_band
    from radioseg_utils.evaluation.evaluate import evaluate_finder, truth_mask
    from radioseg_utils.evaluation.metrics import real_detections
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
        if "p_real" in ev.result.catalogue.colnames:  # fitted on validation fields only
            row["p_real"] = _p_real_check(ev.result.catalogue,
                                          real_detections(ev.match, true_snr=ev.true_snr))
        scores[name] = row
    scores["raw_image_best_threshold_pixel_f1"] = float(best_f1_threshold(sky.data, mask).best.f1)
    return scores
