"""PyBDSF, run the way the SDC1 baseline ran it, as a finder like the others.

:func:`run_pybdsf` writes the image as a 2-D FITS copy in a work folder (the input is never
touched), runs :func:`bdsf.process_image` in a separate Python process (so its memory, its
log and any crash stay there), and reads back

* the island map (PyBDSF's ``pyrank``: island ``i`` -> label ``i + 1``, 0 outside) as the
  segmentation map, on the input pixel grid;
* the source list (``srl``, ASCII), read by :func:`radioseg_utils.baselines.pybdsf_srl.read_pybdsf_srl`
  and completed (pixel positions, primary beam, SIZE/CLASS) by :func:`srl_to_catalogue`.

Images larger than ``tile`` pixels on a side are cut into overlapping tiles
(:func:`radioseg_utils.inference.tiling.tile_starts`), each run separately; a source is kept only by
the tile whose core region (tiles split at the middle of each overlap) holds its
position, and each tile writes its island labels only into its core region.

Settings (:class:`PyBDSFSettings`) default to the SDC1 baseline: hard thresholds of 4
(island) and 5 (peak) sigma, ``psf_snrtop=0.3``, an rms map with ``rms_box=(74, 19)``,
i.e. a 74-pixel box (~30 restoring beams of 2.5 px, the SDC1 pixel sampling in every band)
moved in 19-pixel steps; the beam is given explicitly (BMAJ, BMIN, 0) because SDC1 headers
have no BPA.

References
----------
Mohan, N. & Rafferty, D. 2015, "PyBDSF: Python Blob Detection and Source Finder",
Astrophysics Source Code Library, ascl:1502.007.
Bonaldi, A. et al. 2021, MNRAS 500, 3821, doi:10.1093/mnras/staa3023 (SDC1).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack

from radioseg_utils.baselines.pybdsf_srl import read_pybdsf_srl
from radioseg_utils.baselines.result import (
    FinderResult,
    ResourceMeter,
    as_sky_image,
    primary_beam_gain,
)
from radioseg_utils.core.paths import generated_dir
from radioseg_utils.inference.tiling import tile_starts
from radioseg_utils.io.catalogue import catalogue_table
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header
from radioseg_utils.postprocess.measure import ClassRule, PrimaryBeamLike

__all__ = [
    "PyBDSFSettings",
    "PyBDSFError",
    "run_pybdsf",
    "srl_to_catalogue",
    "DEFAULT_TIMEOUT_S",
    "PYBDSF_TILE",
    "PYBDSF_OVERLAP",
]

logger = logging.getLogger(__name__)

#: Wall-clock limit of one PyBDSF process, in seconds.
DEFAULT_TIMEOUT_S: float = 3600.0
#: Largest image side run in one piece; larger images are tiled (PyBDSF holds several
#: float64 copies of the image in memory: ~2 GB for a 4096² tile).
PYBDSF_TILE: int = 4096
#: Overlap of neighbouring tiles in pixels: longer than the rms box and the largest
#: SDC1 B1 sources (~100″ LAS = 170 px are rare; 128 px = 77″ at 0.6″/px).
PYBDSF_OVERLAP: int = 128

#: Columns of a :func:`~radioseg_utils.baselines.pybdsf_srl.read_pybdsf_srl` table used by
#: :func:`srl_to_catalogue`.
_SRL_COLUMNS: tuple[str, ...] = (
    "ra_core", "dec_core", "ra_cent", "dec_cent", "flux", "b_maj", "b_min", "pa",
    "Peak_flux", "Isl_id", "Isl_rms",
)
_EMPTY_SRL = Table({name: np.zeros(0) for name in _SRL_COLUMNS})
_WORKER = "from radioseg_utils.baselines.pybdsf import _worker_main; _worker_main()"
_LOG_TAIL_CHARS = 2000


class PyBDSFError(RuntimeError):
    """PyBDSF failed or timed out; the message names the log file."""


@dataclass(frozen=True)
class PyBDSFSettings:
    """Options of :func:`bdsf.process_image` (the SDC1 baseline by default).

    Attributes
    ----------
    thresh : str
        ``"hard"``: fixed sigma thresholds (no false-detection-rate threshold).
    thresh_isl, thresh_pix : float
        Island-boundary and source-peak thresholds in sigma above the mean map.
    psf_snrtop : float
        Fraction of the brightest sources used for PSF statistics.
    rms_map : bool
        Use a spatially varying rms (and mean) map.
    rms_box : (int, int)
        Box size and step in pixels of the rms map.
    ncores : int
        Processes PyBDSF may use for Gaussian fitting.
    extra : dict
        Further ``process_image`` options, passed through unchanged.
    """

    thresh: str = "hard"
    thresh_isl: float = 4.0
    thresh_pix: float = 5.0
    psf_snrtop: float = 0.3
    rms_map: bool = True
    rms_box: tuple[int, int] = (74, 19)
    ncores: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`bdsf.process_image` (JSON-serialisable)."""
        opts = asdict(self)
        extra = opts.pop("extra")
        opts["rms_box"] = list(self.rms_box)
        return {**opts, **extra}


