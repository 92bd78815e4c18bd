"""A T-RECS-like synthetic source population, fitted to the SDC1 training catalogues.

Each source class (1 SS-AGN, 2 FS-AGN, 3 SFG) has its own :class:`ClassModel`:

- differential counts ``dN/dS`` as two power-law pieces joined at ``flux_ref``: above it the
  slope fitted (maximum likelihood) to the training catalogue, which is complete there;
  below it, down to the requested ``flux_min``, the sub-threshold slope
  :data:`FAINT_SLOPE` (an assumption, not fitted: the training catalogues stop at
  ~3 µJy, and the T-RECS counts flatten below; ``dN/dS ~ S^-1.6`` keeps the confusion noise
  of a simulated 1000 h B1 field at a few per cent of the thermal rms);
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

Positions are uniform (no clustering); position angles uniform in [0, 180) deg.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from .bands import Band, get_band
from .catalogue import CATALOGUE_COLUMNS, wrap_ra
from .sources import pa_east_of_north

__all__ = [
    "ClassModel",
    "POPULATION_MODELS",
    "FAINT_SLOPE",
    "MAX_FLUX_JY",
    "MIN_FIT_SOURCES",
    "fit_population_model",
    "training_area_deg2",
    "synthetic_population",
    "expected_counts",
]

#: Slope of dN/dS below ``flux_ref`` (assumed, see the module docstring).
FAINT_SLOPE: float = 1.6
#: Brightest flux drawn (Jy).
MAX_FLUX_JY: float = 1.0
#: Fewest sources of a class for :func:`fit_population_model` to fit it.
MIN_FIT_SOURCES: int = 20
#: Pivot flux (Jy) of the size-flux relation.
SIZE_PIVOT_JY: float = 1e-5
#: Sources larger than this many pixels are drawn as extended profiles in SDC1.
EXTENDED_PIX: float = 3.0
#: B1 training sources removed for independent evaluation: RA and Dec ranges (deg).
B1_RESERVED: tuple[tuple[float, float], tuple[float, float]] = ((-0.46, -0.21), (-29.78, -29.57))


@dataclass(frozen=True)
class ClassModel:
    """Population model of one source class (see the module docstring).

    Attributes
    ----------
    density : float
        Sources per deg² brighter than ``flux_ref``.
    flux_ref : float
        Flux (Jy) above which the training catalogue is complete and the slope was fitted.
    slope : float
        ``gamma`` of ``dN/dS ~ S^-gamma`` above ``flux_ref``.
    size_a, size_b, size_scatter : float
        ``log10 b_maj[arcsec] = size_a + size_b * log10(S / 1e-5 Jy) + N(0, size_scatter)``.
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
    size_a: float
    size_b: float
    size_scatter: float
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
    return float(np.radians(abs(ra[1] - ra[0])) * abs(sin_dec[1] - sin_dec[0]) * np.degrees(1.0) ** 2)


def training_area_deg2(band: str | Band) -> float:
    """Sky area (deg²) of the SDC1 training catalogue of a band, minus the B1 reserved region."""
    band = get_band(band)
    area = _box_area(band.train_ra, band.train_dec)
    if band.name == "B1":
        area -= _box_area(*B1_RESERVED)
    return float(area)


def _beta_moments(q: np.ndarray) -> tuple[float, float]:
    q = np.clip(q[np.isfinite(q)], 1e-3, 1 - 1e-3)
    m, v = q.mean(), q.var()
    common = m * (1 - m) / v - 1
    return float(m * common), float((1 - m) * common)


