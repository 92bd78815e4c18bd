"""From an image to a segmentation, a probability map and a source catalogue.

:func:`predict_image` runs the whole inference chain on an image file of any size, and
:func:`segment` the same chain on an image already in memory
(:class:`~radioseg_utils.io.fits_read.SkyImage`), which
:func:`radioseg_utils.baselines.run_unet` times as a finder like the classical ones:

1. tiled inference with blended seams (:mod:`radioseg_utils.inference.tiling`), one row of tiles at
   a time;
2. one global threshold (:mod:`radioseg_utils.postprocess.threshold`, computed on an evenly strided
   sample of at most ``THRESHOLD_SAMPLE_PIXELS`` probabilities);
3. the sources, block by block: for a model with a centre head (two output channels), the
   peaks of the centre map above ``centre_threshold`` (tuned on a validation field and kept
   in the model sidecar), each owning a watershed segment of the mask
   (:mod:`radioseg_utils.postprocess.centres`); otherwise connected components of the mask, optionally
   split at image peaks. Then measurement on the image
   (:mod:`radioseg_utils.postprocess.blocks`: ``CATALOGUE_BLOCK`` pixels plus a ``BLOCK_MARGIN`` on each
   side; a source belongs to the block whose core holds its centroid, so sources up to the
   margin in size are whole and none is counted twice);
4. :func:`predict_image` writes outputs in ``out_dir``: ``<stem>_seg.fits`` (source ids,
   same WCS and header as the input), ``<stem>_prob.fits`` (``<stem>_prob<c>.fits`` for
   the further output channels ``c >= 1`` of a multi-channel model), the catalogue as
   ``<stem>_cat.ecsv`` and ``<stem>_cat.fits`` (with units), the SDC1 submission
   ``<stem>_submission.txt`` and a DS9 region file ``<stem>.reg`` (fk5 ellipses).

:func:`predict_image` streams: it reads the file one row of tiles (or one block) at a time,
keeps the rows of model outputs and the finished blocks in ``<out_dir>/<stem>.partial/``
(:mod:`radioseg_utils.inference.streaming`) and writes the FITS outputs block by block, so memory is
bounded whatever the image size; an interrupted run resumes from the finished pieces
(``resume=True``), and outputs get their final names only when all are complete. The rows
and blocks can run on a dask cluster (``scheduler`` or ``n_workers``,
:mod:`radioseg_utils.inference.distributed`) with the same result as in one process.

The model is a path to a radioseg ``.keras`` model with its sidecar (loaded by
:func:`radioseg_utils.model.files.load_model`, which also gives its band and normalisation) or
any callable mapping ``(B, H, W, 1)`` float32 batches to outputs ``(B, H, W, C)``, channel 0
being the source probability.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from astropy.table import Table

from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.core.paths import OutputExistsError
from radioseg_utils.inference.config import (
    BLOCK_MARGIN,
    CATALOGUE_BLOCK,
    THRESHOLD_SAMPLE_PIXELS,
    PredictConfig,
    PredictResult,
    Segmentation,
    central_noise_box,
    image_noise,
    resolve_config,
    segmenter,
    tile_normaliser,
)
from radioseg_utils.inference.predict_stream import StreamJob, merge_blocks, run_stream
from radioseg_utils.inference.streaming import RunFolder, run_key
from radioseg_utils.inference.tiling import predict_tiled
from radioseg_utils.io.catalogue_stream import STREAM_FORMATS, CatalogueStream
from radioseg_utils.io.fits_read import SkyImage, image_shape, read_image
from radioseg_utils.model.files import DEFAULT_MODEL, model_files
from radioseg_utils.postprocess import blocks as bl
from radioseg_utils.postprocess.calibrate import load_calibration
from radioseg_utils.simulation.simulate import Attenuation
from radioseg_utils.simulation.sources import PrimaryBeam

__all__ = [
    "predict_image",
    "segment",
]

logger = logging.getLogger(__name__)

def _model_id(model) -> str:
    """What identifies a model in the key of a resumable run (callables: by name only)."""
    if isinstance(model, (str, Path)):
        return ";".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                        for f in model_files(model))
    kind = model if callable(model) and hasattr(model, "__qualname__") else type(model)
    return f"{kind.__module__}.{kind.__qualname__}:{getattr(model, 'name', '')}"


def _gain(primary_beam, flux_scale: float):
    """Intrinsic-to-apparent flux gain: ``flux_scale`` times the primary beam (a FITS path
    is read as :class:`~radioseg_utils.simulation.sources.PrimaryBeam`); None when there is nothing
    to correct."""
    if isinstance(primary_beam, (str, Path)):
        primary_beam = PrimaryBeam.from_fits(primary_beam)
    if flux_scale == 1.0:
        return primary_beam
    if primary_beam is None or isinstance(primary_beam, PrimaryBeam):
        return Attenuation(primary_beam, float(flux_scale))
    base = primary_beam
    return lambda ra, dec: float(flux_scale) * np.asarray(base(ra, dec), dtype=float)


def _calibrator(config: PredictConfig, band) -> Callable[[Table], Table]:
    """What finishes the sources of a block: the parameter calibration of ``config`` (the
    table unchanged without one)."""
    if config.calibration in (None, "model"):
        return lambda table: table
    calibration = load_calibration(config.calibration)
    return lambda table: calibration.apply(table, band)


def _catalogue_meta(*, band, noise, background, config, value, normalisation) -> dict:
    """Catalogue metadata; short upper-case keys, as they become FITS header cards."""
    return {"BAND": band.name, "NOISE": float(noise), "BACKGRND": float(background),
            "THRESH": config.threshold, "THRVALUE": str(value), "NORM": str(normalisation)}


def predict_image(
    image_path: str | Path,
    model: str | Path | Callable[[np.ndarray], np.ndarray] = DEFAULT_MODEL,
    *,
    out_dir: str | Path,
    normalisation: str | None = None,
    config: PredictConfig = PredictConfig(),
    noise: float | None = None,
    primary_beam: str | Path | Callable | None = None,
    overwrite: bool = False,
    progress: bool = True,
    resume: bool = True,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
) -> PredictResult:
    """Segment an image file with a model and write the segmentation, probabilities and catalogue.

    The image is streamed (rows of tiles, then catalogue blocks), so memory does not grow
    with its size: about 1.5 GB for ``CATALOGUE_BLOCK = 4096`` plus the model.

    Parameters
    ----------
    image_path : str or Path
        SDC1-style FITS image (2-D or 4-D, Jy/beam) of any size.
    model : path or callable
        A radioseg ``.keras`` model with its sidecar (default :data:`DEFAULT_MODEL`), or a
        callable ``(B, H, W, 1) -> (B, H, W, C)`` (channel 0: probabilities).
    out_dir : str or Path
        Folder for the outputs (created); also holds the run folder ``<stem>.partial/``
        while the run lasts.
    normalisation : str, optional
        Name of the tile normalisation (:func:`radioseg_utils.data.normalise.normalise`). For a
        model file it defaults to, and must agree with, the sidecar's; for a callable,
        None means no normalisation.
    config : PredictConfig
        Threshold, component, measurement and tiling settings.
    noise : float, optional
        Image rms in Jy/beam for the peak S/N and noise-based normalisations; default the
        sigma-clipped rms of a central ``NOISE_BOX`` box, whose sigma-clipped median is
        subtracted as background before sources are measured.
    primary_beam : path or callable, optional
        SDC1 primary-beam FITS file (or a callable of RA, Dec); fluxes are divided by it.
    overwrite : bool
        Replace existing output files.
    progress : bool
        Show progress bars (with the remaining time).
    resume : bool
        Reuse the finished pieces of an interrupted run with the same image, model and
        settings (a model callable is known by its name only: pass False after changing
        one). False starts afresh.
    scheduler : str, optional
        Address of a dask scheduler whose workers share this file system: rows of tiles
        and blocks run there.
    n_workers : int, optional
        Without ``scheduler``, run on a local dask cluster of this many workers (None or
        1: in this process).
    processes : bool
        Local cluster workers are processes (True) or threads.

    Returns
    -------
    PredictResult

    Raises
    ------
    FileNotFoundError
        If the image or the model is missing.
    radioseg_utils.core.paths.OutputExistsError
        If an output exists and ``overwrite`` is False (a :class:`FileExistsError`).
    radioseg_utils.model.files.ModelMismatchError
        If the model was trained on another band or normalisation.
    """
    image_path, out_dir = Path(image_path), Path(out_dir)
    if not image_path.is_file():
        raise FileNotFoundError(f"image {image_path} not found")
    shape = image_shape(image_path)
    centre = read_image(image_path, section=central_noise_box(shape))
    band = centre.band
    _, resolved = segmenter(model, band.name, normalisation)
    background, rms = estimate_noise(centre.data)
    noise = rms if noise is None else noise
    config = resolve_config(model, config, band=band, noise=noise)
    stem = image_path.name.removesuffix(".gz").removesuffix(".fits").removesuffix(".fit")
    paths = {
        "segmentation": out_dir / f"{stem}_seg.fits",
        "probability": out_dir / f"{stem}_prob.fits",
        "ecsv": out_dir / f"{stem}_cat.ecsv",
        "fits": out_dir / f"{stem}_cat.fits",
        "parquet": out_dir / f"{stem}_cat.parquet",
        "submission": out_dir / f"{stem}_submission.txt",
        "regions": out_dir / f"{stem}.reg",
    }
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"output(s) exist: {', '.join(existing)}")
    stat = image_path.resolve().stat()
    key = run_key(image=str(image_path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns,
                  model=_model_id(model), normalisation=resolved, noise=float(noise),
                  config=repr(config), primary_beam=str(primary_beam),
                  blocks=(CATALOGUE_BLOCK, BLOCK_MARGIN))
    folder = RunFolder.open(out_dir / f"{stem}.partial", key, resume=resume)
    job = StreamJob(image_path, shape, model.resolve() if isinstance(model, Path) else model,
                    normalisation, band.name, float(noise), float(background),
                    _gain(primary_beam, config.flux_scale), config, folder.path)
    header = centre.header.copy()
    header["BUNIT"] = ""
    blocks = bl.catalogue_blocks(shape, block=CATALOGUE_BLOCK, margin=BLOCK_MARGIN)
    channels, value, stats = run_stream(job, blocks, header, scheduler=scheduler,
                                        n_workers=n_workers, processes=processes,
                                        progress=progress)
    meta = {**_catalogue_meta(band=band, noise=noise, background=background, config=config,
                              value=value, normalisation=resolved), "IMAGE": image_path.name}
    names = {"seg.fits": "segmentation", "prob0.fits": "probability", "cat.ecsv": "ecsv",
             "cat.fits": "fits", "cat.parquet": "parquet", "submission.txt": "submission",
             "regions.reg": "regions"}
    formats = {kind: folder.path / name for name, kind in names.items() if kind in STREAM_FORMATS}
    clock = time.perf_counter()
    with CatalogueStream(formats, meta=meta) as catalogue:
        n_sources = merge_blocks(replace(job, threshold=value), blocks, header, catalogue,
                                 finish=_calibrator(config, band), progress=progress)
    stats["merge_s"] = time.perf_counter() - clock
    logger.info("%d sources, threshold %s, noise %.3g Jy/beam", n_sources, value, noise)
    for c in range(1, len(channels)):
        paths[f"probability{c}"] = out_dir / f"{stem}_prob{c}.fits"
        names[f"prob{c}.fits"] = f"probability{c}"
    folder.commit({name: paths[kind] for name, kind in names.items()}, overwrite=overwrite)
    return PredictResult(n_sources=n_sources, threshold=value, noise=float(noise), paths=paths,
                         stats=stats)


def segment(
    sky: SkyImage,
    model: str | Path | Callable[[np.ndarray], np.ndarray] = DEFAULT_MODEL,
    *,
    normalisation: str | None = None,
    config: PredictConfig = PredictConfig(),
    noise: float | None = None,
    primary_beam: str | Path | Callable | None = None,
    progress: bool = False,
) -> Segmentation:
    """Segment an image held in memory: the chain of :func:`predict_image`, without files.

    Parameters
    ----------
    sky : SkyImage
        2-D image in Jy/beam with its WCS and band (e.g. from
        :func:`radioseg_utils.io.fits_read.read_image`).
    model, normalisation, config, noise, primary_beam
        As in :func:`predict_image` (noise and background from the central
        ``NOISE_BOX`` box of ``sky`` when ``noise`` is None).
    progress : bool
        Show a progress bar over tiles.

    Returns
    -------
    Segmentation
        ``(prob, labels, catalogue, threshold)``: float32 probabilities ``(ny, nx)``
        (``(ny, nx, C)`` for a model with ``C > 1`` outputs) and int32 source ids on the
        image grid, the catalogue (ids equal to the labels), the threshold. The same
        numbers as :func:`predict_image` writes.

    Raises
    ------
    FileNotFoundError
        If the model file is missing.
    radioseg_utils.model.files.ModelMismatchError
        If the model was trained on another band or normalisation.
    """
    net, normalisation = segmenter(model, sky.band.name, normalisation, tta=config.tta)
    background, rms = image_noise(sky)
    noise = rms if noise is None else noise
    config = resolve_config(model, config, band=sky.band, noise=noise)
    prob = predict_tiled(net, sky.data, tile=config.tile, overlap=config.overlap,
                         batch_size=config.batch_size, progress=progress,
                         normalise=tile_normaliser(normalisation, noise))
    maps = prob if prob.ndim == 3 else prob[..., None]
    step = bl.sample_step(sky.shape, THRESHOLD_SAMPLE_PIXELS)
    value = bl.threshold_from_sample(maps[::step, ::step, 0], config.threshold,
                                     config.threshold_kwargs)
    kwargs = dict(threshold=value, noise=noise, background=background,
                  primary_beam=_gain(primary_beam, config.flux_scale), config=config)
    labels = np.zeros(sky.shape, np.int32)
    tables, offset = [], 0
    for block in bl.catalogue_blocks(sky.shape, block=CATALOGUE_BLOCK, margin=BLOCK_MARGIN):
        window = block.window
        section = replace(sky, data=sky.data[window], wcs=sky.wcs.slice(window),
                          origin=(window[0].start, window[1].start))
        core, cat = bl.offset_ids(*bl.own_core(block, *bl.segment_block(section, maps[window], **kwargs)),
                                  offset)
        y0, y1, x0, x1 = block.core
        labels[y0:y1, x0:x1] = core
        tables.append(cat)
        offset += len(cat)
    catalogue = _calibrator(config, sky.band)(bl.stack_blocks(tables))
    catalogue.meta.update(_catalogue_meta(band=sky.band, noise=noise, background=background,
                                          config=config, value=value,
                                          normalisation=normalisation))
    logger.info("%d sources, threshold %s, noise %.3g Jy/beam", len(catalogue), value, noise)
    return Segmentation(prob, labels, catalogue, value)
