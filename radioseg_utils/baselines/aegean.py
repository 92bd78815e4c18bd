"""Aegean with BANE, the other classical finder radio surveys run, as a finder like the others.

Aegean (Hancock et al. 2012, 2018; ``AegeanTools`` on the package index) is the finder
behind GLEAM, EMU and MWA catalogues: islands of pixels are seeded above ``seedclip``
sigma and flooded down to ``floodclip`` sigma of a background and noise map made by BANE,
the summits of each island (local maxima of its curvature map) start a multi-Gaussian fit
of the island, and every Gaussian is a *component*. :func:`run_aegean` runs it

* on a 2-D FITS copy of the image (the input is never touched) in a separate Python
  process with a wall-clock limit, in overlapping tiles for large images, with the
  machinery it shares with PyBDSF (:mod:`radioseg_utils.baselines.external`);
* with BANE's background and rms maps (written beside the copy), then Aegean's source
  finding (``SourceFinder.find_sources_in_image``) with priorised fitting off (there is
  no input catalogue), positive sources only;

and reads back

* Aegean's component table (``aegean_comp.fits``, Aegean's own column names and units,
  the table ``aegean --table`` writes), converted by :func:`aegean_to_catalogue`: the
  components of one island are one source, in the catalogue schema of
  :data:`radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`;
* the island map (island ``k`` of Aegean's list -> label ``k``, 0 outside islands and in
  islands without a reported component) as the segmentation map, on the input grid.

Settings (:class:`AegeanSettings`) are Aegean's defaults:

* ``seedclip = 5`` and ``floodclip = 4`` sigma: the defaults of the ``aegean`` command
  (``--seedclip``, ``--floodclip``) and of ``SourceFinder.find_sources_in_image`` in
  AegeanTools 2.3.5, the seed/flood scheme of Hancock et al. (2012);
* BANE on a grid of four restoring-beam widths (``BANE.get_step_size``: ``ceil(4 *
  sqrt(BMAJ * BMIN) / pixel)``, 10 px for the SDC1 2.5-pixel beam) with a box of five
  grid steps: the maps Aegean makes itself when it is given none
  (``SourceFinder._make_bkg_rms``; the stand-alone ``BANE`` command uses six steps);
  BANE 1.10 (in AegeanTools 2.3.5) sigma-clips each box until it converges, and its rms
  is ~11 % below that of the three-round clipping of BANE 1.5 (2018) on the Parkes map;
* all summits fitted (``--maxsummits`` unset), the pixel covariance used in the fit
  (``--nocov`` unset);
* the header beam as AegeanTools 2.3.5 takes it without a ``--psf`` map: converted to
  pixels at the projection's reference point and constant in pixels over the image (the
  restoring beam of an interferometer's SIN image). Where that point lies far off the
  image (the Parkes map, SIN at the pole, 20-30 deg away) the beam it reports on the sky
  is up to 14 % wider than the header's and the integrated fluxes ~7 % lower than those of
  Aegean's own 2017 catalogue of it, which took the header beam on the sky everywhere;
  positions and peak fluxes agree (``tests/test_baselines.py``).

AegeanTools 2.3.5 catches ``numpy.linalg.linalg.LinAlgError`` when a fit's covariance
matrix is singular, a name NumPy 2.4 removed; without it such a fit crashes the run. The
worker restores the alias (``numpy.linalg.linalg = numpy.linalg``) in its own process
before Aegean is imported, so the fit falls back to Aegean's own error estimate.

References
----------
Hancock, P. J. et al. 2012, MNRAS 422, 1812, doi:10.1111/j.1365-2966.2012.20768.x.
Hancock, P. J., Trott, C. M. & Hurley-Walker, N. 2018, PASA 35, e011,
doi:10.1017/pasa.2018.3.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
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
from radioseg_utils.baselines.result import (
    FinderResult,
    ResourceMeter,
    as_sky_image,
    noise_map,
    primary_beam_gain,
)
from radioseg_utils.core.gaussian import fwhm_to_sigma, sigma_to_fwhm
from radioseg_utils.io.catalogue import catalogue_table, sdc1_pa, wrap_ra
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.postprocess.measure import ClassRule, PrimaryBeamLike, deconvolve_fwhm

__all__ = [
    "AEGEAN_COMPONENT_COLUMNS",
    "AEGEAN_OVERLAP",
    "AEGEAN_TILE",
    "AegeanError",
    "AegeanSettings",
    "aegean_to_catalogue",
    "run_aegean",
]

#: Largest image side run in one piece; larger images are tiled (BANE and Aegean need about
#: 100 bytes per pixel, measured on 1024² B1 1000 h fields: ~1.7 GB for a 4096² tile).
AEGEAN_TILE: int = 4096
#: Overlap of neighbouring tiles in pixels: longer than BANE's box (50 px for SDC1) and
#: than the largest SDC1 B1 sources (~100″ LAS = 170 px are rare; 128 px = 77″ at 0.6″/px).
AEGEAN_OVERLAP: int = 128
#: Columns of Aegean's component table used by :func:`aegean_to_catalogue` (Aegean's
#: names: positions in deg, ``peak_flux`` and ``local_rms`` in Jy/beam, ``int_flux`` in
#: Jy, FWHM ``a``/``b`` in arcsec with the beam, ``pa`` in deg east of north).
AEGEAN_COMPONENT_COLUMNS: tuple[str, ...] = (
    "island", "ra", "dec", "peak_flux", "int_flux", "a", "b", "pa", "local_rms",
)

_WORKER = "from radioseg_utils.baselines.aegean import _worker_main; _worker_main()"
#: BANE box in grid steps when the box is not set: what Aegean uses for its own maps.
_BOX_STEPS = 5


class AegeanError(ExternalFinderError):
    """Aegean failed or timed out; the message names the log file.

    (Raised by radioseg; not ``AegeanTools.exceptions.AegeanError``.)
    """


@dataclass(frozen=True)
class AegeanSettings:
    """Options of BANE and Aegean (Aegean's defaults; see the module docstring).

    Attributes
    ----------
    seedclip : float
        Islands are seeded by pixels above this many sigma (``--seedclip``).
    floodclip : float
        Islands grow over pixels above this many sigma (``--floodclip``), at most
        ``seedclip``.
    bane_step : int or None
        BANE grid step in pixels; None: four restoring-beam widths (``BANE.get_step_size``).
    bane_box : int or None
        BANE box side in pixels; None: five grid steps.
    max_summits : int or None
        Fit at most this many components per island (``--maxsummits``); None: all.
    docov : bool
        Use the covariance of correlated pixels in the fit (``--nocov`` unsets it).
    cores : int
        Processes BANE may use (Aegean 2.3.5 fits islands in one process).
    """

    seedclip: float = 5.0
    floodclip: float = 4.0
    bane_step: int | None = None
    bane_box: int | None = None
    max_summits: int | None = None
    docov: bool = True
    cores: int = 1

    def __post_init__(self) -> None:
        if not self.seedclip > 0 or not 0 < self.floodclip <= self.seedclip:
            raise ValueError(f"need 0 < floodclip <= seedclip, got floodclip={self.floodclip}, "
                             f"seedclip={self.seedclip}")
        for name in ("bane_step", "bane_box", "max_summits"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ValueError(f"{name} must be None or a positive integer, got {value!r}")
        if not (isinstance(self.cores, (int, np.integer)) and self.cores >= 1):
            raise ValueError(f"cores must be a positive integer, got {self.cores!r}")


def aegean_to_catalogue(
    components: Table,
    image: SkyImage,
    *,
    primary_beam: PrimaryBeamLike = None,
    rule: ClassRule = ClassRule(),
) -> Table:
    """Group Aegean's components into sources by island, in the tidy SDC1 catalogue.

    Parameters
    ----------
    components : astropy.table.Table
        Aegean's component table (:data:`AEGEAN_COMPONENT_COLUMNS` at least; Aegean's
        names and units).
    image : SkyImage
        Image the components were found in: gives pixel positions and the restoring beam.
    primary_beam : float, ndarray (ny, nx) or callable, optional
        Primary-beam gain; a source's flux is divided by it at its centroid.
    rule : ClassRule
        SIZE/CLASS rule, as for the other finders
        (:meth:`radioseg_utils.postprocess.measure.ClassRule.columns`), with the core
        fraction ``peak_flux / flux`` (apparent).

    Returns
    -------
    astropy.table.Table
        One row per island, ordered by island number: ``flux`` = sum of the components'
        ``int_flux``; ``ra_core``/``dec_core`` = position of the brightest component;
        ``ra_cent``/``dec_cent`` and ``x``, ``y`` (0-based pixels) = the flux-weighted
        mean position; ``b_maj``, ``b_min``, ``pa`` = the ellipse of the flux-weighted
        second moments of the component Gaussians about the centroid (a single
        component's own FWHMs and PA), deconvolved from the restoring beam in quadrature
        (exact for a circular beam, with ``sqrt(BMAJ * BMIN)`` for an elliptical one),
        PA in the SDC1 convention (:func:`radioseg_utils.io.catalogue.sdc1_pa`);
        ``size``, ``class``, ``core_frac`` from ``rule``; ``peak_flux``, ``noise``
        (Aegean's ``local_rms``) and ``peak_snr`` of the brightest component;
        ``n_components``; ``label`` = the island number (its value in the label map).

    Raises
    ------
    ValueError
        If a needed column is missing.

    Examples
    --------
    >>> from radioseg_utils.io.fits_read import read_image
    >>> components = Table.read("aegean_comp.fits")  # doctest: +SKIP
    >>> aegean_to_catalogue(components, read_image("image.fits"))  # doctest: +SKIP
    """
    missing = [name for name in AEGEAN_COMPONENT_COLUMNS if name not in components.colnames]
    if missing:
        raise ValueError(f"Aegean component table lacks column(s) {missing}")
    col = {name: np.asarray(components[name], dtype=float) for name in AEGEAN_COMPONENT_COLUMNS}
    islands, inv = np.unique(np.asarray(components["island"], dtype=np.int64), return_inverse=True)
    n = islands.size
    x_c, y_c = image.wcs.celestial.world_to_pixel_values(col["ra"], col["dec"])
    # flux-weighted means; an island whose fluxes are all unusable gets equal weights
    w = np.where(np.isfinite(col["int_flux"]) & (col["int_flux"] > 0), col["int_flux"], 0.0)
    w = np.where(np.bincount(inv, w, minlength=n)[inv] > 0, w, 1.0)
    total_w = np.bincount(inv, w, minlength=n)
    x = np.bincount(inv, w * x_c, minlength=n) / total_w
    y = np.bincount(inv, w * y_c, minlength=n) / total_w
    ra_cent, dec_cent = image.wcs.celestial.pixel_to_world_values(x, y)
    # brightest component of each island: the last of its island after sorting by peak
    order = np.lexsort((col["peak_flux"], inv))
    brightest = order[np.r_[np.flatnonzero(np.diff(inv[order])), inv.size - 1]] if n else order
    fwhm_maj, fwhm_min, pa_eon = _moment_ellipse(col, inv, w / total_w[inv], ra_cent, dec_cent)
    beam = float(np.sqrt(image.beam.bmaj * image.beam.bmin))
    b_maj, b_min = deconvolve_fwhm(fwhm_maj, beam), deconvolve_fwhm(fwhm_min, beam)
    apparent = np.bincount(inv, col["int_flux"], minlength=n)
    flux = apparent
    if primary_beam is not None and n:
        flux = apparent / primary_beam_gain(primary_beam, image.wcs, x, y)
    peak, rms = col["peak_flux"][brightest], col["local_rms"][brightest]
    with np.errstate(divide="ignore", invalid="ignore"):
        sdc1 = rule.columns(b_maj, b_min, peak / apparent, image.beam.bmaj)
        snr = peak / rms
    return catalogue_table({
        "id": np.arange(n),
        "ra_core": wrap_ra(col["ra"][brightest]),
        "dec_core": col["dec"][brightest],
        "ra_cent": wrap_ra(ra_cent),
        "dec_cent": dec_cent,
        "flux": flux,
        "core_frac": sdc1["core_frac"],
        "b_maj": sdc1["b_maj"],
        "b_min": sdc1["b_min"],
        "pa": sdc1_pa(pa_eon),
        "size": sdc1["size"],
        "class": sdc1["class"],
        "x": x,
        "y": y,
        "peak_flux": peak,
        "peak_snr": snr,
        "noise": rms,
        "n_components": np.bincount(inv, minlength=n),
        "label": islands,
    })


def _moment_ellipse(col: dict[str, np.ndarray], inv: np.ndarray, weight: np.ndarray,
                    ra_cent: np.ndarray, dec_cent: np.ndarray):
    """FWHMs (arcsec) and PA (deg east of north, [0, 180)) of the flux-weighted second
    moments of each island's component Gaussians about its centroid (``weight`` sums to 1
    per island)."""
    n = ra_cent.size
    if inv.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    centre = SkyCoord(ra_cent[inv], dec_cent[inv], unit="deg")
    east, north = centre.spherical_offsets_to(SkyCoord(col["ra"], col["dec"], unit="deg"))
    de, dn = east.to_value("arcsec"), north.to_value("arcsec")
    var_a, var_b = fwhm_to_sigma(col["a"]) ** 2, fwhm_to_sigma(col["b"]) ** 2
    sin, cos = np.sin(np.radians(col["pa"])), np.cos(np.radians(col["pa"]))
    # each component's covariance in (east, north), major axis along (sin pa, cos pa)
    see = np.bincount(inv, weight * (var_a * sin**2 + var_b * cos**2 + de * de), minlength=n)
    snn = np.bincount(inv, weight * (var_a * cos**2 + var_b * sin**2 + dn * dn), minlength=n)
    sen = np.bincount(inv, weight * ((var_a - var_b) * sin * cos + de * dn), minlength=n)
    half_sum, half_diff = (see + snn) / 2, np.hypot((snn - see) / 2, sen)
    major = sigma_to_fwhm(np.sqrt(half_sum + half_diff))
    minor = sigma_to_fwhm(np.sqrt(np.clip(half_sum - half_diff, 0.0, None)))
    pa = np.mod(np.degrees(0.5 * np.arctan2(2 * sen, snn - see)), 180.0)
    return major, minor, pa


def run_aegean(
    image: SkyImage | str | Path,
    *,
    noise: float | np.ndarray | None = None,
    settings: AegeanSettings = AegeanSettings(),
    primary_beam: PrimaryBeamLike = None,
    workdir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    tile: int = AEGEAN_TILE,
    overlap: int = AEGEAN_OVERLAP,
) -> FinderResult:
    """Run BANE and Aegean on an image and return its island map and source catalogue.

    Parameters
    ----------
    image : SkyImage or path
        2-D image in Jy/beam (a FITS path is read with
        :func:`radioseg_utils.io.fits_read.read_image`); NaN pixels are blank. Only a copy
        is given to Aegean.
    noise : float or ndarray (ny, nx), optional
        rms in Jy/beam replacing BANE's rms map (BANE still gives the background).
    settings : AegeanSettings
        BANE and Aegean options; Aegean's defaults.
    primary_beam : float, ndarray (ny, nx) or callable, optional
        Primary-beam gain; catalogue fluxes are divided by it.
    workdir : str or Path, optional
        Folder for the FITS copy, BANE's maps (``bane_bkg.fits``, ``bane_rms.fits``),
        Aegean's component table (``aegean_comp.fits``) and the worker's log, one
        sub-folder per tile (``image`` when there is one), kept after the run. Default: a
        new folder under ``generated_dir() / "aegean"``.
    timeout : float
        Wall-clock limit per Aegean process (per tile), in seconds.
    tile, overlap : int
        Images with a side larger than ``tile`` pixels are run in tiles of that side
        overlapping by ``overlap`` pixels.

    Returns
    -------
    FinderResult
        ``finder="aegean"``, catalogue of :func:`aegean_to_catalogue` (one row per island),
        ``labels`` = island map, ``log_path`` = the worker's log of the last tile (its
        component table lies beside it), ``peak_rss_mb`` = the largest memory increase of
        the worker over tiles, ``runtime_s`` = total wall-clock time including process
        start-up. No island gives an empty catalogue and an all-zero map.

    Raises
    ------
    AegeanError
        If BANE or Aegean exits with an error or runs longer than ``timeout``.
    ValueError
        If ``noise`` is not positive or has another shape than the image, or not
        ``0 <= overlap < tile``.

    Examples
    --------
    >>> result = run_aegean("1904-66_SIN.fits")  # doctest: +SKIP
    >>> int(result.catalogue["n_components"].sum())  # doctest: +SKIP
    61
    """
    image = as_sky_image(image)
    if noise is not None:
        noise = noise_map(noise, image.shape)
    return run_tiled(image, partial(_run_tile, settings=settings, timeout=timeout),
                     finder="aegean", workdir=new_workdir(workdir, "aegean"), tile=tile,
                     overlap=overlap, maps={"primary_beam": primary_beam, "noise": noise})


def _run_tile(image: SkyImage, folder: Path, *, settings: AegeanSettings, timeout: float,
              primary_beam: PrimaryBeamLike, noise: np.ndarray | None) -> TileRun:
    """Run BANE and Aegean on one image (a tile) in a subprocess and read back its outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    fits_path = write_input(image, folder / "input.fits")
    config = {
        "input": str(fits_path),
        "noise": None,
        "bkg": str(folder / "bane_bkg.fits"),
        "rms": str(folder / "bane_rms.fits"),
        "components": str(folder / "aegean_comp.fits"),
        "labels": str(folder / "islands.npy"),
        "result": str(folder / "result.json"),
        "settings": asdict(settings),
    }
    if noise is not None:
        config["noise"] = str(write_image(folder / "noise.fits", noise, fits.getheader(fits_path),
                                          overwrite=True))
    result = run_worker(_WORKER, config, folder, timeout=timeout, finder="Aegean",
                        error=AegeanError)
    components = Table.read(config["components"])
    catalogue = aegean_to_catalogue(components, image, primary_beam=primary_beam)
    return TileRun(catalogue, np.load(config["labels"]), result["peak_rss_mb"],
                   folder / "worker.log")