def _fit_class(rows: Table, area: float, flux_ref: float, pixel_arcsec: float, cls: int) -> ClassModel:
    flux = np.asarray(rows["flux"], float)
    bright = flux >= flux_ref
    n = int(bright.sum())
    slope = 1.0 + n / np.sum(np.log(flux[bright] / flux_ref))
    b_maj = np.asarray(rows["b_maj"], float)
    ok = b_maj > 0
    x, y = np.log10(flux[ok] / SIZE_PIVOT_JY), np.log10(b_maj[ok])
    size_b, size_a = np.polyfit(x, y, 1)
    scatter = float(np.std(y - (size_a + size_b * x)))
    model = ClassModel(density=n / area, flux_ref=flux_ref, slope=float(slope), size_a=float(size_a),
                       size_b=float(size_b), size_scatter=scatter)
    q = np.asarray(rows["b_min"], float)[ok] / b_maj[ok]
    if cls in (1, 3):
        alpha, beta = _beta_moments(q)
        model = replace(model, q_alpha=alpha, q_beta=beta)
    core = np.clip(np.asarray(rows["core_frac"], float), 0, None)
    if cls == 1:
        nz = core > 0
        offset = np.hypot((rows["ra_cent"] - rows["ra_core"]) * np.cos(np.radians(rows["dec_cent"])),
                          rows["dec_cent"] - rows["dec_core"]) * 3600.0
        model = replace(model, core_mean=float(np.log10(core[nz]).mean()),
                        core_sd=float(np.log10(core[nz]).std()), core_zero=float(1 - nz.mean()),
                        offset_sd=float(np.sqrt(np.mean((np.asarray(offset)[ok] / b_maj[ok]) ** 2))))
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

    Parameters
    ----------
    catalogue : astropy.table.Table
        Tidy truth catalogue (e.g. :func:`radioseg_utils.catalogue.read_truth_catalogue`
        of ``TrainingSet_B1_v2_ML.txt``).
    band : str or Band
        Band of the catalogue (pixel size for the extended-source rule).
    area_deg2 : float, optional
        Sky area of the catalogue; default :func:`training_area_deg2`.
    flux_ref : float, optional
        Completeness flux (Jy) above which counts are fitted; default twice the faintest
        flux in the catalogue.
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
    area = training_area_deg2(band) if area_deg2 is None else float(area_deg2)
    flux = np.asarray(catalogue["flux"], float)
    ref = 2.0 * float(flux[flux > 0].min()) if flux_ref is None else float(flux_ref)
    models = {}
    for cls in (1, 2, 3):
        rows = catalogue[np.asarray(catalogue["class"]) == cls]
        n_ref = int(np.sum(np.asarray(rows["flux"]) >= ref))
        if n_ref >= MIN_FIT_SOURCES:
            models[cls] = _fit_class(rows, area, ref, band.pixel_arcsec, cls)
        elif fallback is not None and cls in fallback:
            other = fallback[cls]
            density = n_ref / area if n_ref else other.density * (ref / other.flux_ref) ** (1 - other.slope)
            models[cls] = replace(other, density=density, flux_ref=ref)
    if not models:
        raise ValueError(f"no class has {MIN_FIT_SOURCES} sources above {ref:.3g} Jy to fit")
    return models


#: Fitted models per band and class: ``fit_population_model(read_truth_catalogue(
#: "TrainingSet_<band>_v2_ML.txt"), band, fallback=<previous band>)`` for B1, B2, B5 in
#: turn, rounded to 4 significant figures (``tests/test_population.py`` refits them).
POPULATION_MODELS: dict[str, dict[int, ClassModel]] = {
    "B1": {
        1: ClassModel(density=443.2, flux_ref=5.92e-06, slope=1.335, size_a=0.2706, size_b=0.293, size_scatter=0.4249, q_alpha=2.677, q_beta=1.393, core_mean=-1.978, core_sd=0.4957, core_zero=0.2941, offset_sd=0.0567),
        2: ClassModel(density=615.9, flux_ref=5.92e-06, slope=1.74, size_a=-1.681, size_b=0.1538, size_scatter=0.7342, core_mean=0.7785, core_sd=0.1086),
        3: ClassModel(density=48560.0, flux_ref=5.92e-06, slope=1.986, size_a=-0.1595, size_b=0.619, size_scatter=0.2087, q_alpha=4.675, q_beta=9.753, extended_frac=0.08889),
    },
    "B2": {
        1: ClassModel(density=241.0, flux_ref=1.576e-06, slope=1.335, size_a=0.2706, size_b=0.293, size_scatter=0.4249, q_alpha=2.677, q_beta=1.393, core_mean=-1.978, core_sd=0.4957, core_zero=0.2941, offset_sd=0.0567),
        2: ClassModel(density=1225.0, flux_ref=1.576e-06, slope=1.719, size_a=-1.701, size_b=0.1012, size_scatter=0.6179, core_mean=0.7469, core_sd=0.1136),
        3: ClassModel(density=57090.0, flux_ref=1.576e-06, slope=1.762, size_a=-0.03569, size_b=0.6112, size_scatter=0.1812, q_alpha=4.675, q_beta=9.382, extended_frac=0.1612),
    },
    "B5": {
        1: ClassModel(density=864.9, flux_ref=2.241e-07, slope=1.335, size_a=0.2706, size_b=0.293, size_scatter=0.4249, q_alpha=2.677, q_beta=1.393, core_mean=-1.978, core_sd=0.4957, core_zero=0.2941, offset_sd=0.0567),
        2: ClassModel(density=3460.0, flux_ref=2.241e-07, slope=1.719, size_a=-1.701, size_b=0.1012, size_scatter=0.6179, core_mean=0.7469, core_sd=0.1136),
        3: ClassModel(density=18160.0, flux_ref=2.241e-07, slope=1.476, size_a=-0.1541, size_b=0.4935, size_scatter=0.1081, q_alpha=3.394, q_beta=7.056, extended_frac=0.625),
    },
}


