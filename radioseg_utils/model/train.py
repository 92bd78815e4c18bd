"""Train the segmentation models reproducibly, on CPU or GPU, with resume after interrupts.

:class:`~radioseg_utils.model.config.TrainConfig` holds every setting of a run (model,
loss, optimiser, data description); :data:`~radioseg_utils.model.config.TRAIN_PROFILES` gives the
``quick`` (CPU, minutes) and ``full`` (GPU) settings. :func:`train_model` trains on numpy
arrays or any :class:`keras.utils.PyDataset` (such as the shard loader of
:mod:`radioseg_utils.data.loader`) and writes into ``out_dir``:

=====================  ==================================================================
``checkpoint.keras``   model and optimiser state after the last finished epoch
``checkpoint.json``    epochs done, history, early-stopping / LR-plateau counters, config
``best.weights.h5``    weights of the epoch with the best monitored loss
``log.csv``            one row of losses and metrics per epoch (continued on resume)
``tensorboard/``       TensorBoard event files
``model.keras``        final model (best weights) and its ``model.json`` sidecar
=====================  ==================================================================

Calling :func:`train_model` again on the same ``out_dir`` resumes after the last finished
epoch. Model files and their sidecars of band, normalisation and input size are written
and read by :mod:`radioseg_utils.model.files`.

Nothing here depends on TensorFlow: the same code trains on any Keras 3 backend
(``KERAS_BACKEND=tensorflow``, the default, ``jax`` or ``torch``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from radioseg_utils.core.paths import PRETRAINED_DIR
from radioseg_utils.data.loader import ArrayLoader, ShardLoader
from radioseg_utils.io.registry import sha256sum
from radioseg_utils.model.architectures import build_cae, build_unet, build_vae
from radioseg_utils.model.backend import keras
from radioseg_utils.model.config import TrainConfig
from radioseg_utils.model.files import (
    dtype_policy,
    read_keras_file,
    read_sidecar,
    save_model,
    sidecar_path,
)
from radioseg_utils.model.losses import MaskCentreLoss, get_loss, keras_pixel_scores
from radioseg_utils.model.shapes import check_input_size

__all__ = [
    "gpu_available",
    "effective_batch_size",
    "TimeBudget",
    "build_model",
    "init_weights_file",
    "warm_start",
    "TrainResult",
    "train_model",
    "train_from_shards",
]

logger = logging.getLogger(__name__)

#: Config fields that a warm start's model must share with the config (the architecture).
_ARCHITECTURE_KEYS = ("model", "depth", "base_filters", "batch_norm", "centre_head",
                      "latent_dim")

#: Config fields that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = ("epochs", "tensorboard")

_CHECKPOINT = "checkpoint.keras"
_STATE = "checkpoint.json"
_BEST = "best.weights.h5"
_CSV = "log.csv"
_TENSORBOARD = "tensorboard"
_MODEL = "model.keras"


def gpu_available() -> bool:
    """Whether the Keras backend in use sees at least one GPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return bool(importlib.import_module("tensorflow").config.list_physical_devices("GPU"))
    if backend == "jax":
        return any(d.platform == "gpu" for d in importlib.import_module("jax").devices())
    if backend == "torch":
        return bool(importlib.import_module("torch").cuda.is_available())
    return False


def _mixed_precision(config: TrainConfig) -> bool:
    return config.mixed_precision == "on" or (config.mixed_precision == "auto"
                                              and gpu_available())


def effective_batch_size(config: TrainConfig) -> int:
    """Batch size to use here: ``gpu_batch_size`` when a GPU is visible, else ``batch_size``."""
    return config.gpu_batch_size if gpu_available() else config.batch_size


