"""A T-RECS-like synthetic source population, fitted to the SDC1 training catalogues.

Each source class (1 SS-AGN, 2 FS-AGN, 3 SFG) has its own :class:`ClassModel`:

- differential counts ``dN/dS`` in three power-law pieces: between ``flux_ref`` (where the
  training catalogue is complete) and ``flux_break`` = 10 ``flux_ref``, and above
  ``flux_break``, the slopes fitted by maximum likelihood to the training catalogue; below
  ``flux_ref``, down to the requested ``flux_min``, the slope :data:`FAINT_SLOPE`,
  continuous in ``dN/dS`` at ``flux_ref``. That slope is an assumption (the training
  catalogues stop at ~3 µJy in B1), checked on pixel statistics: with it a simulated
  B1 1000 h field has ~31 % of its pixels within 4 px of a pixel above 3 rms, as the real
  1041 × 957 px cutout of the SDC1 facts (32 %);
- ``log10 b_maj`` linear in ``log10 flux`` with Gaussian scatter (``b_maj`` is the
  exponential scale length of an SFG, the largest angular size of an AGN, arcsec);
- axis ratio ``b_min / b_maj`` from a Beta distribution (moments of the catalogue);
- ``core_frac``: a Gaussian in ``log10 core_frac`` with a fraction of exact zeros
  (SS-AGN), or a Gaussian clipped to [0, 1] (FS-AGN);
- SS-AGN centroid offset from the core along the axis, Gaussian in units of the LAS;
- SFG profile: exponential (``size`` 3) with probability ``extended_frac`` when
  ``b_maj`` > 3 px, else Gaussian (``size`` 2), as in SDC1 where only sources larger than
  3 px were drawn as postage stamps; SS-AGN ``size`` 1 above 3 px, else 2.

:data:`POPULATION_MODELS` records the numbers returned by :func:`fit_population_model` on
``TrainingSet_B{1,2,5}_v2_ML.txt`` (rounded to 4 significant figures), so the default
needs no download. Classes with fewer than :data:`MIN_FIT_SOURCES` sources (SS-AGN in B2:
12; SS- and FS-AGN in B5: 1 and 4) keep the shape parameters (slope, sizes, ratios) of the
previous band (B1 for B2, B2 for B5) with their own density.

Positions are uniform (no clustering); position angles uniform in [0, 180) deg. For
training data richer in blends, :func:`place_pairs` moves a fraction of the sources beside
brighter ones (``pair_fraction`` of :func:`synthetic_population`; never for the fields that
score a finder).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS
from scipy.optimize import minimize_scalar

from radioseg_utils.core.bands import Band, get_band
from radioseg_utils.io.catalogue import (
    CATALOGUE_COLUMNS,
    RESERVED_REGIONS,
    cut_reserved_region,
    wrap_ra,
)
from radioseg_utils.simulation.sources import pa_east_of_north

__all__ = [
    "ClassModel",
    "POPULATION_MODELS",
    "FAINT_SLOPE",
    "MAX_FLUX_JY",
    "MIN_FIT_SOURCES",
    "BREAK_FACTOR",
    "COMPLETENESS_FACTOR",
    "fit_population_model",
    "training_area_deg2",
    "synthetic_population",
    "PAIR_SEPARATION_BEAMS",
    "place_pairs",
    "expected_counts",
    "differential_counts",
]

#: Slope of dN/dS below ``flux_ref`` (assumed, see the module docstring).
FAINT_SLOPE: float = 1.6
#: Brightest flux drawn (Jy).
MAX_FLUX_JY: float = 1.0
#: The training catalogues are taken as complete above this multiple of their faintest flux.
COMPLETENESS_FACTOR: float = 4.0
#: The counts break (change slope) at this multiple of the completeness flux.
BREAK_FACTOR: float = 10.0
#: Fewest sources of a class for :func:`fit_population_model` to fit it.
MIN_FIT_SOURCES: int = 50
#: Pivot flux (Jy) of the size-flux relation.
SIZE_PIVOT_JY: float = 1e-5
#: Sources larger than this many pixels are drawn as extended profiles in SDC1.
EXTENDED_PIX: float = 3.0


@dataclass(frozen=True)
class ClassModel:
    """Population model of one source class (see the module docstring).

    Attributes
    ----------
    density : float
        Sources per deg² brighter than ``flux_ref``.
    flux_ref : float
        Flux (Jy) above which the training catalogue is complete and the slopes were fitted.
    slope : float
        ``gamma`` of ``dN/dS ~ S^-gamma`` between ``flux_ref`` and ``flux_break``.
    flux_break : float
        Flux (Jy) where the counts change slope (:data:`BREAK_FACTOR` x ``flux_ref``).
    density_break : float
        Sources per deg² brighter than ``flux_break``.
    bright_slope : float
        ``gamma`` above ``flux_break`` (equal to ``slope`` if too few sources to fit).
    size_a, size_b, size_scatter : float
        ``log10 b_maj[arcsec] = size_a + size_b * log10(S / 1e-5 Jy) + N(0, size_scatter)``.
    size_max : float
        Largest ``b_maj`` (arcsec) in the catalogue; draws are clipped to it (the linear
        relation would otherwise give arcminute discs at the brightest fluxes).
    q_alpha, q_beta : float
        Beta distribution of ``b_min / b_maj``.
    core_mean, core_sd, core_zero : float
        ``log10 core_frac`` (SS-AGN) or ``core_frac`` (FS-AGN) mean and sd, and the
        fraction of sources with ``core_frac = 0``; unused for SFGs.
    offset_sd : float
        Sd of the centroid-to-core offset along the axis, in units of ``b_maj`` (SS-AGN).
    extended_frac : float
        Fraction of SFGs larger than 3 px drawn as exponential discs (``size`` 3).
    """

    density: float
    flux_ref: float
    slope: float
    flux_break: float
    density_break: float
    bright_slope: float
    size_a: float
    size_b: float
    size_scatter: float
    size_max: float
    q_alpha: float = 1.0
    q_beta: float = 1.0
    core_mean: float = 0.0
    core_sd: float = 0.0
    core_zero: float = 0.0
    offset_sd: float = 0.0
    extended_frac: float = 0.0


def _box_area(ra: tuple[float, float], dec: tuple[float, float]) -> float:
    """Area (deg²) of an RA x Dec box on the sphere."""
    sin_dec = np.sin(np.radians(dec))
    steradians = np.radians(abs(ra[1] - ra[0])) * abs(sin_dec[1] - sin_dec[0])
    return float(steradians * np.degrees(1.0) ** 2)


def training_area_deg2(band: str | Band) -> float:
    """Sky area (deg²) of the SDC1 training catalogue of a band, minus its region reserved
    for evaluation (:data:`~radioseg_utils.io.catalogue.RESERVED_REGIONS`, inside the
    training area)."""
    band = get_band(band)
    area = _box_area(band.train_ra, band.train_dec)
    if band.name in RESERVED_REGIONS:
        area -= _box_area(*RESERVED_REGIONS[band.name])
    return float(area)


def _slope_mle(flux: np.ndarray, lo: float, hi: float) -> float:
    """Maximum-likelihood ``gamma`` of dN/dS ~ S^-gamma for fluxes in [lo, hi)."""
    mean_log = np.mean(np.log(flux))

    def nll(gamma: float) -> float:
        e = 1.0 - gamma
        norm = np.log(abs((hi**e - lo**e) / e)) if abs(e) > 1e-9 else np.log(np.log(hi / lo))
        return gamma * mean_log + norm

    return float(minimize_scalar(nll, bounds=(-2.0, 5.0), method="bounded").x)


def _beta_moments(q: np.ndarray) -> tuple[float, float]:
    q = np.clip(q[np.isfinite(q)], 1e-3, 1 - 1e-3)
    m, v = q.mean(), q.var()
    common = m * (1 - m) / v - 1
    return float(m * common), float((1 - m) * common)


def _fit_class(rows: Table, area: float, flux_ref: float, pixel_arcsec: float,
               cls: int) -> ClassModel:
    flux = np.asarray(rows["flux"], float)
    flux_break = BREAK_FACTOR * flux_ref
    n = int(np.sum(flux >= flux_ref))
    n_break = int(np.sum(flux >= flux_break))
    slope = _slope_mle(flux[(flux >= flux_ref) & (flux < flux_break)], flux_ref, flux_break)
    bright_slope = (_slope_mle(flux[flux >= flux_break], flux_break, MAX_FLUX_JY)
                    if n_break >= MIN_FIT_SOURCES else slope)
    b_maj = np.asarray(rows["b_maj"], float)
    ok = b_maj > 0
    x, y = np.log10(flux[ok] / SIZE_PIVOT_JY), np.log10(b_maj[ok])
    size_b, size_a = np.polyfit(x, y, 1)
    scatter = float(np.std(y - (size_a + size_b * x)))
    model = ClassModel(density=n / area, flux_ref=flux_ref, slope=slope, flux_break=flux_break,
                       density_break=n_break / area, bright_slope=bright_slope,
                       size_a=float(size_a), size_b=float(size_b), size_scatter=scatter,
                       size_max=float(b_maj.max()))
    q = np.asarray(rows["b_min"], float)[ok] / b_maj[ok]
    if cls in (1, 3):
        alpha, beta = _beta_moments(q)
        model = replace(model, q_alpha=alpha, q_beta=beta)
    core = np.clip(np.asarray(rows["core_frac"], float), 0, None)
    if cls == 1:
        nz = core > 0
        cos_dec = np.cos(np.radians(np.asarray(rows["dec_cent"], float)))
        offset = 3600.0 * np.hypot((np.asarray(rows["ra_cent"]) - rows["ra_core"]) * cos_dec,
                                   np.asarray(rows["dec_cent"]) - rows["dec_core"])
        model = replace(model, core_mean=float(np.log10(core[nz]).mean()),
                        core_sd=float(np.log10(core[nz]).std()), core_zero=float(1 - nz.mean()),
                        offset_sd=float(np.sqrt(np.mean((offset[ok] / b_maj[ok]) ** 2))))
    elif cls == 2:
        model = replace(model, core_mean=float(core.mean()), core_sd=float(core.std()))
    else:
        big = b_maj > EXTENDED_PIX * pixel_arcsec
        frac = float(np.mean(np.asarray(rows["size"])[big] == 3)) if big.any() else 0.0
        model = replace(model, extended_frac=frac)
    return model


def fit_population_model(
    catalogue: Table,
    band: str | Band,
    *,
    area_deg2: float | None = None,
    flux_ref: float | None = None,
    fallback: dict[int, ClassModel] | None = None,
) -> dict[int, ClassModel]:
    """Fit the per-class population model to an SDC1 truth catalogue.

    The sources of the band's region reserved for evaluation are left out first
    (:func:`radioseg_utils.io.catalogue.cut_reserved_region`), as the default area
    leaves out its area.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Tidy truth catalogue (e.g. :func:`radioseg_utils.io.catalogue.read_truth_catalogue`
        of ``TrainingSet_B1_v2_ML.txt``, as published or with the reserved region cut).
    band : str or Band
        Band of the catalogue (pixel size for the extended-source rule).
    area_deg2 : float, optional
        Sky area of the catalogue; default :func:`training_area_deg2`.
    flux_ref : float, optional
        Completeness flux (Jy) above which counts are fitted; default
        :data:`COMPLETENESS_FACTOR` times the faintest flux in the catalogue (the counts of
        the SDC1 training catalogues turn over below about that).
    fallback : dict of int to ClassModel, optional
        Models (e.g. of another band) for classes with fewer than :data:`MIN_FIT_SOURCES`
        sources: their shape parameters are kept, the density is the catalogue's own count
        above ``flux_ref`` per area (or the fallback's, extrapolated, if it has none).

    Returns
    -------
    dict of int to ClassModel
        One model per class fitted (at least :data:`MIN_FIT_SOURCES` sources) or taken
        from ``fallback``.

    Raises
    ------
    ValueError
        If the catalogue lacks a needed column or no class can be fitted.
    """
    band = get_band(band)
    needed = ("flux", "b_maj", "b_min", "core_frac", "size", "class", "ra_core", "dec_core",
              "ra_cent", "dec_cent")
    missing = [c for c in needed if c not in catalogue.colnames]
    if missing:
        raise ValueError(f"catalogue lacks column(s) {', '.join(missing)} needed for the fit")
    catalogue = cut_reserved_region(catalogue, band)
    area = training_area_deg2(band) if area_deg2 is None else float(area_deg2)
    flux = np.asarray(catalogue["flux"], float)
    ref = COMPLETENESS_FACTOR * float(flux[flux > 0].min()) if flux_ref is None else float(flux_ref)
    models = {}
    for cls in (1, 2, 3):
        rows = catalogue[np.asarray(catalogue["class"]) == cls]
        n_ref = int(np.sum(np.asarray(rows["flux"]) >= ref))
        if n_ref >= MIN_FIT_SOURCES:
            models[cls] = _fit_class(rows, area, ref, band.pixel_arcsec, cls)
        elif fallback is not None and cls in fallback:
            other = fallback[cls]  # its count shape, rescaled to this catalogue's number
            n_other = int(np.sum(np.asarray(rows["flux"]) >= other.flux_ref))
            scale = n_other / area / other.density if n_other else 1.0
            models[cls] = replace(other, density=other.density * scale,
                                  density_break=other.density_break * scale)
    if not models:
        raise ValueError(f"no class has {MIN_FIT_SOURCES} sources above {ref:.3g} Jy to fit")
    return models


#: Fitted models per band and class: ``fit_population_model(read_truth_catalogue(
#: "TrainingSet_<band>_v2_ML.txt"), band, fallback=<previous band>)`` for B1, B2, B5 in
#: turn, rounded to 4 significant figures (``tests/test_population.py`` refits them).
POPULATION_MODELS: dict[str, dict[int, ClassModel]] = {
    "B1": {
        1: ClassModel(
            density=405.6, flux_ref=1.184e-05, slope=0.8451, flux_break=0.0001184,
            density_break=195.3, bright_slope=1.595, size_a=0.2706, size_b=0.293,
            size_scatter=0.4249, size_max=107.1, q_alpha=2.677, q_beta=1.393, core_mean=-1.978,
            core_sd=0.4957, core_zero=0.2941, offset_sd=0.0567),
        2: ClassModel(
            density=386.8, flux_ref=1.184e-05, slope=1.57, flux_break=0.0001184,
            density_break=60.09, bright_slope=1.57, size_a=-1.681, size_b=0.1538,
            size_scatter=0.7342, size_max=2.773, core_mean=0.7785, core_sd=0.1086),
        3: ClassModel(
            density=26840.0, flux_ref=1.184e-05, slope=1.996, flux_break=0.0001184,
            density_break=1671.0, bright_slope=2.688, size_a=-0.1595, size_b=0.619,
            size_scatter=0.2087, size_max=20.8, q_alpha=4.675, q_beta=9.753,
            extended_frac=0.08889),
    },
    "B2": {
        1: ClassModel(
            density=221.0, flux_ref=1.184e-05, slope=0.8451, flux_break=0.0001184,
            density_break=106.4, bright_slope=1.595, size_a=0.2706, size_b=0.293,
            size_scatter=0.4249, size_max=107.1, q_alpha=2.677, q_beta=1.393, core_mean=-1.978,
            core_sd=0.4957, core_zero=0.2941, offset_sd=0.0567),
        2: ClassModel(
            density=241.0, flux_ref=1.184e-05, slope=1.57, flux_break=0.0001184,
            density_break=37.44, bright_slope=1.57, size_a=-1.681, size_b=0.1538,
            size_scatter=0.7342, size_max=2.773, core_mean=0.7785, core_sd=0.1086),
        3: ClassModel(
            density=39630.0, flux_ref=3.152e-06, slope=1.746, flux_break=3.152e-05,
            density_break=3535.0, bright_slope=2.407, size_a=-0.03569, size_b=0.6112,
            size_scatter=0.1812, size_max=12.46, q_alpha=4.675, q_beta=9.382,
            extended_frac=0.1612),
    },
    "B5": {
        1: ClassModel(
            density=864.9, flux_ref=1.184e-05, slope=0.8451, flux_break=0.0001184,
            density_break=416.4, bright_slope=1.595, size_a=0.2706, size_b=0.293,
            size_scatter=0.4249, size_max=107.1, q_alpha=2.677, q_beta=1.393, core_mean=-1.978,
            core_sd=0.4957, core_zero=0.2941, offset_sd=0.0567),
        2: ClassModel(
            density=864.9, flux_ref=1.184e-05, slope=1.57, flux_break=0.0001184,
            density_break=134.4, bright_slope=1.57, size_a=-1.681, size_b=0.1538,
            size_scatter=0.7342, size_max=2.773, core_mean=0.7785, core_sd=0.1086),
        3: ClassModel(
            density=3460.0, flux_ref=3.152e-06, slope=1.746, flux_break=3.152e-05,
            density_break=308.6, bright_slope=2.407, size_a=-0.03569, size_b=0.6112,
            size_scatter=0.1812, size_max=12.46, q_alpha=4.675, q_beta=9.382,
            extended_frac=0.1612),
    },
}


def _pieces(model: ClassModel, flux_min: float) -> list[tuple[float, float, float, float]]:
    """Power-law pieces of the counts above ``flux_min``: (sources per deg², gamma, lo, hi)."""
    e1, e2 = 1.0 - model.slope, 1.0 - model.bright_slope
    ref, brk = model.flux_ref, model.flux_break
    mid = model.density - model.density_break  # sources in [ref, brk)
    out = []
    lo = max(flux_min, brk)  # bright piece: density_break sources in [brk, MAX_FLUX_JY)
    out.append((model.density_break * (MAX_FLUX_JY**e2 - lo**e2) / (MAX_FLUX_JY**e2 - brk**e2),
                model.bright_slope, lo, MAX_FLUX_JY))
    if flux_min < brk:
        lo = max(flux_min, ref)
        out.append((mid * (brk**e1 - lo**e1) / (brk**e1 - ref**e1), model.slope, lo, brk))
    if flux_min < ref:  # continue dN/dS at ref with FAINT_SLOPE
        dnds_ref = mid * e1 / (brk**e1 - ref**e1) * ref**-model.slope
        faint = dnds_ref * ref / (FAINT_SLOPE - 1) * ((ref / flux_min) ** (FAINT_SLOPE - 1) - 1)
        out.append((faint, FAINT_SLOPE, flux_min, ref))
    return out


def expected_counts(model: ClassModel, flux_min: float, area_deg2: float) -> float:
    """Expected number of sources of a class brighter than ``flux_min`` (Jy) in an area (deg²)."""
    return float(sum(p[0] for p in _pieces(model, flux_min)) * area_deg2)


def differential_counts(flux: np.ndarray, edges: np.ndarray,
                        area_deg2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Differential source counts dN / dlog10 S per deg² in flux bins, with Poisson errors.

    Parameters
    ----------
    flux : array_like, shape (n,)
        Source flux densities (Jy, or the unit of ``edges``); those outside the bins are
        not counted.
    edges : array_like, shape (m + 1,)
        Bin edges, positive and increasing, in the unit of ``flux``.
    area_deg2 : float
        Sky area (deg²) over which the sources were found.

    Returns
    -------
    centres : ndarray, shape (m,)
        Geometric bin centres ``sqrt(lo * hi)``, unit of ``edges``.
    dn_dlogs : ndarray, shape (m,)
        ``n / area_deg2 / dlog10 S`` (deg⁻² per dex) for the ``n`` sources in each bin.
    error : ndarray, shape (m,)
        Poisson error ``sqrt(n)`` in the same unit (0 for an empty bin).

    Raises
    ------
    ValueError
        If there are fewer than two edges, the edges are not positive and increasing, or
        ``area_deg2`` is not positive.

    Examples
    --------
    >>> centres, counts, error = differential_counts([2.0, 3.0, 5.0, 8.0, 20.0],
    ...                                              [1.0, 10.0, 100.0], 2.0)
    >>> centres.round(3).tolist(), counts.tolist(), error.tolist()
    ([3.162, 31.623], [2.0, 0.5], [1.0, 0.5])
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not (edges[0] > 0 and np.all(np.diff(edges) > 0)):
        raise ValueError(f"edges must be at least two positive, increasing values, got {edges}")
    if not area_deg2 > 0:
        raise ValueError(f"area_deg2 must be positive, got {area_deg2}")
    n, _ = np.histogram(np.asarray(flux, dtype=float), edges)
    scale = 1.0 / (area_deg2 * np.diff(np.log10(edges)))
    return np.sqrt(edges[1:] * edges[:-1]), n * scale, np.sqrt(n) * scale


def _power_law(rng: np.random.Generator, n: int, gamma: float, lo: float, hi: float) -> np.ndarray:
    """Draw n fluxes from dN/dS ~ S^-gamma on [lo, hi] by inverting the CDF."""
    u = rng.uniform(size=n)
    e = 1.0 - gamma
    return (lo**e + u * (hi**e - lo**e)) ** (1.0 / e)


def _draw_class(rng: np.random.Generator, model: ClassModel, cls: int, flux_min: float,
                area: float, pixel_arcsec: float) -> dict[str, np.ndarray]:
    flux = np.concatenate([_power_law(rng, rng.poisson(density * area), gamma, lo, hi)
                           for density, gamma, lo, hi in _pieces(model, flux_min)])
    n = flux.size
    b_maj = np.minimum(10 ** (model.size_a + model.size_b * np.log10(flux / SIZE_PIVOT_JY)
                              + rng.normal(0.0, model.size_scatter, n)), model.size_max)
    q = rng.beta(model.q_alpha, model.q_beta, n) if cls != 2 else np.ones(n)
    big = b_maj > EXTENDED_PIX * pixel_arcsec
    if cls == 1:
        core = np.where(rng.uniform(size=n) < model.core_zero, 0.0,
                        np.minimum(10 ** rng.normal(model.core_mean, model.core_sd, n), 1.0))
        size = np.where(big, 1, 2)
    elif cls == 2:
        core = np.clip(rng.normal(model.core_mean, model.core_sd, n), 0.0, 1.0)
        size = np.full(n, 2)
    else:
        core = np.zeros(n)
        size = np.where(big & (rng.uniform(size=n) < model.extended_frac), 3, 2)
    offset = rng.normal(0.0, model.offset_sd, n) * b_maj if cls == 1 else np.zeros(n)
    return {"flux": flux, "b_maj": b_maj, "b_min": b_maj * q, "core_frac": core,
            "size": size, "class": np.full(n, cls), "offset": offset}


#: Separations (restoring-beam FWHM) at which :func:`place_pairs` puts a source beside a
#: brighter one: 1.5-3" in B1, the close pairs a finder can still resolve.
PAIR_SEPARATION_BEAMS: tuple[float, float] = (1.0, 2.0)


def place_pairs(x: np.ndarray, y: np.ndarray, flux: np.ndarray, rng: np.random.Generator, *,
                fraction: float, flux_floor: float,
                separation_pix: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Move a random fraction of the sources beside brighter ones.

    Of the sources with ``flux >= flux_floor``, each is moved with probability
    ``fraction`` (but the brightest), to a separation uniform in ``separation_pix`` at a
    uniform angle from a source drawn at random among the brighter ones that stay. Fluxes,
    sizes and the number of sources are unchanged; only close pairs become more common.

    Parameters
    ----------
    x, y : ndarray
        Pixel positions.
    flux : ndarray
        Fluxes (any unit of ``flux_floor``).
    rng : numpy.random.Generator
        Random numbers.
    fraction : float
        Probability, in [0, 1], that an eligible source is moved.
    flux_floor : float
        Faintest flux of a source that is moved or that another is moved beside.
    separation_pix : (low, high)
        Separation range in pixels.

    Returns
    -------
    x, y : ndarray
        The new positions (copies).

    Examples
    --------
    >>> x, y = np.array([0.0, 50.0, 90.0]), np.zeros(3)
    >>> nx, ny = place_pairs(x, y, np.array([3.0, 2.0, 1.0]), np.random.default_rng(0),
    ...                      fraction=1.0, flux_floor=1.5, separation_pix=(2.0, 2.0))
    >>> float(np.hypot(nx[1] - nx[0], ny[1] - ny[0])), float(nx[2])
    (2.0, 90.0)
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"pair fraction must be in [0, 1], got {fraction}")
    x, y = np.array(x, float), np.array(y, float)
    eligible = np.flatnonzero(np.asarray(flux) >= flux_floor)
    order = eligible[np.argsort(-np.asarray(flux)[eligible], kind="stable")]  # brightest first
    moved = rng.random(order.size) < fraction
    moved[:1] = False  # the brightest stays: every moved source has a brighter one
    n_brighter = np.cumsum(~moved)[moved]  # staying sources before each moved one
    pick = np.floor(rng.random(n_brighter.size) * n_brighter).astype(int)
    separation = rng.uniform(*separation_pix, n_brighter.size)
    angle = rng.uniform(0.0, 2 * np.pi, n_brighter.size)
    movers, partners = order[moved], order[~moved][pick]
    x[movers] = x[partners] + separation * np.cos(angle)
    y[movers] = y[partners] + separation * np.sin(angle)
    return x, y


def synthetic_population(
    band: str | Band,
    *,
    wcs: WCS,
    region: tuple[float, float, float, float],
    seed: int | np.random.SeedSequence,
    flux_min: float,
    models: dict[int, ClassModel] | None = None,
    pair_fraction: float = 0.0,
    pair_flux_min: float = 0.0,
) -> Table:
    """Draw a synthetic source catalogue over a pixel region of a WCS grid.

    Parameters
    ----------
    band : str or Band
        SDC1 band; selects the recorded model in :data:`POPULATION_MODELS`.
    wcs : astropy.wcs.WCS
        Celestial WCS of the grid.
    region : (x0, y0, x1, y1)
        Pixel rectangle (0-based, may extend beyond an image) in which centroids fall
        uniformly.
    seed : int or numpy.random.SeedSequence
        Random seed.
    flux_min : float
        Faintest flux drawn (Jy); e.g. a fraction of the noise rms.
    models : dict of int to ClassModel, optional
        Override :data:`POPULATION_MODELS` (e.g. a fresh :func:`fit_population_model`).
    pair_fraction, pair_flux_min : float
        :func:`place_pairs` of the sources with ``flux >= pair_flux_min`` (Jy), at
        :data:`PAIR_SEPARATION_BEAMS`, with this ``fraction``; 0 (default) keeps the
        uniform positions, and draws the same population as before it existed.

    Returns
    -------
    astropy.table.Table
        Tidy catalogue (columns of :data:`~radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`
        except ``selection``), ``x``, ``y`` the centroid pixel; ``id`` runs from 0.

    Raises
    ------
    ValueError
        If ``flux_min`` is not positive or the region is empty.
    """
    band = get_band(band)
    models = POPULATION_MODELS[band.name] if models is None else models
    if not flux_min > 0:
        raise ValueError(f"flux_min must be positive, got {flux_min}")
    x0, y0, x1, y1 = (float(v) for v in region)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"region {region} is empty: need x1 > x0 and y1 > y0")
    rng = np.random.default_rng(seed)
    area = (x1 - x0) * (y1 - y0) * band.pixel_deg**2
    parts = [_draw_class(rng, models[c], c, flux_min, area, band.pixel_arcsec)
             for c in sorted(models)]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = cols["flux"].size
    x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    pa = rng.uniform(0.0, 180.0, n)
    if pair_fraction > 0:
        x, y = place_pairs(x, y, cols["flux"], rng, fraction=pair_fraction,
                           flux_floor=pair_flux_min,
                           separation_pix=tuple(s * band.beam_fwhm_pix
                                                for s in PAIR_SEPARATION_BEAMS))
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    theta = np.radians(pa_east_of_north(pa))
    off_deg = cols.pop("offset") / 3600.0  # core sits -offset along the axis from the centroid
    dec_core = dec - off_deg * np.cos(theta)
    ra_core = ra - off_deg * np.sin(theta) / np.cos(np.radians(dec))
    table = Table()
    values = {"id": np.arange(n), "ra_core": wrap_ra(ra_core), "dec_core": dec_core,
              "ra_cent": wrap_ra(ra), "dec_cent": dec, **cols, "pa": pa, "x": x, "y": y}
    for name in CATALOGUE_COLUMNS:
        if name in values:
            unit, dtype, desc = CATALOGUE_COLUMNS[name]
            table[name] = np.asarray(values[name]).astype(dtype)
            table[name].unit, table[name].description = unit, desc
    return table
