"""From an image to a segmentation, a probability map and a source catalogue.

:func:`predict_image` runs the whole inference chain on an image file of any size, and
:func:`segment` the same chain on an image already in memory
(:class:`~radioseg_utils.fitsio.SkyImage`), which
:func:`radioseg_utils.baselines.run_unet` times as a finder like the classical ones:

1. tiled inference with blended seams (:mod:`radioseg_utils.tiling`), one row of tiles at
   a time;
2. one global threshold (:mod:`radioseg_utils.threshold`, computed on an evenly strided
   sample of at most ``THRESHOLD_SAMPLE_PIXELS`` probabilities);
3. the sources, block by block: for a model with a centre head (two output channels), the
   peaks of the centre map above ``centre_threshold`` (tuned on a validation field and kept
   in the model sidecar), each owning a watershed segment of the mask
   (:mod:`radioseg_utils.centres`); otherwise connected components of the mask, optionally
   split at image peaks. Then measurement on the image
   (:mod:`radioseg_utils.blocks`: ``CATALOGUE_BLOCK`` pixels plus a ``BLOCK_MARGIN`` on each
   side; a source belongs to the block whose core holds its centroid, so sources up to the
   margin in size are whole and none is counted twice);
4. :func:`predict_image` writes outputs in ``out_dir``: ``<stem>_seg.fits`` (source ids,
   same WCS and header as the input), ``<stem>_prob.fits`` (``<stem>_prob<c>.fits`` for
   the further output channels ``c >= 1`` of a multi-channel model), the catalogue as
   ``<stem>_cat.ecsv`` and ``<stem>_cat.fits`` (with units), the SDC1 submission
   ``<stem>_submission.txt`` and a DS9 region file ``<stem>.reg`` (fk5 ellipses).

:func:`predict_image` streams: it reads the file one row of tiles (or one block) at a time,
keeps the rows of model outputs and the finished blocks in ``<out_dir>/<stem>.partial/``
(:mod:`radioseg_utils.streaming`) and writes the FITS outputs block by block, so memory is
bounded whatever the image size; an interrupted run resumes from the finished pieces
(``resume=True``), and outputs get their final names only when all are complete. The rows
and blocks can run on a dask cluster (``scheduler`` or ``n_workers``,
:mod:`radioseg_utils.distributed`) with the same result as in one process.

The model is a path to a radioseg ``.keras`` model with its sidecar (loaded by
:func:`radioseg_utils.modelio.load_model`, which also gives its band and normalisation) or
any callable mapping ``(B, H, W, 1)`` float32 batches to outputs ``(B, H, W, C)``, channel 0
being the source probability.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.table import Table

from . import blocks as bl
from .bands import Band, get_band
from .catalogue import write_submission
from .components import DEFAULT_CONNECTIVITY, DEFAULT_MIN_DISTANCE
from .fitsio import SkyImage, image_shape, read_image
from .measure import ClassRule
from .noise import estimate_noise
from .paths import check_writable
from .normalise import normalise as normalise_image
from .augment import with_tta
from .calibrate import load_calibration
from .centres import DEFAULT_CENTRE_THRESHOLD
from .simulate import FLUX_SCALE, Attenuation
from .sources import PrimaryBeam
from .streaming import RunFolder, run_key
from .tiling import DEFAULT_BATCH, DEFAULT_OVERLAP, DEFAULT_TILE, predict_tiled

__all__ = [
    "DEFAULT_MODEL",
    "ASSEMBLE_ROWS",
    "THRESHOLD_SAMPLE_PIXELS",
    "CATALOGUE_BLOCK",
    "BLOCK_MARGIN",
    "NOISE_BOX",
    "PredictConfig",
    "PredictResult",
    "Segmentation",
    "image_noise",
    "load_model_cached",
    "load_segmenter",
    "model_files",
    "resolve_config",
    "tuned_centre_threshold",
    "predict_image",
    "segment",
    "write_ds9_regions",
]

logger = logging.getLogger(__name__)

#: Pretrained model shipped with the package (used when no model is given).
DEFAULT_MODEL: Path = Path(__file__).resolve().parent / "pretrained" / "unet_B1.keras"
#: Image rows assembled at a time when the probability map is written.
ASSEMBLE_ROWS: int = 512
#: Largest number of probabilities the global threshold is computed from.
THRESHOLD_SAMPLE_PIXELS: int = 4096 * 4096
#: Side of the blocks the catalogue is built in, in pixels.
CATALOGUE_BLOCK: int = 4096
#: Extra pixels read around each block so that sources crossing its edge are whole.
BLOCK_MARGIN: int = 128
#: Side of the central box the image noise is estimated in, in pixels.
NOISE_BOX: int = 2048


@dataclass(frozen=True)
class PredictConfig:
    """Settings of :func:`predict_image` (data go in the call, not here).

    Attributes
    ----------
    threshold : str
        ``"fixed"`` (default: probability 0.5, the decision boundary of a network trained
        with cross-entropy), ``"yen"`` (the poster's choice; on well-trained probability maps
        it cuts far too low, see the thresholding chapter), ``"otsu"``, ``"triangle"``,
        ``"li"`` or ``"hysteresis"``.
    threshold_kwargs : dict
        Options of the threshold method (``value`` for fixed; ``low``/``high`` for hysteresis).
    min_area : int
        Smallest component kept, in pixels.
    connectivity : {8, 4}
        Pixel connectivity of components.
    split_blends : bool
        Split components with several image peaks by watershed.
    min_distance : int
        Minimum peak separation for splitting, in pixels.
    grow : float
        Pixels by which components are grown before measuring (to include the wings).
    tile, overlap, batch_size : int
        Tiled inference settings (:func:`radioseg_utils.tiling.predict_tiled`).
    rule : ClassRule
        SIZE/CLASS rule of :func:`radioseg_utils.measure.measure_sources`.
    centre_threshold : float, optional
        Centre-map level of a detection (models with a centre head); None takes the
        value tuned for the model (``centre_threshold`` of its sidecar, see
        :func:`resolve_config`), else :data:`~radioseg_utils.centres.DEFAULT_CENTRE_THRESHOLD`.
    centre_distance : int
        Smallest separation of two centres, in pixels.
    tta : bool
        Test-time augmentation: average the model over the eight flips and rotations of
        each tile (:func:`radioseg_utils.augment.with_tta`; eight times slower).
    flux_scale : float
        Apparent / intrinsic flux beyond the primary beam; fluxes are divided by it (and by
        the primary beam, if given). Default the SDC1 value,
        :data:`radioseg_utils.simulate.FLUX_SCALE`; 1 leaves fluxes as measured.
    calibration : str, optional
        Learned size and flux corrections (:mod:`radioseg_utils.calibrate`) applied to the
        catalogue: ``"model"`` (default) takes the file named by the model's sidecar, if
        any (see :func:`resolve_config`); a path takes that file; None keeps the sizes and
        fluxes as measured in the segments.
    """

    threshold: str = "fixed"
    threshold_kwargs: dict = field(default_factory=dict)
    min_area: int = 3
    connectivity: int = DEFAULT_CONNECTIVITY
    split_blends: bool = False
    min_distance: int = DEFAULT_MIN_DISTANCE
    grow: float = 1.0
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = DEFAULT_BATCH
    rule: ClassRule = ClassRule()
    centre_threshold: float | None = None
    centre_distance: int = 1
    tta: bool = False
    flux_scale: float = FLUX_SCALE
    calibration: str | None = "model"


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_image` produced.

    Attributes
    ----------
    catalogue : astropy.table.Table
        The sources (ids equal to the values in the segmentation map).
    threshold : float or tuple
        Threshold applied to the probabilities (``(low, high)`` for hysteresis).
    noise : float
        Image rms (Jy/beam) used for the peak S/N.
    paths : dict
        Output files by kind: ``segmentation``, ``probability``, ``ecsv``, ``fits``,
        ``submission``, ``regions`` (and ``probability<c>`` for further model channels).
    stats : dict
        Tile count and wall-clock seconds per stage
        (:func:`radioseg_utils.predict_stream.run_stream`).
    """

    catalogue: Table
    threshold: float | tuple[float, float]
    noise: float
    paths: dict[str, Path]
    stats: dict[str, float] = field(default_factory=dict)