def srl_to_catalogue(
    srl: Table,
    image: SkyImage,
    *,
    primary_beam: PrimaryBeamLike = None,
    rule: ClassRule = ClassRule(),
) -> Table:
    """Complete a PyBDSF source list into the tidy SDC1 catalogue.

    Parameters
    ----------
    srl : astropy.table.Table
        Source list from :func:`radioseg_utils.baselines.pybdsf_srl.read_pybdsf_srl`: its tidy
        columns (``ra_core``/``dec_core`` = peak, ``ra_cent``/``dec_cent`` = centroid,
        ``flux`` = Total_flux, ``b_maj``/``b_min``/``pa`` = deconvolved DC_Maj/DC_Min/DC_PA)
        plus PyBDSF's ``Peak_flux``, ``Isl_id`` and ``Isl_rms``.
    image : SkyImage
        Image the list was made from: gives pixel positions and the restoring beam.
    primary_beam : float, ndarray (ny, nx) or callable, optional
        Primary-beam gain; ``flux`` is divided by it at the source centroid.
    rule : ClassRule
        SIZE/CLASS rule, the same as in :func:`radioseg_utils.postprocess.measure.measure_sources`:
        a source whose deconvolved major axis exceeds ``rule.extended_beams`` beams is
        CLASS 1, SIZE 1, with sizes scaled to LAS and ``core_frac`` = Peak_flux /
        Total_flux (clipped to [0, 1]); every other source is CLASS 3, SIZE 2,
        ``core_frac = 0``.

    Returns
    -------
    astropy.table.Table
        The SDC1 submission columns, ``x``, ``y`` (0-based centroid pixel),
        ``peak_flux``, ``peak_snr`` (Peak_flux / Isl_rms), ``noise`` (Isl_rms) and
        ``label`` (Isl_id + 1, the island's value in the label map).

    Raises
    ------
    ValueError
        If a needed column is missing.
    """
    missing = [name for name in _SRL_COLUMNS if name not in srl.colnames]
    if missing:
        raise ValueError(f"PyBDSF source list lacks column(s) {missing}")
    col = {name: np.asarray(srl[name], dtype=float) for name in _SRL_COLUMNS}
    x, y = image.wcs.celestial.world_to_pixel_values(col["ra_cent"], col["dec_cent"])
    flux = col["flux"]
    if primary_beam is not None and len(srl):
        flux = flux / primary_beam_gain(primary_beam, image.wcs, x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        sdc1 = rule.columns(col["b_maj"], col["b_min"], col["Peak_flux"] / col["flux"],
                            image.beam.bmaj)
    return catalogue_table(
        {
            "id": np.arange(len(srl)),
            "ra_core": col["ra_core"],
            "dec_core": col["dec_core"],
            "ra_cent": col["ra_cent"],
            "dec_cent": col["dec_cent"],
            "flux": flux,
            "core_frac": sdc1["core_frac"],
            "b_maj": sdc1["b_maj"],
            "b_min": sdc1["b_min"],
            "pa": col["pa"],
            "size": sdc1["size"],
            "class": sdc1["class"],
            "x": x,
            "y": y,
            "peak_flux": col["Peak_flux"],
            "peak_snr": col["Peak_flux"] / col["Isl_rms"],
            "noise": col["Isl_rms"],
            "label": col["Isl_id"] + 1,
        }
    )


def run_pybdsf(
    image: SkyImage | str | Path,
    *,
    noise: float | None = None,
    settings: PyBDSFSettings = PyBDSFSettings(),
    primary_beam: PrimaryBeamLike = None,
    workdir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    tile: int = PYBDSF_TILE,
    overlap: int = PYBDSF_OVERLAP,
) -> FinderResult:
    """Run PyBDSF on an image and return its island map and source catalogue.

    Parameters
    ----------
    image : SkyImage or path
        2-D image in Jy/beam (a FITS path is read with
        :func:`radioseg_utils.io.fits_read.read_image`). Only a copy is given to PyBDSF.
    noise : float, optional
        Constant rms in Jy/beam: replaces PyBDSF's rms map (``rms_map=False,
        rms_value=noise``). Default: PyBDSF's own rms map (``settings``).
    settings : PyBDSFSettings
        ``process_image`` options; the SDC1 baseline by default.
    primary_beam : float, ndarray (ny, nx) or callable, optional
        Primary-beam gain; catalogue fluxes are divided by it.
    workdir : str or Path, optional
        Folder for the FITS copy, PyBDSF's outputs and logs (kept after the run).
        Default: a new folder under ``generated_dir() / "pybdsf"``.
    timeout : float
        Wall-clock limit per PyBDSF process (per tile), in seconds.
    tile, overlap : int
        Images with a side larger than ``tile`` pixels are run in tiles of that side
        overlapping by ``overlap`` pixels.

    Returns
    -------
    FinderResult
        ``finder="pybdsf"``, ``labels`` = island map, ``log_path`` = PyBDSF's log (of the
        last tile), ``peak_rss_mb`` = the largest memory increase of PyBDSF over tiles,
        ``runtime_s`` = total wall-clock time including process start-up. No island
        found gives an empty catalogue and an all-zero map.

    Raises
    ------
    PyBDSFError
        If PyBDSF exits with an error or runs longer than ``timeout``.
    ValueError
        If ``noise`` is not a positive number or not ``0 <= overlap < tile``.

    Examples
    --------
    >>> result = run_pybdsf("B1_1000h_0.05tr.fits")  # doctest: +SKIP
    >>> len(result.catalogue)  # doctest: +SKIP
    44
    """
    image = as_sky_image(image)
    if noise is not None and not (np.ndim(noise) == 0 and noise > 0):
        raise ValueError(f"noise must be a positive number (Jy/beam), got {noise!r}")
    options = settings.options()
    if noise is not None:
        options.update(rms_map=False, rms_value=float(noise))
    workdir = _new_workdir(workdir)
    ny, nx = image.shape
    starts_y, starts_x = tile_starts(ny, tile, overlap), tile_starts(nx, tile, overlap)
    cores_y, cores_x = _cores(starts_y, tile, ny), _cores(starts_x, tile, nx)
    labels = np.zeros((ny, nx), dtype=np.int32)
    catalogues, peak_mb, log_path = [], 0.0, None
    t0 = time.perf_counter()
    for y0, core_y in zip(starts_y, cores_y):
        for x0, core_x in zip(starts_x, cores_x):
            ys, xs = slice(y0, min(y0 + tile, ny)), slice(x0, min(x0 + tile, nx))
            sub = _section(image, ys, xs)
            name = f"tile_y{y0}_x{x0}" if len(starts_y) * len(starts_x) > 1 else "image"
            srl, tile_labels, mb, log_path = _run_one(sub, options, workdir / name, timeout)
            peak_mb = max(peak_mb, mb)
            cat = srl_to_catalogue(srl, sub, primary_beam=_shift(primary_beam, ys, xs))
            keep = _inside(cat["y"] + y0, core_y) & _inside(cat["x"] + x0, core_x)
            cat = cat[keep]
            offset = int(labels.max())
            cat["x"] += x0
            cat["y"] += y0
            cat["label"] += offset
            cy, cx = slice(core_y[0], core_y[1]), slice(core_x[0], core_x[1])
            part = tile_labels[cy.start - y0 : cy.stop - y0, cx.start - x0 : cx.stop - x0]
            labels[cy, cx] = np.where(part > 0, part + offset, 0)
            catalogues.append(cat)
    catalogue = _stack(catalogues)
    runtime = time.perf_counter() - t0
    logger.info("PyBDSF: %d sources in %.1f s, log %s", len(catalogue), runtime, log_path)
    return FinderResult(catalogue, labels, runtime, peak_mb, finder="pybdsf", log_path=log_path)


def _new_workdir(workdir: str | Path | None) -> Path:
    if workdir is not None:
        path = Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    root = generated_dir() / "pybdsf"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=root))


