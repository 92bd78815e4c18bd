"""Prediction settings and what they resolve to: :class:`PredictConfig`, the result
types, the image noise, the per-model centre threshold, calibration and reliability files,
and the segmenter (model plus tile normaliser) that the in-memory and streamed paths share.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.table import Table

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.data.augment import with_tta
from radioseg_utils.data.normalise import normalise as normalise_image
from radioseg_utils.inference.conditioning import CORRECTIONS
from radioseg_utils.inference.tiling import DEFAULT_BATCH, DEFAULT_OVERLAP, DEFAULT_TILE
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.model.files import companion_file, load_model_cached, read_sidecar
from radioseg_utils.postprocess.centres import DEFAULT_CENTRE_THRESHOLD
from radioseg_utils.postprocess.components import (
    DEFAULT_CONNECTIVITY,
    DEFAULT_MIN_DISTANCE,
)
from radioseg_utils.postprocess.measure import ClassRule
from radioseg_utils.postprocess.reliability import load_reliability
from radioseg_utils.simulation.simulate import FLUX_SCALE

__all__ = [
    "ASSEMBLE_ROWS",
    "THRESHOLD_SAMPLE_PIXELS",
    "CATALOGUE_BLOCK",
    "BLOCK_MARGIN",
    "NOISE_BOX",
    "PredictConfig",
    "PredictResult",
    "Segmentation",
    "image_noise",
    "tuned_centre_threshold",
    "resolve_config",
    "SELECTIONS",
    "SCORE_SELECTION",
    "p_real_cut",
]

logger = logging.getLogger(__name__)


#: Image rows assembled at a time when the probability map is written.
ASSEMBLE_ROWS: int = 512


#: Largest number of probabilities the global threshold is computed from.
THRESHOLD_SAMPLE_PIXELS: int = 4096 * 4096


#: Side of the blocks the catalogue is built in, in pixels. A block's work holds about 0.35
#: GB at 2048 (its window, labels, watershed and measurement arrays); 4096 held 1.2 GB and
#: set the peak of a whole 32768² run (3.05 GB). The catalogue does not depend on it (the same
#: sources; positions and shapes to rounding).
CATALOGUE_BLOCK: int = 2048


#: Extra pixels read around each block so that sources crossing its edge are whole.
BLOCK_MARGIN: int = 128


#: Side of the central box the image noise is estimated in, in pixels.
NOISE_BOX: int = 2048

#: The values of :attr:`PredictConfig.selection`.
SELECTIONS: tuple[str, ...] = ("reliability", "score")
#: Sidecar key of the centre threshold and ``p_real`` cut of the ``"score"`` selection.
SCORE_SELECTION: str = "score_selection"


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
        Tiled inference settings (:func:`radioseg_utils.inference.tiling.predict_tiled`).
    rule : ClassRule
        SIZE/CLASS rule of :func:`radioseg_utils.postprocess.measure.measure_sources`.
    centre_threshold : float, optional
        Centre-map level of a detection (models with a centre head); None takes the
        value tuned for the model (``centre_threshold`` of its sidecar, see
        :func:`resolve_config`), else :data:`~radioseg_utils.postprocess.centres.DEFAULT_CENTRE_THRESHOLD`.
    centre_distance : int
        Smallest separation of two centres, in pixels.
    tta : bool
        Test-time augmentation: average the model over the eight flips and rotations of
        each tile (:func:`radioseg_utils.data.augment.with_tta`; eight times slower).
    flux_scale : float, optional
        Apparent / intrinsic flux beyond the primary beam; fluxes are divided by it (and by
        the primary beam, if given). None (default): the SDC1 value,
        :data:`radioseg_utils.simulation.simulate.FLUX_SCALE`, where the SDC1 corrections
        apply (``corrections``), else 1; 1 leaves fluxes as measured.
    calibration : str, optional
        Learned size and flux corrections (:mod:`radioseg_utils.postprocess.calibrate`) applied to the
        catalogue: ``"model"`` (default) takes the file named by the model's sidecar, if
        any, where the SDC1 corrections apply (see :func:`resolve_config`); a path takes
        that file; None keeps the sizes and fluxes as measured in the segments.
    corrections : str
        Where the SDC1-specific corrections (flux scale and calibration left to their
        defaults) apply: ``"auto"`` (default) to SDC1 images only
        (:func:`radioseg_utils.io.fits_read.is_sdc1_image`), ``"sdc1"`` to every image,
        ``"none"`` to none. A primary beam applies when one is given.
    reliability : str, optional
        Per-source reliability (:mod:`radioseg_utils.postprocess.reliability`): the
        catalogue gets the column ``p_real``. ``"model"`` (default) takes the file named
        by the model's sidecar (``reliability``), on every image; a path takes that file;
        None, or a model without one, gives no ``p_real`` column (the catalogue metadata
        ``PREAL`` say which). It is calibrated on the model's simulated SDC1 validation
        fields; on an image outside the training domain (metadata ``DOMAIN``) it ranks the
        detections but its values are not checked.
    min_p_real : float, optional
        Keep only the sources with ``p_real`` at least this (0..1): the others leave the
        catalogue, the segmentation map, the components and every other output (metadata
        ``PREALMIN``). It needs ``p_real`` (a reliability file valid at the run's centre
        threshold). None (default) keeps every detection.
    selection : str
        Which detections a catalogue holds when the centre threshold and ``min_p_real``
        are left to their defaults: ``"reliability"`` (default), the model's tuned centre
        threshold (the lowest with 96 % strict reliability on its validation fields);
        ``"score"``, the centre threshold and ``p_real`` cut that gave the highest SDC1
        score on those fields of the image's band (``score_selection`` of the sidecar,
        :func:`radioseg_utils.workflows.pretrain.tune_score_selection`): more faint
        sources and lower reliability where that scores higher, the tuned threshold where
        it does not. It fills in the centre threshold and, unless given, ``min_p_real``
        when no ``centre_threshold`` is given; it is refused for an image the SDC1
        corrections do not apply to (``corrections``), whose score it was not chosen for.
    components : bool, optional
        Also list the Gaussian components of the sources
        (:mod:`radioseg_utils.postprocess.decompose`; Aegean's and PyBDSF's unit) in
        ``<stem>_comp.ecsv`` and ``<stem>_comp.fits``. None (default): for images that are
        not SDC1 (SDC1 is scored by source, and a full image has a million of them).
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
    flux_scale: float | None = None
    calibration: str | None = "model"
    corrections: str = "auto"
    reliability: str | None = "model"
    min_p_real: float | None = None
    selection: str = "reliability"
    components: bool | None = None

    def __post_init__(self) -> None:
        if self.corrections not in CORRECTIONS:
            raise ValueError(f"corrections must be one of {', '.join(CORRECTIONS)}, "
                             f"got {self.corrections!r}")


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_image` produced.

    The catalogue is written to disk block by block and read back only when
    :attr:`catalogue` is first used, so a run over a full SDC1 image needs no memory for it.

    Attributes
    ----------
    n_sources : int
        Number of sources (ids 1.. equal to the values in the segmentation map).
    threshold : float or tuple
        Threshold applied to the probabilities (``(low, high)`` for hysteresis).
    noise : float
        Image rms (Jy/beam) used for the peak S/N (the median of the rms map where the
        local maps are used).
    paths : dict
        Output files by kind: ``segmentation``, ``probability``, ``background``, ``rms``,
        ``ecsv``, ``fits``, ``parquet``, ``submission``, ``regions`` (and ``probability<c>``
        for further model channels; ``components_ecsv`` and ``components_fits`` where the
        components are listed).
    stats : dict
        Tile count and wall-clock seconds per stage: ``noise_s`` (background and rms
        maps), ``tiles_s``, ``probability_s``, ``blocks_s``
        (:func:`radioseg_utils.inference.predict_stream.run_stream`) and ``merge_s``.
    """

    n_sources: int
    threshold: float | tuple[float, float]
    noise: float
    paths: dict[str, Path]
    stats: dict[str, float] = field(default_factory=dict)

    @functools.cached_property
    def catalogue(self) -> Table:
        """The sources as one table, read from the Parquet catalogue on first use."""
        return Table.read(self.paths["parquet"], format="parquet")

    @functools.cached_property
    def components(self) -> Table | None:
        """The Gaussian components (``source_id`` links them to :attr:`catalogue`), read
        on first use; None where they were not listed."""
        path = self.paths.get("components_ecsv")
        return None if path is None else Table.read(path, format="ascii.ecsv")