class Segmentation(NamedTuple):
    """What :func:`segment` returns: float32 probabilities ``prob`` (``(ny, nx, C)`` for a
    model with ``C > 1`` outputs) and int32 source ids ``labels`` (0 = background), both
    ``(ny, nx)``; the ``catalogue`` (``meta``: ``NOISE``,
    ``BACKGRND``, ``THRESH``, ``THRVALUE``, ``NORM``); the ``threshold`` applied (``(low,
    high)`` for hysteresis)."""

    prob: np.ndarray
    labels: np.ndarray
    catalogue: Table
    threshold: float | tuple[float, float]


def _noise_box(shape: tuple[int, int]) -> tuple[slice, slice]:
    """Central box of side at most ``NOISE_BOX`` in which the noise is estimated."""
    ny, nx = shape
    return (slice((ny - min(ny, NOISE_BOX)) // 2, (ny + min(ny, NOISE_BOX)) // 2),
            slice((nx - min(nx, NOISE_BOX)) // 2, (nx + min(nx, NOISE_BOX)) // 2))


def image_noise(sky: SkyImage) -> tuple[float, float]:
    """``(background, rms)`` of an image in memory: sigma-clipped median and rms of its
    central ``NOISE_BOX`` box (what :func:`segment` measures and subtracts)."""
    return estimate_noise(sky.data[_noise_box(sky.shape)])


def load_segmenter(
    model: str | Path | Callable[[np.ndarray], np.ndarray],
    band: str,
    normalisation: str | None = None,
) -> tuple[Callable[[np.ndarray], np.ndarray], str | None]:
    """``(model, normalisation)``, loaded once to segment several images.

    A ``.keras`` file is read with its sidecar by :func:`radioseg_utils.modelio.load_model`,
    checked against ``band``, and ``normalisation`` defaults to (and must agree with) the
    sidecar's; a loaded model or callable is returned unchanged with ``normalisation``
    (None: no normalisation). Raises FileNotFoundError for a missing file and
    :class:`~radioseg_utils.modelio.ModelMismatchError` for another band or normalisation.
    """
    if not isinstance(model, (str, Path)):
        return model, normalisation
    path = Path(model)
    if not path.with_suffix(".keras").is_file() and not path.is_file():
        hint = (" (the package's pretrained model is missing: reinstall radioseg or "
                "recreate it with `radioseg pretrain`)") if path == DEFAULT_MODEL else ""
        raise FileNotFoundError(f"model file {path} not found{hint}")
    from .modelio import load_model

    loaded, meta = load_model(path, expect_band=band, expect_normalisation=normalisation)
    return loaded, meta["normalisation"]


@functools.lru_cache(maxsize=4)
def _load_file_cached(path: str, mtime_ns: int, band: str, normalisation: str | None):
    return load_segmenter(Path(path), band, normalisation)


def load_model_cached(model, band: str, normalisation: str | None = None):
    """:func:`load_segmenter`, reading each model file once per process (a file changed
    on disk is read again): cluster workers and the finder grid run many images with the
    same model."""
    if isinstance(model, (str, Path)) and Path(model).is_file():
        path = Path(model).resolve()
        return _load_file_cached(str(path), path.stat().st_mtime_ns, band, normalisation)
    return load_segmenter(model, band, normalisation)


def _segmenter(model, band: str, normalisation: str | None, *, tta: bool = False):
    """:func:`load_model_cached`, wrapped for test-time augmentation if asked."""
    net, norm = load_model_cached(model, band, normalisation)
    return (with_tta(net) if tta else net), norm


def tuned_centre_threshold(sidecar: dict, band: str | Band | None = None,
                           noise: float | None = None) -> float:
    """The centre threshold a model sidecar holds for an image of ``band`` and rms ``noise``.

    A sidecar with ``centre_thresholds`` (``{band: {integration: value}}``, tuned on a
    validation field per band and integration by
    :func:`radioseg_utils.pretrain.tune_centre_thresholds`) gives the value of the
    integration whose nominal rms (:meth:`~radioseg_utils.bands.Band.noise`) is nearest to
    ``noise`` (in log). Without that table, band or noise: its ``centre_threshold``, else
    :data:`~radioseg_utils.centres.DEFAULT_CENTRE_THRESHOLD`.
    """
    fallback = float(sidecar.get("centre_threshold", DEFAULT_CENTRE_THRESHOLD))
    if band is None or noise is None or not noise > 0:
        return fallback
    band = get_band(band)
    table = sidecar.get("centre_thresholds", {}).get(band.name)
    if not table:
        return fallback
    hours = min(table, key=lambda h: abs(np.log(noise / band.noise(int(h)))))
    return float(table[hours])


def resolve_config(model, config: PredictConfig, *, band: str | Band | None = None,
                   noise: float | None = None) -> PredictConfig:
    """``config`` with the centre threshold and calibration of the model filled in.

    A ``centre_threshold`` of None becomes the value tuned for a model file and an image of
    ``band`` and rms ``noise`` (:func:`tuned_centre_threshold` of its sidecar), or
    :data:`~radioseg_utils.centres.DEFAULT_CENTRE_THRESHOLD` for a callable. A
    ``calibration`` of ``"model"`` becomes the path of the file named by the sidecar's
    ``calibration`` (beside the model), or None for a callable or a sidecar without one.
    Values already set are kept.
    """
    sidecar = _sidecar(model)
    if config.centre_threshold is None:
        config = replace(config, centre_threshold=tuned_centre_threshold(sidecar, band, noise))
    if config.calibration == "model":
        path = _calibration_file(model, sidecar)
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"calibration file {path} named by the sidecar of {model} "
                                    "not found")
        config = replace(config, calibration=None if path is None else str(path))
    return config


def _sidecar(model) -> dict:
    """The JSON sidecar of a model file (``{}`` for a callable or a file without one)."""
    if not isinstance(model, (str, Path)):
        return {}
    side = Path(model).with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else {}


def _calibration_file(model: str | Path, sidecar: dict) -> Path | None:
    """The calibration file a sidecar names, beside the model (None if it names none)."""
    name = sidecar.get("calibration")
    return None if name is None else Path(model).resolve().parent / name


def model_files(model: str | Path) -> list[Path]:
    """The files a model path stands for: the ``.keras`` file, its JSON sidecar (those that
    exist) and the calibration file the sidecar names."""
    path = Path(model)
    path = path if path.suffix == ".keras" else path.with_suffix(".keras")
    files = [f for f in (path, path.with_suffix(".json")) if f.is_file()]
    calibration = _calibration_file(path, _sidecar(path))
    return files if calibration is None else [*files, calibration]


def _model_id(model) -> str:
    """What identifies a model in the key of a resumable run (callables: by name only)."""
    if isinstance(model, (str, Path)):
        return ";".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}"
                        for f in model_files(model))
    kind = model if callable(model) and hasattr(model, "__qualname__") else type(model)
    return f"{kind.__module__}.{kind.__qualname__}:{getattr(model, 'name', '')}"