def build_model(config: TrainConfig) -> keras.Model:
    """Build the (uncompiled) model that ``config`` describes, under the current dtype policy."""
    if config.model == "unet":
        return build_unet(depth=config.depth, base_filters=config.base_filters,
                          batch_norm=config.batch_norm, dropout=config.dropout,
                          centre_head=config.centre_head)
    if config.model == "cae":
        return build_cae(config.tile_size, depth=config.depth,
                         base_filters=config.base_filters, batch_norm=config.batch_norm,
                         dropout=config.dropout)
    return build_vae(config.tile_size, latent_dim=config.latent_dim, depth=config.depth,
                     base_filters=config.base_filters, kl_weight=config.kl_weight,
                     seed=config.seed)


def init_weights_file(value: str) -> Path:
    """The model file that :attr:`TrainConfig.init_weights` names.

    Parameters
    ----------
    value : str
        A path to a ``.keras`` model, or the name of one in the package's ``pretrained/``
        folder (e.g. ``"unet_B1.keras"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If it is neither.
    """
    for path in (Path(value), PRETRAINED_DIR / value):
        if path.is_file():
            return path
    raise FileNotFoundError(f"init_weights {value!r}: no such model file (neither a path nor "
                            f"a model in the package's pretrained/ folder)")


def warm_start(model: keras.Model, config: TrainConfig) -> str:
    """Give ``model`` the weights of the model file ``config.init_weights``.

    Parameters
    ----------
    model : keras.Model
        A model built from ``config`` (:func:`build_model`).
    config : TrainConfig
        Its config, with ``init_weights`` set.

    Returns
    -------
    str
        SHA-256 of the model file the weights came from (recorded in the sidecar, as the
        name alone may later point to another file).

    Raises
    ------
    FileNotFoundError
        If the file or its sidecar is missing.
    ValueError
        If that model has another architecture (the message names what differs).
    """
    path = init_weights_file(config.init_weights)
    if not sidecar_path(path).is_file():
        raise FileNotFoundError(f"init_weights {path.name}: its sidecar {sidecar_path(path).name} "
                                "is missing, so its architecture cannot be checked")
    saved = read_sidecar(path).get("config", {})
    wanted = config.to_dict()
    differ = [f"{k} {saved.get(k)!r} (config: {wanted[k]!r})" for k in _ARCHITECTURE_KEYS
              if saved.get(k) != wanted[k]]
    if differ:
        raise ValueError(f"init_weights {path.name} has another architecture: "
                         + ", ".join(differ))
    source = read_keras_file(path, compile=False)
    model.set_weights(source.get_weights())
    digest = sha256sum(path)
    logger.info("warm start from %s (sha256 %s)", path, digest[:12])
    return digest


@dataclass
class TrainResult:
    """What :func:`train_model` did.

    Attributes
    ----------
    model : keras.Model
        Trained model with the weights of the best epoch.
    history : dict of str to list of float
        Per-epoch logs of all epochs done so far, including those before a resume.
    epochs_done : int
        Epochs finished in total.
    initial_epoch : int
        Epochs already done when this call started (0 for a fresh run).
    stopped_early : bool
        Whether early stopping ended the run.
    best_epoch : int
        0-based epoch of the best monitored loss.
    scores : dict of str to float
        Logs of the best epoch (loss, iou, precision, recall, and ``val_`` versions).
    model_path : pathlib.Path
        The saved ``model.keras`` (sidecar ``model.json`` beside it).
    out_dir : pathlib.Path
        Folder with checkpoints and logs.
    device : str
        ``"GPU"`` or ``"CPU"``.
    mixed_precision : bool
        Whether the model computes in float16.
    batch_size : int
        Batch size used for numpy inputs.
    seconds : float
        Wall-clock time of this call.
    """

    model: keras.Model
    history: dict[str, list[float]]
    epochs_done: int
    initial_epoch: int
    stopped_early: bool
    best_epoch: int
    scores: dict[str, float]
    model_path: Path
    out_dir: Path
    device: str
    mixed_precision: bool
    batch_size: int
    seconds: float = 0.0


