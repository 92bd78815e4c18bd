"""Denoising with a deep image prior before every finder: what it buys, measured.

:func:`denoise_ablation` answers the poster's last next step on two images:

* a held-out simulated B1 1000 h field (the grid's convention,
  :func:`radioseg_utils.workflows.grid.ensure_grid_field`: a seed no training or tuning field
  uses, its own patch of sky), whose noise-free sky is rendered from the same seed
  (``simulate_field(..., add_noise=False)``);
* the real SDC1 B1 1000 h cutout with its truth catalogue (data registry).

Each image is denoised once (:func:`radioseg_utils.inference.denoise.denoise_sky`, cached in
``<run>/denoised/``) and every finder runs on it and on the image as it is, through
:func:`radioseg_utils.evaluation.evaluate.compare_finders` (``denoise="dip"``, the switch all
finders share), scored the same way as the evaluation grid (matching within one beam
FWHM, fluxes divided by the SDC1 flux scale, and by the primary beam on the real cutout).
On the denoised image each finder runs twice (:data:`DENOISE_VARIANTS`): estimating the
noise there, as it would in use, and given the noisy image's own robust rms, so that its
thresholds stay where they were and only the pixels changed.
The study also measures the denoised simulated image against the true sky
(:func:`radioseg_utils.evaluation.fidelity.sky_error_table`) and the autocorrelation of the
denoiser's residual against the image's noise (:func:`~radioseg_utils.evaluation.fidelity.acf_table`).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.evaluation.ceiling import CEILING_COLUMNS, Ceiling, field_ceiling
from radioseg_utils.evaluation.crowding import (
    NEIGHBOUR_CLASSES,
    class_bin_completeness,
    class_completeness,
)
from radioseg_utils.evaluation.evaluate import DEFAULT_FINDERS, compare_finders
from radioseg_utils.evaluation.fidelity import acf_table, sky_error_table
from radioseg_utils.evaluation.metrics import SNR_BINS
from radioseg_utils.inference.denoise import DIP_OVERLAP, DIP_TILE, DenoisedImage, denoise_sky
from radioseg_utils.io.catalogue import read_truth_catalogue
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.io.registry import fetch
from radioseg_utils.model.dip import DIPSettings
from radioseg_utils.simulation.noise_model import bright_pixel_mask
from radioseg_utils.simulation.simulate import FLUX_SCALE, Attenuation, simulate_field
from radioseg_utils.simulation.sources import PrimaryBeam
from radioseg_utils.workflows.grid import (
    DEFAULT_GRID_SEED,
    FINDER_ERRORS,
    REAL_CUTOUT_FILES,
    ensure_grid_field,
)
from radioseg_utils.workflows.pipeline import RunLayout, load_field

__all__ = [
    "ABLATION_COLUMNS",
    "CLASS_BIN_TABLE_COLUMNS",
    "CLASS_COLUMNS",
    "CLASS_MIN_SNR",
    "DENOISE_FIELD_SIZE",
    "DENOISE_VARIANTS",
    "FIXED_NOISE_VARIANT",
    "SNR_BIN_COLUMNS",
    "DenoisingStudy",
    "denoise_ablation",
]

logger = logging.getLogger(__name__)

#: Side in pixels of the held-out simulated field of the study.
DENOISE_FIELD_SIZE: int = 512
#: The runs of every finder on each image: on the image itself, on its DIP reconstruction
#: (the finder estimates the noise there, as in use), and on the reconstruction with the
#: finder given the image's own robust noise rms (its thresholds where they were).
DENOISE_VARIANTS: tuple[str, ...] = ("none", "dip", "dip, image rms")
FIXED_NOISE_VARIANT: str = DENOISE_VARIANTS[2]
#: True peak S/N from which sources enter the completeness per neighbour class.
CLASS_MIN_SNR: float = 5.0

#: Columns of the completeness per bin of true peak S/N (``c_3-5`` ... ``c_gt50``).
SNR_BIN_COLUMNS: tuple[str, ...] = tuple(
    f"c_{lo:g}-{hi:g}" if math.isfinite(hi) else f"c_gt{lo:g}"
    for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]))
#: Columns of the completeness per neighbour class (``c_isolated`` ...).
CLASS_COLUMNS: tuple[str, ...] = tuple(f"c_{name}" for name in NEIGHBOUR_CLASSES)
#: Columns of :attr:`DenoisingStudy.table`: completeness per bin of true peak S/N
#: (``c_*``), per neighbour class of the sources of S/N >= 5 (``c_isolated``,
#: ``c_1.5-3arcsec``, ``c_lt1.5arcsec``: nearest brighter true source beyond 3″, at
#: 1.5–3″, within 1.5″) and the true sources in each class (``n_*``), strict reliability, median flux ratio above S/N 10, SDC1 score,
#: the field's physical ceiling (``ceiling_snr3/4/5``, :mod:`radioseg_utils.evaluation.ceiling`)
#: and the score's fraction of the S/N 5 one, the finder's seconds, the denoising seconds
#: (once per image), both per million pixels, and the error of a finder that failed ("" when
#: it ran).
ABLATION_COLUMNS: tuple[str, ...] = (
    "field", "finder", "denoise", "n_detections", *SNR_BIN_COLUMNS, *CLASS_COLUMNS,
    *(f"n_{name}" for name in NEIGHBOUR_CLASSES),
    "strict_completeness", "strict_reliability",
    "flux_ratio", "sdc1_score", *CEILING_COLUMNS, "finder_s", "denoise_s", "s_per_mpx", "error",
)
#: Columns of :attr:`DenoisingStudy.classes`.
CLASS_BIN_TABLE_COLUMNS: tuple[str, ...] = (
    "field", "finder", "denoise", "neighbour_class", "snr_lo", "snr_hi", "n_true", "n_found",
    "completeness",
)


@dataclass(frozen=True)
class DenoisingStudy:
    """What :func:`denoise_ablation` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per field, finder and run of :data:`DENOISE_VARIANTS`, columns
        :data:`ABLATION_COLUMNS`; a finder that raised one of
        :data:`~radioseg_utils.workflows.grid.FINDER_ERRORS` gets NaNs and its message.
    fidelity : pandas.DataFrame
        :func:`~radioseg_utils.evaluation.fidelity.sky_error_table` of the simulated image
        (``"image"``) and its denoised version (``"dip"``) against the true sky, in units
        of the band's nominal rms.
    classes : pandas.DataFrame
        Completeness per neighbour class and bin of true peak S/N of every finder and run
        (:func:`~radioseg_utils.evaluation.crowding.class_bin_completeness`), columns
        :data:`CLASS_BIN_TABLE_COLUMNS`; a failed run has no rows.
    acf : pandas.DataFrame
        :func:`~radioseg_utils.evaluation.fidelity.acf_table` with a ``field`` column:
        the image (bright sources masked), its noise (simulated: image minus true sky), the
        DIP residual (image minus denoised) and, simulated, the DIP error (denoised minus
        true sky).
    images : dict
        Per field name, the arrays ``"image"``, ``"dip"`` (and ``"sky"``, the true sky, for
        the simulated field).
    records : dict
        Per field name, the :class:`~radioseg_utils.inference.denoise.DenoisedImage`
        (stopping iterations per tile, noise, runtime).
    parameters : dict
        Field size, seeds, tiling and the DIP settings, for the record.
    """

    table: pd.DataFrame
    fidelity: pd.DataFrame
    classes: pd.DataFrame
    acf: pd.DataFrame
    images: dict[str, dict[str, np.ndarray]] = field(repr=False)
    records: dict[str, DenoisedImage] = field(repr=False)
    parameters: dict


def _rows(evaluations, truth, sky, megapixels: float, variant: str,
          ceiling: Ceiling) -> list[dict]:
    rows = []
    for e in evaluations:
        summary = e.summary()
        row = {"field": e.field, "finder": e.finder, "denoise": variant,
               "n_detections": summary["detections"]}
        row.update(zip(SNR_BIN_COLUMNS, e.bins["completeness"].astype(float)))
        classes = class_completeness(e, truth, sky, min_snr=CLASS_MIN_SNR)
        for name, n, completeness in zip(classes["neighbour_class"], classes["n_true"],
                                         classes["completeness"]):
            row.update({f"c_{name}": completeness, f"n_{name}": n})
        row.update({k: summary[k] for k in ("strict_completeness", "strict_reliability",
                                            "flux_ratio", "sdc1_score")})
        row.update(ceiling.columns(summary["sdc1_score"]))
        row.update(finder_s=summary["runtime_s"], denoise_s=e.denoise_s,
                   s_per_mpx=(summary["runtime_s"] + e.denoise_s) / megapixels, error="")
        rows.append(row)
    return rows


def denoise_ablation(
    *,
    run_dir: str | Path | None = None,
    size: int = DENOISE_FIELD_SIZE,
    seed: int = DEFAULT_GRID_SEED,
    settings: DIPSettings = DIPSettings(),
    tile: int = DIP_TILE,
    overlap: int = DIP_OVERLAP,
    finders: Sequence[str] = DEFAULT_FINDERS,
    real: bool = True,
    data_dir: str | Path | None = None,
    progress: bool = True,
) -> DenoisingStudy:
    """Every finder with and without the deep image prior, and the denoiser's fidelity.

    Parameters
    ----------
    run_dir : str or Path, optional
        Run folder (None or ``""``: ``runs_dir()/"default"``): the field goes to
        ``grid/fields/``, the denoised images to ``denoised/`` (reused when the image and
        settings are the same).
    size : int
        Side in pixels of the held-out simulated B1 1000 h field.
    seed : int
        Base seed of the field (its own seed is
        :func:`radioseg_utils.workflows.grid.grid_seed` ``(seed, "B1", 1000)``).
    settings : DIPSettings
        Deep-image-prior settings (network, stopping rule, seed).
    tile, overlap : int
        Tiling of the denoiser (:func:`radioseg_utils.inference.denoise.dip_denoise`).
    finders : sequence of str
        Finders of :data:`radioseg_utils.baselines.FINDERS`.
    real : bool
        Also study the real cutout (needs its files in ``$RADIOSEG_DATA`` or ``data_dir``).
    data_dir : str or Path, optional
        Folder of the real files.
    progress : bool
        Progress bars of the denoiser.

    Returns
    -------
    DenoisingStudy

    Raises
    ------
    ValueError
        For a bad size, seed, finder or setting.
    FileNotFoundError
        If ``real`` and a real file is missing (the message names it).
    """
    layout = RunLayout.from_parameter(run_dir)
    files = ensure_grid_field(layout, "B1", 1000, size=size, seed=seed)
    sky, truth = load_field(files)
    params = files.saved_parameters()
    clean = simulate_field(params["band"], params["integration"], shape=sky.shape,
                           seed=params["seed"], centre=tuple(params["centre"]),
                           add_noise=False).image
    fields = [("simulated", files.image.stem, sky, truth, Attenuation(None, FLUX_SCALE), False)]
    if real:
        paths = {kind: fetch(name, dest=data_dir) for kind, name in REAL_CUTOUT_FILES.items()}
        fields.append(("real cutout", paths["image"].stem, read_image(paths["image"]),
                       read_truth_catalogue(paths["truth"]),
                       Attenuation(PrimaryBeam.from_fits(paths["primary_beam"]), FLUX_SCALE),
                       True))
    rows, acfs, images, records, classes = [], [], {}, {}, []
    for name, stem, image, cat, gain, train_area in fields:
        ceiling = field_ceiling(cat, image, integration=1000, primary_beam=gain,
                                train_area=train_area)
        options = {"settings": settings, "tile": tile, "overlap": overlap, "progress": progress,
                   "cache": layout.root / "denoised" / f"{stem}_dip.fits"}
        denoised, records[name] = denoise_sky(image, "dip", **options)
        images[name] = {"image": image.data, "dip": denoised.data}
        median, rms = estimate_noise(image.data)
        for variant, finder in itertools.product(DENOISE_VARIANTS, finders):
            method = None if variant == "none" else "dip"
            given = {finder: {"noise": rms}} if variant == FIXED_NOISE_VARIANT else None
            try:
                evaluations = compare_finders(
                    image, cat, integration=1000, finders=(finder,), primary_beam=gain,
                    field=name, denoise=method, denoise_options=options, pixels=False,
                    radius_arcsec=image.band.beam_fwhm_arcsec, train_area=train_area,
                    finder_options=given)
            except FINDER_ERRORS as exc:
                logger.warning("%s failed on %s (%s): %s", finder, name, variant, exc)
                rows.append({"field": name, "finder": finder, "denoise": variant,
                             **ceiling.columns(), "error": f"{type(exc).__name__}: {exc}"})
            else:
                rows += _rows(evaluations, cat, image, image.data.size / 1e6, variant, ceiling)
                classes += [class_bin_completeness(e, cat, image).assign(
                    field=name, finder=finder, denoise=variant) for e in evaluations]
        series = {"image": image.data}
        if name == "simulated":
            series["image noise"] = image.data - clean
        series["DIP residual"] = image.data - denoised.data
        if name == "simulated":
            series["DIP error"] = denoised.data - clean
        acfs.append(acf_table(series, mask=bright_pixel_mask(image.data - median, rms))
                    .assign(field=name))
    images["simulated"]["sky"] = clean
    fidelity = sky_error_table({"image": sky.data, "dip": images["simulated"]["dip"]}, clean,
                               truth, sky, noise=sky.band.noise(1000))
    parameters = {"band": "B1", "integration": 1000, "size": int(size), "base_seed": int(seed),
                  "field_seed": int(params["seed"]), "tile": int(tile), "overlap": int(overlap),
                  "settings": settings}
    classes = (pd.concat(classes, ignore_index=True) if classes
               else pd.DataFrame(columns=list(CLASS_BIN_TABLE_COLUMNS)))
    return DenoisingStudy(pd.DataFrame(rows, columns=list(ABLATION_COLUMNS)), fidelity,
                          classes[list(CLASS_BIN_TABLE_COLUMNS)],
                          pd.concat(acfs, ignore_index=True), images, records, parameters)