def _tile_normaliser(normalisation: str | None, noise: float):
    if normalisation is None:
        return None
    return functools.partial(normalise_image, method=normalisation, noise=noise)


def _gain(primary_beam, flux_scale: float):
    """Intrinsic-to-apparent flux gain: ``flux_scale`` times the primary beam (a FITS path
    is read as :class:`~radioseg_utils.sources.PrimaryBeam`); None when there is nothing
    to correct."""
    if isinstance(primary_beam, (str, Path)):
        primary_beam = PrimaryBeam.from_fits(primary_beam)
    if flux_scale == 1.0:
        return primary_beam
    if primary_beam is None or isinstance(primary_beam, PrimaryBeam):
        return Attenuation(primary_beam, float(flux_scale))
    base = primary_beam
    return lambda ra, dec: float(flux_scale) * np.asarray(base(ra, dec), dtype=float)


def _finish(tables: list[Table], *, band, noise, background, config, value, normalisation) -> Table:
    catalogue = bl.stack_blocks(tables)
    if config.calibration not in (None, "model"):
        catalogue = load_calibration(config.calibration).apply(catalogue, band)
    # short upper-case keys: they become FITS header cards of the catalogue table
    catalogue.meta.update(BAND=band.name, NOISE=float(noise), BACKGRND=float(background),
                          THRESH=config.threshold, THRVALUE=str(value), NORM=str(normalisation))
    logger.info("%d sources, threshold %s, noise %.3g Jy/beam", len(catalogue), value, noise)
    return catalogue


