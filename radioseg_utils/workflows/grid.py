"""Every finder on every band and integration: the evaluation grid.

:func:`evaluate_grid` runs the finders of :data:`radioseg_utils.baselines.FINDERS` on one
held-out simulated field per SDC1 band and integration time and scores each with
:func:`radioseg_utils.evaluation.evaluate.evaluate_finder`; :func:`evaluate_real_cutout` does the same
on the real SDC1 B1 1000 h cutout of the data registry. Both return one tidy row per
field and finder (:data:`GRID_COLUMNS`); :func:`grid_table` turns it into one block per
band and integration with the finders as rows, :func:`plot_grid` draws completeness
against true S/N per block, and :func:`write_grid_tables` writes CSV, ECSV and Markdown.

Ceiling and blends
    Every row also carries its field's physical ceiling, computed once per field
    (:func:`radioseg_utils.evaluation.ceiling.field_ceiling`: the SDC1 score of a perfect
    catalogue of the true sources above apparent S/N 3, 4 and 5) and the finder's score as a
    fraction of the S/N 5 one, and its completeness per neighbour class and bin of true S/N
    (:data:`CLASS_BIN_COLUMNS`; :func:`grid_class_table` gives them in long form).

Held-out fields
    Field seeds (:func:`grid_seed`) are ``2**62 + (seed * 3 + band index) * 3 +
    integration index`` for a base seed ``0 <= seed < 2**32``; the simulated sources and
    noise depend only on it. Every :func:`radioseg_utils.workflows.pipeline.field_seed` (``"train"``,
    ``"test"``, the shipped model's fields) is a 32-bit base seed plus an offset far below
    ``2**61``: no grid field shares sky or noise with a field used in training or tuning.
    Grid fields also lie on their own patch of sky (:data:`GRID_CENTRE`).

Caching
    Fields are simulated once into ``<run>/grid/fields/``; finder outputs (catalogue ECSV
    with runtime and memory in its metadata, label map ``.npz``) go to
    ``<run>/grid/catalogues/<field>/``, keyed by finder, options (model files by sha256;
    the ``workdir`` of PyBDSF and Aegean ignored) and field: a changed option reruns.
    Failures are not cached.

Failures
    A finder raising one of :data:`FINDER_ERRORS` (e.g. ``ModelMismatchError`` for a model
    of another band, ``PyBDSFError``, ``AegeanError``) gives a row of NaNs with the
    message in ``error``.

Denoising
    ``denoise="dip"`` denoises each image once before every finder
    (:func:`radioseg_utils.inference.denoise.denoise_sky`, cached beside the finder outputs as
    ``denoised_dip.fits``); its rows are labelled ``"<field>, dip"`` and its finder outputs
    cached under their own keys.

Matching radius: one restoring-beam FWHM of the band (1.5″, 0.60″, 0.0913″; ~2.5 px).

Fluxes
    Every finder divides its fluxes by the same gain, :class:`~radioseg_utils.simulation.simulate.Attenuation`:
    the SDC1 flux scale :data:`~radioseg_utils.simulation.simulate.FLUX_SCALE` (apparent / intrinsic
    beyond the primary beam, measured on the real cutout) times the primary beam on the
    real cutout; simulated fields have no primary beam.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.table import Table
from tqdm.auto import tqdm

from radioseg_utils.baselines import FINDERS, FinderResult
from radioseg_utils.core.bands import BANDS, INTEGRATIONS, get_band
from radioseg_utils.evaluation.ceiling import CEILING_COLUMNS, Ceiling, field_ceiling
from radioseg_utils.evaluation.crowding import NEIGHBOUR_CLASSES, class_bin_completeness
from radioseg_utils.evaluation.evaluate import (
    DEFAULT_FINDERS,
    FLUX_RATIO_MIN_SNR,
    Evaluation,
    evaluate_finder,
    truth_in_image,
)
from radioseg_utils.evaluation.metrics import SNR_BINS
from radioseg_utils.evaluation.realism import REAL_IMAGE, REAL_PRIMARY_BEAM, REAL_TRUTH
from radioseg_utils.inference.denoise import DENOISERS, denoise_sky
from radioseg_utils.io.catalogue import read_truth_catalogue
from radioseg_utils.io.fits_read import SkyImage, read_image
from radioseg_utils.io.registry import fetch, get_entry, sha256sum
from radioseg_utils.io.wcs import field_centre
from radioseg_utils.model.files import DEFAULT_MODEL, model_files
from radioseg_utils.simulation.simulate import FLUX_SCALE, Attenuation
from radioseg_utils.simulation.sources import PrimaryBeam
from radioseg_utils.workflows.pipeline import FieldFiles, RunLayout, load_field

__all__ = [
    "DEFAULT_GRID_SIZE", "DEFAULT_GRID_SEED", "FINDER_ERRORS", "GRID_CENTRE", "GRID_COLUMNS",
    "GRID_SEED_BASE", "MAX_BASE_SEED", "REAL_CUTOUT_FILES", "TABLE_COLUMNS",
    "CLASS_BIN_COLUMNS", "ensure_grid_field", "evaluate_grid", "evaluate_real_cutout",
    "grid_class_table", "grid_seed", "grid_table", "plot_grid", "write_grid_tables",
]

logger = logging.getLogger(__name__)

#: Side in pixels and base seed of the simulated grid fields.
DEFAULT_GRID_SIZE, DEFAULT_GRID_SEED = 1024, 1
#: First seed of the grid namespace (pipeline field seeds stay below it), and the bound of
#: base seeds, ``0 <= seed < MAX_BASE_SEED``.
GRID_SEED_BASE, MAX_BASE_SEED = 1 << 62, 1 << 32
#: Centre (RA, Dec in deg) of the B1 grid fields; offsets from the SDC1 centre (0, -30)
#: scale with the band's field of view, as the pipeline's fields do.
GRID_CENTRE: tuple[float, float] = (-1.0, -29.0)
#: Exceptions of a finder recorded as an error row instead of stopping the grid.
FINDER_ERRORS: tuple[type[BaseException], ...] = (ValueError, RuntimeError, MemoryError)
#: Registry names of the real cutout, its truth and the primary beam.
REAL_CUTOUT_FILES: dict[str, str] = {
    "image": REAL_IMAGE, "truth": REAL_TRUTH, "primary_beam": REAL_PRIMARY_BEAM}
_CACHE_VERSION = 1
_IGNORED_OPTIONS = frozenset({"workdir"})


_BINS = [f"gt{lo:g}" if math.isinf(hi) else f"{lo:g}_{hi:g}"
         for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:])]
_HIGH = f"gt{FLUX_RATIO_MIN_SNR:g}"
_CLASS_BINS = [(name, b) for name in NEIGHBOUR_CLASSES for b in _BINS]
#: Columns of the completeness per neighbour class and bin of true peak S/N
#: (``completeness_isolated_5_10``, ``completeness_1.5-3arcsec_gt50`` ...), then the true
#: sources of each (``n_true_<class>_<bin>``); :func:`grid_class_table` reads them.
CLASS_BIN_COLUMNS: tuple[str, ...] = (*(f"completeness_{c}_{b}" for c, b in _CLASS_BINS),
                                      *(f"n_true_{c}_{b}" for c, b in _CLASS_BINS))
#: Columns of the tidy tables: per bin of true peak S/N the true sources (``n_true_*``)
#: and completeness; ``completeness_gt10`` over true S/N >= 10; ``flux_ratio`` the median
#: detected / true flux above S/N 10; ``sdc1_matched`` / ``sdc1_false``: the scorer's
#: matched and false detections; the field's physical ceiling (``ceiling_snr3/4/5``: the
#: SDC1 score of a perfect catalogue of the true sources above apparent S/N 3, 4, 5,
#: :mod:`radioseg_utils.evaluation.ceiling`) and ``fraction_of_ceiling_snr5``, the
#: finder's score over the S/N 5 ceiling; :data:`CLASS_BIN_COLUMNS`; runtime (s) and peak
#: memory increase (MB) of the finder; ``cached``: read from the cache; ``error``: the
#: failure message, "" if it ran.
GRID_COLUMNS: tuple[str, ...] = (
    "field", "band", "integration", "finder", "n_detections",
    *(f"n_true_{b}" for b in _BINS), *(f"completeness_{b}" for b in _BINS),
    f"completeness_{_HIGH}", "strict_completeness", "reliability", "strict_reliability",
    "flux_ratio", "sdc1_score", "sdc1_matched", "sdc1_false", *CEILING_COLUMNS,
    *CLASS_BIN_COLUMNS, "runtime_s", "peak_rss_mb", "cached", "error",
)
#: Columns shown by :func:`grid_table` (and in the Markdown table).
TABLE_COLUMNS: tuple[str, ...] = (
    "n_detections", *(f"completeness_{b}" for b in _BINS[1:]), f"completeness_{_HIGH}",
    "strict_reliability", "flux_ratio", "sdc1_score", *CEILING_COLUMNS, "runtime_s",
    "peak_rss_mb", "error",
)


def grid_seed(seed: int, band: str, integration: int) -> int:
    """Seed of the held-out grid field of ``band`` and ``integration`` (h).

    ``GRID_SEED_BASE + (seed * 3 + band index) * 3 + integration index``: one distinct seed
    per (seed, band, integration), all at or above :data:`GRID_SEED_BASE`, where no
    :func:`radioseg_utils.workflows.pipeline.field_seed` of a 32-bit base seed reaches.

    Raises
    ------
    ValueError
        If ``seed`` is not in ``[0, 2**32)`` or the integration is not 8, 100 or 1000.

    Examples
    --------
    >>> grid_seed(1, "B2", 100) - GRID_SEED_BASE
    13
    """
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed < MAX_BASE_SEED):
        raise ValueError(f"grid seed must be an integer in [0, 2**32), got {seed!r}")
    name = get_band(band).name
    if int(integration) not in INTEGRATIONS:
        raise ValueError(f"unknown integration {integration!r} h; expected one of {INTEGRATIONS}")
    index = (int(seed) * len(BANDS) + list(BANDS).index(name)) * len(INTEGRATIONS)
    return GRID_SEED_BASE + index + INTEGRATIONS.index(int(integration))


def ensure_grid_field(layout: RunLayout, band: str, integration: int, *,
                      size: int = DEFAULT_GRID_SIZE, seed: int = DEFAULT_GRID_SEED) -> FieldFiles:
    """Simulate the grid field of ``band`` and ``integration`` (h) unless it is on disk.

    Returns the :class:`~radioseg_utils.workflows.pipeline.FieldFiles` of
    ``<run>/grid/fields/<band>_<t>h_<size>px_seed<seed>.fits`` and its truth (ECSV), with
    a JSON record of the parameters; a field whose record differs is simulated again.
    """
    name = get_band(band).name
    stem = f"{name}_{int(integration)}h_{int(size)}px_seed{int(seed)}"
    folder = layout.root / "grid" / "fields"
    files = FieldFiles(folder / f"{stem}.fits", folder / f"{stem}.truth.ecsv")
    params = {"band": name, "integration": int(integration), "size": int(size),
              "base_seed": int(seed), "seed": grid_seed(seed, name, integration),
              "centre": list(field_centre(GRID_CENTRE, name))}
    if files.saved_parameters() != params:
        logger.info("simulating grid field %s: %s", stem, params)
        files.simulate(params)
    return files


def _canonical(value: Any, where: str) -> Any:
    """JSON-able form of a finder option for the cache key (files by their sha256)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__class__": type(value).__name__,
                **{f.name: _canonical(getattr(value, f.name), where)
                   for f in dataclasses.fields(value)}}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v, where) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, where) for v in value]
    if isinstance(value, Path):
        files = model_files(value) if value.suffix == ".keras" else [value]
        return {"path": str(value), "sha256": [sha256sum(f) if f.is_file() else None
                                               for f in files]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{where}: a {type(value).__name__} cannot key the grid cache; pass a "
                    "path, a number, a string or a settings dataclass")


