"""Benchmark: start-up cost of reading a saved model, Keras' loader against the project's.

``keras.saving.load_model`` builds every layer with its random initialisers before the
stored weights replace them; under JAX each one is an XLA compilation.
:func:`radioseg_utils.model.files.read_keras_file` builds with zeros and puts the
initialisers back. A cold load is what a user waits for, and a process that has loaded a
model once has the compilations cached, so every timed load runs in a fresh process: the
two readers alternate for ``--rounds`` rounds, and the script prints the median seconds
of each (the load only, imports excluded) and the ratio Keras / project.

Usage::

    KERAS_BACKEND=jax python benchmarks/model_loading.py [--model FILE.keras] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from radioseg_utils.model.files import DEFAULT_MODEL

#: Child process: import, then time one load of ``argv[2]`` with reader ``argv[1]``.
CHILD = """
import sys, time, keras
from radioseg_utils.model.files import read_keras_file
reader = {"keras": keras.saving.load_model, "project": read_keras_file}[sys.argv[1]]
start = time.perf_counter()
reader(sys.argv[2])
print(keras.backend.backend(), time.perf_counter() - start)
"""


def cold_load(reader: str, model: Path) -> tuple[str, float]:
    """Backend and seconds of one load of ``model`` by ``reader`` in a fresh process."""
    run = subprocess.run([sys.executable, "-c", CHILD, reader, str(model)], check=True,
                         capture_output=True, text=True, env=os.environ.copy())
    backend, seconds = run.stdout.split()[-2:]
    return backend, float(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="default: the shipped one")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"keras": [], "project": []}
    for _ in range(args.rounds):
        for reader in times:
            backend, seconds = cold_load(reader, args.model)
            times[reader].append(seconds)
    median = {reader: statistics.median(t) for reader, t in times.items()}
    print(f"backend {backend}, {args.model.name}, {args.rounds} cold loads each (median):")
    for reader, seconds in median.items():
        print(f"  {reader:8s} {seconds:7.2f} s")
    print(f"  ratio keras / project: {median['keras'] / median['project']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