def _as_loader(data, *, batch_size: int, shuffle: bool, seed: int,
               what: str) -> keras.utils.PyDataset:
    """Turn ``(images, masks)`` numpy arrays into a batch loader; pass loaders through."""
    if isinstance(data, keras.utils.PyDataset):
        return data
    if not (isinstance(data, Sequence) and len(data) == 2):
        raise TypeError(f"{what}: expected a keras.utils.PyDataset or an (images, masks) pair, "
                        f"got {type(data).__name__}")
    return ArrayLoader(*data, batch_size=batch_size, shuffle=shuffle, seed=seed, what=what)


def _check_loader(loader: keras.utils.PyDataset, config: TrainConfig, *, what: str) -> None:
    """Check cutout size and channels of the first batch against ``config``."""
    if len(loader) == 0:
        raise ValueError(f"{what}: no batches")
    images, targets = loader[0][:2]
    shape = tuple(np.shape(images))
    check_input_size(shape, multiple=config.size_multiple, size=config.input_size, what=what)
    if shape[1:3] != (config.tile_size, config.tile_size):
        raise ValueError(f"{what}: cutouts are {shape[1]}x{shape[2]} px but "
                         f"TrainConfig.tile_size is {config.tile_size}; set "
                         f"tile_size={shape[1]} so the model sidecar records the truth")
    if shape[3] != 1:
        raise ValueError(f"{what}: cutouts have {shape[3]} channels, the models take 1")
    channels = np.shape(targets)[-1]
    if config.model == "unet" and channels != len(config.targets):
        raise ValueError(f"{what}: targets have {channels} channel(s) but the model learns "
                         f"{len(config.targets)} ({', '.join(config.targets)})")


def _plain(value: Any) -> int | float:
    """A callback counter as a JSON number (int stays int)."""
    return value if isinstance(value, int) else float(value)


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


class TimeBudget(keras.callbacks.Callback):
    """Stop training before the next epoch would overrun a wall-clock budget.

    After each epoch the time left is compared with the longest epoch so far; when
    another epoch would not fit, ``model.stop_training`` is set (the epoch just finished
    is kept and checkpointed). Used to fit a run into a lent machine's time.

    Parameters
    ----------
    seconds : float
        Wall-clock budget from the start of training (> 0).
    clock : callable
        Monotonic clock in seconds (for tests).
    """

    def __init__(self, seconds: float, clock=time.perf_counter):
        super().__init__()
        if not seconds > 0:
            raise ValueError(f"time budget must be > 0 seconds, got {seconds!r}")
        self.seconds = float(seconds)
        self.clock = clock
        self.exhausted = False

    def on_train_begin(self, logs=None):
        self.start = self.epoch_start = self.clock()
        self.longest = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self.longest = max(self.longest, now - self.epoch_start)
        if now - self.start + self.longest > self.seconds:
            self.exhausted = True
            self.model.stop_training = True
            logger.info("time budget of %.0f s reached after epoch %d", self.seconds, epoch + 1)


