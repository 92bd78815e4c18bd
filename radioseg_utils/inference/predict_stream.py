"""The streamed, resumable, distributable run of :func:`radioseg_utils.inference.predict.predict_image`.

:func:`noise_stage` first reads the image in bands of rows for its background and rms
(:func:`radioseg_utils.core.noise.noise_mesh`) and writes their maps as FITS. Then
:func:`run_stream` does the work in three resumable stages, each piece stored in the run
folder (:mod:`radioseg_utils.inference.streaming`) as soon as it is finished:

1. rows of tiles (:func:`radioseg_utils.inference.tiling.predict_row`) on the model grid,
   each task reading its rows of the FITS file, conditioning them for the model
   (:meth:`radioseg_utils.inference.conditioning.Conditioning.model_input`: resampled and
   scaled by the local noise for an image that is not SDC1) and loading the model once
   per process;
2. the blended probability map, mapped back to the image grid and written band by band
   as FITS (one file per output channel) while the threshold sample is gathered, then the
   threshold;
3. catalogue blocks (:func:`radioseg_utils.postprocess.blocks.segment_block`), each reading its window
   of the image and of the stored model outputs (mapped back to the image grid).

Stages 1 and 3 run on a dask cluster when asked (:mod:`radioseg_utils.inference.distributed`); the
blocks are finally merged in block order into the segmentation FITS and the catalogue, so
the result does not depend on where or in which order the pieces ran.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from tqdm.auto import tqdm

from radioseg_utils.core.noise import NoiseMesh, noise_mesh
from radioseg_utils.inference.conditioning import Conditioning
from radioseg_utils.inference.config import (
    ASSEMBLE_ROWS,
    THRESHOLD_SAMPLE_PIXELS,
    PredictConfig,
    p_real_cut,
    segmenter,
    tile_normaliser,
)
from radioseg_utils.inference.distributed import cluster_client, map_tasks
from radioseg_utils.inference.streaming import RunFolder, StripStore
from radioseg_utils.inference.tiling import TileGrid, predict_row
from radioseg_utils.io.catalogue_stream import CatalogueStream
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.io.fits_write import FitsStream
from radioseg_utils.postprocess import blocks as bl
from radioseg_utils.postprocess.decompose import decompose_sources

__all__ = ["StreamJob", "noise_stage", "run_stream", "merge_blocks"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamJob:
    """What every task of a streamed run needs; sent to cluster workers (picklable).

    Attributes
    ----------
    image : Path
        FITS image, read by section.
    shape : (ny, nx)
        Image shape.
    model : path or callable
        Model file (loaded once per process) or callable.
    normalisation : str, optional
        As given to :func:`radioseg_utils.inference.predict.predict_image`.
    band : str
        Band of the image.
    noise, background : float
        Image rms and background, Jy/beam.
    primary_beam : PrimaryBeam or callable, optional
        Fluxes are divided by it.
    config : PredictConfig
        Settings of the run.
    folder : Path
        The run folder (:class:`~radioseg_utils.inference.streaming.RunFolder`).
    conditioning : Conditioning
        How the image is shown to the model and measured.
    mesh : NoiseMesh, optional
        Background and rms of the image, when ``conditioning.noise_map``.
    threshold : float or (low, high), optional
        Global threshold, once known.
    """

    image: Path
    shape: tuple[int, int]
    model: Any
    normalisation: str | None
    band: str
    noise: float
    background: float
    primary_beam: Any
    config: PredictConfig
    folder: Path
    conditioning: Conditioning
    mesh: NoiseMesh | None = None
    threshold: Any = None

    @property
    def grid(self) -> TileGrid:
        """Tiles of the model grid."""
        return TileGrid(self.conditioning.regrid.new_shape, self.config.tile, self.config.overlap)

    def store(self) -> StripStore:
        return StripStore(RunFolder(self.folder), self.grid)

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        """A window of the image, read from the file."""
        return read_image(self.image, section=(ys, xs)).data

    def normaliser(self, normalisation: str | None):
        """Tile normaliser of the model input (in units of the local rms with noise maps)."""
        return tile_normaliser(normalisation, 1.0 if self.conditioning.noise_map else self.noise)

    def prob_window(self, ys: slice, xs: slice) -> np.ndarray:
        """Stored model outputs on the image window ``[ys, xs]``, float32 ``(h, w, C)``."""
        return self.conditioning.image_window(self.store().window, ys, xs)

    def block_kwargs(self, window: tuple[slice, slice]) -> dict:
        """Options of :func:`~radioseg_utils.postprocess.blocks.segment_block` on ``window``."""
        noise, background = self.noise, self.background
        if self.conditioning.noise_map:
            background, noise = self.mesh.maps(*window)
        return dict(threshold=self.threshold, noise=noise, background=background,
                    primary_beam=self.primary_beam,
                    config=self.conditioning.image_config(self.config),
                    beam_fwhm_arcsec=self.conditioning.measure_beam_arcsec,
                    local_scale=not self.conditioning.sdc1)


def _row_task(iy: int, job: StreamJob) -> None:
    """Model outputs of row ``iy`` of tiles, read from the file and stored."""
    net, normalisation = segmenter(job.model, job.band, job.normalisation, tta=job.config.tta)
    grid = job.grid
    y0, y1 = grid.row_span(iy)
    strip = job.conditioning.model_input(job.read, job.mesh, slice(y0, y1))
    out = predict_row(net, strip, grid, iy, batch_size=job.config.batch_size,
                      normalise=job.normaliser(normalisation))
    job.store().save(iy, out)


def _block_task(block: bl.Block, job: StreamJob) -> int:
    """Segment and measure one block from the stored outputs; store its labels and sources."""
    prob = job.prob_window(*block.window)
    sky = read_image(job.image, section=block.window)
    kwargs = job.block_kwargs(block.window)
    labels, window_cat = bl.segment_block(sky, prob, **kwargs)
    core, cat = bl.own_core(block, labels, window_cat)
    folder = RunFolder(job.folder)
    folder.save_table(f"blocks/{block.name}.parquet", cat)
    if job.config.components:
        parts = decompose_sources(sky.data, labels, window_cat, sky.wcs, noise=kwargs["noise"],
                                  background=kwargs["background"],
                                  beam_fwhm_arcsec=job.conditioning.measure_beam_arcsec
                                  or sky.band.beam_fwhm_arcsec)
        folder.save_table(f"blocks/{block.name}_comp.parquet",
                          bl.own_components(block, labels, window_cat, parts))
    folder.save_array(f"blocks/{block.name}.npz", core, compress=True)  # written last: done
    return len(cat)


def _write_probability(job: StreamJob, header: fits.Header, *, progress: bool) -> tuple[list[str], Any]:
    """Write the blended map (one FITS per channel) into the run folder; the threshold."""
    ny, nx = job.shape
    folder = RunFolder(job.folder)
    step = bl.sample_step(job.shape, THRESHOLD_SAMPLE_PIXELS)
    streams, samples = [], []
    try:
        for r0 in tqdm(range(0, ny, ASSEMBLE_ROWS), desc="probability map", unit="band",
                       disable=not progress):
            rows = job.prob_window(slice(r0, min(r0 + ASSEMBLE_ROWS, ny)), slice(0, nx))
            if not streams:
                streams = [FitsStream(job.folder / f"prob{c}.fits", header, job.shape)
                           for c in range(rows.shape[2])]
            for c, stream in enumerate(streams):
                stream.write(r0, 0, rows[..., c])
            samples.append(bl.band_sample(rows[..., 0], r0, step))
    finally:
        for stream in streams:
            stream.close()
    value = bl.threshold_from_sample(np.concatenate(samples), job.config.threshold,
                                     job.config.threshold_kwargs)
    names = [f"prob{c}.fits" for c in range(len(streams))]
    folder.save_json("threshold.json", {"value": value, "channels": names})  # written last: done
    return names, value


def merge_blocks(job: StreamJob, blocks: list[bl.Block], header: fits.Header,
                 catalogue: CatalogueStream, *, finish: Callable[[Table], Table] = lambda t: t,
                 components: CatalogueStream | None = None, progress: bool = True) -> int:
    """Merge the stored blocks, one at a time: the segmentation FITS ``seg.fits`` in the run
    folder and the catalogue, appended to ``catalogue`` block by block.

    Memory holds one block whatever the image size. Source ids run on across blocks in
    block order, equal to the values of the segmentation map.

    Parameters
    ----------
    job : StreamJob
        The run whose blocks are all stored (:func:`run_stream` done).
    blocks : list of Block
        The catalogue blocks, in order.
    header : astropy.io.fits.Header
        Header of the segmentation FITS (the input's).
    catalogue : CatalogueStream
        Where the sources go.
    finish : callable
        Applied to each block's table before it is written (e.g. the parameter
        calibration); then the ``p_real`` cut of ``job.config`` (:func:`p_real_cut`) drops
        sources from the block's labels, table and components.
    components : CatalogueStream, optional
        Where the sources' Gaussian components go (stored by the blocks when
        ``job.config.components``), numbered ``1..`` across blocks.
    progress : bool
        Show a progress bar.

    Returns
    -------
    int
        Number of sources.
    """
    folder, offset, n_components = RunFolder(job.folder), 0, 0
    header = header.copy()
    header["HISTORY"] = f"radioseg predict: threshold {job.config.threshold} = {job.threshold}"
    with FitsStream(job.folder / "seg.fits", header, job.shape) as stream:
        for block in tqdm(blocks, desc="merge", unit="block", disable=not progress):
            core = folder.load_array(f"blocks/{block.name}.npz")
            cat = finish(folder.load_table(f"blocks/{block.name}.parquet"))
            parts = (None if components is None
                     else folder.load_table(f"blocks/{block.name}_comp.parquet"))
            keep = p_real_cut(cat, job.config.min_p_real)
            if keep is not None:
                core, cat, parts = bl.keep_sources(core, cat, keep, parts)
            core, cat = bl.offset_ids(core, cat, offset)
            stream.write(block.core[0], block.core[2], core.astype(np.float32))
            catalogue.append(cat)
            if components is not None:
                parts = bl.offset_components(parts, offset, n_components + 1)
                components.append(parts)
                n_components += len(parts)
            offset += len(cat)
    return offset


def noise_stage(image: Path, shape: tuple[int, int], box: int, folder: Path,
                header: fits.Header) -> tuple[NoiseMesh, float]:
    """Background and rms of an image file (resumable); their maps written as FITS.

    Reads the image in bands of ``box`` rows (:func:`radioseg_utils.core.noise.noise_mesh`,
    boxes every ``box // 2`` pixels),
    keeps the mesh in the run folder (``noise_mesh.npy``, ``noise.json``) and writes
    ``bkg.fits`` and ``rms.fits`` there (NaN where the image is blanked),
    ``ASSEMBLE_ROWS`` rows at a time, with ``header`` (the input's).
    Memory: one band of rows and its boxes per core, the mesh and ``ASSEMBLE_ROWS`` rows of
    the maps.

    Returns
    -------
    mesh : NoiseMesh
    peak : float
        Brightest finite pixel of the image.
    """
    ny, nx = shape
    run = RunFolder(folder)
    if run.has("noise.json"):
        saved, info = run.load_array("noise_mesh.npy"), run.load_json("noise.json")
        mesh = NoiseMesh(shape, int(info["box"]), int(info["step"]), saved[0], saved[1])
        peak = float(info["peak"])
    else:
        peaks: list[float] = []

        def read_rows(y0: int, y1: int) -> np.ndarray:
            data = read_image(image, section=(slice(y0, y1), slice(0, nx))).data
            finite = data[np.isfinite(data)]
            peaks.append(float(finite.max()) if finite.size else -np.inf)
            return data

        # bands of rows are independent: read and clipped in threads (numpy and the FITS
        # reads release the GIL), one band per core held at a time
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            mesh = noise_mesh(read_rows, shape, box=box, mapper=pool.map)
        peak = float(max(peaks))
        run.save_array("noise_mesh.npy", np.stack([mesh.background, mesh.rms]))
        run.save_json("noise.json", {"box": mesh.box, "step": mesh.step, "peak": peak})  # done
    if not run.has("noise_maps.json"):
        with FitsStream(folder / "bkg.fits", header, shape) as bkg, \
                FitsStream(folder / "rms.fits", header, shape) as rms:
            for r0 in range(0, ny, ASSEMBLE_ROWS):
                rows = slice(r0, min(r0 + ASSEMBLE_ROWS, ny))
                blank = ~np.isfinite(read_image(image, section=(rows, slice(0, nx))).data)
                for stream, values in zip((bkg, rms), mesh.maps(rows, slice(0, nx)), strict=True):
                    stream.write(r0, 0, np.where(blank, np.float32(np.nan), values))
        run.save_json("noise_maps.json", {"box": mesh.box})  # written last: done
    return mesh, peak


def run_stream(
    job: StreamJob,
    blocks: list[bl.Block],
    header: fits.Header,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    progress: bool = True,
) -> tuple[list[str], Any, dict[str, float]]:
    """Run (or resume) the stages of a streamed prediction.

    Parameters
    ----------
    job : StreamJob
        The run (``threshold`` is filled in here).
    blocks : list of Block
        Catalogue blocks of the image (:func:`radioseg_utils.postprocess.blocks.catalogue_blocks`).
    header : astropy.io.fits.Header
        Header of the FITS maps (the input's).
    scheduler, n_workers, processes
        Where tasks run (:func:`radioseg_utils.inference.distributed.cluster_client`).
    progress : bool
        Show progress bars with the remaining time.

    Returns
    -------
    channels : list of str
        Names, in the run folder, of the probability FITS files (one per channel).
    threshold : float or (low, high)
        Global threshold.
    stats : dict
        ``n_tiles`` (of the image), ``tiles_run`` (in this call: fewer when resumed) and
        the wall-clock seconds of the stages ``tiles_s``, ``probability_s`` and
        ``blocks_s`` (the first and last include starting and closing a local cluster).
        The stored blocks are then merged by :func:`merge_blocks`.
    """
    folder = RunFolder(job.folder)
    grid, store = job.grid, job.store()
    stats: dict[str, float] = {"n_tiles": grid.n_rows * grid.n_cols}
    clock = time.perf_counter()
    with cluster_client(scheduler, n_workers, processes=processes) as client:
        rows = store.missing()
        stats["tiles_run"] = len(rows) * grid.n_cols
        map_tasks(_row_task, rows, client=client, progress=progress, desc="tiles",
                  unit="tile", weight=grid.n_cols, total=grid.n_rows * grid.n_cols, job=job)
        clock = _lap(stats, "tiles_s", clock)
        if folder.has("threshold.json"):
            saved = folder.load_json("threshold.json")
            channels, value = saved["channels"], saved["value"]
            value = tuple(value) if isinstance(value, list) else value
        else:
            channels, value = _write_probability(job, header, progress=progress)
        clock = _lap(stats, "probability_s", clock)
        job = replace(job, threshold=value)
        todo = [b for b in blocks if not folder.has(f"blocks/{b.name}.npz")]
        map_tasks(_block_task, todo, client=client, progress=progress, desc="catalogue blocks",
                  unit="block", total=len(blocks), job=job)
        clock = _lap(stats, "blocks_s", clock)
    logger.info("stages: %s", stats)
    return channels, value, stats


def _lap(stats: dict[str, float], name: str, start: float) -> float:
    now = time.perf_counter()
    stats[name] = now - start
    return now
