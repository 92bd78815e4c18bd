"""What segmenting whole SDC1 images costs: measured on a field, extrapolated.

:func:`measure_unet` runs :func:`radioseg_utils.inference.predict.predict_image` (streamed, tiled
inference plus the catalogue) on a FITS field and :func:`measure_pybdsf` runs PyBDSF
(:func:`radioseg_utils.baselines.run_pybdsf`, in tiles when the field is large) on the same
field, each in a :class:`~radioseg_utils.baselines.result.ResourceMeter` (wall-clock time,
peak resident-memory increase). :func:`extrapolate` scales the times linearly in pixels to
a full ``SDC1_SIDE``² image and to one square degree of sky (both methods work tile by tile,
so their cost is linear in the area, and their memory is bounded by the tile or block size,
not the image); the U-Net's inference is scaled by the exact tile count of the full image
at the measured tiles per second, and for one GPU at a given throughput, keeping the CPU
catalogue stage.

The GPU figure is an assumption unless measured: ``ASSUMED_GPU_TILES_PER_S`` (256² tiles,
float32, batch 8, for the ~1.5 M-parameter U-Net of radioseg) is of the order of what a
data-centre GPU runs for a small U-Net. ``benchmarks/gpu_inference.py`` measures it on a
GPU machine; :func:`read_gpu_benchmark` reads its JSON result for :func:`extrapolate`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from radioseg_utils.baselines.result import ResourceMeter
from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.inference.config import PredictConfig
from radioseg_utils.inference.predict import predict_image
from radioseg_utils.inference.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, TileGrid
from radioseg_utils.io.fits_read import image_shape, read_image
from radioseg_utils.io.wcs import SDC1_SIDE
from radioseg_utils.model.files import DEFAULT_MODEL, load_segmenter

__all__ = ["ASSUMED_GPU_TILES_PER_S", "RunCost", "measure_unet", "measure_finder", "per_mpx",
           "extrapolate", "as_dict", "read_gpu_benchmark", "PREDICT_STAGES", "read_end_to_end",
           "read_inference_options"]

#: U-Net throughput of one GPU in 256² tiles per second assumed when none is measured.
ASSUMED_GPU_TILES_PER_S: float = 1000.0


@dataclass(frozen=True)
class RunCost:
    """Measured cost of one finder on one field.

    Attributes
    ----------
    finder : str
        ``"unet"`` or a classical finder (``"pybdsf"``, ``"aegean"``).
    side : int
        Side of the (square) field in pixels.
    runtime_s : float
        Wall-clock seconds of the whole run.
    peak_rss_mb : float
        Peak resident-memory increase in MB (PyBDSF, Aegean: of the worker process of the
        largest tile).
    n_sources : int
        Sources in the catalogue.
    n_tiles : int
        Model tiles (0 for the classical finders).
    inference_s : float
        Seconds of tiled inference (the rest is the probability map and catalogue).
    tile, overlap : int
        Tile side and overlap of the inference, in pixels (0 for the classical finders).
    """

    finder: str
    side: int
    runtime_s: float
    peak_rss_mb: float
    n_sources: int
    n_tiles: int = 0
    inference_s: float = 0.0
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP

    @property
    def mpx(self) -> float:
        """Pixels of the field in millions."""
        return self.side**2 / 1e6

    @property
    def tiles_per_s(self) -> float:
        """Tiled-inference throughput (NaN without tiles)."""
        return self.n_tiles / self.inference_s if self.n_tiles else float("nan")


def measure_unet(
    image_path: str | Path,
    model: Any = DEFAULT_MODEL,
    *,
    out_dir: str | Path,
    config: PredictConfig = PredictConfig(),
    n_workers: int | None = None,
    processes: bool = True,
) -> RunCost:
    """Time :func:`~radioseg_utils.inference.predict.predict_image` on a square field from scratch.

    Outputs go to ``out_dir`` (replaced). In one process a model file is loaded before the
    clock starts; ``n_workers`` > 1 runs on a local dask cluster whose workers load it
    (then the time includes starting the cluster and the memory counted is this
    process's only).
    """
    side = _side(image_path)
    normalisation = None
    if isinstance(model, (str, Path)) and n_workers in (None, 1):
        band = read_image(image_path, section=(slice(0, 1), slice(0, 1))).band
        model, normalisation = load_segmenter(model, band.name)
    with ResourceMeter() as meter:
        result = predict_image(image_path, model, out_dir=out_dir, config=config, overwrite=True,
                               normalisation=normalisation, progress=False, resume=False,
                               n_workers=n_workers, processes=processes)
    return RunCost("unet", side, meter.runtime_s, meter.peak_rss_mb, result.n_sources,
                   int(result.stats["n_tiles"]), float(result.stats["tiles_s"]), config.tile,
                   config.overlap)


def measure_finder(finder: str, image_path: str | Path, *, workdir: str | Path,
                   **kwargs: Any) -> RunCost:
    """Time a classical finder run in its own process (``"pybdsf"`` with the SDC1 baseline
    settings, ``"aegean"`` with Aegean's defaults; tiled for large fields) on a field.

    ``workdir`` receives the finder's files; ``kwargs`` go to the finder. The time includes
    starting the worker process (about 4 s of CPU for the imports), the memory is the
    worker's peak increase after them.

    Raises
    ------
    ValueError
        If ``finder`` is not a finder with a ``workdir`` (run in a subprocess).
    """
    import inspect

    from radioseg_utils.baselines import FINDERS

    external = [name for name, run in FINDERS.items()
                if "workdir" in inspect.signature(run).parameters]
    if finder not in external:
        raise ValueError(f"{finder!r} is not a finder run in a subprocess; expected one of "
                         f"{external}")
    result = FINDERS[finder](image_path, workdir=workdir, **kwargs)
    return RunCost(finder, _side(image_path), result.runtime_s, result.peak_rss_mb,
                   len(result.catalogue), tile=0, overlap=0)


def per_mpx(costs: list[RunCost]) -> Table:
    """Time and memory of each measurement per megapixel of its field.

    Returns
    -------
    astropy.table.Table
        One row per measurement: ``finder``, ``side``, ``mpx``, ``runtime_s``,
        ``s_per_mpx``, ``peak_rss_mb``, ``mb_per_mpx``, ``n_sources``.

    Examples
    --------
    >>> table = per_mpx([RunCost("aegean", 500, runtime_s=50.0, peak_rss_mb=25.0, n_sources=9)])
    >>> float(table["s_per_mpx"][0]), float(table["mb_per_mpx"][0])
    (200.0, 100.0)
    """
    rows = [(c.finder, c.side, c.mpx, c.runtime_s, c.runtime_s / c.mpx, c.peak_rss_mb,
             c.peak_rss_mb / c.mpx, c.n_sources) for c in costs]
    return Table(rows=rows or None, names=("finder", "side", "mpx", "runtime_s", "s_per_mpx",
                                           "peak_rss_mb", "mb_per_mpx", "n_sources"))


def _side(image_path: str | Path) -> int:
    ny, nx = image_shape(image_path)
    if ny != nx:
        raise ValueError(f"{image_path}: expected a square field, got {ny} x {nx} pixels")
    return ny


def read_gpu_benchmark(path: str | Path) -> tuple[float, str]:
    """Best throughput and a description from a ``benchmarks/gpu_inference.py`` result.

    Returns
    -------
    tiles_per_s : float
        The highest 256² tiles per second over the batch sizes measured.
    note : str
        ``"measured on <device>, Keras <version> (<backend>), <date>"``.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If the run was incomplete, saw no accelerator, or measured another tile size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GPU benchmark result {path} not found")
    result = json.loads(path.read_text())
    if not result.get("complete") or not result.get("accelerator"):
        raise ValueError(f"{path}: not a complete run on an accelerator")
    if int(result["tile"]) != DEFAULT_TILE:
        raise ValueError(f"{path}: measured {result['tile']}² tiles, predict uses {DEFAULT_TILE}²")
    best = max(float(r["tiles_per_s"]) for r in result["results"])
    device = result["device"].split("(")[-1].rstrip(")") if "(" in result["device"] else result["device"]
    note = (f"measured on {device}, Keras {result['keras_version']} ({result['backend']}), "
            f"{result['utc'][:10]}")
    return best, note


def extrapolate(
    costs: list[RunCost],
    band: str | Band,
    *,
    side: int = SDC1_SIDE,
    gpu_tiles_per_s: float = ASSUMED_GPU_TILES_PER_S,
    gpu_note: str = "assumed",
) -> Table:
    """Cost per full image of ``side``² pixels and per square degree, by finder and device.

    Parameters
    ----------
    costs : list of RunCost
        Measurements (any field sizes).
    band : str or Band
        Band of the pixel grid (sets the area of a pixel).
    side : int
        Side of the full image (default the SDC1 32768).
    gpu_tiles_per_s : float
        U-Net tiles per second on one GPU (assumed unless measured).
    gpu_note : str
        Where ``gpu_tiles_per_s`` comes from, shown in the device column (``"assumed"``,
        or the note of :func:`read_gpu_benchmark`).

    Returns
    -------
    astropy.table.Table
        One row per measurement and device (``"CPU"`` as measured; ``"1 GPU"`` for the
        U-Net): ``finder``, ``device``, ``measured_side``, ``hours_per_image``,
        ``seconds_per_deg2``, ``peak_rss_mb`` (as measured: bounded, not scaled).

    Examples
    --------
    >>> cost = RunCost("unet", 1024, runtime_s=10.0, peak_rss_mb=500.0, n_sources=90,
    ...                n_tiles=25, inference_s=5.0)  # 5 tiles/s; 147² tiles in 32768²
    >>> table = extrapolate([cost], "B1", gpu_tiles_per_s=500.0)
    >>> [round(float(h), 2) for h in table["hours_per_image"]]
    [2.62, 1.43]
    """
    band = get_band(band)
    area_deg2 = (side * band.pixel_arcsec / 3600.0) ** 2
    rows = []
    for cost in costs:
        scale = (side / cost.side) ** 2
        cpu_s = cost.runtime_s * scale
        if cost.n_tiles:  # inference from the exact tile count of the full image
            grid = TileGrid((side, side), cost.tile, cost.overlap)
            n_tiles = grid.n_rows * grid.n_cols
            rest_s = (cost.runtime_s - cost.inference_s) * scale
            cpu_s = n_tiles / cost.tiles_per_s + rest_s
            gpu_s = n_tiles / gpu_tiles_per_s + rest_s
        rows.append((cost.finder, "CPU", cost.side, cpu_s / 3600.0, cpu_s / area_deg2,
                     cost.peak_rss_mb))
        if cost.n_tiles:
            rows.append((cost.finder, f"1 GPU ({gpu_tiles_per_s:.0f} tiles/s, {gpu_note}) + CPU",
                         cost.side, gpu_s / 3600.0, gpu_s / area_deg2, cost.peak_rss_mb))
    table = Table(rows=rows, names=("finder", "device", "measured_side", "hours_per_image",
                                    "seconds_per_deg2", "peak_rss_mb"))
    table.meta.update(side=side, band=band.name, area_deg2=area_deg2,
                      gpu_tiles_per_s=gpu_tiles_per_s, gpu_note=gpu_note)
    return table


def as_dict(cost: RunCost) -> dict[str, Any]:
    """A cost as a JSON-serialisable dict, with ``tiles_per_s``."""
    return {**asdict(cost), "tiles_per_s": float(np.round(cost.tiles_per_s, 3))}


#: Stages of ``radioseg predict`` in the records of ``benchmarks/end_to_end.py``, in order.
PREDICT_STAGES: tuple[str, ...] = ("noise_s", "tiles_s", "probability_s", "blocks_s", "merge_s")


def read_end_to_end(*paths: str | Path) -> Table:
    """The runs recorded by ``benchmarks/end_to_end.py``, one row per run.

    Columns: ``record`` (file name), ``commit`` (of the code measured, abbreviated;
    ``unrecorded`` for records made before commits were recorded), ``device``,
    ``cpu_count``, ``side``, ``mpx``,
    ``workers``, ``simulate_workers`` (processes that simulated the field; ``workers`` in
    records that do not say), ``simulate_s``, the :data:`PREDICT_STAGES`, ``predict_s`` (the whole
    call, setup included), ``peak_tree_mb`` (peak resident memory of the predict call,
    summed over its process tree), ``fresh_process`` (True when the predict call ran in a
    process of its own, as ``radioseg predict`` does; False in older records, where it
    followed the simulation in the same process and its peak includes what that left
    behind), ``tiles_per_s`` and ``n_sources``.

    Raises
    ------
    ValueError
        If a file is not such a record (the message names it).
    """
    rows = []
    for path in paths:
        path = Path(path)
        try:
            record = json.loads(path.read_text())
            for run in record["runs"]:
                stages = run["predict"]["stages"]
                commit = str(record["git_commit"])[:7] if record.get("git_commit") else "unrecorded"
                rows.append((path.name, commit, record["device"], int(record["cpu_count"]),
                             int(run["size"]), float(run["mpx"]), int(run["workers"]),
                             int(run.get("simulate_workers", run["workers"])),
                             float(run["simulate"]["seconds"]),
                             *(float(stages.get(s, np.nan)) for s in PREDICT_STAGES),
                             float(run["predict"]["seconds"]),
                             float(run["predict"]["peak_tree_mb"]),
                             bool(run.get("fresh_processes", False)),
                             float(run["predict"]["tiles_per_s"] or np.nan),
                             int(run["predict"]["n_sources"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a benchmarks/end_to_end.py record: "
                             f"{type(exc).__name__}: {exc}") from None
    names = ("record", "commit", "device", "cpu_count", "side", "mpx", "workers",
             "simulate_workers", "simulate_s",
             *PREDICT_STAGES, "predict_s", "peak_tree_mb", "fresh_process", "tiles_per_s",
             "n_sources")
    return Table(rows=rows, names=names) if rows else Table(names=names)


def read_inference_options(path: str | Path) -> Table:
    """The settings measured by ``benchmarks/inference_options.py``, one row each.

    Columns: ``setting``, ``tile``, ``batch``, ``variant`` (``float32``, ``xla`` or
    ``bf16``), ``useful_mpx_per_s`` (the median over rounds), ``ratio_to_baseline`` and
    ``max_probability_change`` (largest change of the source probability from the
    baseline's on a simulated patch); the record's ``backend``, ``cpu_count`` and
    ``model`` in ``meta``.

    Raises
    ------
    ValueError
        If the file is not such a record (the message names it).
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        rows = [(name, int(s["tile"]), int(s["batch"]), str(s["variant"]),
                 float(np.median(s["useful_mpx_per_s"])), float(s["ratio_to_baseline"]),
                 float(s["max_probability_change"]))
                for name, s in record["settings"].items()]
        meta = {key: record[key] for key in ("backend", "cpu_count", "model")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a benchmarks/inference_options.py record: "
                         f"{type(exc).__name__}: {exc}") from None
    return Table(rows=rows, meta=meta,
                 names=("setting", "tile", "batch", "variant", "useful_mpx_per_s",
                        "ratio_to_baseline", "max_probability_change"))