class _Checkpoint(keras.callbacks.Callback):
    """Save the model and a JSON state after every epoch; restore counters on resume.

    Must come after the EarlyStopping / ReduceLROnPlateau / :class:`TimeBudget` callbacks
    in the list, so its ``on_train_begin`` runs after they reset themselves and its
    ``on_epoch_end`` sees their updated counters and decisions.
    """

    def __init__(self, out_dir: Path, state: dict, *, monitor: str,
                 early_stopping: keras.callbacks.EarlyStopping,
                 plateau: keras.callbacks.ReduceLROnPlateau | None,
                 budget: TimeBudget | None = None):
        super().__init__()
        self.out_dir = out_dir
        self.state = state
        self.monitor = monitor
        self.counters = {"early_stopping": early_stopping, "plateau": plateau}
        self.budget = budget

    def on_train_begin(self, logs=None):
        for key, callback in self.counters.items():
            for attr, value in self.state.get(key, {}).items():
                if callback is not None:
                    setattr(callback, attr, value)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        history = self.state["history"]
        for key in set(history) | set(logs):
            history.setdefault(key, [math.nan] * epoch)[epoch:] = [logs.get(key, math.nan)]
        current = logs.get(self.monitor, math.inf)
        if current < self.state["best_value"]:
            self.state.update(best_value=current, best_epoch=epoch)
            self.model.save_weights(self.out_dir / _BEST)
        es = self.counters["early_stopping"]
        self.state["stopped_early"] = bool(self.model.stop_training and es.stopped_epoch)
        if self.budget is not None and self.budget.exhausted:
            self.state["stopped_by_time_budget"] = True
        for key, callback in self.counters.items():
            if callback is not None:
                self.state[key] = {a: _plain(getattr(callback, a)) for a in
                                   ("wait", "best", "cooldown_counter", "best_epoch")
                                   if getattr(callback, a, None) is not None}
        self.state["epochs_done"] = epoch + 1
        tmp = self.out_dir / ("partial-" + _CHECKPOINT)
        self.model.save(tmp)
        os.replace(tmp, self.out_dir / _CHECKPOINT)
        _write_json(self.out_dir / _STATE, self.state)


class _EpochBar(keras.callbacks.Callback):
    """A tqdm progress bar over epochs with the latest losses."""

    def __init__(self, total: int, initial: int, desc: str):
        super().__init__()
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        keys = ("loss", "val_loss", "val_iou")
        self.bar.set_postfix({k: f"{float(logs[k]):.4f}" for k in keys if k in (logs or {})})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


def _fresh_state(config: TrainConfig) -> dict:
    return {"config": config.to_dict(), "epochs_done": 0, "history": {},
            "best_value": math.inf, "best_epoch": -1, "stopped_early": False}


def _load_state(out_dir: Path, config: TrainConfig) -> dict | None:
    """Read the checkpoint state of ``out_dir``; error if it was made with another config."""
    path = out_dir / _STATE
    if not (path.is_file() and (out_dir / _CHECKPOINT).is_file()):
        return None
    state = json.loads(path.read_text())
    state["best_value"] = float(state["best_value"])
    old, new = TrainConfig.completed(state["config"]), config.to_dict()
    changed = [k for k in new if k not in _RESUMABLE_CHANGES and old.get(k) != new[k]]
    if changed:
        diffs = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in changed)
        raise ValueError(f"checkpoint in {out_dir} was made with another config ({diffs}); "
                         "pass resume=False to start again, or use another out_dir")
    state["config"] = new
    return state


def _callbacks(config: TrainConfig, out_dir: Path, state: dict, *, monitor: str,
               progress: bool, time_budget: float | None) -> list[keras.callbacks.Callback]:
    early = keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience)
    plateau = None
    if config.lr_schedule == "plateau":
        plateau = keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=max(1, config.patience // 2),
            min_lr=config.learning_rate * 1e-3)
        schedule = plateau
    elif config.lr_schedule == "cosine":
        lr0, n = config.learning_rate, config.epochs
        schedule = keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: 0.5 * lr0 * (1.0 + math.cos(math.pi * epoch / n)))
    callbacks = [early] + ([schedule] if config.lr_schedule != "constant" else [])
    callbacks.append(keras.callbacks.CSVLogger(str(out_dir / _CSV), append=True))
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        logger.warning("the tensorboard package is not installed: no TensorBoard logs")
    elif config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(out_dir / _TENSORBOARD),
                                                     write_graph=False))
    budget = TimeBudget(time_budget) if time_budget is not None else None
    if budget is not None:
        callbacks.append(budget)
    callbacks.append(_Checkpoint(out_dir, state, monitor=monitor, early_stopping=early,
                                 plateau=plateau, budget=budget))
    if progress:
        callbacks.append(_EpochBar(config.epochs, state["epochs_done"],
                                   f"train {config.model} ({config.profile})"))
    return callbacks


