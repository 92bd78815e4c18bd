"""PyBDSF, run the way the SDC1 baseline ran it, as a finder like the others.

:func:`run_pybdsf` writes the image as a 2-D FITS copy in a work folder (the input is never
touched), runs :func:`bdsf.process_image` in a separate Python process (so its memory, its
log and any crash stay there), and reads back

* the island map (PyBDSF's ``pyrank``: island ``i`` -> label ``i + 1``, 0 outside) as the
  segmentation map, on the input pixel grid;
* the source list (``srl``, ASCII), read by :func:`radioseg_utils.baselines.pybdsf_srl.read_pybdsf_srl`
  and completed (pixel positions, primary beam, SIZE/CLASS) by :func:`srl_to_catalogue`.

Images larger than ``tile`` pixels on a side are run in overlapping tiles, each in its
own process, and stitched (:func:`radioseg_utils.baselines.external.run_tiled`, shared with
Aegean).

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
import sys
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from radioseg_utils.baselines.external import (
    DEFAULT_TIMEOUT_S,
    ExternalFinderError,
    TileRun,
    new_workdir,
    run_tiled,
    run_worker,
    write_input,
)
from radioseg_utils.baselines.pybdsf_srl import read_pybdsf_srl
from radioseg_utils.baselines.result import (
    FinderResult,
    ResourceMeter,
    as_sky_image,
    primary_beam_gain,
)
from radioseg_utils.io.catalogue import catalogue_table
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.postprocess.measure import ClassRule, PrimaryBeamLike

__all__ = [
    "PyBDSFSettings",
    "PyBDSFError",
    "run_pybdsf",
    "srl_to_catalogue",
    "PYBDSF_TILE",
    "PYBDSF_OVERLAP",
]

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


class PyBDSFError(ExternalFinderError):
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
    return run_tiled(image, partial(_run_tile, options=options, timeout=timeout), finder="pybdsf",
                     workdir=new_workdir(workdir, "pybdsf"), tile=tile, overlap=overlap,
                     maps={"primary_beam": primary_beam})


def _run_tile(image: SkyImage, folder: Path, *, options: dict, timeout: float,
              primary_beam: PrimaryBeamLike) -> TileRun:
    """Run PyBDSF on one image (a tile) in a subprocess and read back its outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    fits_path = write_input(image, folder / "input.fits")
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
    result = run_worker(_WORKER, config, folder, timeout=timeout, finder="PyBDSF",
                        error=PyBDSFError)
    srl = read_pybdsf_srl(config["srl"]) if result["n_sources"] else _EMPTY_SRL
    catalogue = srl_to_catalogue(srl, image, primary_beam=primary_beam)
    return TileRun(catalogue, np.load(config["labels"]), result["peak_rss_mb"],
                   folder / result["log"])


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
