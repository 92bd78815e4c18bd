"""Training data on disk: image/mask cutouts of a field, written as shards.

The field is divided into large blocks (``block`` pixels a side; ``(h, nx)`` gives
horizontal strips), and the blocks are dealt to the train/val/test splits (80:10:10 by
block count) by a seeded permutation (:func:`radioseg_utils.data.splits.split_layout`). A cutout belongs to a split
only if the cutout, grown by a guard band of ``guard`` pixels on every side, lies in that
split's blocks (or off the grid), so no pixel of a test cutout is in a training cutout, and
sources straddling a border are not shared. Cutouts are placed on a sliding grid
(``stride`` < ``size`` overlaps them) or at random
(:func:`radioseg_utils.data.splits.cutout_positions`).

:func:`build_dataset` runs masks → cutouts → shards. Shards are compressed ``.npz`` files
``<split>-NNNNN.npz`` holding ``image`` (float32 Jy/beam, raw), ``mask`` (uint8),
``labels`` (int32, catalogue row + 1), ``centre`` (float16 heat map of the selected sources'
core positions, :func:`radioseg_utils.data.heatmaps.centre_heatmap`) and ``origin`` (int64
``(y, x)`` of each cutout in the field), beside ``metadata.json`` (band, integration, noise, default normalisation, seed,
sizes, split blocks, counts, class balance, provenance). Images are stored raw and
normalised when read (:mod:`radioseg_utils.data.loader`), so one set of
shards serves every normalisation of :mod:`radioseg_utils.data.normalise`. The loader
streams one shard folder or several (e.g. fields of several bands and integrations, each
normalised with its own noise) as one dataset, with the mask or the mask and the centre map
as targets (:data:`TARGET_CHANNELS`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.core.paths import OutputExistsError
from radioseg_utils.core.provenance import versions
from radioseg_utils.data.heatmaps import CENTRE_SIGMA, centre_heatmap
from radioseg_utils.data.masks import (
    DEFAULT_K_SIGMA,
    DEFAULT_SNR_MIN,
    MASK_TILE,
    make_masks,
)
from radioseg_utils.data.normalise import NORMALISATIONS
from radioseg_utils.data.splits import (
    SPLIT_FRACTIONS,
    SPLITS,
    cutout_positions,
    split_layout,
)

__all__ = [
    "DEFAULT_SIZE",
    "TARGET_CHANNELS",
    "build_dataset",
    "read_metadata",
]

logger = logging.getLogger(__name__)

#: Default cutout side in pixels (the poster's U-Net input).
DEFAULT_SIZE: int = 256
#: Default block side in cutout sides.
BLOCK_IN_CUTOUTS: int = 4
#: Target uncompressed size of one shard in bytes.
SHARD_BYTES: int = 32 * 2**20
#: Bytes a cutout pixel takes in a shard: float32 image, uint8 mask, int32 labels and
#: float16 centre map.
SHARD_BYTES_PER_PIXEL: int = 4 + 1 + 4 + 2
#: Target maps a shard can give, in channel order.
TARGET_CHANNELS: tuple[str, ...] = ("mask", "centre")
METADATA_FILE = "metadata.json"


def _centre_cutouts(centres: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """Centre heat maps (float16) of the cutouts at ``positions`` from ``(x, y)`` centres."""
    x, y = centres
    reach = size + 4 * CENTRE_SIGMA
    maps = []
    for y0, x0 in positions:
        near = (x > x0 - reach) & (x < x0 + reach) & (y > y0 - reach) & (y < y0 + reach)
        maps.append(centre_heatmap(x[near], y[near], (size, size), origin=(int(y0), int(x0))))
    return np.stack(maps).astype(np.float16)


def _cutouts(array: np.ndarray, positions: np.ndarray, size: int, dtype) -> np.ndarray:
    """Stack of the ``size``² cutouts of ``array`` at ``(y, x)`` corners, as ``dtype``."""
    return np.stack([np.asarray(array[y:y + size, x:x + size], dtype=dtype) for y, x in positions])


def _write_split(out_dir: Path, split: str, image: np.ndarray, binary: np.ndarray,
                 labels: np.ndarray, centres: np.ndarray, positions: np.ndarray,
                 size: int) -> dict[str, object]:
    """Write one split's cutouts as shards; return its counts."""
    per_shard = max(1, SHARD_BYTES // (size * size * SHARD_BYTES_PER_PIXEL))
    n_written = n_dropped = n_source_px = n_shards = 0
    sources: set[int] = set()
    for start in range(0, len(positions), per_shard):
        pos = positions[start:start + per_shard]
        img, msk, lab = (_cutouts(a, pos, size, dt) for a, dt in
                         ((image, np.float32), (binary, np.uint8), (labels, np.int32)))
        finite = np.isfinite(img).all(axis=(1, 2))
        n_dropped += int((~finite).sum())
        if not finite.any():
            continue
        img, msk, lab, pos = img[finite], msk[finite], lab[finite], pos[finite]
        np.savez_compressed(out_dir / f"{split}-{n_shards:05d}.npz", image=img, mask=msk,
                            labels=lab, centre=_centre_cutouts(centres, pos, size), origin=pos)
        n_shards += 1
        n_written += len(img)
        n_source_px += int(msk.sum(dtype=np.int64))
        sources.update(np.unique(lab[lab > 0]).tolist())
    return {"n_cutouts": n_written, "n_shards": n_shards, "n_dropped_nonfinite": n_dropped,
            "n_sources": len(sources),
            "source_pixel_fraction": n_source_px / (n_written * size * size) if n_written else 0.0}


def build_dataset(
    image: np.ndarray,
    truth: Table,
    wcs: WCS,
    band: str | Band,
    *,
    out_dir: str | Path,
    size: int = DEFAULT_SIZE,
    stride: int | None = None,
    n_random: int | None = None,
    snr_min: float = DEFAULT_SNR_MIN,
    k_sigma: float = DEFAULT_K_SIGMA,
    footprint: str = "model",
    normalisation: str = "minmax",
    noise: float | None = None,
    integration: int | None = None,
    seed: int = 0,
    block: int | tuple[int, int] | None = None,
    guard: int | None = None,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
    primary_beam: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    provenance: dict[str, object] | None = None,
    overwrite: bool = False,
) -> dict[str, object]:
    """Masks → cutouts → shards of a field and its truth catalogue.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Field in Jy/beam (a memory map is fine).
    truth : astropy.table.Table
        Truth catalogue of the field (tidy columns).
    wcs : astropy.wcs.WCS
        Celestial WCS of ``image``.
    band : str or Band
        SDC1 band.
    out_dir : str or Path
        Shard folder; must be empty or absent unless ``overwrite``.
    size, stride, n_random
        Cutout side, sliding step (default ``size // 2``) or number of random cutouts
        (split between the splits by ``fractions``); see :func:`cutout_positions`.
    snr_min, k_sigma, footprint
        Mask options, see :func:`radioseg_utils.data.masks.make_masks`.
    normalisation : str
        Default normalisation applied when the shards are read (one of
        :data:`~radioseg_utils.data.normalise.NORMALISATIONS`); images are stored raw.
    noise : float, optional
        Image rms in Jy/beam. Default: the band's rms for ``integration`` if given, else
        the robust rms of the image (:func:`radioseg_utils.core.noise.estimate_noise`).
    integration : int, optional
        Integration time in hours (recorded; sets the default noise).
    seed : int
        Seed of the split assignment and of random cutouts.
    block, guard : optional
        Split block side (default ``4 * size``) and guard band (default ``size // 2``).
    fractions : (train, val, test)
        Block fractions of the splits.
    primary_beam : callable, optional
        Primary-beam attenuation for the masks (apparent fluxes).
    provenance : dict, optional
        Extra JSON-ready provenance (input file names, simulation parameters, ...).
    overwrite : bool
        Replace shards already in ``out_dir``.

    Returns
    -------
    dict
        The metadata written to ``out_dir / "metadata.json"``.

    Raises
    ------
    radioseg_utils.core.paths.OutputExistsError
        If ``out_dir`` holds shards and ``overwrite`` is False (a :class:`FileExistsError`).
    ValueError
        On a bad option or image; :class:`~radioseg_utils.data.masks.EmptySelectionError` if no
        source passes the cut; if a split gets no cutout.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; expected one of "
                         f"{', '.join(NORMALISATIONS)}")
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    band = get_band(band)
    out_dir = Path(out_dir)
    old = sorted(out_dir.glob("*.npz")) if out_dir.is_dir() else []
    if old and not overwrite:
        raise OutputExistsError(f"{out_dir} already holds {len(old)} shards")
    for path in old:
        path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if noise is None:
        noise = band.noise(integration) if integration is not None else estimate_noise(image)[1]
    shape = image.shape
    big = shape[0] * shape[1] > MASK_TILE**2
    binary, labels, report = make_masks(
        truth, wcs, band, shape=shape, noise=noise, snr_min=snr_min, k_sigma=k_sigma,
        footprint=footprint, primary_beam=primary_beam, out_dir=out_dir / "field" if big else None)
    # centres at the core positions the evaluation matches (the centroid if none is given)
    core = ("ra_core", "dec_core") if "ra_core" in truth.colnames else ("ra_cent", "dec_cent")
    centres = np.array(wcs.celestial.world_to_pixel_values(
        *(np.asarray(truth[c][report.rows], float) for c in core)))
    layout = split_layout(shape, block=block or BLOCK_IN_CUTOUTS * size,
                          guard=size // 2 if guard is None else guard, seed=seed,
                          fractions=fractions)
    splits: dict[str, object] = {}
    for code, split in enumerate(SPLITS):
        n = None if n_random is None else max(1, round(n_random * fractions[code] / sum(fractions)))
        pos = cutout_positions(layout, split, size=size, stride=stride, n_random=n, seed=seed)
        splits[split] = _write_split(out_dir, split, image, binary, labels, centres, pos, size)
        if splits[split]["n_cutouts"] == 0:
            raise ValueError(f"split {split!r} has no cutout of {size} px: use a smaller size, "
                             "block or guard, or a larger field")
        logger.info("dataset %s: %s", split, splits[split])
    metadata = {
        "band": band.name, "integration_h": integration, "noise_jy": float(noise),
        "normalisation": normalisation, "seed": seed, "size": size,
        "stride": None if n_random is not None else (stride or size // 2 or 1),
        "n_random": n_random, "shape": list(shape), "layout": layout.as_dict(),
        "masks": report.as_dict(), "splits": splits,
        "provenance": {**versions("numpy"),
                       "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       **(provenance or {})},
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=1) + "\n")
    return metadata


def read_metadata(shard_dir: str | Path) -> dict[str, object]:
    """The ``metadata.json`` of a shard folder written by :func:`build_dataset`."""
    path = Path(shard_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {METADATA_FILE} in {shard_dir}: not a dataset shard folder")
    return json.loads(path.read_text())

