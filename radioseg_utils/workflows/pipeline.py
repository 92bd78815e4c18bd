"""The stages of the main job, shared by the notebooks through one run folder.

Each notebook of the compendium is self-sufficient: it asks for the files it needs
(``ensure_field``, ``ensure_dataset``, ``ensure_model``), which are made — deterministically,
from seeds — only when they are not already in the run folder. Run in order, every stage
is done once; run alone, a notebook rebuilds what it needs.

Fields are named: ``"train"`` (the training field; cut into the 80:10:10 spatially
disjoint train/val/test cutouts) and ``"test"`` (a held-out field: another seed *and*
another patch of sky, never seen in training or tuning), plus any other name with its own
seed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from radioseg_utils.core.bands import get_band
from radioseg_utils.core.paths import runs_dir
from radioseg_utils.data.masks import DEFAULT_K_SIGMA, DEFAULT_SNR_MIN
from radioseg_utils.io.wcs import SDC1_CENTRE, field_centre

__all__ = [
    "FIELD_OFFSETS",
    "OTHER_FIELD_SEED_STEP",
    "FieldFiles",
    "RunLayout",
    "ensure_dataset",
    "ensure_field",
    "ensure_model",
    "field_seed",
    "load_field",
]

logger = logging.getLogger(__name__)

#: Seed offset and sky position (deg, RA in -180..180, Dec) of each named field. The test
#: and validation fields lie 1 deg away from every training field, so no source is shared;
#: the extra training fields of the default model (:mod:`radioseg_utils.workflows.pretrain`) each
#: have their own patch.
FIELD_OFFSETS: dict[str, tuple[int, tuple[float, float]]] = {
    "train": (0, (0.0, -30.0)),
    "test": (100_003, (1.0, -31.0)),
    "val": (150_001, (-1.0, -31.0)),
    "train_B1_100h": (200_003, (0.0, -28.0)),
    "train_B1_8h": (300_007, (2.0, -30.0)),
    "train_B2_1000h": (400_009, (-2.0, -30.0)),
    "train_B5_1000h": (500_009, (0.0, -32.0)),
}


@dataclass(frozen=True)
class FieldFiles:
    """A simulated field on disk: the FITS image, its truth table (ECSV) and the JSON
    record of the parameters it was simulated with."""

    image: Path
    truth: Path

    @property
    def record(self) -> Path:
        """The JSON record of the simulation parameters, beside the image."""
        return self.image.with_suffix(".json")

    def saved_parameters(self) -> dict[str, Any] | None:
        """The recorded parameters of a complete field on disk, else None."""
        if self.image.is_file() and self.truth.is_file() and self.record.is_file():
            return json.loads(self.record.read_text())
        return None

    def simulate(self, params: dict[str, Any], *, n_workers: int = 1) -> None:
        """Simulate the field of ``params`` (``band``, ``integration``, ``size``, ``seed``,
        ``centre``, and ``pair_fraction`` and ``pair_sigma`` if moved pairs are asked
        for) into these files and record the parameters."""
        from radioseg_utils.simulation.simulate import PAIR_SIGMA, simulate_field

        self.image.parent.mkdir(parents=True, exist_ok=True)
        simulate_field(params["band"], params["integration"], shape=(params["size"],) * 2,
                       seed=params["seed"], centre=tuple(params["centre"]), output=self.image,
                       n_workers=n_workers, overwrite=True,
                       pair_fraction=params.get("pair_fraction", 0.0),
                       pair_sigma=params.get("pair_sigma", PAIR_SIGMA))
        produced = self.image.with_name(self.image.stem + ".truth.ecsv")
        if produced != self.truth:
            produced.replace(self.truth)
        self.record.write_text(json.dumps(params, indent=2))


@dataclass(frozen=True)
class RunLayout:
    """Where each stage of a run keeps its files.

    Parameters
    ----------
    root : Path
        The run folder.
    """

    root: Path

    @classmethod
    def from_parameter(cls, run_dir: str | Path | None) -> RunLayout:
        """Layout for a notebook's ``run_dir`` parameter (``""``: ``runs_dir()/"default"``)."""
        root = Path(run_dir) if run_dir else runs_dir() / "default"
        root.mkdir(parents=True, exist_ok=True)
        return cls(root.resolve())

    def field(self, name: str) -> FieldFiles:
        """Files of the simulated field ``name``."""
        folder = self.root / "fields"
        return FieldFiles(folder / f"{name}.fits", folder / f"{name}.truth.ecsv")

    @property
    def dataset(self) -> Path:
        """Shard folder of the training dataset."""
        return self.dataset_dir()

    def dataset_dir(self, name: str = "dataset") -> Path:
        """Shard folder of dataset ``name`` (e.g. ``"dataset_60"`` for 60 px cutouts)."""
        return self.root / name

    def model_dir(self, name: str = "unet") -> Path:
        """Training folder (checkpoints, logs, final model) of model ``name``."""
        return self.root / "models" / name

    @property
    def predictions(self) -> Path:
        """Outputs of inference (segmentation FITS, catalogues, region files)."""
        return self.root / "predictions"

    @property
    def results(self) -> Path:
        """Tables and figures of the evaluation."""
        return self.root / "results"


