"""Benchmark: U-Net training and inference throughput on this machine, with peak memory.

For the U-Net of the ``full`` pretraining profile (depth 4, 16 filters, centre head: the
shipped model), the plain default U-Net (depth 4, 16 filters) and a baseline (depth 3,
8 filters, the ``quick`` profile) built in the same process, measures

- training throughput in cutouts/s: ``train_on_batch`` on ``--batch`` random cutouts of
  ``--size``² px, after ``--warmup`` untimed steps (tracing), over ``--steps`` steps;
- inference throughput in Mpx/s: ``predict`` on one ``--image``² px image, after one
  untimed call, over ``--repeats`` calls;

then prints a table, the ratios default / baseline and the peak resident memory of the
process. Mixed precision is used when a GPU is visible, as in training; ``--policy``
sets another Keras dtype policy, and ``--compare-policy mixed_bfloat16`` measures the full
model again under a second one (bf16 units of a CPU) and prints the ratio.

``--gpu-record DIR`` compares this machine's training throughput of the full model with
the recorded GPU run in ``DIR`` (its ``TRAINED.json``: cutouts trained per second of the
whole run, compilation, validation and checkpoints included, so the ratio understates
the GPU's step speed).

Usage::

    python benchmarks/training.py [--size 256] [--batch 8] [--steps 10] [--image 1024]
        [--out benchmarks/results/training_cpu.json]

``--size 128 --batch 32`` is what the ``full`` pretraining profile trains with
(``benchmarks/results/gpu_full_profile/`` holds its run on one H100)::

    python benchmarks/training.py --size 128 --batch 32 \
        --gpu-record benchmarks/results/gpu_full_profile --out benchmarks/results/training_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from radioseg_utils.core.provenance import cpu_description, git_commit
from radioseg_utils.model.architectures import build_unet
from radioseg_utils.model.losses import MaskCentreLoss, get_loss, keras_pixel_scores
from radioseg_utils.model.train import gpu_available

#: (name, depth, base filters, centre head) of the models compared.
MODELS: tuple[tuple[str, int, int, bool], ...] = (
    ("full", 4, 16, True), ("default", 4, 16, False), ("baseline", 3, 8, False))


def _train_throughput(model: keras.Model, *, size: int, batch: int, steps: int,
                      warmup: int, seed: int) -> float:
    """Training cutouts per second of ``model`` on random cutouts (targets with as many
    channels as its output)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, size, size, 1)).astype(np.float32)
    y = (rng.uniform(size=(batch, size, size, model.output_shape[-1])) < 0.05).astype(np.float32)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - start)


def _inference_throughput(model: keras.Model, *, image: int, repeats: int, seed: int) -> float:
    """Inference megapixels per second of ``model`` on one ``image``² px image."""
    x = np.random.default_rng(seed).normal(size=(1, image, image, 1)).astype(np.float32)
    model.predict(x, verbose=0)
    start = time.perf_counter()
    for _ in range(repeats):
        model.predict(x, verbose=0)
    return repeats * image * image / 1e6 / (time.perf_counter() - start)


def _gpu_cutouts_per_s(folder: Path) -> tuple[float, dict]:
    """Training cutouts per second of a recorded run (``TRAINED.json`` in ``folder``) and
    what it ran on."""
    record = json.loads((folder / "TRAINED.json").read_text())
    cutouts = sum(d["splits"]["train"]["n_cutouts"] for d in record["datasets"].values())
    rate = cutouts * record["epochs_done"] / record["timings"]["train_s"]
    return rate, {"accelerator": record["accelerator"], "backend": record["backend"],
                  "epochs": record["epochs_done"], "train_s": record["timings"]["train_s"],
                  "cutouts_per_epoch": cutouts, "batch": record["config"]["gpu_batch_size"]}


