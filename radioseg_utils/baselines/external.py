"""Running an external source finder in a subprocess, tile by tile.

PyBDSF (:mod:`radioseg_utils.baselines.pybdsf`) and Aegean
(:mod:`radioseg_utils.baselines.aegean`) are run the same way:

* :func:`run_tiled` cuts an image larger than ``tile`` pixels on a side into overlapping
  tiles (:func:`radioseg_utils.inference.tiling.tile_starts`) and calls the finder on each;
  a source is kept only by the tile whose core region (tiles split at the middle of each
  overlap) holds its position, and each tile writes its island labels only into its core
  region, so sources across tile borders are neither lost nor listed twice and memory is
  bounded by the tile, not the image;
* :func:`write_input` gives the finder a 2-D FITS copy of each tile (the input is never
  touched) with the image's WCS and restoring beam;
* :func:`run_worker` runs the finder in a separate Python process (its memory, its log and
  any crash stay there) with a wall-clock limit, and raises a
  :class:`ExternalFinderError` naming the log when it fails or runs too long.

A worker process imports only the finder's module and what it needs: importing
:mod:`radioseg_utils.baselines` does not start TensorFlow, so a worker starts in about a
second, not ten.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from astropy.table import Table, vstack

from radioseg_utils.baselines.result import FinderResult
from radioseg_utils.core.paths import generated_dir
from radioseg_utils.inference.tiling import tile_starts
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ExternalFinderError",
    "TileRun",
    "new_workdir",
    "run_tiled",
    "run_worker",
    "write_input",
]

logger = logging.getLogger(__name__)

#: Wall-clock limit of one finder process (one tile), in seconds.
DEFAULT_TIMEOUT_S: float = 3600.0
_LOG_TAIL_CHARS = 2000


class ExternalFinderError(RuntimeError):
    """An external finder failed or timed out; the message names its log file."""


class TileRun(NamedTuple):
    """What a finder returns for one tile, in the tile's own pixel frame.

    Attributes
    ----------
    catalogue : astropy.table.Table
        Sources with at least ``x``, ``y`` (0-based pixels of the tile) and ``label``.
    labels : ndarray of int32, shape of the tile
        Island map of the tile (0 outside islands, the ``label`` of a source inside).
    peak_rss_mb : float
        Peak memory increase of the finder process, in MB.
    log_path : Path or None
        The finder's log.
    """

    catalogue: Table
    labels: np.ndarray
    peak_rss_mb: float
    log_path: Path | None


def new_workdir(workdir: str | Path | None, finder: str) -> Path:
    """``workdir`` (created), or a new folder under ``generated_dir() / finder``."""
    if workdir is not None:
        path = Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    root = generated_dir() / finder
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def write_input(image: SkyImage, path: str | Path) -> Path:
    """Write ``image`` as a 2-D FITS file with its WCS and restoring beam (BMAJ/BMIN/BPA).

    The header is :func:`radioseg_utils.io.wcs.sdc1_header` of the image's WCS and band,
    with the beam of the image itself (a non-SDC1 image keeps its own beam).
    """
    header = sdc1_header(image.wcs, image.band, ndim=2)
    header["BMAJ"] = image.beam.bmaj / 3600.0
    header["BMIN"] = image.beam.bmin / 3600.0
    header["BPA"] = image.beam.bpa
    return write_image(path, image.data, header, overwrite=True)


def run_worker(
    code: str,
    config: Mapping[str, Any],
    folder: Path,
    *,
    timeout: float,
    finder: str,
    error: type[ExternalFinderError] = ExternalFinderError,
) -> dict[str, Any]:
    """Run ``python -c code folder/config.json`` and return the JSON it wrote.

    Parameters
    ----------
    code : str
        Python code of the worker; it reads the configuration file named by its first
        argument and writes a JSON object to ``config["result"]``.
    config : mapping
        JSON-serialisable configuration with at least ``input`` (the image the finder
        reads, named in errors) and ``result`` (path of the worker's JSON answer).
    folder : Path
        Folder of the configuration and of the worker's output (``worker.log``).
    timeout : float
        Wall-clock limit in seconds.
    finder : str
        Name of the finder in messages.
    error : type
        Exception raised on failure (a subclass of :class:`ExternalFinderError`).

    Raises
    ------
    ExternalFinderError
        (``error``) If the worker runs longer than ``timeout`` or exits with an error;
        the message names the input, the log and, on failure, ends with the log's tail.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> code = ("import json, sys; c = json.load(open(sys.argv[1])); "
    ...         "json.dump({'ok': True}, open(c['result'], 'w'))")
    >>> run_worker(code, {"input": "x.fits", "result": str(folder / "r.json")}, folder,
    ...            timeout=60, finder="demo")
    {'ok': True}
    """
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(dict(config), indent=1))
    worker_log = folder / "worker.log"
    with worker_log.open("w") as log:
        try:
            proc = subprocess.run([sys.executable, "-c", code, str(config_path)], stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise error(f"{finder} ran longer than {timeout} s on {config['input']}; "
                        f"log: {worker_log}") from None
    if proc.returncode != 0:
        tail = worker_log.read_text()[-_LOG_TAIL_CHARS:]
        raise error(f"{finder} failed (exit {proc.returncode}) on {config['input']}; "
                    f"log: {worker_log}\n{tail}")
    return json.loads(Path(config["result"]).read_text())


def run_tiled(
    image: SkyImage,
    run_tile: Callable[..., TileRun],
    *,
    finder: str,
    workdir: Path,
    tile: int,
    overlap: int,
    maps: Mapping[str, Any] | None = None,
) -> FinderResult:
    """Run a finder on an image in overlapping tiles and stitch the results.

    Parameters
    ----------
    image : SkyImage
        The whole image.
    run_tile : callable
        ``run_tile(sub_image, folder, **maps_of_the_tile) -> TileRun`` runs the finder on
        one tile (a :class:`~radioseg_utils.io.fits_read.SkyImage` with its shifted WCS)
        with ``folder`` for its files.
    finder : str
        Name of the finder (``FinderResult.finder``).
    workdir : Path
        Parent of the tile folders (``image`` for a single tile, ``tile_y<y0>_x<x0>``).
    tile, overlap : int
        Tile side and overlap in pixels; an image no larger than ``tile`` is one tile.
    maps : mapping, optional
        Per-pixel inputs passed to ``run_tile`` by keyword: an array is cut to the tile,
        anything else (None, a number, a callable of sky position) is passed unchanged.

    Returns
    -------
    FinderResult
        Catalogue of the kept sources with ``x``, ``y`` and ``label`` in the frame of
        ``image``, ``id`` renumbered from 0; labels stitched from the tiles' core regions
        (made unique across tiles); ``runtime_s`` the total wall-clock time,
        ``peak_rss_mb`` the largest over tiles, ``log_path`` the last tile's log.

    Raises
    ------
    ValueError
        If not ``0 <= overlap < tile``.
    """
    ny, nx = image.shape
    starts_y, starts_x = tile_starts(ny, tile, overlap), tile_starts(nx, tile, overlap)
    cores_y, cores_x = _cores(starts_y, tile, ny), _cores(starts_x, tile, nx)
    labels = np.zeros((ny, nx), dtype=np.int32)
    catalogues, peak_mb, log_path = [], 0.0, None
    t0 = time.perf_counter()
    for y0, core_y in zip(starts_y, cores_y):
        for x0, core_x in zip(starts_x, cores_x):
            ys, xs = slice(y0, min(y0 + tile, ny)), slice(x0, min(x0 + tile, nx))
            name = f"tile_y{y0}_x{x0}" if len(starts_y) * len(starts_x) > 1 else "image"
            tile_maps = {key: _cut(value, ys, xs) for key, value in (maps or {}).items()}
            run = run_tile(_section(image, ys, xs), workdir / name, **tile_maps)
            peak_mb, log_path = max(peak_mb, run.peak_rss_mb), run.log_path
            cat = run.catalogue
            cat = cat[_inside(cat["y"] + y0, core_y) & _inside(cat["x"] + x0, core_x)]
            offset = int(labels.max())
            cat["x"] += x0
            cat["y"] += y0
            cat["label"] += offset
            cy, cx = slice(*core_y), slice(*core_x)
            part = run.labels[cy.start - y0 : cy.stop - y0, cx.start - x0 : cx.stop - x0]
            labels[cy, cx] = np.where(part > 0, part + offset, 0)
            catalogues.append(cat)
    catalogue = _stack(catalogues)
    runtime = time.perf_counter() - t0
    logger.info("%s: %d sources in %.1f s, log %s", finder, len(catalogue), runtime, log_path)
    return FinderResult(catalogue, labels, runtime, peak_mb, finder=finder, log_path=log_path)


def _section(image: SkyImage, ys: slice, xs: slice) -> SkyImage:
    """The ``[ys, xs]`` section of an image, with its shifted WCS."""
    if (ys.start, xs.start) == (0, 0) and (ys.stop, xs.stop) == image.shape:
        return image
    return SkyImage(
        data=image.data[ys, xs],
        wcs=image.wcs.celestial[ys, xs],
        header=image.header,
        band=image.band,
        beam=image.beam,
        pixel_arcsec=image.pixel_arcsec,
        path=image.path,
        origin=(image.origin[0] + ys.start, image.origin[1] + xs.start),
    )


def _cut(value: Any, ys: slice, xs: slice) -> Any:
    """A per-pixel input on a tile: an array is cut, a scalar, None or callable unchanged."""
    if value is None or callable(value) or np.ndim(value) == 0:
        return value
    return np.asarray(value)[ys, xs]


def _cores(starts: list[int], tile: int, n: int) -> list[tuple[int, int]]:
    """Core ranges ``[lo, hi)`` of tiles along one axis: they split ``0..n`` at the middle
    of each overlap, so every pixel belongs to exactly one core.

    Examples
    --------
    >>> _cores([0, 3, 6], 4, 10)
    [(0, 3), (3, 6), (6, 10)]
    """
    stops = [min(s + tile, n) for s in starts]
    cuts = [(nxt + stop) // 2 for nxt, stop in zip(starts[1:], stops[:-1])]
    return list(zip([0, *cuts], [*cuts, n]))


def _inside(values: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    """True where the pixel centre nearest to ``values`` lies in ``[lo, hi)``."""
    pix = np.floor(np.asarray(values) + 0.5)
    return (pix >= bounds[0]) & (pix < bounds[1])


def _stack(catalogues: list[Table]) -> Table:
    table = vstack(catalogues, metadata_conflicts="silent") if len(catalogues) > 1 else catalogues[0]
    table["id"] = np.arange(len(table))
    return table
