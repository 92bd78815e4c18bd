"""Save and load trained models with a JSON sidecar describing the data they expect.

A model is saved as ``<name>.keras`` (architecture, weights, optimiser, loss) plus
``<name>.json``, the sidecar: model parameters, the band, integration, input normalisation
and cutout size of the training data, the training set and seed, scores, the versions of
radioseg / TensorFlow / Keras / numpy and the git commit. :func:`load_model` reads both and
raises :class:`ModelMismatchError` when the model is applied to data it was not trained
for (another band, another normalisation, another fixed input size).

Examples
--------
>>> from radioseg_utils.model.architectures import build_unet
>>> path = save_model(build_unet(depth=2, base_filters=4), tmp / "m.keras",
...                   metadata={"band": "B1", "normalisation": "minmax"})  # doctest: +SKIP
>>> model, meta = load_model(path, expect_band="B2")  # doctest: +SKIP
Traceback (most recent call last):
ModelMismatchError: model m.keras does not match the data: trained on band B1, data is band B2
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import radioseg_utils.model.architectures  # noqa: F401  (registers the custom layers)
import radioseg_utils.model.losses  # noqa: F401  (registers the custom losses and metrics)
from radioseg_utils.core.bands import get_band
from radioseg_utils.core.paths import PRETRAINED_DIR
from radioseg_utils.core.provenance import git_commit, versions
from radioseg_utils.model.backend import keras

__all__ = [
    "SIDECAR_FORMAT",
    "ModelMismatchError",
    "sidecar_path",
    "dtype_policy",
    "save_model",
    "save_inference_copy",
    "read_keras_file",
    "load_model",
    "DEFAULT_MODEL",
    "load_segmenter",
    "load_model_cached",
    "read_sidecar",
    "write_sidecar",
    "COMPANION_KEYS",
    "companion_file",
    "model_files",
]

#: Value of the ``format`` key of every sidecar written by :func:`save_model`.
SIDECAR_FORMAT = "radioseg-model/1"
#: Sidecar keys that name a file beside the model: the size and flux calibration
#: (:mod:`radioseg_utils.postprocess.calibrate`) and the per-source reliability
#: (:mod:`radioseg_utils.postprocess.reliability`).
COMPANION_KEYS: tuple[str, ...] = ("calibration", "reliability")
#: Keys every sidecar must have: what :func:`load_model` checks the data against.
_REQUIRED = ("band", "normalisation")


class ModelMismatchError(ValueError):
    """Raised when a saved model is loaded for data it was not trained on."""


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set the global Keras dtype policy (``"float32"``, ``"mixed_float16"``) for a block.

    Models built or loaded in the block compute in that policy; a mixed-precision model
    must be loaded under its policy for its loss-scaling optimiser to be restored.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _keras_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.suffix == ".keras" else path.with_name(path.name + ".keras")


def sidecar_path(path: str | os.PathLike) -> Path:
    """Return the sidecar path of a model path: ``x.keras`` -> ``x.json``."""
    return _keras_path(path).with_suffix(".json")


def save_model(model: keras.Model, path: str | os.PathLike, *,
               metadata: Mapping[str, Any]) -> Path:
    """Save ``model`` as ``<name>.keras`` and its description as ``<name>.json``.

    Parameters
    ----------
    model : keras.Model
        Model to save.
    path : path-like
        Destination; ``.keras`` is appended if missing. Existing files are replaced.
    metadata : mapping
        JSON-serialisable description; must contain ``band`` and ``normalisation`` of the
        training data, optionally ``bands`` (every band trained on, when several) and
        ``outputs`` (channel names, e.g. ``["mask", "centre"]``), and usually ``model``,
        ``params``, ``integration``, ``tile_size``,
        ``training_set``, ``seed`` and ``scores``. The band is stored by name (``"B1"``).
        ``format``, ``input_shape``, ``dtype_policy``, ``versions``, ``git_commit`` and
        ``saved_utc`` are added.

    Returns
    -------
    pathlib.Path
        Path of the ``.keras`` file.

    Raises
    ------
    ValueError
        If ``metadata`` lacks a required key or cannot be written as JSON.
    """
    missing = [k for k in _REQUIRED if k not in metadata]
    if missing:
        raise ValueError(f"save_model: metadata must give the {' and '.join(missing)} of "
                         "the training data, so loading can check new data against it")
    path = _keras_path(path)
    sidecar = {
        "format": SIDECAR_FORMAT,
        **metadata,
        "band": get_band(metadata["band"]).name,
        "input_shape": list(model.input_shape[1:]),
        "dtype_policy": model.dtype_policy.name,
        "versions": versions("tensorflow", "tensorflow-cpu", "keras", "numpy"),
        "git_commit": git_commit(),
        "saved_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        text = json.dumps(sidecar, indent=2)
    except TypeError as exc:
        raise ValueError(f"save_model: metadata is not JSON-serialisable: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    sidecar_path(path).write_text(text + "\n")
    return path


#: Placeholder initialiser of the layers while a saved model is rebuilt (:func:`read_keras_file`).
_ZEROS = {"module": "keras.initializers", "class_name": "Zeros", "config": {},
          "registered_name": None}


def _initialiser_keys(layer_config: Mapping[str, Any]) -> list[str]:
    return [k for k, v in layer_config.items() if k.endswith("_initializer") and v is not None]


def read_keras_file(path: str | os.PathLike, *, compile: bool = True) -> keras.Model:
    """``keras.saving.load_model(path, compile=compile)``, without drawing initial weights.

    Keras builds every layer of a saved model with its initialisers before the stored
    weights replace them; under JAX each random initialiser is an XLA compilation (about
    24 s for the shipped U-Net on 2 CPU cores, most of a CPU start-up). Here the layers
    are built with zeros, the weights read from the file, and each layer's own
    initialisers put back, so the model, its config and its outputs are those
    ``load_model`` gives.

    Parameters
    ----------
    path : path-like
        A ``.keras`` archive (what :func:`save_model` writes); a model that is not
        functional is read by ``load_model`` itself.
    compile : bool
        Compile the model with its saved loss, metrics and optimiser, as ``load_model``
        does; the optimiser starts afresh (to resume a training, ``load_model`` restores
        its state).

    Returns
    -------
    keras.Model

    Raises
    ------
    ValueError
        If ``path`` is not a zip archive with a Keras ``config.json`` (a truncated or
        foreign file).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable .keras model archive ({exc})") from None
    layers = config.get("config", {}).get("layers")
    if not isinstance(layers, list):  # not a functional model: Keras' own way
        return keras.saving.load_model(path, compile=compile)
    kept = {layer["config"]["name"]: {k: layer["config"][k]
                                      for k in _initialiser_keys(layer["config"])}
            for layer in layers}
    for layer in layers:
        layer["config"].update(dict.fromkeys(kept[layer["config"]["name"]], _ZEROS))
    compile_config = config.pop("compile_config", None)
    model = keras.saving.deserialize_keras_object(config)
    model.load_weights(path)
    for layer in model.layers:
        for key, value in kept.get(layer.name, {}).items():
            setattr(layer, key, keras.initializers.get(value))
    if compile and compile_config:
        model.compile_from_config(compile_config)
    return model


