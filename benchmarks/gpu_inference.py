"""Forward-pass throughput of the shipped U-Net on the device Keras sees, with a CPU baseline.

Usage::

    KERAS_BACKEND=jax python benchmarks/gpu_inference.py [--model M.keras] [--tile 256]
        [--batches 8 32 128] [--seconds 20] [--no-cpu-baseline]
        [--reference benchmarks/results/unet_B1_reference.npz] [--out result.json]

Loads the model (``radioseg_utils/pretrained/unet_B1.keras`` by default) with
``keras.saving.load_model`` and, for each batch size, feeds random float32 tiles of
``--tile``² pixels (fixed seed) to ``model.predict_on_batch``: two warm-up calls (which
compile under JAX and TensorFlow), then calls until ``--seconds`` are spent. Each call
copies its batch to the device and its output back to a NumPy array, so every call is
finished when it is timed, transfers included. Reports tiles per second and the median
milliseconds per batch.

The device is the backend's default: the GPU under ``KERAS_BACKEND=jax`` or ``torch`` when
one is visible, else the CPU (then the "device" rows are CPU rows too and the JSON says
``"accelerator": false``). The CPU baseline loads a second copy of the model inside
``keras.device("cpu")`` (``jax.default_device`` under JAX) and times the smallest batch
size only; ratios are device tiles/s over CPU tiles/s.

``--reference`` takes the file written by ``benchmarks/make_gpu_reference.py`` (a fixed
input and the model's TensorFlow-CPU output) and records the largest absolute difference
of the device output per output channel, with the backend's default float32 settings (the
benchmarked ones: JAX and PyTorch run float32 convolutions in TF32 on Ampere and newer
GPUs) and with TF32 turned off, before the timings. A difference above ``TOLERANCE`` is
printed as a warning.

``--out`` is rewritten after each step, with ``"complete": false`` until the last, so that a
run cut short (by ``timeout``, say) still leaves what it measured.

Only the standard library, NumPy, Keras and the Keras-only modules
``radioseg_utils.model.architectures`` and ``radioseg_utils.model.losses`` are imported (plus the backend
itself to name the device and switch TF32), so the script runs where TensorFlow and
Astropy are not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np

import radioseg_utils.model.architectures  # noqa: F401  (registers the custom layers)
import radioseg_utils.model.losses  # noqa: F401  (registers the custom losses and metrics)

#: The shipped model.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "radioseg_utils/pretrained/unet_B1.keras"
#: Largest absolute difference to the reference output that passes without a warning.
TOLERANCE = 1e-3
#: Seed of the random input tiles.
SEED = 0
#: Untimed calls before each measurement.
WARMUP_CALLS = 2
#: Timed calls made even when they take longer than the time budget.
MIN_CALLS = 3


def file_sha256(path: Path) -> str:
    """Hex SHA-256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_unet(path: Path) -> keras.Model:
    """The model at ``path``, uncompiled, on the current Keras device."""
    return keras.saving.load_model(path, compile=False)


