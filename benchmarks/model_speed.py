"""Benchmark: tiled-inference speed of the shipped model against another model file, one process.

Loads both ``.keras`` models (with their sidecars) and alternates timed runs of
``predict_on_batch`` on the same random batch of ``--batch`` tiles of ``--tile``² px, each
for ``--seconds``, ``--rounds`` times, then prints tiles per second of each and the ratio
shipped / other (the median over rounds), and optionally writes them as JSON.

Usage::

    git show REV:radioseg_utils/pretrained/unet_B1.keras > /tmp/old.keras   # and its .json
    python benchmarks/model_speed.py /tmp/old.keras [--out benchmarks/results/model_speed_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radioseg_utils.model.files import DEFAULT_MODEL, load_model


def tiles_per_s(model, batch: np.ndarray, seconds: float) -> float:
    """Tiles per second of ``model.predict_on_batch`` over ``seconds`` (after one warm-up call)."""
    model.predict_on_batch(batch)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        model.predict_on_batch(batch)
        n += len(batch)
    return n / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the model to compare with (.keras + .json)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="default: the shipped one")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import keras

    batch = np.random.default_rng(0).normal(size=(args.batch, args.tile, args.tile, 1))
    batch = batch.astype(np.float32)
    models = {"shipped": load_model(args.model)[0], "other": load_model(args.other)[0]}
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(tiles_per_s(model, batch, args.seconds))
    median = {name: statistics.median(r) for name, r in rates.items()}
    for name, model in models.items():
        print(f"{name:>8}: {median[name]:6.1f} tiles/s of {args.tile}² px "
              f"({model.count_params():,d} parameters; rounds {rates[name]})")
    print(f"shipped / other: {median['shipped'] / median['other']:.2f}x")
    if args.out:
        args.out.write_text(json.dumps({
            "backend": keras.backend.backend(), "machine": platform.machine(),
            "cpu_count": __import__("os").cpu_count(), "settings": {k: str(v) for k, v in vars(args).items()},
            "tiles_per_s": rates, "params": {n: m.count_params() for n, m in models.items()},
            "ratio_shipped_to_other": median["shipped"] / median["other"]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
