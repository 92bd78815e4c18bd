"""Render SDC1-like fields: sources, confusion and correlated noise, tile by tile.

A field is the sum of

1. beam-convolved models (:mod:`radioseg_utils.simulation.sources`) of every source whose apparent
   flux is at least ``point_sigma`` times the noise rms;
2. the fainter (confusion) sources as points: fluxes gridded to the nearest pixel and
   convolved with the restoring beam (their sizes are far below the beam; SDC1 convolved
   them with the near-Gaussian dirty beam, whose sidelobes, < 4e-4, are ignored);
3. correlated Gaussian noise (:mod:`radioseg_utils.simulation.noise_model`) of rms
   ``NOISE_SIGMA[t] * band.noise(t)``, with the autocorrelation of the real noise
   (:data:`~radioseg_utils.simulation.noise_model.REAL_NOISE_ACF`) and the negative background
   :data:`BACKGROUND_SIGMA` of the real 1000 h image.

Fluxes are scaled by :data:`FLUX_SCALE` (times the primary beam, when one is applied) from
intrinsic (the truth's ``flux``) to apparent (the image's). These defaults were measured
by rendering the truth of the real B1 1000 h cutout on its own grid
(:mod:`radioseg_utils.evaluation.realism`): the real image is that model times the primary beam times
0.918, plus noise of 0.95 ``band.noise(1000)`` sitting at -0.82 rms.

Sources come from a truth catalogue or from the synthetic population
(:mod:`radioseg_utils.simulation.population`), drawn on a fixed grid of :data:`POPULATION_BLOCK`-pixel
blocks each seeded by ``(seed, block)``. Tiles are rendered independently (in parallel
processes when ``n_workers > 1``) from the sources within :data:`HALO_PIX` of them and
written into a preallocated FITS file with positioned writes, so memory stays bounded for a
32768² field. The same seed gives the same bytes whatever ``n_workers``.

The truth table (ECSV beside the FITS file) lists, for a catalogue, every input source
whose centroid falls on the image; for the synthetic population, every source drawn as a
model (``selection`` 1: apparent flux >= ``point_sigma`` rms). It adds ``x``, ``y``
(centroid pixel), ``peak_snr`` (:func:`radioseg_utils.simulation.truth.true_peak_snr`: the peak of the
beam-convolved model of apparent flux, over the band's rms at ``integration_h``; the one
definition the evaluation uses for real truth catalogues too) and ``selection`` (1 drawn as a
model, 0 as a point).
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack
from astropy.wcs import WCS
from scipy.ndimage import correlate1d

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.core.gaussian import FWHM_PER_SIGMA
from radioseg_utils.core.paths import check_writable
from radioseg_utils.io.fits_write import FitsStream
from radioseg_utils.io.wcs import SDC1_CENTRE, sdc1_header, sdc1_wcs
from radioseg_utils.simulation.noise_model import (
    DEFAULT_ACF_FWHM_BEAMS,
    REAL_NOISE_ACF,
    CorrelatedNoise,
)
from radioseg_utils.simulation.population import synthetic_population
from radioseg_utils.simulation.sources import PrimaryBeam, add_stamp, source_stamps
from radioseg_utils.simulation.truth import true_peak_snr

__all__ = [
    "SimulatedField",
    "Attenuation",
    "simulate_field",
    "load_primary_beam",
    "RENDER_TILE",
    "POPULATION_BLOCK",
    "HALO_PIX",
    "FLUX_MIN_SIGMA",
    "POINT_SIGMA",
    "PAIR_SIGMA",
    "BACKGROUND_SIGMA",
    "NOISE_SIGMA",
    "FLUX_SCALE",
]

#: Tile side in pixels.
RENDER_TILE: int = 2048
#: Side (pixels) of the blocks on which the synthetic population is drawn.
POPULATION_BLOCK: int = 1024
#: Sources whose centroid lies within this many pixels of a tile are rendered into it.
HALO_PIX: int = 256
#: Faintest synthetic source flux, in units of the band's 1000 h rms (so the sky of a seed is
#: the same at 8, 100 and 1000 h). 95 % of the SDC1 B1 truth sources of the public cutout are
#: brighter than 0.3 rms: T-RECS was cut there.
FLUX_MIN_SIGMA: float = 0.3
#: Sources fainter than this (apparent flux / rms) are rendered as points.
POINT_SIGMA: float = 1.0
#: Faintest integrated flux (units of rms, before any primary beam) of a source that
#: ``pair_fraction`` moves, or moves another beside (the default ``pair_sigma``).
PAIR_SIGMA: float = 3.0
#: Mean noise background (units of ``band.noise(t)``) per integration: the real B1 1000 h
#: cutout minus its rendered truth sits at -0.82 rms (its image median, with the faint
#: sources, is -0.69 rms). No measurement exists for 8 h and 100 h.
BACKGROUND_SIGMA: dict[int, float] = {8: 0.0, 100: 0.0, 1000: -0.82}
#: rms of the noise alone (units of ``band.noise(t)``) per integration: the real B1 1000 h
#: cutout minus its rendered truth has 0.95 rms (Gaussian); ``band.noise(1000)`` is the rms
#: of the image, faint sources included. No measurement exists for 8 h and 100 h.
NOISE_SIGMA: dict[int, float] = {8: 1.0, 100: 1.0, 1000: 0.95}
#: Apparent / intrinsic flux beyond the primary beam: the real B1 1000 h cutout fits its
#: truth rendered with the primary beam at 0.918 (point-like and resolved sources alike).
FLUX_SCALE: float = 0.918
_POPULATION_STREAM, _NOISE_STREAM = 1, 2
_BLOCK_OFFSET = 1 << 16
_TRUTH_EXTRA = {"peak_snr": "true_peak_snr: peak of the beam-convolved model / noise rms",
                "selection": "1 drawn as a beam-convolved model, 0 as a faint point"}


@dataclass(frozen=True)
class SimulatedField:
    """A rendered field.

    Attributes
    ----------
    image : ndarray of float32, shape (ny, nx), or None
        The image in Jy/beam when rendered in memory (``output=None``).
    path : Path or None
        FITS file written (``output`` given).
    truth_path : Path or None
        ECSV truth table written beside it.
    wcs : astropy.wcs.WCS
        Celestial WCS of the image.
    header : astropy.io.fits.Header
        SDC1-style header of the image.
    truth_table : astropy.table.Table or None
        Truth held in memory (in-memory renders); see :attr:`truth`.
    """

    image: np.ndarray | None
    path: Path | None
    truth_path: Path | None
    wcs: WCS
    header: fits.Header
    truth_table: Table | None = None

    @property
    def truth(self) -> Table:
        """Truth table of the injected sources (read from ``truth_path`` when streamed)."""
        if self.truth_table is not None:
            return self.truth_table
        return Table.read(self.truth_path, format="ascii.ecsv")


@dataclass(frozen=True)
class _Tile:
    """Everything a worker needs to render one tile (picklable).

    The WCS travels as (shape, centre) and is rebuilt by :func:`sdc1_wcs` in the worker:
    a pickled WCS goes through a header with rounded numbers, which would move pixel
    positions by ~1e-12 px and change the last bits of the image.
    """

    band: str
    y0: int
    x0: int
    ny: int
    nx: int
    shape: tuple[int, int]
    centre: tuple[float, float]
    crpix: tuple[float, float] | None
    rms: float
    noise: CorrelatedNoise | None
    primary_beam: Attenuation
    catalogue: Table | None
    seed: int
    flux_min: float
    point_sigma: float
    pair_fraction: float = 0.0
    pair_sigma: float = PAIR_SIGMA


@dataclass(frozen=True)
class Attenuation:
    """Intrinsic to apparent flux: ``scale`` times the primary beam (if any); picklable."""

    primary_beam: PrimaryBeam | None
    scale: float

    def __call__(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        gain = (np.ones(np.shape(ra)) if self.primary_beam is None
                else self.primary_beam(ra, dec))
        return self.scale * np.asarray(gain, dtype=float)


def load_primary_beam(
    band: str | Band, primary_beam: bool | str | Path | PrimaryBeam | None
) -> PrimaryBeam | None:
    """Resolve the ``primary_beam`` option: False/None, True (registry file), a path or a model."""
    if primary_beam is None or primary_beam is False:
        return None
    if isinstance(primary_beam, PrimaryBeam):
        return primary_beam
    if primary_beam is True:
        from radioseg_utils.io.registry import fetch

        band = get_band(band)
        # B1's test-data copy is small and public; B2/B5 only as released
        name = f"PrimaryBeam_{band.name}" + (".fits" if band.name == "B1" else "_release.fits")
        return PrimaryBeam.from_fits(fetch(name))
    return PrimaryBeam.from_fits(Path(primary_beam))


def _tile_wcs(wcs: WCS, y0: int, x0: int) -> WCS:
    out = wcs.deepcopy()
    out.wcs.crpix = [wcs.wcs.crpix[0] - x0, wcs.wcs.crpix[1] - y0]
    return out


def _block_sources(spec: _Tile, wcs: WCS) -> Table:
    """Synthetic sources of every population block within the halo of the tile."""
    b = POPULATION_BLOCK
    blocks = []
    for by in range((spec.y0 - HALO_PIX) // b, (spec.y0 + spec.ny + HALO_PIX - 1) // b + 1):
        for bx in range((spec.x0 - HALO_PIX) // b, (spec.x0 + spec.nx + HALO_PIX - 1) // b + 1):
            seq = np.random.SeedSequence([spec.seed, _POPULATION_STREAM, by + _BLOCK_OFFSET,
                                          bx + _BLOCK_OFFSET])
            blocks.append(synthetic_population(
                spec.band, wcs=wcs, seed=seq, flux_min=spec.flux_min,
                region=(bx * b, by * b, (bx + 1) * b, (by + 1) * b),
                pair_fraction=spec.pair_fraction,
                pair_flux_min=spec.pair_sigma * spec.rms / spec.primary_beam.scale))
    table = vstack(blocks, metadata_conflicts="silent")
    near = ((table["x"] >= spec.x0 - HALO_PIX) & (table["x"] < spec.x0 + spec.nx + HALO_PIX)
            & (table["y"] >= spec.y0 - HALO_PIX) & (table["y"] < spec.y0 + spec.ny + HALO_PIX))
    return table[near]


def _beam_kernel(band: Band) -> np.ndarray:
    """1-D Gaussian of the restoring beam, peak 1 (a point of flux S peaks at S Jy/beam)."""
    sigma = band.beam_fwhm_pix / FWHM_PER_SIGMA
    radius = int(np.ceil(5 * sigma))
    return np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)


def _render_tile(spec: _Tile) -> tuple[np.ndarray, Table]:
    """Image (float32, ny x nx) and truth rows (centroids on the tile) of one tile."""
    band = get_band(spec.band)
    wcs = sdc1_wcs(band, spec.shape, centre=spec.centre, crpix=spec.crpix)
    sources = _block_sources(spec, wcs) if spec.catalogue is None else spec.catalogue
    x, y = wcs.wcs_world2pix(np.asarray(sources["ra_cent"]) % 360.0, sources["dec_cent"], 0)
    apparent = np.asarray(sources["flux"], float) * spec.primary_beam(
        np.asarray(sources["ra_cent"], float), np.asarray(sources["dec_cent"], float))
    model = apparent >= spec.point_sigma * spec.rms
    image = np.zeros((spec.ny, spec.nx))
    for stamp in source_stamps(sources[np.flatnonzero(model)], _tile_wcs(wcs, spec.y0, spec.x0),
                               band, shape=(spec.ny, spec.nx), primary_beam=spec.primary_beam):
        add_stamp(image, stamp)
    kernel = _beam_kernel(band)
    r = kernel.size // 2
    xi = np.rint(x[~model]).astype(np.int64) - spec.x0 + r
    yi = np.rint(y[~model]).astype(np.int64) - spec.y0 + r
    ny, nx = spec.ny + 2 * r, spec.nx + 2 * r
    inside = (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny)
    points = np.bincount(yi[inside] * nx + xi[inside], weights=apparent[~model][inside],
                         minlength=ny * nx).reshape(ny, nx)
    points = correlate1d(correlate1d(points, kernel, axis=1, mode="constant"), kernel, axis=0,
                         mode="constant")
    image += points[r:r + spec.ny, r:r + spec.nx]
    if spec.noise is not None:
        image += spec.noise.tile(spec.y0, spec.x0, (spec.ny, spec.nx))
    own = (np.floor(x) >= spec.x0) & (np.floor(x) < spec.x0 + spec.nx) & \
          (np.floor(y) >= spec.y0) & (np.floor(y) < spec.y0 + spec.ny)
    if spec.catalogue is None:
        own &= model
    truth = sources[own]
    truth["x"], truth["y"] = x[own], y[own]
    truth["peak_snr"] = true_peak_snr(truth, band, noise=spec.rms, wcs=wcs,
                                      primary_beam=spec.primary_beam)
    truth["selection"] = model[own].astype(np.int32)
    for name, desc in _TRUTH_EXTRA.items():
        truth[name].description = desc
    return image.astype(np.float32), truth


def _truth_lines(table: Table, header: bool) -> str:
    """ECSV text of a table: complete, or only its data rows (to append to a file)."""
    buf = io.StringIO()
    table.write(buf, format="ascii.ecsv")
    lines = buf.getvalue().splitlines(keepends=True)
    return "".join(lines if header else [ln for ln in lines if not ln.startswith("#")][1:])


def simulate_field(
    band: str | Band,
    integration_h: int,
    *,
    shape: tuple[int, int],
    seed: int,
    catalogue: Table | None = None,
    centre: tuple[float, float] = SDC1_CENTRE,
    crpix: tuple[float, float] | None = None,
    primary_beam: bool | str | Path | PrimaryBeam = False,
    tile: int = RENDER_TILE,
    n_workers: int = 1,
    output: str | Path | None = None,
    ndim: int = 4,
    background_sigma: float | None = None,
    point_sigma: float = POINT_SIGMA,
    add_noise: bool = True,
    flux_scale: float = FLUX_SCALE,
    overwrite: bool = False,
    pair_fraction: float = 0.0,
    pair_sigma: float = PAIR_SIGMA,
) -> SimulatedField:
    """Render an SDC1-like field from a catalogue or the synthetic population.

    Parameters
    ----------
    band : str or Band
        SDC1 band (pixel grid, beam, noise).
    integration_h : {8, 100, 1000}
        Integration time; sets the noise rms ``band.noise(integration_h)``.
    shape : (ny, nx)
        Image shape in pixels.
    seed : int
        Seed of the population and the noise; same seed, same bytes.
    catalogue : astropy.table.Table, optional
        Tidy truth catalogue to render (e.g. an SDC1 training catalogue); default: the
        synthetic population down to ``FLUX_MIN_SIGMA`` rms.
    centre : (ra, dec)
        Sky position (deg) of the reference pixel (the image centre by default); default
        the SDC1 field centre.
    crpix : (x, y), optional
        1-based reference pixel (:func:`radioseg_utils.io.wcs.sdc1_wcs`); default the image
        centre. With ``centre`` it reproduces the grid of a real cutout (e.g. its truth
        rendered on its own pixels, :mod:`radioseg_utils.evaluation.realism`).
    primary_beam : bool, path or PrimaryBeam
        Attenuate fluxes by the primary beam (True: the band's SDC1 model from the data
        registry). Default False: intrinsic fluxes.
    tile : int
        Tile side in pixels; tiles are rendered independently.
    n_workers : int
        Processes rendering tiles in parallel (1: in this process).
    output : path, optional
        FITS file to write (streamed tile by tile; the truth goes to
        ``<stem>.truth.ecsv``); default None keeps the image in memory.
    ndim : {2, 4}
        FITS layout (4: the SDC1 ``(1, 1, ny, nx)``).
    background_sigma : float, optional
        Constant background in units of rms; default :data:`BACKGROUND_SIGMA`.
    point_sigma : float
        Apparent flux (units of rms) below which sources are rendered as points.
    add_noise : bool
        Add the correlated noise and background (False: the noise-free sky model; the
        truth's ``peak_snr`` is still relative to ``band.noise(integration_h)``).
    flux_scale : float
        Apparent / intrinsic flux beyond the primary beam (1: the image holds the truth
        fluxes, times the primary beam if applied).
    overwrite : bool
        Replace existing output files.
    pair_fraction : float
        Training data richer in blends: this fraction of the synthetic sources of at least
        ``pair_sigma`` rms is moved 1-2 beams from a brighter one
        (:func:`~radioseg_utils.simulation.population.place_pairs`; the header's
        ``SIMPAIRS`` and ``SIMPSIG`` say so). Default 0: the population's own uniform
        positions. Not with a ``catalogue``.
    pair_sigma : float
        Faintest integrated flux (units of rms) of a source moved, or moved beside, by
        ``pair_fraction`` (default :data:`PAIR_SIGMA`).

    Returns
    -------
    SimulatedField

    Raises
    ------
    ValueError
        On a bad shape, tile, worker count, ndim, integration time or pair fraction (or
        one with a catalogue).
    FileExistsError
        If ``output`` exists and ``overwrite`` is False.
    """
    band = get_band(band)
    rms = band.noise(integration_h)
    ny, nx = (int(n) for n in shape)
    if ny <= 0 or nx <= 0:
        raise ValueError(f"shape must be positive, got {shape}")
    if tile <= 0 or n_workers < 1:
        raise ValueError(f"tile and n_workers must be positive, got tile={tile}, "
                         f"n_workers={n_workers}")
    wcs = sdc1_wcs(band, (ny, nx), centre=centre, crpix=crpix)
    header = sdc1_header(wcs, band, ndim=ndim)
    header["OBJECT"] = "radioseg simulated field"
    header["SIMSEED"], header["SIMINTEG"] = int(seed), (int(integration_h), "integration [h]")
    if not 0.0 <= pair_fraction <= 1.0:
        raise ValueError(f"pair_fraction must be in [0, 1], got {pair_fraction}")
    if pair_fraction and catalogue is not None:
        raise ValueError("pair_fraction moves synthetic sources: not with a catalogue")
    if not (np.isfinite(pair_sigma) and pair_sigma > 0):
        raise ValueError(f"pair_sigma must be positive and finite, got {pair_sigma}")
    if pair_fraction:
        header["SIMPAIRS"] = (float(pair_fraction), "fraction moved beside a brighter source")
        header["SIMPSIG"] = (float(pair_sigma), "faintest source moved or partnered [rms]")
    if background_sigma is None:
        background_sigma = BACKGROUND_SIGMA[int(integration_h)]
    noise_seed = int(np.random.SeedSequence([seed, _NOISE_STREAM]).generate_state(1)[0])
    noise = CorrelatedNoise(rms=NOISE_SIGMA[int(integration_h)] * rms, seed=noise_seed,
                            fwhm_pix=tuple(f * band.beam_fwhm_pix for f in DEFAULT_ACF_FWHM_BEAMS),
                            offset=background_sigma * rms,
                            acf=REAL_NOISE_ACF) if add_noise else None
    if not (np.isfinite(flux_scale) and flux_scale > 0):
        raise ValueError(f"flux_scale must be positive and finite, got {flux_scale}")
    pb = Attenuation(load_primary_beam(band, primary_beam), float(flux_scale))
    if catalogue is not None:
        cx, cy = wcs.wcs_world2pix(np.asarray(catalogue["ra_cent"]) % 360.0,
                                   catalogue["dec_cent"], 0)
    specs = []
    for y0 in range(0, ny, tile):
        for x0 in range(0, nx, tile):
            sub = None
            if catalogue is not None:
                near = ((cx >= x0 - HALO_PIX) & (cx < x0 + tile + HALO_PIX)
                        & (cy >= y0 - HALO_PIX) & (cy < y0 + tile + HALO_PIX))
                sub = catalogue[near]
            specs.append(_Tile(band.name, y0, x0, min(tile, ny - y0), min(tile, nx - x0), (ny, nx),
                               tuple(centre), None if crpix is None else tuple(crpix), rms,
                               noise, pb, sub, int(seed), FLUX_MIN_SIGMA * band.noise(1000),
                               point_sigma, float(pair_fraction), float(pair_sigma)))

    if output is None:
        image = np.empty((ny, nx), dtype=np.float32)
        truths = [t for t in _run(specs, n_workers, _writer(image))]
        truth = vstack(truths, metadata_conflicts="silent") if truths else Table()
        if catalogue is None:
            truth["id"] = np.arange(len(truth))
        return SimulatedField(image, None, None, wcs, header, truth)

    path = Path(output)
    truth_path = path.with_name(path.stem + ".truth.ecsv")
    for p in (path, truth_path):
        check_writable(p, overwrite=overwrite)
    part = path.with_name(path.name + ".part")
    truth_part = truth_path.with_name(truth_path.name + ".part")
    n_truth = 0
    with FitsStream(part, header, (ny, nx)) as stream, open(truth_part, "w") as out:
        for t in _run(specs, n_workers, lambda spec, tile: stream.write(spec.y0, spec.x0, tile)):
            if catalogue is None:
                t["id"] = np.arange(n_truth, n_truth + len(t))
            out.write(_truth_lines(t, header=out.tell() == 0))
            n_truth += len(t)
    part.replace(path)
    truth_part.replace(truth_path)
    return SimulatedField(None, path, truth_path, wcs, header)


def _writer(target: np.ndarray):
    def write(spec: _Tile, tile_image: np.ndarray) -> None:
        target[spec.y0:spec.y0 + spec.ny, spec.x0:spec.x0 + spec.nx] = tile_image
    return write


def _run(specs: list[_Tile], n_workers: int, write):
    """Render tiles (in order of completion), write each image, yield each truth table."""
    if n_workers == 1:
        for spec in specs:
            tile_image, truth = _render_tile(spec)
            write(spec, tile_image)
            yield truth
        return
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
        pending, queue = {}, list(specs)
        results: dict[int, Table] = {}
        next_out = 0
        while queue or pending:
            while queue and len(pending) < 2 * n_workers:
                spec = queue.pop(0)
                pending[pool.submit(_render_tile, spec)] = (len(specs) - len(queue) - 1, spec)
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                index, spec = pending.pop(future)
                tile_image, results[index] = future.result()
                write(spec, tile_image)
            while next_out in results:  # truth in tile order, so the output is deterministic
                yield results.pop(next_out)
                next_out += 1