def describe_device() -> tuple[str, bool]:
    """(description, is an accelerator) of the device the backend computes on by default."""
    backend = keras.backend.backend()
    module = importlib.import_module(backend)
    if backend == "jax":
        devices = module.devices()
        names = ", ".join(f"{d} ({d.device_kind})" for d in devices)
        return f"jax {module.__version__}: {names}", devices[0].platform != "cpu"
    if backend == "torch":
        if module.cuda.is_available():
            return f"torch {module.__version__}: {module.cuda.get_device_name()}", True
        return f"torch {module.__version__}: cpu", False
    if backend == "tensorflow":
        gpus = module.config.list_logical_devices("GPU")
        names = ", ".join(d.name for d in gpus) or "cpu"
        return f"tensorflow {module.__version__}: {names}", bool(gpus)
    return backend, False


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Turn off TF32 (reduced-precision float32 on Ampere and newer GPUs) in this scope."""
    backend = keras.backend.backend()
    module = importlib.import_module(backend)
    if backend == "jax":
        with module.default_matmul_precision("highest"):
            yield
    elif backend == "torch":
        flags = (module.backends.cudnn, module.backends.cuda.matmul)
        saved = [flag.allow_tf32 for flag in flags]
        for flag in flags:
            flag.allow_tf32 = False
        try:
            yield
        finally:
            for flag, value in zip(flags, saved, strict=True):
                flag.allow_tf32 = value
    elif backend == "tensorflow":
        saved = module.config.experimental.tensor_float_32_execution_enabled()
        module.config.experimental.enable_tensor_float_32_execution(False)
        try:
            yield
        finally:
            module.config.experimental.enable_tensor_float_32_execution(saved)
    else:
        yield


def measure(model: keras.Model, batch: int, tile: int, seconds: float) -> dict:
    """Time ``model.predict_on_batch`` on ``batch`` random tiles for about ``seconds``.

    Parameters
    ----------
    model : keras.Model
        A fully convolutional model taking ``(batch, tile, tile, 1)`` float32 input.
    batch, tile : int
        Tiles per call and tile side in pixels.
    seconds : float
        Time budget of the timed calls (at least ``MIN_CALLS`` calls are made).

    Returns
    -------
    dict
        ``batch``, ``calls``, ``seconds`` (timed total), ``tiles_per_s``, ``median_ms``,
        ``min_ms`` and ``warmup_s`` (the untimed calls, compilation included).
    """
    x = np.random.default_rng(SEED).standard_normal((batch, tile, tile, 1), dtype=np.float32)
    start = time.perf_counter()
    for _ in range(WARMUP_CALLS):
        np.asarray(model.predict_on_batch(x))
    warmup = time.perf_counter() - start
    times: list[float] = []
    while len(times) < MIN_CALLS or sum(times) < seconds:
        start = time.perf_counter()
        np.asarray(model.predict_on_batch(x))
        times.append(time.perf_counter() - start)
    total = sum(times)
    return {"batch": batch, "calls": len(times), "seconds": total,
            "tiles_per_s": batch * len(times) / total,
            "median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
            "warmup_s": warmup}


def reference_check(model: keras.Model, path: Path) -> dict:
    """Largest absolute difference per output channel between ``model`` and a reference.

    Parameters
    ----------
    model : keras.Model
        The model on the benchmarked device.
    path : Path
        An ``.npz`` file from ``benchmarks/make_gpu_reference.py`` with arrays ``x`` (input),
        ``y`` (reference output) and ``sha256`` (of the model that made ``y``).

    Returns
    -------
    dict
        ``file``, ``reference_sha256``, ``reference_backend``, ``max_abs_diff`` (per
        channel, default float32 settings), ``max_abs_diff_float32`` (per channel, TF32
        off) and ``ok`` (both below ``TOLERANCE``).
    """
    with np.load(path) as data:
        x, y = data["x"], data["y"]
        reference_sha, reference_backend = str(data["sha256"]), str(data["backend"])

    def max_diff() -> list[float]:
        out = np.asarray(model.predict_on_batch(x), dtype=np.float32)
        return np.abs(out - y).reshape(-1, y.shape[-1]).max(axis=0).tolist()

    default = max_diff()
    with full_float32():
        strict = max_diff()
    return {"file": str(path), "reference_sha256": reference_sha,
            "reference_backend": reference_backend, "max_abs_diff": default,
            "max_abs_diff_float32": strict, "ok": max(default + strict) <= TOLERANCE}


def print_table(results: Sequence[dict], cpu: dict | None, device: str) -> None:
    """Print the per-batch results, the CPU baseline and the device/CPU ratios."""
    print(f"{'where':<7}{'batch':>6}{'calls':>7}{'tiles/s':>11}{'median ms':>11}"
          f"{'warm-up s':>11}{'x CPU':>8}")
    for where, row in [("device", r) for r in results] + ([("cpu", cpu)] if cpu else []):
        ratio = f"{row['tiles_per_s'] / cpu['tiles_per_s']:8.1f}" if cpu else f"{'-':>8}"
        print(f"{where:<7}{row['batch']:>6}{row['calls']:>7}{row['tiles_per_s']:>11.1f}"
              f"{row['median_ms']:>11.2f}{row['warmup_s']:>11.2f}{ratio}")
    print(f"device: {device}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="U-Net .keras model")
    parser.add_argument("--tile", type=int, default=256, help="tile side in pixels")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32, 128],
                        help="batch sizes (tiles per call) to time on the device")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="time budget of each measured configuration")
    parser.add_argument("--cpu-baseline", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the smallest batch size on the CPU")
    parser.add_argument("--reference", type=Path,
                        help="reference .npz from benchmarks/make_gpu_reference.py")
    parser.add_argument("--out", type=Path, help="optional JSON file for the results")
    args = parser.parse_args(argv)

    device, accelerator = describe_device()
    model_sha = file_sha256(args.model)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}; device: {device}")
    results: list[dict] = []
    record = {"backend": keras.backend.backend(), "keras_version": keras.__version__,
              "device": device, "accelerator": accelerator, "model": str(args.model),
              "model_sha256": model_sha, "tile": args.tile,
              "seconds_per_configuration": args.seconds, "results": results,
              "cpu_baseline": None, "reference": None, "complete": False,
              "utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def save() -> None:
        """Write the record so far, so that a run cut short still leaves its results."""
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=2) + "\n")

    model = load_unet(args.model)
    reference = record["reference"] = (reference_check(model, args.reference)
                                       if args.reference else None)
    if reference:
        print(f"reference max |diff| per channel: {reference['max_abs_diff']} "
              f"(TF32 off: {reference['max_abs_diff_float32']})")
        if not reference["ok"]:
            print(f"WARNING: device output differs from the reference by more than "
                  f"{TOLERANCE:g}", file=sys.stderr)
        if reference["reference_sha256"] != model_sha:
            print("WARNING: the reference was made with another model file", file=sys.stderr)
        save()
    for batch in args.batches:
        results.append(measure(model, batch, args.tile, args.seconds))
        print(f"device batch {batch}: {results[-1]['tiles_per_s']:.1f} tiles/s")
        save()
    cpu = None
    if args.cpu_baseline:
        with keras.device("cpu"):
            cpu = record["cpu_baseline"] = measure(load_unet(args.model), min(args.batches),
                                                   args.tile, args.seconds)
        for row in results:
            row["ratio_to_cpu"] = row["tiles_per_s"] / cpu["tiles_per_s"]

    print(f"\nU-Net forward pass, {args.tile}x{args.tile} tiles, {args.model.name}")
    print_table(results, cpu, device)
    record["complete"] = True
    save()
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
