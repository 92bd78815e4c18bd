"""Benchmark: what the Keras stack offers for tiled inference on this machine, one process.

Runs the shipped model (or ``--model``) through ``predict_on_batch`` in several settings,
alternating them round by round so that every setting sees the same machine load, and
prints each one's speed as a ratio to the baseline (the defaults of
:mod:`radioseg_utils.inference.tiling`: tiles of 256² px with 32 px overlap, batches of 8,
float32, no XLA):

* ``batch16``, ``batch32``: larger batches;
* ``tile512``, ``tile1024``: tiles of 512² px in batches of 2, of 1024² px one at a time
  (the model is fully convolutional);
* ``xla``, ``tile512_xla``: the predict function compiled with XLA (``jit_compile``);
* ``bf16``, ``tile512_bf16``: the same weights under Keras' ``mixed_bfloat16`` policy
  (bf16 matrix units, e.g. AVX512_BF16 or AMX on a CPU);
* ``ensemble`` (with ``--ensemble FILE``): an ensemble file written by ``radioseg
  ensemble`` in the baseline's tiles and batches; its probability change is the
  ensemble's own difference from the model, not an error.

Speed is counted in *useful* pixels per second (each tile counts ``(tile - overlap)²``,
the part that is not shared with its neighbours), so tile sizes compare fairly. Beside
each ratio the largest absolute change of the model's source probability from the
baseline's, on a normalised simulated B1 1000 h patch, says whether a setting changes
the result.

Usage::

    python benchmarks/inference_options.py [--seconds 10] [--rounds 3] [--ensemble FILE]
        [--out benchmarks/results/inference_options_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from model_speed import tiles_per_s  # beside this script

from radioseg_utils.core.provenance import git_commit, versions
from radioseg_utils.model.files import DEFAULT_MODEL, load_model

OVERLAP = 32

#: setting -> (tile side, batch size, model variant)
SETTINGS: dict[str, tuple[int, int, str]] = {
    "baseline": (256, 8, "float32"),
    "batch16": (256, 16, "float32"),
    "batch32": (256, 32, "float32"),
    "tile512": (512, 2, "float32"),
    "tile1024": (1024, 1, "float32"),
    "xla": (256, 8, "xla"),
    "tile512_xla": (512, 2, "xla"),
    "bf16": (256, 8, "bf16"),
    "tile512_bf16": (512, 2, "bf16"),
}


def variants(path: Path) -> dict[str, object]:
    """The model as loaded, with XLA, and rebuilt under ``mixed_bfloat16``."""
    import keras

    model = load_model(path)[0]
    xla = keras.models.clone_model(model)
    xla.set_weights(model.get_weights())
    xla.jit_compile = True
    xla.make_predict_function(force=True)
    def mixed(layer):  # the saved layer configs name float32: rebuild each under bf16
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        return layer.__class__.from_config({**layer.get_config(), "dtype": "mixed_bfloat16"})

    bf16 = keras.models.clone_model(model, clone_function=mixed)
    bf16.set_weights(model.get_weights())
    return {"float32": model, "xla": xla, "bf16": bf16}


def patch(side: int) -> np.ndarray:
    """A normalised simulated B1 1000 h patch of ``side``² px, shape (1, side, side, 1)."""
    from radioseg_utils.core.noise import estimate_noise
    from radioseg_utils.data.normalise import normalise
    from radioseg_utils.simulation.simulate import simulate_field

    field = simulate_field("B1", 1000, shape=(side, side), seed=5)
    image = np.asarray(field.image, dtype=np.float32)
    return normalise(image, "asinh", noise=estimate_noise(image)[1])[None, ..., None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="default: the shipped one")
    parser.add_argument("--ensemble", type=Path, default=None,
                        help="also time this ensemble file (radioseg ensemble)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per setting and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON record to write")
    args = parser.parse_args(argv)
    import keras

    models = variants(args.model)
    settings = dict(SETTINGS)
    if args.ensemble:
        models["ensemble"] = load_model(args.ensemble)[0]
        settings["ensemble"] = (*SETTINGS["baseline"][:2], "ensemble")
    rng = np.random.default_rng(0)
    batches = {name: rng.normal(size=(b, t, t, 1)).astype(np.float32)
               for name, (t, b, _) in settings.items()}
    rates: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, (_, _, variant) in settings.items():
            batch = batches[name]  # tiles/s, counted in the useful part of each tile
            rate = tiles_per_s(models[variant], batch, args.seconds)
            rates[name].append(rate * (batch.shape[1] - OVERLAP) ** 2 / 1e6)
    sample = patch(512)
    reference = np.asarray(models["float32"].predict_on_batch(sample), dtype=np.float32)
    change = {v: float(np.abs(np.asarray(m.predict_on_batch(sample), dtype=np.float32)[..., 0]
                              - reference[..., 0]).max()) for v, m in models.items()}
    median = {name: statistics.median(r) for name, r in rates.items()}
    record = {"backend": keras.backend.backend(), "machine": platform.machine(),
              "processor": platform.processor(), "cpu_count": os.cpu_count(),
              "model": args.model.name, "overlap": OVERLAP,
              "ensemble": args.ensemble.name if args.ensemble else None,
              "versions": versions("keras", "tensorflow", "tensorflow-cpu", "jax", "numpy"),
              "git_commit": git_commit(),
              "settings": {name: {"tile": t, "batch": b, "variant": v,
                                  "useful_mpx_per_s": rates[name],
                                  "ratio_to_baseline": median[name] / median["baseline"],
                                  "max_probability_change": change[v]}
                           for name, (t, b, v) in settings.items()}}
    for name, entry in record["settings"].items():
        print(f"{name:>9}: {median[name]:6.3f} useful Mpx/s, {entry['ratio_to_baseline']:.2f}x "
              f"baseline, probability change up to {entry['max_probability_change']:.2g}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
