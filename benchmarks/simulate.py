"""Benchmark the field simulator: render time and peak memory per image size.

Each case (size, workers) runs in a fresh Python process, which renders a synthetic B1
1000 h field straight to a FITS file in a temporary folder and reports its wall time and
the peak resident memory of itself and of its worker processes (``getrusage``). For every
size the parallel render is compared with one worker in the same run.

Usage::

    python benchmarks/simulate.py                 # 4096² and 8192²
    python benchmarks/simulate.py --sizes 4096    # one size
    python benchmarks/simulate.py --full          # adds 32768² (hours on 2 cores, ~4.3 GB file)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SIZES = (4096, 8192)
FULL_SIZE = 32768


def run_case(size: int, workers: int, tile: int, seed: int) -> dict:
    """Render one field into a temporary folder; return time and peak RSS (MiB)."""
    from radioseg_utils.simulation.simulate import simulate_field

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        field = simulate_field("B1", 1000, shape=(size, size), seed=seed, tile=tile,
                               n_workers=workers, output=Path(tmp) / "field.fits")
        seconds = time.perf_counter() - start
        n_truth = sum(1 for line in field.truth_path.open() if not line.startswith("#")) - 1
    kib = 1024.0  # ru_maxrss is in KiB on Linux
    return {
        "size": size, "workers": workers, "seconds": seconds, "truth_rows": n_truth,
        "rss_main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kib,
        "rss_workers_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kib,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--full", action="store_true", help=f"also render {FULL_SIZE}²")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tile", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case", type=int, nargs=2, metavar=("SIZE", "WORKERS"),
                        help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(*args.case, tile=args.tile, seed=args.seed)))
        return 0
    sizes = list(args.sizes) + ([FULL_SIZE] if args.full else [])
    counts = sorted({1, args.workers})
    print(f"{'size':>6} {'workers':>7} {'seconds':>8} {'Mpix/s':>7} {'RSS main MiB':>12} "
          f"{'RSS worker MiB':>14} {'truth rows':>10} {'speed-up':>8}")
    for size in sizes:
        serial = None
        for workers in counts:
            out = subprocess.run([sys.executable, __file__, "--case", str(size), str(workers),
                                  "--tile", str(args.tile), "--seed", str(args.seed)],
                                 check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            serial = serial or r["seconds"]
            rate = size * size / 1e6 / r["seconds"]
            print(f"{size:>6} {workers:>7} {r['seconds']:>8.1f} {rate:>7.2f} "
                  f"{r['rss_main_mib']:>12.0f} {r['rss_workers_mib']:>14.0f} {r['truth_rows']:>10} "
                  f"{serial / r['seconds']:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