def _section(image: SkyImage, ys: slice, xs: slice) -> SkyImage:
    """The ``[ys, xs]`` section of an image, with its shifted WCS."""
    if (ys.start, xs.start) == (0, 0) and (ys.stop, xs.stop) == image.shape:
        return image
    return SkyImage(
        data=image.data[ys, xs],
        wcs=image.wcs.celestial[ys, xs],
        header=image.header,
        band=image.band,
        beam=image.beam,
        pixel_arcsec=image.pixel_arcsec,
        path=image.path,
        origin=(image.origin[0] + ys.start, image.origin[1] + xs.start),
    )


def _shift(primary_beam: PrimaryBeamLike, ys: slice, xs: slice) -> PrimaryBeamLike:
    """The primary beam on a tile: a map is cut, a scalar or callable is unchanged."""
    if primary_beam is None or callable(primary_beam) or np.ndim(primary_beam) == 0:
        return primary_beam
    return np.asarray(primary_beam)[ys, xs]


def _cores(starts: list[int], tile: int, n: int) -> list[tuple[int, int]]:
    """Core ranges ``[lo, hi)`` of tiles along one axis: they split ``0..n`` at the middle
    of each overlap, so every pixel belongs to exactly one core.

    Examples
    --------
    >>> _cores([0, 3, 6], 4, 10)
    [(0, 3), (3, 6), (6, 10)]
    """
    stops = [min(s + tile, n) for s in starts]
    cuts = [(nxt + stop) // 2 for nxt, stop in zip(starts[1:], stops[:-1])]
    return list(zip([0, *cuts], [*cuts, n]))


def _inside(values: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    """True where the pixel centre nearest to ``values`` lies in ``[lo, hi)``."""
    pix = np.floor(np.asarray(values) + 0.5)
    return (pix >= bounds[0]) & (pix < bounds[1])


def _stack(catalogues: list[Table]) -> Table:
    table = vstack(catalogues, metadata_conflicts="silent") if len(catalogues) > 1 else catalogues[0]
    table["id"] = np.arange(len(table))
    return table


def _run_one(image: SkyImage, options: dict, folder: Path, timeout: float):
    """Run PyBDSF on one image in a subprocess; returns (srl, labels, peak_mb, log_path)."""
    folder.mkdir(parents=True, exist_ok=True)
    fits_path = folder / "input.fits"
    write_image(fits_path, image.data, sdc1_header(image.wcs, image.band, ndim=2), overwrite=True)
    config = {
        "input": str(fits_path),
        "srl": str(folder / "sources.srl"),
        "labels": str(folder / "islands.npy"),
        "result": str(folder / "result.json"),
        "options": {
            **options,
            "beam": [image.beam.bmaj / 3600.0, image.beam.bmin / 3600.0, image.beam.bpa],
            "frequency": image.band.freq_hz,
            "quiet": True,
        },
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    worker_log = folder / "worker.log"
    with worker_log.open("w") as log:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _WORKER, str(folder / "config.json")],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PyBDSFError(
                f"PyBDSF ran longer than {timeout} s on {fits_path}; log: {worker_log}"
            ) from None
    if proc.returncode != 0:
        tail = worker_log.read_text()[-_LOG_TAIL_CHARS:]
        raise PyBDSFError(
            f"PyBDSF failed (exit {proc.returncode}) on {fits_path}; log: {worker_log}\n{tail}"
        )
    result = json.loads(Path(config["result"]).read_text())
    srl = read_pybdsf_srl(config["srl"]) if result["n_sources"] else _EMPTY_SRL
    labels = np.load(config["labels"])
    return srl, labels, result["peak_rss_mb"], folder / result["log"]


def _worker_main(argv: list[str] | None = None) -> None:
    """Entry point of the PyBDSF subprocess: ``python -c ... config.json``."""
    import bdsf

    config = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    options = dict(config["options"])
    options["beam"] = tuple(options["beam"])
    options["rms_box"] = tuple(options["rms_box"]) if options.get("rms_box") else None
    with ResourceMeter() as meter:
        img = bdsf.process_image(config["input"], **options)
        n_sources = int(getattr(img, "nsrc", 0) or 0)
        if n_sources:
            img.write_catalog(outfile=config["srl"], format="ascii", catalog_type="srl", clobber=True)
    pyrank = getattr(img, "pyrank", None)
    shape = fits.getdata(config["input"]).shape
    labels = np.zeros(shape, np.int32) if pyrank is None else (np.asarray(pyrank).T + 1).astype(np.int32)
    np.save(config["labels"], labels)
    log_name = Path(config["input"]).name + ".pybdsf.log"
    Path(config["result"]).write_text(
        json.dumps({"n_sources": n_sources, "peak_rss_mb": meter.peak_rss_mb, "log": log_name})
    )
