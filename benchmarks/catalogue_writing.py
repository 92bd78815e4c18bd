"""Benchmark: how fast the catalogue of a run is written, per format, in one process.

The merge stage of ``radioseg predict`` appends every catalogue block to five files
(:class:`radioseg_utils.io.catalogue_stream.CatalogueStream`) after finishing it (the
parameter calibration and ``p_real`` of the shipped model). On a full 32768² SDC1 field
that is four million rows. This script makes one block of ``--rows`` synthetic sources
with the columns of a real catalogue and times, alternating round by round so that every
writer sees the same machine load,

* each streamed format (``ecsv``, ``fits``, ``parquet``, ``submission``, ``regions``)
  against astropy's own writer of the same rows (``Table.write`` as ECSV, FITS and
  Parquet; its ``ascii.no_header`` writer for the two text files), printed as a ratio;
* the finishing of the block (calibration, then reliability), for scale.

Rows per second are the figures to compare with the merge stage of
``benchmarks/results/end_to_end_*.json``.

Usage::

    python benchmarks/catalogue_writing.py [--rows 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from astropy.table import Table

from radioseg_utils.io.catalogue import SUBMISSION_COLUMNS, catalogue_table
from radioseg_utils.io.catalogue_stream import CatalogueStream
from radioseg_utils.model.files import DEFAULT_MODEL, sidecar_path
from radioseg_utils.postprocess.calibrate import load_calibration
from radioseg_utils.postprocess.reliability import load_reliability

#: format -> astropy ``Table.write`` format of the baseline
BASELINES: dict[str, str] = {"ecsv": "ascii.ecsv", "fits": "fits", "parquet": "parquet",
                             "submission": "ascii.no_header", "regions": "ascii.no_header"}
#: columns of the DS9 region lines
REGION_COLUMNS: tuple[str, ...] = ("ra_cent", "dec_cent", "fwhm_maj", "fwhm_min", "pa_eon", "id")


def synthetic_block(n: int, seed: int = 0) -> Table:
    """``n`` sources with the columns, dtypes and value ranges of a B1 1000 h catalogue."""
    rng = np.random.default_rng(seed)
    snr = 5.0 * rng.pareto(1.5, n) + 5.0
    noise = rng.uniform(2e-7, 4e-7, n)
    fwhm_maj = rng.uniform(1.5, 4.0, n)
    return catalogue_table({
        "id": np.arange(n), "ra_core": rng.uniform(-1, 1, n), "dec_core": rng.uniform(-31, -29, n),
        "ra_cent": rng.uniform(-1, 1, n), "dec_cent": rng.uniform(-31, -29, n),
        "flux": snr * noise * 1.2, "core_frac": np.zeros(n), "b_maj": rng.uniform(0, 3, n),
        "b_min": rng.uniform(0, 2, n), "pa": rng.uniform(0, 180, n), "size": np.full(n, 2),
        "class": np.full(n, 3), "x": rng.uniform(0, 2048, n), "y": rng.uniform(0, 2048, n),
        "peak_flux": snr * noise, "peak_snr": snr, "noise": noise,
        "area_pix": rng.integers(3, 200, n), "compactness": rng.uniform(0.3, 1.0, n),
        "fwhm_maj": fwhm_maj, "fwhm_min": fwhm_maj * rng.uniform(0.5, 1.0, n),
        "pa_eon": rng.uniform(0, 180, n), "prob_peak": rng.uniform(0.5, 1.0, n),
        "centre_peak": rng.uniform(0.0, 1.0, n), "neighbour_dist": rng.uniform(1.0, 10.0, n)})


def _streamed(block: Table, key: str, folder: Path) -> None:
    with CatalogueStream({key: folder / f"stream.{key}"}) as out:
        out.append(block)


def _astropy(block: Table, key: str, folder: Path) -> None:
    columns = {"submission": SUBMISSION_COLUMNS, "regions": REGION_COLUMNS}.get(key, block.colnames)
    block[list(columns)].write(folder / f"astropy.{key}", format=BASELINES[key], overwrite=True)


def _seconds(task: Callable[[], object]) -> float:
    start = time.perf_counter()
    task()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000, help="sources in the block")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median kept)")
    args = parser.parse_args(argv)

    sidecar = json.loads(sidecar_path(DEFAULT_MODEL).read_text())
    calibration = load_calibration(DEFAULT_MODEL.parent / sidecar["calibration"])
    reliability = load_reliability(DEFAULT_MODEL.parent / sidecar["reliability"])
    block = synthetic_block(args.rows)
    finished = reliability.apply(calibration.apply(block, "B1"), 1.5)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.rounds):
            times.setdefault("finish", []).append(_seconds(
                lambda: reliability.apply(calibration.apply(block, "B1"), 1.5)))
            for key in BASELINES:
                for name, write in (("streamed", _streamed), ("astropy", _astropy)):
                    times.setdefault(f"{key}/{name}", []).append(
                        _seconds(lambda w=write, k=key: w(finished, k, folder)))
    median = {name: statistics.median(values) for name, values in times.items()}
    out = io.StringIO()
    out.write(f"{args.rows} rows, median of {args.rounds} rounds\n")
    out.write(f"{'step':<12}{'rows/s':>12}{'astropy rows/s':>16}{'ratio':>8}\n")
    out.write(f"{'finish':<12}{args.rows / median['finish']:>12.0f}\n")
    total = median["finish"]
    for key in BASELINES:
        ours, theirs = median[f"{key}/streamed"], median[f"{key}/astropy"]
        total += ours
        out.write(f"{key:<12}{args.rows / ours:>12.0f}{args.rows / theirs:>16.0f}"
                  f"{theirs / ours:>8.2f}\n")
    out.write(f"{'all':<12}{args.rows / total:>12.0f}  (finish and every format)\n")
    sys.stdout.write(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