class Segmentation(NamedTuple):
    """What :func:`segment` returns: float32 probabilities ``prob`` (``(ny, nx, C)`` for a
    model with ``C > 1`` outputs) and int32 source ids ``labels`` (0 = background), both
    ``(ny, nx)`` on the image grid; the ``catalogue`` (``meta``: ``NOISE``,
    ``BACKGRND``, ``THRESH``, ``THRVALUE``, ``NORM`` and how the image was treated:
    :meth:`radioseg_utils.inference.conditioning.Conditioning.meta`, ``DOMAIN``,
    ``PREAL``: the reliability file of ``p_real`` or ``none``); the
    ``threshold`` applied (``(low, high)`` for hysteresis)."""

    prob: np.ndarray
    labels: np.ndarray
    catalogue: Table
    threshold: float | tuple[float, float]


def central_noise_box(shape: tuple[int, int]) -> tuple[slice, slice]:
    """Central box of side at most ``NOISE_BOX`` in which the noise is estimated."""
    ny, nx = shape
    return (slice((ny - min(ny, NOISE_BOX)) // 2, (ny + min(ny, NOISE_BOX)) // 2),
            slice((nx - min(nx, NOISE_BOX)) // 2, (nx + min(nx, NOISE_BOX)) // 2))


def image_noise(sky: SkyImage) -> tuple[float, float]:
    """``(background, rms)`` of an image in memory: sigma-clipped median and rms of its
    central ``NOISE_BOX`` box (what :func:`segment` measures and subtracts)."""
    return estimate_noise(sky.data[central_noise_box(sky.shape)])


def segmenter(model, band: str, normalisation: str | None, *, tta: bool = False):
    """:func:`load_model_cached`, wrapped for test-time augmentation if asked."""
    net, norm = load_model_cached(model, band, normalisation)
    return (with_tta(net) if tta else net), norm


def tuned_centre_threshold(sidecar: dict, band: str | Band | None = None,
                           noise: float | None = None) -> float:
    """The centre threshold a model sidecar holds for an image of ``band`` and rms ``noise``.

    A sidecar with ``centre_thresholds`` (``{band: {integration: value}}``, tuned on a
    validation field per band and integration by
    :func:`radioseg_utils.workflows.pretrain.tune_centre_thresholds`) gives the value of the
    integration whose nominal rms (:meth:`~radioseg_utils.core.bands.Band.noise`) is nearest to
    ``noise`` (in log). Without that table, band or noise: its ``centre_threshold``, else
    :data:`~radioseg_utils.postprocess.centres.DEFAULT_CENTRE_THRESHOLD`.
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
                   noise: float | None = None, sdc1: bool = True) -> PredictConfig:
    """``config`` with the centre threshold, flux scale and calibration filled in.

    A ``centre_threshold`` of None becomes the value tuned for a model file and an image of
    ``band`` and rms ``noise`` (:func:`tuned_centre_threshold` of its sidecar; for an image
    that is not SDC1, ``sdc1=False``, whose rms says nothing of an SDC1 depth, the
    sidecar's ``centre_threshold``), or
    :data:`~radioseg_utils.postprocess.centres.DEFAULT_CENTRE_THRESHOLD` for a callable.
    Where the SDC1 corrections apply (``config.corrections`` ``"sdc1"``, or ``"auto"``
    and ``sdc1``), a ``flux_scale`` of None becomes
    :data:`~radioseg_utils.simulation.simulate.FLUX_SCALE` and a ``calibration`` of
    ``"model"`` the path of the file named by the sidecar's ``calibration`` (beside the
    model), or None for a callable or a sidecar without one; elsewhere they become 1 and
    None. A ``reliability`` of ``"model"`` becomes the file named by the sidecar's
    ``reliability`` on every image (None without one), and None, said in the log
    (WARNING), where the centre threshold lies below the lowest one that file was fitted
    at (its ``p_real`` would be an extrapolation there). ``components`` None becomes
    ``not sdc1``. Values already set are kept. A model file whose sidecar has no tuned
    centre threshold is said so in the log (INFO), with the default it gets.
    """
    sidecar = read_sidecar(model)
    corrections = config.corrections == "sdc1" or (config.corrections == "auto" and sdc1)
    config = _selected(model, sidecar, config, None if band is None else get_band(band),
                       sdc1=corrections)
    if config.centre_threshold is None:
        if isinstance(model, (str, Path)) and "centre_threshold" not in sidecar:
            logger.info("%s has no tuned centre threshold: the default %.2f is used "
                        "(`radioseg pretrain --tune` tunes one)", Path(model).name,
                        DEFAULT_CENTRE_THRESHOLD)
        config = replace(config, centre_threshold=tuned_centre_threshold(
            sidecar, band, noise if sdc1 else None))
    if config.flux_scale is None:
        config = replace(config, flux_scale=FLUX_SCALE if corrections else 1.0)
    if config.components is None:
        config = replace(config, components=not sdc1)
    if config.calibration == "model" and not corrections:
        config = replace(config, calibration=None)
    for key in ("calibration", "reliability"):
        if getattr(config, key) == "model":
            path = companion_file(model, sidecar, key)
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"{key} file {path} named by the sidecar of {model} "
                                        "not found")
            config = replace(config, **{key: None if path is None else str(path)})
    if config.reliability is not None:
        floor = load_reliability(config.reliability).centre_threshold_min
        if floor is not None and config.centre_threshold < floor - 1e-9:
            logger.warning("no p_real column: %s is calibrated for centre thresholds from "
                           "%.2f up, and this run detects from %.2f", Path(config.reliability).name,
                           floor, config.centre_threshold)
            config = replace(config, reliability=None)
    if config.min_p_real is not None and config.reliability is None:
        raise ValueError(f"a p_real cut ({config.min_p_real:g}) needs p_real, and this run has "
                         "none (no reliability file, or a centre threshold below its range)")
    return config


def _selected(model, sidecar: dict, config: PredictConfig, band: Band | None, *,
              sdc1: bool) -> PredictConfig:
    """``config`` with the centre threshold and ``p_real`` cut of its ``selection`` for an
    image of ``band`` filled in where they are None (see :class:`PredictConfig`); the score
    selection is for images the SDC1 corrections apply to (``sdc1``), as SDC1 scores them."""
    if config.selection not in SELECTIONS:
        raise ValueError(f"unknown selection {config.selection!r}; expected one of {SELECTIONS}")
    if config.min_p_real is not None and not 0.0 <= config.min_p_real <= 1.0:
        raise ValueError(f"min_p_real must lie in [0, 1], got {config.min_p_real}")
    if config.selection == "reliability" or config.centre_threshold is not None:
        return config  # a centre threshold given (or already filled in) is kept, as it is
    if not sdc1:
        raise ValueError("the score selection is chosen for the SDC1 score of SDC1 images, and "
                         "this image is not one (--corrections sdc1 treats it as one)")
    name = Path(model).name if isinstance(model, (str, Path)) else "this model"
    bands = sidecar.get(SCORE_SELECTION, {}).get("bands", {})
    if not bands:
        raise ValueError(f"{name} has no score selection in its sidecar "
                         "(`radioseg pretrain --reliability-only` or `--tune` chooses one)")
    if band is None or band.name not in bands:
        raise ValueError(f"{name} has no score selection for band "
                         f"{getattr(band, 'name', band)}; it has one for {sorted(bands)}")
    chosen = bands[band.name]
    return replace(config, centre_threshold=chosen["centre_threshold"],
                   min_p_real=(chosen["min_p_real"] if config.min_p_real is None
                               else config.min_p_real))


def p_real_cut(catalogue: Table, min_p_real: float | None) -> np.ndarray | None:
    """Which rows of a finished catalogue a cut at ``min_p_real`` keeps: those with
    ``p_real >= min_p_real`` (None: no cut, all)."""
    if min_p_real is None:
        return None
    return np.asarray(catalogue["p_real"], float) >= min_p_real


def tile_normaliser(normalisation: str | None, noise: float):
    if normalisation is None:
        return None
    return functools.partial(normalise_image, method=normalisation, noise=noise)
