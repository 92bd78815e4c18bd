"""Benchmark: one SDC1-sized field end to end (simulate, then ``radioseg predict``), per stage.

Simulates a B1 1000 h field of ``--size``² pixels with ``--workers`` processes, then runs
:func:`radioseg_utils.inference.predict.predict_image` on it (streamed tiles, probability
map, catalogue blocks, merge; on a local dask cluster of ``--workers`` processes when > 1)
and records, in a JSON file, the wall-clock seconds of every stage, the tiles per second,
the sources found, the size of every output, and the peak resident memory summed over
the whole process tree (:class:`radioseg_utils.core.memory.TreeMemory`, sampled every
0.2 s: dask workers included) of each part. Each part runs in a fresh process, as
``radioseg simulate`` and ``radioseg predict`` do, so that its memory is its own and not
what an earlier part left behind (simulating a 16384² field leaves 0.5 GB in the process
that ran it). Several ``--size`` values run one after the other, so the records compare
on one machine; chapter 12 plots them.

The Keras backend is the one in ``KERAS_BACKEND`` (``jax`` on the GPU machine, see
``benchmarks/gpu_session.sh``); the record names it and the device.

Usage::

    python benchmarks/end_to_end.py --size 8192 --size 16384 [--size 32768] [--workers 2]
        [--simulate-workers 2]
        [--work-dir DIR] [--out benchmarks/results/end_to_end_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from radioseg_utils.core.memory import TreeMemory
from radioseg_utils.core.provenance import git_commit, versions
from radioseg_utils.model.files import DEFAULT_MODEL

BAND, INTEGRATION_H, SEED = "B1", 1000, 11


def _device() -> str:
    """The Keras backend and its first device, in words."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"jax {jax.__version__}: {device.platform}:{device.id} ({device.device_kind})"
    if backend == "torch":
        import torch

        return f"torch {torch.__version__}: " + (torch.cuda.get_device_name(0)
                                                 if torch.cuda.is_available() else "cpu")
    return f"{backend}: cpu"


def _log_stages() -> None:
    """Log the stage lines of the package as they end (in each process of a part)."""
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("radioseg_utils").setLevel(logging.INFO)


def _in_fresh_process(part: Callable[..., dict], **kwargs) -> dict:
    """``part(**kwargs)`` run in a new (spawned) process; its record."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(part, **kwargs).result()


def _simulate_part(size: int, workers: int, image: Path) -> dict:
    """Simulate the field into ``image``; seconds and peak memory."""
    from radioseg_utils.simulation.simulate import simulate_field

    _log_stages()
    with TreeMemory() as memory:
        simulate_field(BAND, INTEGRATION_H, shape=(size, size), seed=SEED, output=image,
                       n_workers=workers, overwrite=True)
    return {"seconds": memory.runtime_s, "peak_tree_mb": memory.peak_mb,
            "image_mb": image.stat().st_size / 1e6}


def _predict_part(image: Path, out: Path, model: Path, workers: int) -> dict:
    """``radioseg predict`` on ``image``: seconds per stage, peak memory, sources, outputs."""
    from radioseg_utils.inference.config import PredictConfig
    from radioseg_utils.inference.predict import predict_image

    _log_stages()
    with TreeMemory() as memory:
        result = predict_image(image, model, out_dir=out, config=PredictConfig(),
                               overwrite=True, resume=False, progress=False,
                               n_workers=workers if workers > 1 else None)
    stages = {k: float(v) for k, v in result.stats.items()}
    return {
        "seconds": memory.runtime_s, "peak_tree_mb": memory.peak_mb,
        "peak_main_process_mb": memory.peak_own_mb, "stages": stages,
        "tiles_per_s": stages["n_tiles"] / stages["tiles_s"] if stages.get("tiles_s") else None,
        "n_sources": result.n_sources,
        "outputs_mb": {kind: round(path.stat().st_size / 1e6, 1)
                       for kind, path in result.paths.items() if path.is_file()},
    }


def run_size(size: int, *, workers: int, simulate_workers: int, work: Path, model: Path,
             keep_outputs: bool) -> dict:
    """Simulate and predict one field, each in a fresh process; return its record."""
    work.mkdir(parents=True, exist_ok=True)
    image = work / f"sim_{BAND}_{INTEGRATION_H}h_{size}_seed{SEED}.fits"
    out = work / f"predict_{size}"
    record: dict = {"size": size, "mpx": size * size / 1e6, "workers": workers,
                    "simulate_workers": simulate_workers, "fresh_processes": True}
    record["simulate"] = _in_fresh_process(_simulate_part, size=size, workers=simulate_workers,
                                           image=image)
    record["predict"] = _in_fresh_process(_predict_part, image=image, out=out, model=model,
                                          workers=workers)
    if not keep_outputs:
        shutil.rmtree(out, ignore_errors=True)
        image.unlink(missing_ok=True)
        image.with_name(image.stem + ".truth.ecsv").unlink(missing_ok=True)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", required=True,
                        help="field side in pixels (repeatable; 32768: a full SDC1 image)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for the predict stages (1: serial, in this process)")
    parser.add_argument("--simulate-workers", type=int, default=None,
                        help="processes for simulating the field (default: --workers)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="U-Net .keras model")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="scratch folder (default: a temporary one; needs ~5 GB at 32768)")
    parser.add_argument("--keep-outputs", action="store_true", help="keep fields and outputs")
    parser.add_argument("--out", type=Path, default=None, help="JSON record to write")
    args = parser.parse_args(argv)
    _log_stages()
    scratch = None
    if args.work_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="radioseg-e2e-")
        args.work_dir = Path(scratch.name)
    records = {"device": _device(), "host": platform.node(), "machine": platform.machine(),
               "cpu_count": __import__("os").cpu_count(), "model": args.model.name,
               "versions": versions("keras", "jax", "tensorflow", "numpy", "dask"),
               "git_commit": git_commit(),
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": []}
    try:
        for size in args.size:
            record = run_size(size, workers=args.workers,
                              simulate_workers=args.simulate_workers or args.workers,
                              work=args.work_dir, model=args.model, keep_outputs=args.keep_outputs)
            records["runs"].append(record)
            p = record["predict"]
            print(f"{size}²: simulate {record['simulate']['seconds']:.1f} s, predict "
                  f"{p['seconds']:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in p['stages'].items())}), "
                  f"{p['n_sources']} sources, peak tree RSS {p['peak_tree_mb']:.0f} MB",
                  flush=True)
            if args.out:  # after every size, so a run cut short keeps what it measured
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(records, indent=2) + "\n")
    finally:
        if scratch is not None:
            scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
