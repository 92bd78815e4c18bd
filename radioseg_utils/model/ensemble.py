"""Ensembles: several trained segmenters saved as one model that averages their maps.

Starts of one recipe that differ only in their training seed find different faint
sources (``benchmarks/results/cpu_scratch_seed1/``); the mean of their probability maps
keeps what they agree on. :func:`build_ensemble` wraps the members in one functional
Keras model, so an ensemble file is read, checked, predicted with and tuned exactly as
a single model is (:func:`radioseg_utils.model.files.load_model`), on any backend.

Examples
--------
>>> from radioseg_utils.model.architectures import build_unet
>>> members = [build_unet(depth=1, base_filters=2, name=f"m{i}") for i in range(2)]
>>> build_ensemble(members).output_shape
(None, None, None, 1)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radioseg_utils.core.paths import OutputExistsError
from radioseg_utils.model.backend import keras
from radioseg_utils.model.files import dtype_policy, load_model, save_model

__all__ = ["MEMBER_PREFIX", "SHARED_KEYS", "build_ensemble", "save_ensemble"]

#: Name of member ``i`` inside an ensemble (``member_0``, ``member_1``, ...).
MEMBER_PREFIX = "member_"
#: Sidecar keys every member must agree on: what the data must be (band, normalisation,
#: integration), what the output channels mean, the cutout size trained on, and the
#: input shape and dtype policy of the network.
SHARED_KEYS: tuple[str, ...] = ("band", "bands", "outputs", "integration", "normalisation",
                                "tile_size", "input_shape", "dtype_policy")
#: Sidecar keys recorded for each member: where and how it was trained.
_MEMBER_KEYS = ("model", "params", "seed", "training_set", "device", "backend",
                "epochs_done", "best_epoch", "git_commit", "saved_utc")


def build_ensemble(members: Sequence[keras.Model], *, name: str = "ensemble") -> keras.Model:
    """One functional model whose output is the mean of the members' outputs.

    Parameters
    ----------
    members : sequence of keras.Model
        At least two models with the same input and output shapes; each is renamed
        ``member_<i>`` inside the ensemble (a copy sharing the member's layers).
    name : str
        Name of the ensemble model.

    Returns
    -------
    keras.Model
        ``(B, H, W, C) -> (B, H, W, K)``, the element-wise mean of the members' outputs.

    Raises
    ------
    ValueError
        If fewer than two members are given or their shapes differ.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
    shapes = {(tuple(m.input_shape[1:]), tuple(m.output_shape[1:])) for m in members}
    if len(shapes) > 1:
        raise ValueError("the members of an ensemble must take and give the same shapes; "
                         f"got (input, output) shapes {sorted(shapes)}")
    inputs = keras.Input(shape=members[0].input_shape[1:], name="image")
    outputs = [keras.Model(m.input, m.output, name=f"{MEMBER_PREFIX}{i}")(inputs)
               for i, m in enumerate(members)]
    mean = keras.layers.Average(name="mean", dtype="float32")(outputs)
    return keras.Model(inputs, mean, name=name)


def save_ensemble(paths: Sequence[str | os.PathLike], target: str | os.PathLike, *,
                  overwrite: bool = False) -> Path:
    """Read model files, average them with :func:`build_ensemble` and save the result.

    The sidecar keeps what the members share (:data:`SHARED_KEYS`) and lists each member
    under ``members`` (its file name and :data:`_MEMBER_KEYS`). Thresholds, calibration
    and per-source reliability are not copied: they belong to one model's map.
    :func:`radioseg_utils.workflows.pretrain.tune_model` (``radioseg pretrain --tune``)
    fits them for the ensemble; until then prediction uses the default centre threshold
    and applies neither (the catalogue says so).

    Parameters
    ----------
    paths : sequence of path-like
        Two or more ``.keras`` files saved by :func:`radioseg_utils.model.files.save_model`.
    target : path-like
        The ensemble's ``.keras`` file; its ``.json`` sidecar is written beside it.
    overwrite : bool
        Replace an existing ``target``.

    Returns
    -------
    pathlib.Path
        Path of the written ``.keras`` file.

    Raises
    ------
    ValueError
        If fewer than two files are given, ``target`` does not end in ``.keras``, or the
        members disagree on a shared key (naming the key, the first member and the one
        that differs).
    FileNotFoundError
        If a model file or its sidecar is missing.
    OutputExistsError
        If ``target`` exists and ``overwrite`` is false.
    """
    if len(paths) < 2:
        raise ValueError(f"an ensemble needs at least two model files, got {len(paths)}")
    if Path(target).suffix != ".keras":
        raise ValueError(f"the ensemble file {target} must end in .keras")
    if Path(target).exists() and not overwrite:
        raise OutputExistsError(f"{target} exists")
    loaded = [load_model(path) for path in paths]
    metas = [meta for _, meta in loaded]
    first = Path(paths[0]).name
    for path, meta in zip(paths[1:], metas[1:]):
        for key in SHARED_KEYS:
            if meta.get(key) != metas[0].get(key):
                raise ValueError(f"cannot average {Path(path).name} with {first}: {key} is "
                                 f"{meta.get(key)!r} there and {metas[0].get(key)!r} in {first}")
    shared: dict[str, Any] = {k: metas[0][k] for k in SHARED_KEYS
                              if k in metas[0] and k not in ("input_shape", "dtype_policy")}
    members = [{"file": Path(path).name, **{k: meta.get(k) for k in _MEMBER_KEYS}}
               for path, meta in zip(paths, metas)]
    with dtype_policy(metas[0].get("dtype_policy", "float32")):
        ensemble = build_ensemble([model for model, _ in loaded])
    return save_model(ensemble, target, metadata={**shared, "model": "ensemble",
                                                  "members": members})