def _peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="training cutout side, px")
    parser.add_argument("--batch", type=int, default=8, help="training batch size")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps")
    parser.add_argument("--image", type=int, default=1024, help="inference image side, px")
    parser.add_argument("--repeats", type=int, default=3, help="timed inference calls")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--policy", default=None,
                        help="Keras dtype policy, e.g. mixed_bfloat16 (default: mixed_float16 "
                             "on a GPU, else float32)")
    parser.add_argument("--compare-policy", default=None,
                        help="also train the full model under this dtype policy (e.g. "
                             "mixed_bfloat16) and print its ratio to the first")
    parser.add_argument("--gpu-record", type=Path, default=None,
                        help="folder of a recorded GPU run (TRAINED.json) to compare with")
    parser.add_argument("--out", default=None, help="write the measurements to this JSON file")
    args = parser.parse_args(argv)

    gpu = gpu_available()
    keras.config.set_dtype_policy(args.policy or ("mixed_float16" if gpu else "float32"))
    keras.utils.set_random_seed(args.seed)
    print(f"device: {'GPU' if gpu else 'CPU'}; policy {keras.config.dtype_policy().name}; "
          f"train {args.batch} x {args.size}^2 px, {args.steps} steps; "
          f"inference {args.image}^2 px, {args.repeats} calls")
    rows = {}

    def measure(name: str, depth: int, filters: int, centre: bool) -> tuple:
        model = build_unet(depth=depth, base_filters=filters, centre_head=centre)
        loss = MaskCentreLoss("bce_dice", 1.0) if centre else get_loss("bce_dice")
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss,
                      metrics=keras_pixel_scores())
        train = _train_throughput(model, size=args.size, batch=args.batch, steps=args.steps,
                                  warmup=args.warmup, seed=args.seed)
        infer = _inference_throughput(model, image=args.image, repeats=args.repeats,
                                      seed=args.seed)
        print(f"{name:>9}: depth {depth}, {filters:2d} filters, {model.count_params():9,d} "
              f"params | train {train:8.1f} cutouts/s | inference {infer:7.2f} Mpx/s",
              flush=True)
        return depth, filters, model.count_params(), train, infer

    for name, depth, filters, centre in MODELS:
        rows[name] = measure(name, depth, filters, centre)
    compared = None
    if args.compare_policy:
        first = keras.config.dtype_policy().name
        keras.config.set_dtype_policy(args.compare_policy)
        try:
            *_, train, infer = measure(f"full, {args.compare_policy}", *MODELS[0][1:])
        finally:
            keras.config.set_dtype_policy(first)
        compared = {"policy": args.compare_policy, "train_cutouts_per_s": train,
                    "inference_mpx_per_s": infer,
                    "train_ratio_to_first": train / rows["full"][3],
                    "inference_ratio_to_first": infer / rows["full"][4]}
        print(f"full model, {args.compare_policy} / {first}: training "
              f"{compared['train_ratio_to_first']:.2f}x, inference {compared['inference_ratio_to_first']:.2f}x")
    (_, _, _, t0, i0), (_, _, _, t1, i1) = rows["default"], rows["baseline"]
    print(f"default / baseline: training {t0 / t1:.2f}x, inference {i0 / i1:.2f}x")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")
    gpu_run = None
    if args.gpu_record:
        rate, where = _gpu_cutouts_per_s(args.gpu_record)
        gpu_run = {**where, "train_cutouts_per_s": rate,
                   "ratio_to_this_machine": rate / rows["full"][3]}
        print(f"recorded run on {where['accelerator']} ({where['backend']}): {rate:.0f} cutouts/s, "
              f"{gpu_run['ratio_to_this_machine']:.1f}x this machine's full-model training")
    if args.out:
        record = {"device": "GPU" if gpu else "CPU", "backend": keras.backend.backend(),
                  "machine": platform.machine(), "cpu_count": __import__("os").cpu_count(),
                  "cpu": cpu_description(), "git_commit": git_commit(),
                  "policy": keras.config.dtype_policy().name,
                  "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                  "models": {name: {"depth": d, "base_filters": f, "params": n,
                                    "train_cutouts_per_s": t, "inference_mpx_per_s": i}
                             for name, (d, f, n, t, i) in rows.items()},
                  "peak_rss_mib": _peak_rss_mib(), "recorded_gpu_run": gpu_run,
                  "compared_policy": compared}
        with open(args.out, "w") as handle:
            json.dump(record, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