def save_inference_copy(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy a saved model and its sidecar without the optimiser state.

    A checkpoint keeps the Adam moments to resume training (three times the weights);
    the copy that is shipped or carried back from another machine only predicts. The
    weights and outputs are unchanged.

    Returns
    -------
    pathlib.Path
        The written ``.keras`` file.
    """
    source, target = _keras_path(source), _keras_path(target)
    meta = json.loads(sidecar_path(source).read_text())
    with dtype_policy(meta.get("dtype_policy", "float32")):
        model = read_keras_file(source, compile=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save(target)
    sidecar_path(target).write_text(json.dumps(meta, indent=2) + "\n")
    return target


def _input_side(expect_input: int | tuple[int, ...]) -> tuple[int, int, int | None]:
    shape = (expect_input,) * 2 if isinstance(expect_input, int) else tuple(expect_input)
    if len(shape) not in (2, 3):
        raise ValueError(f"expect_input must be a side, (H, W) or (H, W, C), got {expect_input!r}")
    return int(shape[0]), int(shape[1]), (int(shape[2]) if len(shape) == 3 else None)


def _mismatches(meta: dict, input_shape: tuple, *, band, normalisation,
                expect_input) -> list[str]:
    problems = []
    trained = meta.get("bands") or [meta["band"]]
    if band is not None and get_band(band).name not in trained:
        problems.append(f"trained on band {'/'.join(trained)}, data is band {get_band(band).name}")
    if normalisation is not None and normalisation != meta["normalisation"]:
        problems.append(f"trained on {meta['normalisation']!r}-normalised input, data is "
                        f"{normalisation!r}-normalised")
    if expect_input is not None:
        height, width, channels = _input_side(expect_input)
        h, w, c = input_shape
        if h is not None and (height, width) != (h, w):
            problems.append(f"model takes {h}x{w} px cutouts, data is {height}x{width} px")
        if channels is not None and channels != c:
            problems.append(f"model takes {c} channel(s), data has {channels}")
    return problems


def load_model(
    path: str | os.PathLike,
    *,
    expect_band: str | None = None,
    expect_normalisation: str | None = None,
    expect_input: int | tuple[int, ...] | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Load a model saved by :func:`save_model` and check it suits the data.

    Parameters
    ----------
    path : path-like
        The ``.keras`` file (suffix optional); its ``.json`` sidecar must be beside it.
    expect_band : str, optional
        Band of the data the model will be applied to (any form :func:`get_band` takes).
    expect_normalisation : str, optional
        Normalisation name of that data.
    expect_input : int or tuple, optional
        Cutout side, ``(H, W)`` or ``(H, W, C)`` of that data. Fully convolutional models
        take any size; fixed-size models (CAE, VAE) only their own.

    Returns
    -------
    model : keras.Model
        The compiled model.
    metadata : dict
        The sidecar.

    Raises
    ------
    FileNotFoundError
        If the model or its sidecar is missing.
    ModelMismatchError
        Naming every mismatch, e.g. "trained on band B1, data is band B2".
    """
    path = _keras_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(f"model sidecar {side} not found: without it the band and "
                                f"normalisation of {path.name} cannot be checked")
    meta = json.loads(side.read_text())
    missing = [k for k in _REQUIRED if k not in meta]
    missing += [] if "input_shape" in meta else ["input_shape"]
    if meta.get("format") != SIDECAR_FORMAT or missing:
        raise ValueError(f"{side} is not a radioseg model sidecar (format "
                         f"{meta.get('format')!r}, missing {missing})")
    problems = _mismatches(meta, tuple(meta["input_shape"]), band=expect_band,
                           normalisation=expect_normalisation, expect_input=expect_input)
    if problems:
        raise ModelMismatchError(f"model {path.name} does not match the data: "
                                 + "; ".join(problems))
    with dtype_policy(meta.get("dtype_policy", "float32")):
        return read_keras_file(path), meta


#: Pretrained model shipped with the package (used when no model is given).
DEFAULT_MODEL: Path = PRETRAINED_DIR / "unet_B1.keras"


def load_segmenter(
    model: str | Path | Callable[[np.ndarray], np.ndarray],
    band: str,
    normalisation: str | None = None,
) -> tuple[Callable[[np.ndarray], np.ndarray], str | None]:
    """``(model, normalisation)``, loaded once to segment several images.

    A ``.keras`` file is read with its sidecar by :func:`radioseg_utils.model.files.load_model`,
    checked against ``band``, and ``normalisation`` defaults to (and must agree with) the
    sidecar's; a loaded model or callable is returned unchanged with ``normalisation``
    (None: no normalisation). Raises FileNotFoundError for a missing file and
    :class:`~radioseg_utils.model.files.ModelMismatchError` for another band or normalisation.

    With the TensorFlow backend a model read from a file predicts through XLA
    (``jit_compile``), which Keras leaves off on a CPU: 1.12x faster tiles on 2 CPU
    cores, probabilities within 2e-6 (``benchmarks/inference_options.py``). JAX compiles
    anyway.
    """
    if not isinstance(model, (str, Path)):
        return model, normalisation
    path = Path(model)
    if not path.with_suffix(".keras").is_file() and not path.is_file():
        hint = (" (the package's pretrained model is missing: reinstall radioseg or "
                "recreate it with `radioseg pretrain`)") if path == DEFAULT_MODEL else ""
        raise FileNotFoundError(f"model file {path} not found{hint}")
    loaded, meta = load_model(path, expect_band=band, expect_normalisation=normalisation)
    if keras.backend.backend() == "tensorflow":
        loaded.jit_compile = True
    return loaded, meta["normalisation"]


@functools.lru_cache(maxsize=4)
def _load_file_cached(path: str, mtime_ns: int, band: str, normalisation: str | None):
    return load_segmenter(Path(path), band, normalisation)


def load_model_cached(model, band: str, normalisation: str | None = None):
    """:func:`load_segmenter`, reading each model file once per process (a file changed
    on disk is read again): cluster workers and the finder grid run many images with the
    same model."""
    if isinstance(model, (str, Path)) and Path(model).is_file():
        path = Path(model).resolve()
        return _load_file_cached(str(path), path.stat().st_mtime_ns, band, normalisation)
    return load_segmenter(model, band, normalisation)


def read_sidecar(model) -> dict:
    """The JSON sidecar of a model file (``{}`` for a callable or a file without one)."""
    if not isinstance(model, (str, Path)):
        return {}
    side = sidecar_path(model)
    return json.loads(side.read_text()) if side.is_file() else {}


def write_sidecar(model: str | os.PathLike, sidecar: Mapping[str, Any]) -> Path:
    """Write ``sidecar`` as the JSON sidecar of the model file ``model``; return its path.

    The sidecar written by :func:`save_model` is read with :func:`read_sidecar`, changed
    (tuned thresholds, the calibration and reliability files) and written back here.
    """
    side = sidecar_path(model)
    side.write_text(json.dumps(dict(sidecar), indent=2) + "\n")
    return side


def companion_file(model: str | Path, sidecar: dict, key: str) -> Path | None:
    """The file a sidecar names under ``key`` (one of :data:`COMPANION_KEYS`), beside the
    model (None if it names none).

    Raises
    ------
    ValueError
        If ``key`` is not a companion key.
    """
    if key not in COMPANION_KEYS:
        raise ValueError(f"unknown companion file {key!r}; expected one of {COMPANION_KEYS}")
    name = sidecar.get(key)
    return None if name is None else Path(model).resolve().parent / name


def model_files(model: str | Path) -> list[Path]:
    """The files a model path stands for: the ``.keras`` file, its JSON sidecar (those that
    exist) and the companion files the sidecar names (calibration, reliability)."""
    path = Path(model)
    path = path if path.suffix == ".keras" else path.with_suffix(".keras")
    files = [f for f in (path, path.with_suffix(".json")) if f.is_file()]
    sidecar = read_sidecar(path)
    named = (companion_file(path, sidecar, key) for key in COMPANION_KEYS)
    return [*files, *(f for f in named if f is not None)]