def _cache_key(finder: str, options: Mapping[str, Any], field: Mapping[str, Any]) -> str:
    kept = {k: _canonical(v, f"option {k!r} of finder {finder!r}")
            for k, v in options.items() if k not in _IGNORED_OPTIONS}
    text = json.dumps({"version": _CACHE_VERSION, "finder": finder, "field": field,
                       "options": kept}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_cached(ecsv: Path, finder: str) -> FinderResult | None:
    labels = ecsv.with_name(ecsv.stem + "_labels.npz")
    if not (ecsv.is_file() and labels.is_file()):
        return None
    catalogue = Table.read(ecsv, format="ascii.ecsv")
    with np.load(labels) as saved:
        return FinderResult(catalogue, saved["labels"], float(catalogue.meta["runtime_s"]),
                            float(catalogue.meta["peak_rss_mb"]), finder=finder)


def _write_cached(ecsv: Path, result: FinderResult) -> None:
    ecsv.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(ecsv.with_name(ecsv.stem + "_labels.npz"), labels=result.labels)
    catalogue = result.catalogue.copy(copy_data=False)
    catalogue.meta.update(runtime_s=result.runtime_s, peak_rss_mb=result.peak_rss_mb)
    catalogue.write(ecsv, format="ascii.ecsv", overwrite=True)  # written last: the marker


def _finder_options(finders: Sequence[str],
                    finder_options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict]:
    unknown = [name for name in [*finders, *(finder_options or {})] if name not in FINDERS]
    if unknown:
        raise ValueError(f"unknown finder(s) {unknown}; expected names in {list(FINDERS)}")
    options = {name: dict((finder_options or {}).get(name, {})) for name in finders}
    for name in {"unet", "unet_score"} & set(options):
        model = options[name].setdefault("model", DEFAULT_MODEL)
        if isinstance(model, (str, Path)) and not Path(model).is_file():
            raise FileNotFoundError(f"U-Net model file {model} not found")
        options[name]["model"] = Path(model) if isinstance(model, str) else model
    for name, values in options.items():  # fail now, not after the first field
        _cache_key(name, values, {})
    return options


def _row(evaluation: Evaluation | None, keys: dict[str, Any], ceiling: Ceiling, *,
         classes: pd.DataFrame | None = None, cached: bool = False,
         error: str = "") -> dict[str, Any]:
    """One row of :data:`GRID_COLUMNS`: the field's ``ceiling`` and, with an evaluation, its
    values and the completeness per neighbour class and S/N bin of ``classes``
    (:func:`~radioseg_utils.evaluation.crowding.class_bin_completeness`) and its SDC1 score
    over the ceiling; NaNs otherwise."""
    row: dict[str, Any] = dict.fromkeys(GRID_COLUMNS, float("nan"))
    row.update(keys, cached=cached, error=error)
    row.update(ceiling.columns())
    if evaluation is None:
        return row
    for (name, b), n_true, completeness in zip(_CLASS_BINS, classes["n_true"],
                                               classes["completeness"], strict=True):
        row[f"n_true_{name}_{b}"], row[f"completeness_{name}_{b}"] = int(n_true), completeness
    bins, summary = evaluation.bins, evaluation.summary()
    for name, n_true, completeness in zip(_BINS, bins["n_true"], bins["completeness"]):
        row[f"n_true_{name}"], row[f"completeness_{name}"] = int(n_true), float(completeness)
    high = bins[bins["lo"] >= FLUX_RATIO_MIN_SNR].sum()
    row[f"completeness_{_HIGH}"] = high["n_found"] / high["n_true"] if high["n_true"] else math.nan
    row.update({k: summary[k] for k in GRID_COLUMNS if k in summary and k not in keys},
               n_detections=len(evaluation.result.catalogue))
    row.update(ceiling.columns(row["sdc1_score"]))
    return row


def _check_denoise(denoise: str | None) -> None:
    if denoise is not None and denoise not in DENOISERS:
        raise ValueError(f"unknown denoising method {denoise!r}; expected one of {list(DENOISERS)}")


def _evaluate_field(sky: SkyImage, truth: Table, field: dict[str, Any], *, finders: Sequence[str],
                    options: dict[str, dict], cache: Path | None, bar: tqdm,
                    primary_beam=None, train_area: bool = False,
                    denoise: str | None = None) -> list[dict[str, Any]]:
    """Rows of every finder on one image (cached outputs reused, failures recorded)."""
    if denoise is not None:
        sky, record = denoise_sky(sky, denoise, progress=False,
                                  cache=None if cache is None else cache / f"denoised_{denoise}.fits")
        logger.info("%s denoised with %s in %.1f s", field["field"], denoise, record.runtime_s)
        field = {**field, "field": f"{field['field']}, {denoise}",
                 "denoise": {"method": denoise, "tile": record.tile, "overlap": record.overlap,
                             "settings": dataclasses.asdict(record.settings)}}
    integration = field["integration"]
    keys = {"field": field["field"], "band": sky.band.name, "integration": integration}
    has_truth = len(truth_in_image(truth, sky)) > 0
    # the physical ceiling: once per field, scored as the finders are (same S/N, same area)
    ceiling = field_ceiling(truth, sky, integration=integration, primary_beam=primary_beam,
                            train_area=train_area)
    rows = []
    for name in finders:
        ecsv = None if cache is None else cache / f"{name}_{_cache_key(name, options[name], field)}.ecsv"
        result = None if ecsv is None else _read_cached(ecsv, name)
        cached = result is not None
        if result is None:
            run_options = dict(options[name])
            if cache is not None and "workdir" in inspect.signature(FINDERS[name]).parameters:
                run_options.setdefault("workdir", cache / name)  # PyBDSF's, Aegean's files
            if primary_beam is not None:
                run_options["primary_beam"] = primary_beam
            try:
                result = FINDERS[name](sky, **run_options)
            except FINDER_ERRORS as exc:
                logger.warning("%s failed on %s %s %s h: %s", name, field["field"],
                               sky.band.name, integration, exc)
                rows.append(_row(None, {**keys, "finder": name}, ceiling,
                                 error=f"{type(exc).__name__}: {exc}"))
            else:
                if ecsv is not None:
                    _write_cached(ecsv, result)
        if result is not None:
            evaluation = evaluate_finder(
                result, truth, sky, integration=integration, primary_beam=primary_beam,
                field=field["field"], radius_arcsec=sky.band.beam_fwhm_arcsec, pixels=False,
                score=has_truth, train_area=train_area)
            classes = class_bin_completeness(evaluation, truth, sky, snr_bins=SNR_BINS)
            rows.append(_row(evaluation, {**keys, "finder": name}, ceiling, classes=classes,
                             cached=cached))
            if not has_truth:  # the scorer needs a truth; every detection is false
                rows[-1]["sdc1_score"] = 0.0 - rows[-1]["n_detections"]
        bar.update()
    return rows


def evaluate_grid(
    bands: Sequence[str] = tuple(BANDS),
    integrations: Sequence[int] = INTEGRATIONS,
    finders: Sequence[str] = DEFAULT_FINDERS,
    *,
    size: int | Mapping[str, int] = DEFAULT_GRID_SIZE,
    seed: int = DEFAULT_GRID_SEED,
    run_dir: str | Path | None = None,
    finder_options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    denoise: str | None = None,
) -> pd.DataFrame:
    """Run and score every finder on a held-out simulated field per band and integration.

    Parameters
    ----------
    bands, integrations : sequence
        SDC1 bands (``"B1"``, ``"B2"``, ``"B5"``) and integration times (8, 100, 1000 h).
    finders : sequence of str
        Names in :data:`radioseg_utils.baselines.FINDERS`, run in this order.
    size : int or mapping
        Side of each simulated field in pixels, or a side per band name (B5 fields cover
        a tiny sky area at 0.037″ per pixel and need more pixels to hold sources).
    seed : int
        Base seed in ``[0, 2**32)``; field seeds follow :func:`grid_seed`.
    run_dir : str or Path, optional
        Run folder (None or ``""``: ``runs_dir()/"default"``); its ``grid/`` caches fields
        and finder outputs.
    finder_options : mapping, optional
        Keyword arguments per finder, e.g. ``{"unet": {"model": path}, "peaks":
        {"settings": PeakSettings(threshold_snr=5)}}``. The U-Net's ``model`` defaults to
        :data:`radioseg_utils.model.files.DEFAULT_MODEL`.
    progress : bool
        Show a progress bar over (field, finder) runs.
    denoise : str, optional
        Denoise each field first (``"dip"``: the deep image prior of
        :func:`radioseg_utils.inference.denoise.denoise_sky`, default settings).

    Returns
    -------
    pandas.DataFrame
        One row per band, integration and finder, columns :data:`GRID_COLUMNS`
        (``field`` = ``"simulated"``, ``"simulated, dip"`` when denoised). A field without true sources (small B5
        fields can have none) scores ``-n_detections``: every detection is false.

    Raises
    ------
    ValueError
        For an unknown band, integration, finder or denoising method, or a seed out of
        range.
    FileNotFoundError
        If the U-Net model file is missing.
    TypeError
        If a finder option cannot key the cache (e.g. a loaded model object).
    """
    _check_denoise(denoise)
    bands = [get_band(b).name for b in bands]
    for t in integrations:
        get_band("B1").noise(t)  # raises on an unknown integration
    options = _finder_options(finders, finder_options)
    layout = RunLayout.from_parameter(run_dir)
    rows: list[dict[str, Any]] = []
    sizes = {b: int(size[b] if isinstance(size, Mapping) else size) for b in bands}
    gain = Attenuation(None, FLUX_SCALE)
    with tqdm(total=len(bands) * len(integrations) * len(finders), desc="grid",
              disable=not progress) as bar:
        for band in bands:
            for integration in integrations:
                files = ensure_grid_field(layout, band, integration, size=sizes[band], seed=seed)
                sky, truth = load_field(files)
                field = {"field": "simulated", "band": band, "integration": int(integration),
                         "size": sizes[band], "seed": grid_seed(seed, band, integration),
                         "flux_scale": FLUX_SCALE}
                rows += _evaluate_field(sky, truth, field, finders=finders, options=options,
                                        cache=layout.root / "grid" / "catalogues" / files.image.stem,
                                        bar=bar, primary_beam=gain, denoise=denoise)
    return pd.DataFrame(rows, columns=list(GRID_COLUMNS))


def evaluate_real_cutout(
    finders: Sequence[str] = DEFAULT_FINDERS,
    *,
    finder_options: Mapping[str, Mapping[str, Any]] | None = None,
    run_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = False,
    denoise: str | None = None,
) -> pd.DataFrame:
    """Run and score every finder on the real SDC1 B1 1000 h cutout.

    The image, truth and B1 primary beam come from the data registry
    (:data:`REAL_CUTOUT_FILES`). Fluxes are divided by the primary beam times
    :data:`~radioseg_utils.simulation.simulate.FLUX_SCALE`, the true peak S/N is that of the same
    apparent flux at the 1000 h rms, and the SDC1 score counts the training area only (the
    cutout lies inside it), as in ``shared/docs/SDC1_FACTS.md``.

    Parameters
    ----------
    finders, finder_options, progress, denoise
        As for :func:`evaluate_grid`.
    run_dir : str or Path, optional
        Run folder whose ``grid/catalogues/real_cutout`` caches finder outputs (None: none).
    data_dir : str or Path, optional
        Folder of the real files; default ``$RADIOSEG_DATA`` (:func:`~.paths.data_dir`).

    Returns
    -------
    pandas.DataFrame
        One row per finder, columns :data:`GRID_COLUMNS` (``field`` = ``"real cutout"``).

    Raises
    ------
    FileNotFoundError
        If a file is missing (the message names it and ``RADIOSEG_DATA``).
    """
    _check_denoise(denoise)
    options = _finder_options(finders, finder_options)
    paths = {kind: fetch(name, dest=data_dir) for kind, name in REAL_CUTOUT_FILES.items()}
    sky = read_image(paths["image"])
    truth = read_truth_catalogue(paths["truth"])
    primary_beam = Attenuation(PrimaryBeam.from_fits(paths["primary_beam"]), FLUX_SCALE)
    field = {"field": "real cutout", "band": sky.band.name, "integration": 1000,
             "flux_scale": FLUX_SCALE,
             "files": {name: get_entry(name).sha256 for name in REAL_CUTOUT_FILES.values()}}
    cache = (None if run_dir is None
             else RunLayout.from_parameter(run_dir).root / "grid" / "catalogues" / "real_cutout")
    with tqdm(total=len(finders), desc="real cutout", disable=not progress) as bar:
        rows = _evaluate_field(sky, truth, field, finders=finders, options=options, cache=cache,
                               bar=bar, primary_beam=primary_beam, train_area=True,
                               denoise=denoise)
    return pd.DataFrame(rows, columns=list(GRID_COLUMNS))


def grid_table(df: pd.DataFrame, *, columns: Sequence[str] = TABLE_COLUMNS) -> pd.DataFrame:
    """The tidy table as one block per field, band and integration, finders as rows.

    ``df`` is the output of :func:`evaluate_grid` and/or :func:`evaluate_real_cutout`;
    returns its ``columns`` indexed by (``field``, ``band``, ``integration``, ``finder``)
    in the row order of ``df``. Raises ValueError if ``df`` lacks a key or column.
    """
    keys = ["field", "band", "integration", "finder"]
    missing = [c for c in (*keys, *columns) if c not in df.columns]
    if missing:
        raise ValueError(f"grid table lacks column(s) {missing}")
    return df.set_index(keys).loc[:, list(columns)]


def grid_class_table(df: pd.DataFrame) -> pd.DataFrame:
    """The completeness per neighbour class and S/N bin of a grid table, in long form.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`evaluate_grid` and/or :func:`evaluate_real_cutout`.

    Returns
    -------
    pandas.DataFrame
        One row per field, band, integration, finder, neighbour class (nearest brighter
        true source beyond 3″, at 1.5–3″, within 1.5″) and bin of true peak S/N:
        ``field``, ``band``, ``integration``, ``finder``, ``neighbour_class``, ``snr_lo``,
        ``snr_hi``, ``n_true``, ``completeness``, in the row order of ``df`` (error rows
        have NaN); :func:`radioseg_utils.evaluation.crowding.class_pivot` with ``keys=("finder",)``
        on one field's rows makes its finder x class by S/N bin table.

    Raises
    ------
    ValueError
        If ``df`` lacks a key or a column of :data:`CLASS_BIN_COLUMNS`.
    """
    keys = ["field", "band", "integration", "finder"]
    missing = [c for c in (*keys, *CLASS_BIN_COLUMNS) if c not in df.columns]
    if missing:
        raise ValueError(f"grid table lacks column(s) {missing}")
    edges = dict(zip(_BINS, zip(SNR_BINS[:-1], SNR_BINS[1:])))
    rows = [{**{k: row[k] for k in keys}, "neighbour_class": name, "snr_lo": edges[b][0],
             "snr_hi": edges[b][1], "n_true": row[f"n_true_{name}_{b}"],
             "completeness": row[f"completeness_{name}_{b}"]}
            for _, row in df.iterrows() for name, b in _CLASS_BINS]
    return pd.DataFrame(rows, columns=[*keys, "neighbour_class", "snr_lo", "snr_hi", "n_true",
                                       "completeness"])


def _markdown(table: pd.DataFrame) -> str:
    """A pipe table of ``grid_table`` output: fractions as %, other numbers to 3 figures."""
    def cell(column: str, value: Any) -> str:
        if isinstance(value, str):
            return value.replace("|", "/")
        if value is None or not np.isfinite(value):
            return ""
        if column.startswith(("completeness", "strict_", "reliability", "fraction_")):
            return f"{100 * value:.0f} %"
        return f"{value:.0f}" if abs(value) >= 100 or column.startswith("n_") else f"{value:.3g}"

    flat = table.reset_index()
    lines = [" | ".join(flat.columns), "|".join(["---"] * len(flat.columns))]
    lines += [" | ".join(cell(c, row[c]) for c in flat.columns) for _, row in flat.iterrows()]
    return "".join(f"| {line} |\n" for line in lines)


def write_grid_tables(df: pd.DataFrame, folder: str | Path, *, stem: str = "grid") -> dict[str, Path]:
    """Write the tidy table (CSV, ECSV) and :func:`grid_table` as Markdown into ``folder``.

    Returns the paths by kind, ``csv``, ``ecsv``, ``markdown`` (``<stem>.csv`` ...; replaced).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"{stem}.csv", "ecsv": folder / f"{stem}.ecsv",
             "markdown": folder / f"{stem}.md"}
    df.to_csv(paths["csv"], index=False)
    Table.from_pandas(df.astype({"error": str})).write(paths["ecsv"], format="ascii.ecsv",
                                                        overwrite=True)
    paths["markdown"].write_text(_markdown(grid_table(df)))
    return paths


def plot_grid(df: pd.DataFrame, *, ncols: int = 3):
    """Completeness against true peak S/N per finder, one panel per field/band/integration.

    Each panel of ``df`` (:func:`evaluate_grid` / :func:`evaluate_real_cutout` output,
    ``ncols`` panels per row) shows every finder's completeness per bin of true peak S/N
    (n = true sources) and, right of the dotted line, its strict reliability (open
    marker). Error rows are left out. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    blocks = list(dict.fromkeys(zip(df["field"], df["band"], df["integration"])))
    nrows = max(1, math.ceil(len(blocks) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False,
                             sharey=True, constrained_layout=True)
    labels = [b.replace("gt", ">").replace("_", "-") for b in _BINS]
    x = np.arange(len(_BINS))
    colours = {name: f"C{k}" for k, name in enumerate(dict.fromkeys(df["finder"]))}
    for ax, (field, band, integration) in zip(axes.flat, blocks):
        rows = df[(df["field"] == field) & (df["band"] == band)
                  & (df["integration"] == integration) & (df["error"].fillna("") == "")]
        for _, row in rows.iterrows():
            colour = colours[row["finder"]]
            ax.plot(x, [row[f"completeness_{b}"] for b in _BINS], "o-", color=colour,
                    label=row["finder"])
            ax.plot(len(_BINS) + 0.5, row["strict_reliability"], "o", mfc="none", color=colour)
        ax.axvline(len(_BINS) - 0.25, color="0.6", ls=":")
        n_true = rows.iloc[0][[f"n_true_{b}" for b in _BINS]].tolist() if len(rows) else []
        ticks = [f"{lab}\n(n={n:.0f})" for lab, n in zip(labels, n_true)] or labels
        ax.set_xticks([*x, len(_BINS) + 0.5], [*ticks, "strict\nrel."], fontsize=8)
        ax.set(title=f"{field} {band} {integration} h", ylim=(0, 1.05), xlabel="true peak S/N")
    for k, ax in enumerate(axes.flat):
        ax.set_visible(k < len(blocks))
        ax.set_ylabel("completeness / reliability" if k % ncols == 0 else "")
    axes.flat[0].legend(fontsize=8, loc="lower right")
    return fig