def _close(callbacks: Sequence[keras.callbacks.Callback]) -> None:
    """Close the files and bars that our callbacks hold open."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.CSVLogger) and getattr(
                callback, "csv_file", None) is not None:
            callback.csv_file.close()
        elif isinstance(callback, _EpochBar):
            callback.bar.close()


def _truncate_csv(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` epochs of a CSV log (drop unfinished ones)."""
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[: rows + 1]))


def train_model(
    config: TrainConfig,
    train_data,
    val_data=None,
    *,
    out_dir: str | os.PathLike,
    resume: bool = True,
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    time_budget: float | None = None,
) -> TrainResult:
    """Train the model of ``config``, checkpointing every epoch, resuming if possible.

    Parameters
    ----------
    config : TrainConfig
        Settings of the run.
    train_data, val_data : keras.utils.PyDataset or (images, masks) pair
        Loaders of ``(image, mask)`` float32 ``(B, H, W, 1)`` batches (e.g.
        :class:`~radioseg_utils.data.loader.ShardLoader`), or numpy arrays
        ``(N, H, W[, 1])`` that are shuffled (seeded) and batched with
        :func:`effective_batch_size`. Without ``val_data`` the training loss is monitored.
    out_dir : path-like
        Folder for checkpoints, logs and the final model (created if needed).
    resume : bool
        Continue from the checkpoint in ``out_dir`` if there is one (the config must be
        the same except ``epochs``); ``False`` starts again and deletes it.
    progress : bool
        Show a tqdm progress bar over epochs.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, run after the checkpoint of each epoch.
    time_budget : float, optional
        Wall-clock seconds this call may train (:class:`TimeBudget`); a run stopped by it
        is finished (``stopped_by_time_budget`` in the sidecar) and is not resumed.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        If the cutouts do not fit the model (size, multiple of ``2**depth``, channels) or
        the checkpoint in ``out_dir`` was made with another config.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mixed = _mixed_precision(config)
    batch_size = effective_batch_size(config)
    train_ds = _as_loader(train_data, batch_size=batch_size, shuffle=True, seed=config.seed,
                          what="train_data")
    _check_loader(train_ds, config, what="train_data")
    val_ds = None
    if val_data is not None:
        val_ds = _as_loader(val_data, batch_size=batch_size, shuffle=False,
                            seed=config.seed, what="val_data")
        _check_loader(val_ds, config, what="val_data")
    monitor = "val_loss" if val_ds is not None else "loss"

    state = _load_state(out_dir, config) if resume else None
    if state is None:
        for name in (_CHECKPOINT, _STATE, _BEST, _CSV):
            (out_dir / name).unlink(missing_ok=True)
        state = _fresh_state(config)
    initial = state["epochs_done"]
    _truncate_csv(out_dir / _CSV, initial)
    keras.utils.set_random_seed(config.seed + initial)
    with dtype_policy("mixed_float16" if mixed else "float32"):
        if initial:
            logger.info("resuming %s from epoch %d in %s", config.model, initial, out_dir)
            model = keras.saving.load_model(out_dir / _CHECKPOINT)
        else:
            model = build_model(config)
            if config.init_weights:
                state["init_weights_sha256"] = warm_start(model, config)
            loss = (MaskCentreLoss(config.loss, config.centre_weight,
                                   pair_beta=config.centre_pair_beta)
                    if config.centre_head else get_loss(config.loss))
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss,
                          metrics=keras_pixel_scores())
    finished = state["stopped_early"] or state.get("stopped_by_time_budget", False)
    if initial < config.epochs and not finished:
        own = _callbacks(config, out_dir, state, monitor=monitor, progress=progress,
                         time_budget=time_budget)
        try:
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                      initial_epoch=initial, verbose=0, shuffle=False,
                      callbacks=own + list(callbacks))
        finally:  # an interrupt skips on_train_end: close the CSV log and progress bar
            _close(own)
    if (out_dir / _BEST).is_file():
        model.load_weights(out_dir / _BEST)
    best = state["best_epoch"]
    scores = {k: v[best] for k, v in state["history"].items()} if best >= 0 else {}
    device = "GPU" if gpu_available() else "CPU"
    metadata = {**_sidecar_fields(config), "scores": scores,
                "epochs_done": state["epochs_done"], "best_epoch": best,
                "stopped_early": state["stopped_early"],
                "stopped_by_time_budget": state.get("stopped_by_time_budget", False),
                **({"init_weights_sha256": state["init_weights_sha256"]}
                   if "init_weights_sha256" in state else {}),
                "device": device, "backend": keras.backend.backend(),
                "mixed_precision": mixed, "config": config.to_dict()}
    model_path = save_model(model, out_dir / _MODEL, metadata=metadata)
    return TrainResult(model=model, history=state["history"],
                       epochs_done=state["epochs_done"], initial_epoch=initial,
                       stopped_early=state["stopped_early"], best_epoch=best, scores=scores,
                       model_path=model_path, out_dir=out_dir, device=device,
                       mixed_precision=mixed, batch_size=batch_size,
                       seconds=time.perf_counter() - start)


def _sidecar_fields(config: TrainConfig) -> dict[str, Any]:
    """The data-description fields that :func:`radioseg_utils.model.files.load_model` checks."""
    params = {k: getattr(config, k) for k in ("depth", "base_filters", "batch_norm", "dropout")}
    if config.model == "vae":
        params.update(latent_dim=config.latent_dim, kl_weight=config.kl_weight)
    return {"model": config.model, "params": params, "loss": config.loss,
            "band": config.band, "bands": list(config.bands), "outputs": list(config.targets),
            "integration": config.integration, "normalisation": config.normalisation,
            "tile_size": config.tile_size, "training_set": config.training_set,
            "seed": config.seed}


def train_from_shards(
    config: TrainConfig,
    shard_dir: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    out_dir: str | os.PathLike,
    resume: bool = True,
    progress: bool = True,
    time_budget: float | None = None,
) -> TrainResult:
    """Train on the ``train``/``val`` splits of shards written by the dataset module.

    The band, integration and cutout size recorded in the shards' ``metadata.json``
    replace those of ``config`` (the data is the truth; with several folders, the first
    gives band and integration and ``bands`` lists them all); each folder's images are
    normalised with ``config.normalisation`` and its own noise. The targets are the mask,
    and the centre map for ``config.centre_head``. The training split is augmented and
    shuffled with ``config.seed``; the batch size is :func:`effective_batch_size`. An empty
    ``config.training_set`` becomes the shard folder name(s). Other parameters as in
    :func:`train_model`.

    Raises
    ------
    FileNotFoundError
        If a folder is not a shard folder.
    """
    folders = ([Path(shard_dir)] if isinstance(shard_dir, (str, os.PathLike))
               else [Path(f) for f in shard_dir])
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"dataset shard folder {folder} does not exist")
    from radioseg_utils.data.shards import read_metadata

    metas = [read_metadata(folder) for folder in folders]
    meta = metas[0]
    data = {"band": meta["band"], "bands": tuple(m["band"] for m in metas),
            "tile_size": int(meta["size"]),
            "integration": meta.get("integration_h") or config.integration,
            "training_set": config.training_set or "+".join(f.name for f in folders)}
    changed = {k: v for k, v in data.items() if getattr(config, k) != v}
    if changed:
        logger.info("config fields taken from the dataset metadata: %s", changed)
    config = config.replace(**data)
    batch_size = effective_batch_size(config)
    options = {"batch_size": batch_size, "seed": config.seed,
               "normalisation": config.normalisation, "targets": config.targets}
    train = ShardLoader(folders, "train", augment=True, shuffle=True, **options)
    val = ShardLoader(folders, "val", augment=False, shuffle=False, **options)
    return train_model(config, train, val, out_dir=out_dir, resume=resume, progress=progress,
                       time_budget=time_budget)
