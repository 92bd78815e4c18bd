"""Benchmark: the U-Net chain vs PyBDSF and Aegean on one simulated field, extrapolated to SDC1 images.

Simulates an SDC1-like B1 1000 h field of ``--size``² pixels (default 8192; 32768 is a full
SDC1 image, hours on a few CPU cores), then in this process runs

* ``radioseg predict`` (:func:`radioseg_utils.inference.predict.predict_image`: streamed tiled
  U-Net inference, probability map, catalogue), with the shipped model by default;
* PyBDSF with the SDC1 baseline settings (:func:`radioseg_utils.baselines.run_pybdsf`, in
  tiles of ``PYBDSF_TILE`` pixels when the field is larger, as it cannot hold it whole);
* Aegean with BANE and its default settings (:func:`radioseg_utils.baselines.run_aegean`,
  in tiles of ``AEGEAN_TILE`` pixels),

and prints their wall-clock time and peak memory, the U-Net's tiles per second, the ratios
U-Net / PyBDSF and U-Net / Aegean, and the cost extrapolated linearly in area to a full 32768² SDC1 image and
to one square degree (:func:`radioseg_utils.workflows.scaling.extrapolate`), on CPU as measured and on
one GPU at ``--gpu-tiles-per-s`` (an ASSUMED throughput unless you measured one; the
catalogue stage stays on the CPU).

Usage::

    python benchmarks/full_image.py [--size 8192] [--seed 1] [--workers N] [--no-pybdsf] [--no-aegean]
        [--field existing.fits] [--gpu-tiles-per-s 1000] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from radioseg_utils.io.wcs import SDC1_SIDE
from radioseg_utils.model.files import DEFAULT_MODEL
from radioseg_utils.simulation.simulate import simulate_field
from radioseg_utils.workflows.scaling import (
    ASSUMED_GPU_TILES_PER_S,
    as_dict,
    extrapolate,
    measure_finder,
    measure_unet,
)

BAND = "B1"
INTEGRATION_H = 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192, help="field side in pixels (32768: SDC1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated field")
    parser.add_argument("--field", type=Path, default=None,
                        help="use this square FITS field instead of simulating one")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="U-Net .keras model")
    parser.add_argument("--workers", type=int, default=None,
                        help="run the U-Net chain on a local dask cluster of N processes")
    parser.add_argument("--no-pybdsf", dest="pybdsf", action="store_false", help="skip PyBDSF")
    parser.add_argument("--no-aegean", dest="aegean", action="store_false", help="skip Aegean")
    parser.add_argument("--gpu-tiles-per-s", type=float, default=ASSUMED_GPU_TILES_PER_S,
                        help="U-Net tiles/s on one GPU (ASSUMED unless measured)")
    parser.add_argument("--out", type=Path, default=None, help="optional JSON file of the results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with tempfile.TemporaryDirectory(prefix="radioseg-full-") as tmp:
        tmp = Path(tmp)
        field = args.field
        if field is None:
            field = simulate_field(BAND, INTEGRATION_H, shape=(args.size, args.size), seed=args.seed,
                                   output=tmp / "field.fits", n_workers=1).path
        costs = [measure_unet(field, args.model, out_dir=tmp / "unet", n_workers=args.workers)]
        for finder in [name for name in ("pybdsf", "aegean") if getattr(args, name)]:
            costs.append(measure_finder(finder, field, workdir=tmp / finder))
    table = extrapolate(costs, BAND, side=SDC1_SIDE, gpu_tiles_per_s=args.gpu_tiles_per_s)
    result = {"field": str(args.field or f"simulated {BAND} {INTEGRATION_H} h, seed {args.seed}"),
              "side": costs[0].side, "costs": [as_dict(c) for c in costs],
              "gpu_tiles_per_s": args.gpu_tiles_per_s,
              "gpu_tiles_per_s_is_assumed": args.gpu_tiles_per_s == ASSUMED_GPU_TILES_PER_S}
    unet = costs[0]
    for other in costs[1:]:
        result[f"ratios_unet_over_{other.finder}"] = {
            "runtime": round(unet.runtime_s / other.runtime_s, 3),
            "peak_rss": round(unet.peak_rss_mb / other.peak_rss_mb, 3),
            "n_sources": round(unet.n_sources / max(other.n_sources, 1), 3)}
    result["extrapolated"] = [{k: (round(float(v), 3) if k in ("hours_per_image", "seconds_per_deg2", "peak_rss_mb") else v)
                               for k, v in zip(table.colnames, row.as_void().tolist())}
                              for row in table]
    for col in ("hours_per_image", "seconds_per_deg2", "peak_rss_mb"):
        table[col].format = ".2f"
    print(json.dumps(result, indent=1))  # noqa: T201 (benchmark output)
    print(f"\nper full {SDC1_SIDE}² {BAND} image ({table.meta['area_deg2']:.1f} deg²); "  # noqa: T201
          f"GPU rows use {args.gpu_tiles_per_s:g} tiles/s "
          f"({'ASSUMED' if result['gpu_tiles_per_s_is_assumed'] else 'given'})")
    table.pprint(max_lines=-1, max_width=-1)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