def write_ds9_regions(catalogue: Table, path: str | Path, *, overwrite: bool = False,
                      color: str = "green") -> Path:
    """Write the sources as DS9 fk5 ellipses (measured FWHM / 2 semi-axes, with ids).

    The DS9 angle is counter-clockwise from the RA axis (west on the sky as displayed),
    i.e. ``pa_eon + 90`` for a position angle east of north.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Catalogue of :func:`radioseg_utils.measure.measure_sources` (uses ``ra_cent``,
        ``dec_cent``, ``fwhm_maj``, ``fwhm_min``, ``pa_eon``, ``id``).
    path : str or Path
        Output ``.reg`` file; replaced only when ``overwrite`` is True.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = check_writable(path, overwrite=overwrite)
    lines = ["# Region file format: DS9 version 4.1", f"global color={color} width=1", "fk5"]
    for row in catalogue:
        lines.append(
            f"ellipse({float(row['ra_cent']) % 360.0:.7f},{float(row['dec_cent']):.7f},"
            f"{float(row['fwhm_maj']) / 2:.3f}\",{float(row['fwhm_min']) / 2:.3f}\","
            f"{(float(row['pa_eon']) + 90.0) % 180.0:.2f}) # text={{{int(row['id'])}}}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path



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
        Name of the tile normalisation (:func:`radioseg_utils.normalise.normalise`). For a
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
    FileExistsError
        If an output exists and ``overwrite`` is False.
    radioseg_utils.modelio.ModelMismatchError
        If the model was trained on another band or normalisation.
    """
    image_path, out_dir = Path(image_path), Path(out_dir)
    if not image_path.is_file():
        raise FileNotFoundError(f"image {image_path} not found")
    shape = image_shape(image_path)
    centre = read_image(image_path, section=_noise_box(shape))
    band = centre.band
    _, resolved = _segmenter(model, band.name, normalisation)
    background, rms = estimate_noise(centre.data)
    noise = rms if noise is None else noise
    config = resolve_config(model, config, band=band, noise=noise)
    stem = image_path.name.removesuffix(".gz").removesuffix(".fits").removesuffix(".fit")
    paths = {
        "segmentation": out_dir / f"{stem}_seg.fits",
        "probability": out_dir / f"{stem}_prob.fits",
        "ecsv": out_dir / f"{stem}_cat.ecsv",
        "fits": out_dir / f"{stem}_cat.fits",
        "submission": out_dir / f"{stem}_submission.txt",
        "regions": out_dir / f"{stem}.reg",
    }
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output(s) exist: {', '.join(existing)}; pass overwrite=True")
    stat = image_path.resolve().stat()
    key = run_key(image=str(image_path.resolve()), size=stat.st_size, mtime=stat.st_mtime_ns,
                  model=_model_id(model), normalisation=resolved, noise=float(noise),
                  config=repr(config), primary_beam=str(primary_beam),
                  blocks=(CATALOGUE_BLOCK, BLOCK_MARGIN))
    folder = RunFolder.open(out_dir / f"{stem}.partial", key, resume=resume)
    from .predict_stream import StreamJob, run_stream  # it imports this module

    job = StreamJob(image_path, shape, model.resolve() if isinstance(model, Path) else model,
                    normalisation, band.name, float(noise), float(background),
                    _gain(primary_beam, config.flux_scale), config, folder.path)
    header = centre.header.copy()
    header["BUNIT"] = ""
    blocks = bl.catalogue_blocks(shape, block=CATALOGUE_BLOCK, margin=BLOCK_MARGIN)
    channels, value, tables, stats = run_stream(job, blocks, header, scheduler=scheduler,
                                         n_workers=n_workers, processes=processes,
                                         progress=progress)
    catalogue = _finish(tables, band=band, noise=noise, background=background, config=config,
                        value=value, normalisation=resolved)
    catalogue.meta["IMAGE"] = image_path.name
    for c in range(1, len(channels)):
        paths[f"probability{c}"] = out_dir / f"{stem}_prob{c}.fits"
    names = {"seg.fits": "segmentation", "prob0.fits": "probability", "cat.ecsv": "ecsv",
             "cat.fits": "fits", "submission.txt": "submission", "regions.reg": "regions",
             **{f"prob{c}.fits": f"probability{c}" for c in range(1, len(channels))}}
    catalogue.write(folder.path / "cat.ecsv", format="ascii.ecsv", overwrite=True)
    catalogue.write(folder.path / "cat.fits", format="fits", overwrite=True)
    write_submission(catalogue, folder.path / "submission.txt", overwrite=True, allow_empty=True)
    write_ds9_regions(catalogue, folder.path / "regions.reg", overwrite=True)
    folder.commit({name: paths[kind] for name, kind in names.items()}, overwrite=overwrite)
    return PredictResult(catalogue=catalogue, threshold=value, noise=float(noise), paths=paths,
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
        :func:`radioseg_utils.fitsio.read_image`).
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
    radioseg_utils.modelio.ModelMismatchError
        If the model was trained on another band or normalisation.
    """
    net, normalisation = _segmenter(model, sky.band.name, normalisation, tta=config.tta)
    background, rms = image_noise(sky)
    noise = rms if noise is None else noise
    config = resolve_config(model, config, band=sky.band, noise=noise)
    prob = predict_tiled(net, sky.data, tile=config.tile, overlap=config.overlap,
                         batch_size=config.batch_size, progress=progress,
                         normalise=_tile_normaliser(normalisation, noise))
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
    catalogue = _finish(tables, band=sky.band, noise=noise, background=background, config=config,
                        value=value, normalisation=normalisation)
    return Segmentation(prob, labels, catalogue, value)