#: Seed offset per character-code unit of a field not in FIELD_OFFSETS (a prime, so that
#: fields whose names have nearby character sums still get far-apart seeds).
OTHER_FIELD_SEED_STEP: int = 7919


def field_seed(name: str, seed: int) -> int:
    """Seed of field ``name`` in a run with base ``seed`` (distinct per field).

    Named fields take their offset from :data:`FIELD_OFFSETS`; any other field
    ``OTHER_FIELD_SEED_STEP * (sum of its character codes + 1)``.
    """
    if name in FIELD_OFFSETS:
        offset = FIELD_OFFSETS[name][0]
    else:
        offset = OTHER_FIELD_SEED_STEP * (sum(map(ord, name)) + 1)
    return int(seed) + offset


def _require_same(what: str, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise a ValueError naming every ``wanted`` value that differs from the saved one."""
    diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    if diff:
        raise ValueError(f"{what} (saved, requested): {diff}; delete it or use another run "
                         "folder")


#: Distance (deg, B1) from the training field of the fields not in FIELD_OFFSETS.
OTHER_FIELD_RADIUS: float = 2.5


def _centre(name: str, band: str) -> tuple[float, float]:
    if name in FIELD_OFFSETS:
        ra, dec = FIELD_OFFSETS[name][1]
    else:  # its own patch on a ring around the training field, clear of the named ones
        angle = np.deg2rad(sum(map(ord, name)) % 360)
        ra = SDC1_CENTRE[0] + OTHER_FIELD_RADIUS * np.cos(angle)
        dec = SDC1_CENTRE[1] + OTHER_FIELD_RADIUS * np.sin(angle)
    return field_centre((ra, dec), band)


def ensure_field(
    layout: RunLayout,
    name: str,
    *,
    band: str = "B1",
    integration: int = 1000,
    size: int = 2048,
    seed: int = 1,
    n_workers: int = 1,
    pair_fraction: float = 0.0,
    pair_sigma: float | None = None,
) -> FieldFiles:
    """Simulate field ``name`` into the run folder unless it is already there.

    The field (:func:`radioseg_utils.simulation.simulate.simulate_field`, synthetic
    population plus correlated noise, no primary beam), centred on the field's own patch of
    sky (:data:`FIELD_OFFSETS`), is written to ``layout.field(name)`` with a JSON record of
    its parameters beside the image. A field already on disk is reused only if its
    recorded parameters match.

    Parameters
    ----------
    layout : RunLayout
        The run folder.
    name : str
        Field name: ``"train"``, ``"test"``, ``"val"``, another key of
        :data:`FIELD_OFFSETS`, or any other name (its own seed and patch of sky).
    band : str
        SDC1 band (``"B1"``, ``"B2"``, ``"B5"``): pixel grid, beam and noise.
    integration : int
        Integration time in hours (8, 100 or 1000): the noise rms.
    size : int
        Side of the square field in pixels.
    seed : int
        Base seed of the run; the field's own seed is :func:`field_seed` ``(name, seed)``.
    n_workers : int
        Processes rendering the field's tiles (the result does not depend on it).
    pair_fraction : float
        Fraction of the sources moved beside a brighter one, for training data richer in
        blends (:func:`~radioseg_utils.simulation.simulate.simulate_field`); 0 for every
        field that scores a finder.
    pair_sigma : float, optional
        Faintest source (integrated flux in rms) moved, or moved beside, with
        ``pair_fraction``; recorded only with it. Default
        :data:`~radioseg_utils.simulation.simulate.PAIR_SIGMA`.

    Returns
    -------
    FieldFiles
        The FITS image (Jy/beam) and the ECSV truth table of the field.

    Raises
    ------
    ValueError
        If the field on disk was made with other parameters (the message names them;
        delete the files or use another run folder), or on an unknown band or integration
        time.
    """
    from radioseg_utils.simulation.simulate import PAIR_SIGMA

    files = layout.field(name)
    params = {"band": get_band(band).name, "integration": int(integration), "size": int(size),
              "seed": field_seed(name, seed), "centre": list(_centre(name, band))}
    if pair_fraction:  # absent otherwise: fields made before it existed stay valid
        params["pair_fraction"] = float(pair_fraction)
        params["pair_sigma"] = float(PAIR_SIGMA if pair_sigma is None else pair_sigma)
    saved = files.saved_parameters()
    if saved is not None:
        plain = {"pair_fraction": 0.0}  # what a record without it was made with
        if "pair_fraction" in saved:
            plain["pair_sigma"] = PAIR_SIGMA
        _require_same(f"field {name!r} in {files.image.parent} was made with other parameters",
                      {**plain, **saved}, {**plain, **params})
        return files
    logger.info("simulating field %r: %s", name, params)
    files.simulate(params, n_workers=n_workers)
    return files


def load_field(files: FieldFiles):
    """Read a field: returns ``(SkyImage, truth Table)``."""
    from radioseg_utils.io.fits_read import read_image

    return read_image(files.image), Table.read(files.truth, format="ascii.ecsv")


def ensure_dataset(
    layout: RunLayout,
    field: FieldFiles,
    *,
    size: int = 128,
    snr_min: float = DEFAULT_SNR_MIN,
    k_sigma: float = DEFAULT_K_SIGMA,
    normalisation: str = "noise",
    integration: int = 1000,
    seed: int = 1,
    name: str = "dataset",
    **options: Any,
) -> dict[str, Any]:
    """Cut the training field into the spatially disjoint 80:10:10 shards, once.

    The shards (:func:`radioseg_utils.data.shards.build_dataset`) go to
    ``layout.dataset_dir(name)``; several datasets (e.g. one per cutout size) can live in
    one run folder. A dataset already there is reused if its cutout size, normalisation,
    mask S/N cut and footprint level (and ``n_random``, when given) match.

    Parameters
    ----------
    layout : RunLayout
        The run folder.
    field : FieldFiles
        The field to cut (e.g. from :func:`ensure_field`).
    size : int
        Side of the square cutouts in pixels.
    snr_min : float
        Peak S/N cut of the sources in the truth masks
        (:func:`radioseg_utils.data.masks.make_masks`).
    k_sigma : float
        Footprint level of a source in the masks, in noise sigmas.
    normalisation : str
        Normalisation applied when the shards are read (a key of
        :data:`radioseg_utils.data.normalise.NORMALISATIONS`); the images are stored raw.
    integration : int
        Integration time of the field in hours: its nominal noise rms for the masks.
    seed : int
        Seed of the split assignment and of random cutouts.
    name : str
        Dataset folder name inside the run folder.
    **options
        Further options of :func:`~radioseg_utils.data.shards.build_dataset` (e.g.
        ``stride``, ``n_random``, ``footprint``).

    Returns
    -------
    dict
        The dataset metadata (``metadata.json``): band, integration, noise (Jy/beam),
        cutout size, normalisation, the masks' selection report and the cutouts per split.

    Raises
    ------
    ValueError
        If the dataset on disk was made with other parameters (the message names them), or
        from :func:`~radioseg_utils.data.shards.build_dataset` on a bad option, when no
        source passes the S/N cut or when a split gets no cutout.
    FileNotFoundError
        If the field's files are missing.
    """
    from radioseg_utils.data.shards import build_dataset, read_metadata

    folder = layout.dataset_dir(name)
    if (folder / "metadata.json").is_file():
        meta = read_metadata(folder)
        saved = {"size": int(meta["size"]), "normalisation": meta.get("normalisation"),
                 "snr_min": meta["masks"]["snr_min"], "k_sigma": meta["masks"]["k_sigma"]}
        wanted = {"size": size, "normalisation": normalisation, "snr_min": snr_min,
                  "k_sigma": k_sigma}
        if "n_random" in options:
            saved["n_random"], wanted["n_random"] = meta.get("n_random"), options["n_random"]
        _require_same(f"dataset in {folder} was made with other parameters", saved, wanted)
        return meta
    sky, truth = load_field(field)
    return build_dataset(sky.data, truth, sky.wcs, sky.band, out_dir=folder, size=size,
                         snr_min=snr_min, k_sigma=k_sigma, normalisation=normalisation,
                         integration=integration, seed=seed,
                         provenance={"field": str(field.image)}, **options)


#: Training settings that must match for a finished model to be reused.
_MODEL_KEYS: tuple[str, ...] = ("model", "depth", "base_filters", "batch_norm", "dropout",
                                "loss", "normalisation", "seed", "learning_rate",
                                "centre_head")


def ensure_model(
    layout: RunLayout,
    config,
    *,
    name: str = "unet",
    dataset: str | Sequence[str] = "dataset",
    progress: bool = True,
    time_budget: float | None = None,
):
    """Train ``config`` on dataset(s) of the run unless a finished model is there.

    The model ``name`` is trained (:func:`radioseg_utils.model.train.train_from_shards`) on
    the shards of ``layout.dataset_dir(dataset)`` (of each name, when several) into
    ``layout.model_dir(name)``. An interrupted training resumes from its last checkpoint.
    A finished model is reused only if its architecture, loss, normalisation, seed,
    learning rate and centre head match ``config``.

    Parameters
    ----------
    layout : RunLayout
        The run folder.
    config : radioseg_utils.model.config.TrainConfig
        Training settings; band, integration and cutout size are taken from the dataset
        metadata.
    name : str
        Model folder name inside ``layout.model_dir()``.
    dataset : str or sequence of str
        Dataset folder name(s) inside the run folder (made by :func:`ensure_dataset`).
    progress : bool
        Show a progress bar over the epochs.
    time_budget : float, optional
        Wall-clock seconds the training may take
        (:class:`radioseg_utils.model.train.TimeBudget`).

    Returns
    -------
    pathlib.Path
        The saved ``.keras`` model (with its JSON sidecar).

    Raises
    ------
    ValueError
        If the finished model was trained with other settings (the message names them), or
        the cutouts do not fit the model.
    FileNotFoundError
        If a dataset folder is missing.
    """
    from radioseg_utils.model.files import read_sidecar
    from radioseg_utils.model.train import train_from_shards

    out = layout.model_dir(name)
    final = out / "model.keras"
    if final.is_file():
        saved = read_sidecar(final).get("config", {})
        wanted = config.to_dict()
        _require_same(f"model {name!r} in {out} was trained with other settings", saved,
                      {k: wanted[k] for k in _MODEL_KEYS})
        return final
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    result = train_from_shards(config, [layout.dataset_dir(n) for n in names], out_dir=out,
                               resume=True, progress=progress, time_budget=time_budget)
    return Path(result.model_path)