def _worker_main(argv: list[str] | None = None) -> None:
    """Entry point of the Aegean subprocess: ``python -c ... config.json``."""
    if not hasattr(np.linalg, "linalg"):  # see the module docstring
        np.linalg.linalg = np.linalg
    from AegeanTools import __version__
    from AegeanTools.BANE import filter_image, get_step_size
    from AegeanTools.models import ComponentSource
    from AegeanTools.source_finder import SourceFinder, find_islands

    config = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    s = config["settings"]
    with ResourceMeter() as meter:
        header = fits.getheader(config["input"])
        shape = (header["NAXIS2"], header["NAXIS1"])
        labels = np.zeros(shape, np.int32)
        sources = []
        step = (s["bane_step"],) * 2 if s["bane_step"] else get_step_size(header)
        box = (s["bane_box"],) * 2 if s["bane_box"] else (_BOX_STEPS * step[0], _BOX_STEPS * step[1])
        if np.isfinite(fits.getdata(config["input"])).any():
            bkg, rms = filter_image(config["input"], None, step_size=step, box_size=box,
                                    cores=s["cores"])
            if config["noise"] is not None:
                rms = np.where(np.isfinite(rms), fits.getdata(config["noise"]), np.nan)
            fits.writeto(config["bkg"], bkg.astype(np.float32), header, overwrite=True)
            fits.writeto(config["rms"], rms.astype(np.float32), header, overwrite=True)
            finder = SourceFinder()
            sources = finder.find_sources_in_image(
                config["input"], innerclip=s["seedclip"], outerclip=s["floodclip"],
                max_summits=s["max_summits"], cores=s["cores"], rmsin=config["rms"],
                bkgin=config["bkg"], docov=s["docov"], nonegative=True, progress=False)
            # the islands Aegean fitted, in its order: island k holds the components of
            # island number k
            islands = find_islands(im=finder.img, bkg=np.zeros_like(finder.img),
                                   rms=finder.rmsimg, seed_clip=s["seedclip"],
                                   flood_clip=s["floodclip"])
            reported = {src.island for src in sources}
            for number, island in enumerate(islands, start=1):
                if number in reported:
                    (r0, r1), (c0, c1) = island.bounding_box
                    labels[r0:r1, c0:c1][~island.mask] = number
        columns = {name: [getattr(src, name) for src in sources] for name in ComponentSource.names}
        table = Table(columns) if sources else Table({name: np.zeros(0) for name in columns})
        table.meta["AEGEAN"] = __version__
        table.meta["BANESTEP"] = int(step[0])
        table.meta["BANEBOX"] = int(box[0])
        table.write(config["components"], overwrite=True)
        np.save(config["labels"], labels)
    Path(config["result"]).write_text(json.dumps(
        {"n_components": len(sources), "peak_rss_mb": meter.peak_rss_mb,
         "aegean_version": __version__, "bane_step": int(step[0]), "bane_box": int(box[0])}))
