"""Benchmark: segmentation maps of the SDC1 B1 training catalogue on the full 32768² grid.

Times :func:`radioseg_utils.data.masks.make_masks` (tiled, output written to ``.npy`` files)
and reports its peak resident memory, then measures a naive per-source full-image loop in
the same run: for each source, a model image of the whole grid, thresholded and compared
with a running "brightest model" image of the whole grid. The naive loop on 32768² would
take hours and 13 GB, so it runs on a subset of sources on a smaller grid and is
extrapolated linearly in pixels (checked: the per-source cost is timed on two grid sizes)
and in sources; the batched stamp rendering that both approaches need is added to the
naive estimate, so the speed-up is conservative.

Usage::

    RADIOSEG_DATA=/path/to/sdc1 python benchmarks/masks.py [--naive-sources 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from radioseg_utils.core.bands import get_band
from radioseg_utils.data.masks import DEFAULT_K_SIGMA, make_masks
from radioseg_utils.io import registry
from radioseg_utils.io.catalogue import read_truth_catalogue
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.simulation.sources import SourceStamp, add_stamp, source_stamps

GRID = 32768
INTEGRATION_H = 1000


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def naive_seconds_per_source(stamps: list[SourceStamp], grid: int, threshold: float) -> float:
    """Mean time of the naive full-image paint of one source on a ``grid``² image."""
    best = np.zeros((grid, grid), np.float32)
    labels = np.zeros((grid, grid), np.int32)
    start = time.perf_counter()
    for stamp in stamps:
        h, w = stamp.data.shape
        centred = SourceStamp(stamp.index, (grid - h) // 2, (grid - w) // 2, stamp.data)
        model = np.zeros((grid, grid), np.float32)
        add_stamp(model, centred)
        win = (model >= threshold) & (model > best)
        best[win] = model[win]
        labels[win] = stamp.index + 1
    return (time.perf_counter() - start) / len(stamps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default="TrainingSet_B1_v2_ML.txt",
                        help="registry name or path of the truth catalogue")
    parser.add_argument("--tile", type=int, default=None, help="tile side (default: package)")
    parser.add_argument("--naive-sources", type=int, default=20, help="sources in the naive loop")
    parser.add_argument("--naive-grids", type=int, nargs=2, default=(2048, 4096),
                        help="two grid sides on which the naive loop is timed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the naive subset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    path = registry.fetch(args.catalogue) if args.catalogue in registry.list_files() else args.catalogue
    catalogue = read_truth_catalogue(path)
    band = get_band("B1")
    noise = band.noise(INTEGRATION_H)
    wcs = sdc1_wcs(band, (GRID, GRID))
    rss_before = _peak_rss_mib()

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        binary, labels, report = make_masks(catalogue, wcs, band, shape=(GRID, GRID), noise=noise,
                                            tile=args.tile, out_dir=tmp)
        tiled_s = time.perf_counter() - start
        rss_tiled = _peak_rss_mib()
        source_px = int(np.count_nonzero(binary))
        del binary, labels

    # Rendering alone (shared by both approaches), for the selected sources.
    start = time.perf_counter()
    stamps = list(source_stamps(catalogue[report.rows], wcs, band, shape=(GRID, GRID)))
    render_s = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    subset = [stamps[i] for i in rng.choice(len(stamps), args.naive_sources, replace=False)]
    threshold = DEFAULT_K_SIGMA * noise
    per_source = {g: naive_seconds_per_source(subset, g, threshold) for g in args.naive_grids}
    g_small, g_big = args.naive_grids
    scaling = per_source[g_big] / per_source[g_small] / (g_big / g_small) ** 2
    naive_s = per_source[g_big] * (GRID / g_big) ** 2 * report.n_selected + render_s

    result = {
        "grid": GRID, "catalogue": str(path), "n_catalogue": report.n_catalogue,
        "n_selected": report.n_selected, "n_labelled": report.n_labelled,
        "source_pixels": source_px, "tiled_seconds": round(tiled_s, 2),
        "peak_rss_mib_before": round(rss_before), "peak_rss_mib_tiled": round(rss_tiled),
        "render_seconds": round(render_s, 2),
        "naive_seconds_per_source": {str(g): round(t, 5) for g, t in per_source.items()},
        "naive_pixel_scaling_vs_linear": round(scaling, 2),
        "naive_seconds_extrapolated": round(naive_s),
        "speedup": round(naive_s / tiled_s),
    }
    print(json.dumps(result, indent=1))  # noqa: T201 (benchmark output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