def expected_counts(model: ClassModel, flux_min: float, area_deg2: float) -> tuple[float, float]:
    """Expected numbers of sources (faint piece, bright piece) above ``flux_min`` in an area."""
    bright = model.density * area_deg2 * (1 - (MAX_FLUX_JY / model.flux_ref) ** (1 - model.slope))
    if flux_min >= model.flux_ref:
        frac = ((flux_min / model.flux_ref) ** (1 - model.slope)
                - (MAX_FLUX_JY / model.flux_ref) ** (1 - model.slope))
        return 0.0, model.density * area_deg2 * frac
    # dN/dS continuous at flux_ref: k_faint = density (slope - 1) / flux_ref
    dnds_ref = model.density * (model.slope - 1) / model.flux_ref
    faint = (dnds_ref * model.flux_ref / (FAINT_SLOPE - 1)
             * ((model.flux_ref / flux_min) ** (FAINT_SLOPE - 1) - 1) * area_deg2)
    return float(faint), float(bright)


def _power_law(rng: np.random.Generator, n: int, gamma: float, lo: float, hi: float) -> np.ndarray:
    """Draw n fluxes from dN/dS ~ S^-gamma on [lo, hi] by inverting the CDF."""
    u = rng.uniform(size=n)
    e = 1.0 - gamma
    return (lo**e + u * (hi**e - lo**e)) ** (1.0 / e)


def _draw_class(rng: np.random.Generator, model: ClassModel, cls: int, flux_min: float,
                area: float, pixel_arcsec: float) -> dict[str, np.ndarray]:
    n_faint, n_bright = (rng.poisson(m) for m in expected_counts(model, flux_min, area))
    flux = np.concatenate([
        _power_law(rng, n_faint, FAINT_SLOPE, flux_min, model.flux_ref),
        _power_law(rng, n_bright, model.slope, max(flux_min, model.flux_ref), MAX_FLUX_JY),
    ])
    n = flux.size
    b_maj = 10 ** (model.size_a + model.size_b * np.log10(flux / SIZE_PIVOT_JY)
                   + rng.normal(0.0, model.size_scatter, n))
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


def synthetic_population(
    band: str | Band,
    *,
    wcs: WCS,
    region: tuple[float, float, float, float],
    seed: int | np.random.SeedSequence,
    flux_min: float,
    models: dict[int, ClassModel] | None = None,
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

    Returns
    -------
    astropy.table.Table
        Tidy catalogue (columns of :data:`~radioseg_utils.catalogue.CATALOGUE_COLUMNS`
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
    parts = [_draw_class(rng, models[c], c, flux_min, area, band.pixel_arcsec) for c in sorted(models)]
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = cols["flux"].size
    x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    pa = rng.uniform(0.0, 180.0, n)
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
