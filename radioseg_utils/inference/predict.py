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
4. the finishing of every block's catalogue: the model's size and flux calibration
   (:mod:`radioseg_utils.postprocess.calibrate`, SDC1 images) and its per-source
   reliability, the column ``p_real`` (:mod:`radioseg_utils.postprocess.reliability`,
   every image, when the model's sidecar names a reliability file; the metadata ``PREAL``
   name the file, or say ``none`` and the column is absent);
5. :func:`predict_image` writes outputs in ``out_dir``: ``<stem>_seg.fits`` (source ids,
   same WCS and header as the input), ``<stem>_prob.fits`` (``<stem>_prob<c>.fits`` for
   the further output channels ``c >= 1`` of a multi-channel model), the background and
   rms maps ``<stem>_bkg.fits`` and ``<stem>_rms.fits`` (input WCS and units), the
   catalogue as ``<stem>_cat.ecsv`` and ``<stem>_cat.fits`` (with units), the SDC1
   submission ``<stem>_submission.txt`` and a DS9 region file ``<stem>.reg`` (fk5 ellipses);
   where ``config.components`` (by default: images that are not SDC1), the Gaussian
   components of the sources (:mod:`radioseg_utils.postprocess.decompose`, Aegean's and
   PyBDSF's unit) as ``<stem>_comp.ecsv`` and ``<stem>_comp.fits``, their ``source_id``
   the source's ``id``, metadata ``CONTENT`` saying what the rows are.

Before step 1 the image is planned for the model
(:mod:`radioseg_utils.inference.conditioning`): an SDC1 image runs as it is, with the SDC1
corrections; any other image is resampled to the pixels per beam the model was trained
on, scaled by its local noise, its model outputs mapped back to its own grid, and measured
with its header beam and local noise, without SDC1 corrections unless asked. The
catalogue metadata say which (``SDC1``, ``CORRECT``, ``BEAMMAJ`` … ``NOISEMAP``, and
``DOMAIN``: the ways the image lies outside the training domain, also raised as
:class:`~radioseg_utils.inference.conditioning.TrainingDomainWarning`).

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
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from astropy.table import Table

from radioseg_utils.core.noise import NoiseMesh, estimate_noise, noise_mesh
from radioseg_utils.core.paths import OutputExistsError
from radioseg_utils.inference.conditioning import (
    Conditioning,
    TrainingDomainWarning,
    domain_problems,
    plan_conditioning,
)
from radioseg_utils.inference.config import (
    BLOCK_MARGIN,
    CATALOGUE_BLOCK,
    THRESHOLD_SAMPLE_PIXELS,
    PredictConfig,
    PredictResult,
    Segmentation,
    central_noise_box,
    image_noise,
    p_real_cut,
    resolve_config,
    segmenter,
    tile_normaliser,
)
from radioseg_utils.inference.predict_stream import StreamJob, merge_blocks, noise_stage, run_stream
from radioseg_utils.inference.streaming import RunFolder, run_key
from radioseg_utils.inference.tiling import predict_tiled
from radioseg_utils.io.catalogue_stream import STREAM_FORMATS, CatalogueStream
from radioseg_utils.io.fits_read import SkyImage, image_shape, read_image
from radioseg_utils.model.files import DEFAULT_MODEL, model_files
from radioseg_utils.postprocess import blocks as bl
from radioseg_utils.postprocess.calibrate import load_calibration
from radioseg_utils.postprocess.reliability import load_reliability
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


def _finisher(config: PredictConfig, band, plan: Conditioning) -> Callable[[Table], Table]:
    """What finishes the sources of a block: the parameter calibration of ``config``, then
    its per-source reliability ``p_real`` (each skipped without its file)."""
    steps: list[Callable[[Table], Table]] = []
    if config.calibration not in (None, "model"):
        calibration = load_calibration(config.calibration)
        steps.append(lambda table: calibration.apply(table, band))
    if config.reliability not in (None, "model"):
        reliability = load_reliability(config.reliability)
        beam = plan.measure_beam_arcsec or band.beam_fwhm_arcsec
        steps.append(lambda table: reliability.apply(table, beam))

    def finish(table: Table) -> Table:
        for step in steps:
            table = step(table)
        return table

    return finish


def _catalogue_meta(*, band, noise, background, config, value, normalisation,
                    plan: Conditioning, problems: list[str], primary_beam: bool) -> dict:
    """Catalogue metadata; short upper-case keys, as they become FITS header cards.
    ``PREAL`` names the reliability file that gave ``p_real``, or says ``none`` (no
    ``p_real`` column); ``PREALMIN``, present with a cut, the least ``p_real`` kept;
    ``CENTRE`` the centre-map level of a detection (models with a centre head)."""
    preal = "none" if config.reliability in (None, "model") else Path(config.reliability).name
    cut = {} if config.min_p_real is None else {"PREALMIN": float(config.min_p_real)}
    if config.centre_threshold is not None:
        cut["CENTRE"] = float(config.centre_threshold)
    return {"BAND": band.name, "NOISE": float(noise), "BACKGRND": float(background),
            "THRESH": config.threshold, "THRVALUE": str(value), "NORM": str(normalisation),
            **plan.meta(config, primary_beam=primary_beam),
            "DOMAIN": "; ".join(problems) or "inside", "PREAL": preal, **cut}


def _component_meta(meta: dict) -> dict:
    """Metadata of the component table: the catalogue's, less the corrections fitted to
    sources (calibration) and their reliability, with what the rows are."""
    applied = [c for c in meta["CORRECT"].split(",") if not c.startswith("calibration=")]
    meta = {key: value for key, value in meta.items() if key != "PREAL"}
    return {**meta, "CORRECT": ",".join(applied) or "none",
            "CONTENT": "Gaussian components (radioseg_utils.postprocess.decompose)"}


def _noise_levels(plan: Conditioning, mesh: NoiseMesh | None, background: float, noise: float):
    """``(background, noise, rms_range)`` reported for the image: the median of the maps
    where they are used, else the single values."""
    if plan.noise_map:
        return (float(np.median(mesh.background)), mesh.median_rms,
                (float(mesh.rms.min()), float(mesh.rms.max())))
    return background, noise, (noise, noise)


def _warn(problems: list[str], name: str) -> None:
    for problem in problems:
        warnings.warn(f"{name} lies outside the model's training domain: {problem}",
                      TrainingDomainWarning, stacklevel=3)


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
    with its size: the model and TensorFlow (about 1.5 GB) plus a row of tiles or a catalogue
    block (about 0.35 GB for ``CATALOGUE_BLOCK = 2048``).

    Parameters
    ----------
    image_path : str or Path
        FITS image (2-D or 4-D, Jy/beam) of any size: an SDC1 image or any other with a
        restoring beam in its header (:func:`radioseg_utils.io.fits_read.header_beam`).
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
        Image rms in Jy/beam for the peak S/N and noise-based normalisations. Default: for
        an SDC1 image, the sigma-clipped rms of a central ``NOISE_BOX`` box, whose
        sigma-clipped median is subtracted as background before sources are measured (SDC1
        noise is uniform); for any other image, the local background and rms maps
        (:func:`radioseg_utils.core.noise.noise_mesh`).
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
    radioseg_utils.inference.conditioning.ImageConditioningError
        If the image's beam is under two pixels.

    Warns
    -----
    radioseg_utils.inference.conditioning.TrainingDomainWarning
        For each way the image lies outside the model's training domain.
    """
    image_path, out_dir = Path(image_path), Path(out_dir)
    if not image_path.is_file():
        raise FileNotFoundError(f"image {image_path} not found")
    shape = image_shape(image_path)
    centre = read_image(image_path, section=central_noise_box(shape))
    band = centre.band
    _, resolved = segmenter(model, band.name, normalisation)
    plan = plan_conditioning(centre, shape, model, noise_given=noise is not None)
    background, rms = estimate_noise(centre.data)
    noise = rms if noise is None else noise
    config = resolve_config(model, config, band=band, noise=noise, sdc1=plan.sdc1)
    finish = _finisher(config, band, plan)  # a bad calibration or reliability file stops here
    stem = image_path.name.removesuffix(".gz").removesuffix(".fits").removesuffix(".fit")
    paths = {
        "segmentation": out_dir / f"{stem}_seg.fits",
        "probability": out_dir / f"{stem}_prob.fits",
        "background": out_dir / f"{stem}_bkg.fits",
        "rms": out_dir / f"{stem}_rms.fits",
        "ecsv": out_dir / f"{stem}_cat.ecsv",
        "fits": out_dir / f"{stem}_cat.fits",
        "parquet": out_dir / f"{stem}_cat.parquet",
        "submission": out_dir / f"{stem}_submission.txt",
        "regions": out_dir / f"{stem}.reg",
    }
    if config.components:
        paths["components_ecsv"] = out_dir / f"{stem}_comp.ecsv"
        paths["components_fits"] = out_dir / f"{stem}_comp.fits"
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"output(s) exist: {', '.join(existing)}")
    stat = image_path.resolve().stat()
    key = run_key(image=str(image_path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns,
                  model=_model_id(model), normalisation=resolved, noise=float(noise),
                  config=repr(config), primary_beam=str(primary_beam), conditioning=repr(plan),
                  blocks=(CATALOGUE_BLOCK, BLOCK_MARGIN))
    folder = RunFolder.open(out_dir / f"{stem}.partial", key, resume=resume)
    clock = time.perf_counter()
    mesh, peak = noise_stage(image_path, shape, plan.noise_box, folder.path, centre.header)
    noise_s = time.perf_counter() - clock
    level_bkg, level_rms, rms_range = _noise_levels(plan, mesh, background, noise)
    problems = domain_problems(plan, peak=peak - level_bkg, noise=level_rms, rms_range=rms_range,
                               band=band)
    _warn(problems, image_path.name)
    job = StreamJob(image_path, shape, model.resolve() if isinstance(model, Path) else model,
                    normalisation, band.name, float(noise), float(background),
                    _gain(primary_beam, config.flux_scale), config, folder.path, plan,
                    mesh if plan.noise_map else None)
    header = centre.header.copy()
    header["BUNIT"] = ""
    blocks = bl.catalogue_blocks(shape, block=CATALOGUE_BLOCK, margin=BLOCK_MARGIN)
    channels, value, stats = run_stream(job, blocks, header, scheduler=scheduler,
                                        n_workers=n_workers, processes=processes,
                                        progress=progress)
    stats["noise_s"] = noise_s
    meta = {**_catalogue_meta(band=band, noise=level_rms, background=level_bkg, config=config,
                              value=value, normalisation=resolved, plan=plan, problems=problems,
                              primary_beam=primary_beam is not None),
            "IMAGE": image_path.name}
    names = {"seg.fits": "segmentation", "prob0.fits": "probability", "cat.ecsv": "ecsv",
             "cat.fits": "fits", "cat.parquet": "parquet", "submission.txt": "submission",
             "regions.reg": "regions", "bkg.fits": "background", "rms.fits": "rms"}
    formats = {kind: folder.path / name for name, kind in names.items() if kind in STREAM_FORMATS}
    parts = {}
    if config.components:
        names.update({"comp.ecsv": "components_ecsv", "comp.fits": "components_fits"})
        parts = {"ecsv": folder.path / "comp.ecsv", "fits": folder.path / "comp.fits"}
    clock = time.perf_counter()
    with (CatalogueStream(formats, meta=meta) as catalogue,
          CatalogueStream(parts, meta=_component_meta(meta)) as components):
        n_sources = merge_blocks(replace(job, threshold=value), blocks, header, catalogue,
                                 finish=finish, components=components if parts else None,
                                 progress=progress)
    stats["merge_s"] = time.perf_counter() - clock
    logger.info("%d sources, threshold %s, noise %.3g Jy/beam", n_sources, value, level_rms)
    for c in range(1, len(channels)):
        paths[f"probability{c}"] = out_dir / f"{stem}_prob{c}.fits"
        names[f"prob{c}.fits"] = f"probability{c}"
    folder.commit({name: paths[kind] for name, kind in names.items()}, overwrite=overwrite)
    return PredictResult(n_sources=n_sources, threshold=value, noise=float(level_rms),
                         paths=paths, stats=stats)


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
        :func:`radioseg_utils.io.fits_read.read_image`): SDC1 or not, conditioned for the
        model as in :func:`predict_image`.
    model, normalisation, config, noise, primary_beam
        As in :func:`predict_image` (for an SDC1 image, noise and background from the
        central ``NOISE_BOX`` box of ``sky`` when ``noise`` is None; for another, the
        local maps).
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
    radioseg_utils.inference.conditioning.ImageConditioningError
        If the image's beam is under two pixels.

    Warns
    -----
    radioseg_utils.inference.conditioning.TrainingDomainWarning
        For each way the image lies outside the model's training domain.
    """
    net, normalisation = segmenter(model, sky.band.name, normalisation, tta=config.tta)
    plan = plan_conditioning(sky, sky.shape, model, noise_given=noise is not None)
    background, rms = image_noise(sky)
    noise = rms if noise is None else noise
    config = resolve_config(model, config, band=sky.band, noise=noise, sdc1=plan.sdc1)
    mesh = None
    if plan.noise_map:
        mesh = noise_mesh(lambda y0, y1: sky.data[y0:y1], sky.shape, box=plan.noise_box)
    level_bkg, level_rms, rms_range = _noise_levels(plan, mesh, background, noise)
    finite = sky.data[np.isfinite(sky.data)]
    problems = domain_problems(plan, peak=float(finite.max()) - level_bkg if finite.size else 0.0,
                               noise=level_rms, rms_range=rms_range, band=sky.band)
    _warn(problems, str(sky.path.name) if sky.path else "the image")
    normaliser = tile_normaliser(normalisation, 1.0 if plan.noise_map else noise)
    model_image = plan.model_input(lambda ys, xs: sky.data[ys, xs], mesh,
                                   slice(0, plan.regrid.new_shape[0]))
    on_model = predict_tiled(net, model_image, tile=config.tile, overlap=config.overlap,
                             batch_size=config.batch_size, progress=progress, normalise=normaliser)
    on_model = on_model if on_model.ndim == 3 else on_model[..., None]
    maps = plan.image_window(lambda ys, xs: on_model[ys, xs], slice(0, sky.shape[0]),
                             slice(0, sky.shape[1]))
    prob = maps if maps.shape[2] > 1 else maps[..., 0]
    step = bl.sample_step(sky.shape, THRESHOLD_SAMPLE_PIXELS)
    value = bl.threshold_from_sample(maps[::step, ::step, 0], config.threshold,
                                     config.threshold_kwargs)
    gain = _gain(primary_beam, config.flux_scale)
    labels = np.zeros(sky.shape, np.int32)
    tables, offset = [], 0
    for block in bl.catalogue_blocks(sky.shape, block=CATALOGUE_BLOCK, margin=BLOCK_MARGIN):
        window = block.window
        section = replace(sky, data=sky.data[window], wcs=sky.wcs.slice(window),
                          origin=(window[0].start, window[1].start))
        block_noise, block_bkg = (noise, background) if mesh is None else mesh.maps(*window)[::-1]
        kwargs = dict(threshold=value, noise=block_noise, background=block_bkg, primary_beam=gain,
                      config=plan.image_config(config), beam_fwhm_arcsec=plan.measure_beam_arcsec,
                      local_scale=not plan.sdc1)
        core, cat = bl.offset_ids(*bl.own_core(block, *bl.segment_block(section, maps[window], **kwargs)),
                                  offset)
        y0, y1, x0, x1 = block.core
        labels[y0:y1, x0:x1] = core
        tables.append(cat)
        offset += len(cat)
    catalogue = _finisher(config, sky.band, plan)(bl.stack_blocks(tables))
    keep = p_real_cut(catalogue, config.min_p_real)
    if keep is not None:
        labels, catalogue, _ = bl.keep_sources(labels, catalogue, keep)
    catalogue.meta.update(_catalogue_meta(band=sky.band, noise=level_rms, background=level_bkg,
                                          config=config, value=value,
                                          normalisation=normalisation, plan=plan,
                                          problems=problems,
                                          primary_beam=primary_beam is not None))
    logger.info("%d sources, threshold %s, noise %.3g Jy/beam", len(catalogue), value, level_rms)
    return Segmentation(prob, labels, catalogue, value)
