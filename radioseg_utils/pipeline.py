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

from .bands import get_band
from .paths import runs_dir

__all__ = [
    "FIELD_OFFSETS",
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
#: the extra training fields of the default model (:mod:`radioseg_utils.pretrain`) each
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
    """A simulated field on disk: the FITS image and its truth table (ECSV)."""

    image: Path
    truth: Path


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


def field_seed(name: str, seed: int) -> int:
    """Seed of field ``name`` in a run with base ``seed`` (distinct per field)."""
    offset = FIELD_OFFSETS[name][0] if name in FIELD_OFFSETS else 7919 * (sum(map(ord, name)) + 1)
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
        ra, dec = OTHER_FIELD_RADIUS * np.cos(angle), -30.0 + OTHER_FIELD_RADIUS * np.sin(angle)
    # Keep fields of the small B5 sky inside a plausible patch: offsets scale with the FoV.
    scale = get_band(band).fov_deg / get_band("B1").fov_deg
    return (ra * scale, -30.0 + (dec + 30.0) * scale)


def ensure_field(
    layout: RunLayout,
    name: str,
    *,
    band: str = "B1",
    integration: int = 1000,
    size: int = 2048,
    seed: int = 1,
    n_workers: int = 1,
) -> FieldFiles:
    """Simulate field ``name`` into the run folder unless it is already there.

    A field already on disk is reused only if its recorded parameters match; otherwise a
    :class:`ValueError` says which differ (delete the file or use another run folder).

    Returns
    -------
    FieldFiles
    """
    from .simulate import simulate_field

    files = layout.field(name)
    params = {"band": get_band(band).name, "integration": int(integration), "size": int(size),
              "seed": field_seed(name, seed), "centre": list(_centre(name, band))}
    record = files.image.with_suffix(".json")
    if files.image.is_file() and files.truth.is_file() and record.is_file():
        _require_same(f"field {name!r} in {files.image.parent} was made with other parameters",
                      json.loads(record.read_text()), params)
        return files
    files.image.parent.mkdir(parents=True, exist_ok=True)
    logger.info("simulating field %r: %s", name, params)
    simulate_field(params["band"], params["integration"], shape=(size, size),
                   seed=params["seed"], centre=tuple(params["centre"]), output=files.image,
                   n_workers=n_workers, overwrite=True)
    produced = files.image.with_name(files.image.stem + ".truth.ecsv")
    if produced != files.truth:
        produced.replace(files.truth)
    record.write_text(json.dumps(params, indent=2))
    return files


def load_field(files: FieldFiles):
    """Read a field: returns ``(SkyImage, truth Table)``."""
    from .fitsio import read_image

    return read_image(files.image), Table.read(files.truth, format="ascii.ecsv")


def ensure_dataset(
    layout: RunLayout,
    field: FieldFiles,
    *,
    size: int = 128,
    snr_min: float = 5.0,
    k_sigma: float = 1.0,
    normalisation: str = "noise",
    integration: int = 1000,
    seed: int = 1,
    name: str = "dataset",
    **options: Any,
) -> dict[str, Any]:
    """Cut the training field into the spatially disjoint 80:10:10 shards, once.

    The shards go to ``layout.dataset_dir(name)``; several datasets (e.g. one per cutout
    size) can live in one run folder. A dataset already there is reused if its cutout
    size, normalisation, mask S/N cut and footprint level (and ``n_random``, when given)
    match; otherwise a :class:`ValueError` names the differences. Other ``options`` go to
    :func:`radioseg_utils.dataset.build_dataset`.

    Returns the dataset metadata (``metadata.json``).
    """
    from .dataset import build_dataset, read_metadata

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
):
    """Train ``config`` on dataset(s) of the run unless a finished model is there.

    The model ``name`` is trained on the shards of ``layout.dataset_dir(dataset)`` (of each
    name, when several) into ``layout.model_dir(name)``. An interrupted training resumes
    from its last checkpoint.

    Returns
    -------
    pathlib.Path
        The saved ``.keras`` model (with its JSON sidecar).
    """
    from .train import train_from_shards

    out = layout.model_dir(name)
    final = out / "model.keras"
    if final.is_file():
        saved = json.loads(final.with_suffix(".json").read_text()).get("config", {})
        wanted = config.to_dict()
        _require_same(f"model {name!r} in {out} was trained with other settings", saved,
                      {k: wanted[k] for k in _MODEL_KEYS})
        return final
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    result = train_from_shards(config, [layout.dataset_dir(n) for n in names], out_dir=out,
                               resume=True, progress=progress)
    return Path(result.model_path)

