"""How far is the simulator from the real SDC1 image? Comparisons on a real cutout.

The learned finder is only as good on real data as the simulation is real. The public
B1 1000 h cutout (``B1_1000h_0.05tr.fits``, 174 x 160 px) comes with its full truth
catalogue, so the simulator can render that very sky on that very pixel grid
(:func:`render_on_grid`) and the difference real - model can be studied directly:

* :func:`fit_model_scale`: least-squares ``real = scale * model + background``; the scale
  says whether source fluxes (primary beam, any other attenuation) are right, the residual
  whether sizes, position angles and positions are (a wrong size or a one-pixel shift
  leaves dipoles or rings of tens of sigma around bright sources);
* :func:`residual_statistics`: the residual should be pure noise (rms, median, skewness,
  excess kurtosis, tail fractions against a Gaussian);
* :func:`acf_table`: noise autocorrelation at lags 1..3 px along x and y of several images
  (sources above 3 sigma masked, as in the SDC1 facts);
* :func:`peak_finder_table`: completeness per bin of true peak S/N and (strict) reliability
  of the plain local-maximum finder (:func:`radioseg_utils.baselines.peaks.run_peaks`) on
  any set of images, scored by :func:`radioseg_utils.evaluation.evaluate.evaluate_finder`. The true
  S/N is always :func:`radioseg_utils.simulation.truth.true_peak_snr`, the definition the
  simulator writes into its truth tables, with the same attenuation as the image.

Measured on the public cutout (see ``tests/test_realism.py``): the real image is the truth
model times the primary beam (0.89-0.91 there) times a further 0.918
(:data:`radioseg_utils.simulation.simulate.FLUX_SCALE`; per source 0.90 +- 0.03 for point-like and
resolved sources alike, so an amplitude, not a size, effect; with the primary beam it makes
the 0.84 of intrinsic flux PyBDSF measures on the larger real cutout), on a background of
-0.82 rms, leaving a Gaussian residual of 0.95 rms with no dipole or ring around bright
sources: sizes, position angles and positions are right. The simulator's defaults
(:data:`~radioseg_utils.simulation.simulate.NOISE_SIGMA`, :data:`~radioseg_utils.simulation.simulate.BACKGROUND_SIGMA`,
:data:`~radioseg_utils.simulation.noise_model.REAL_NOISE_ACF`) come from these measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from astropy.table import Table
from scipy import stats

from radioseg_utils.baselines.peaks import run_peaks
from radioseg_utils.evaluation.evaluate import evaluate_finder, truth_in_image
from radioseg_utils.evaluation.metrics import SNR_BINS, STRICT_MIN_SNR
from radioseg_utils.io.catalogue import read_truth_catalogue
from radioseg_utils.io.fits_read import SkyImage, read_image
from radioseg_utils.simulation.noise_model import autocorrelation, bright_pixel_mask
from radioseg_utils.simulation.simulate import (
    FLUX_SCALE,
    Attenuation,
    SimulatedField,
    simulate_field,
)
from radioseg_utils.simulation.sources import PrimaryBeam
from radioseg_utils.simulation.truth import true_peak_snr

__all__ = [
    "REAL_IMAGE",
    "REAL_TRUTH",
    "REAL_PRIMARY_BEAM",
    "REAL_INTEGRATION",
    "RealCutout",
    "ModelFit",
    "load_real_cutout",
    "render_on_grid",
    "fit_model_scale",
    "residual_statistics",
    "acf_table",
    "with_true_snr",
    "peak_finder_table",
    "replace_data",
]

#: Registry names of the real cutout, its truth catalogue and the band's primary beam.
REAL_IMAGE: str = "B1_1000h_0.05tr.fits"
REAL_TRUTH: str = "truth_B1_1000h_0.05tr.cat"
REAL_PRIMARY_BEAM: str = "PrimaryBeam_B1.fits"
#: Integration time (h) of the real cutout.
REAL_INTEGRATION: int = 1000
#: Pixels ignored along each edge in fits (sources beyond the cutout edge leak into it).
DEFAULT_BORDER: int = 10
#: Lags (px) reported by :func:`acf_table`.
DEFAULT_LAGS: tuple[int, ...] = (1, 2, 3)


@dataclass(frozen=True)
class RealCutout:
    """The real SDC1 cutout with its truth (sources whose core is on the grid).

    Attributes
    ----------
    sky : SkyImage
        The image (Jy/beam, shape (ny, nx)) and its WCS.
    truth : astropy.table.Table
        Truth catalogue (intrinsic fluxes, Jy), cores on the grid.
    primary_beam : PrimaryBeam
        The band's primary-beam model.
    """

    sky: SkyImage
    truth: Table
    primary_beam: PrimaryBeam

    @property
    def rms(self) -> float:
        """Nominal noise rms (Jy/beam) of the band at :data:`REAL_INTEGRATION`."""
        return self.sky.band.noise(REAL_INTEGRATION)

    def attenuation(self, flux_scale: float = FLUX_SCALE) -> Attenuation:
        """Primary beam times ``flux_scale``: intrinsic to apparent flux in this image."""
        return Attenuation(self.primary_beam, float(flux_scale))


@dataclass(frozen=True)
class ModelFit:
    """Least-squares fit ``image = scale * model + background`` (inside a border).

    Attributes
    ----------
    scale : float
        Flux scale of the model.
    background : float
        Constant background (units of the image).
    residual : ndarray, shape (ny, nx)
        ``image - scale * model - background``; NaN in the ignored border.
    """

    scale: float
    background: float
    residual: np.ndarray


def load_real_cutout() -> RealCutout:
    """Read the real cutout, its truth and the primary beam through the data registry."""
    from radioseg_utils.io.registry import fetch

    sky = read_image(fetch(REAL_IMAGE))
    truth = truth_in_image(read_truth_catalogue(fetch(REAL_TRUTH)), sky)
    return RealCutout(sky=sky, truth=truth, primary_beam=PrimaryBeam.from_fits(fetch(REAL_PRIMARY_BEAM)))


def render_on_grid(
    catalogue: Table,
    sky: SkyImage,
    *,
    seed: int,
    integration: int = REAL_INTEGRATION,
    primary_beam: PrimaryBeam | None = None,
    flux_scale: float = FLUX_SCALE,
    add_noise: bool = True,
    background_sigma: float | None = None,
) -> SimulatedField:
    """Render a catalogue with the simulator on the exact pixel grid of ``sky``.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Tidy truth catalogue (intrinsic fluxes in Jy).
    sky : SkyImage
        Image whose grid (SIN projection, reference pixel and value, pixel size) is used;
        it must be an SDC1 grid (:func:`radioseg_utils.io.wcs.sdc1_wcs` with a ``crpix``).
    seed : int
        Seed of the noise.
    integration : int
        Integration time (h): noise rms and background.
    primary_beam : PrimaryBeam, optional
        The band's primary beam (e.g. :attr:`RealCutout.primary_beam`); None: none.
    flux_scale : float
        Apparent / intrinsic flux beyond the primary beam (1 with no primary beam renders
        the truth fluxes).
    add_noise : bool
        Add the simulator's correlated noise and background.
    background_sigma : float, optional
        Background in rms; default the simulator's.

    Returns
    -------
    SimulatedField
        In memory; ``truth`` lists the sources whose centroid lies on the grid.

    Raises
    ------
    ValueError
        If the simulator's grid does not reproduce the pixel positions of ``sky``.
    """
    w = sky.wcs.wcs
    field = simulate_field(sky.band, integration, shape=sky.shape, seed=seed, catalogue=catalogue,
                           centre=(float(w.crval[0]), float(w.crval[1])),
                           crpix=(float(w.crpix[0]), float(w.crpix[1])),
                           primary_beam=primary_beam if primary_beam is not None else False,
                           background_sigma=background_sigma, add_noise=add_noise,
                           flux_scale=flux_scale, ndim=2)
    probe = np.array([[0.0, 0.0], [sky.shape[1] - 1.0, sky.shape[0] - 1.0]])
    moved = np.abs(field.wcs.wcs_world2pix(sky.wcs.wcs_pix2world(probe, 0), 0) - probe).max()
    if moved > 1e-3:
        raise ValueError(f"the simulator's grid differs from the image grid by {moved:.3g} px "
                         f"({sky.path}); only SDC1 SIN grids can be reproduced")
    return field


def fit_model_scale(image: np.ndarray, model: np.ndarray, *,
                    border: int = DEFAULT_BORDER) -> ModelFit:
    """Fit ``image = scale * model + background`` by least squares inside a border.

    Parameters
    ----------
    image, model : ndarray, shape (ny, nx)
        Real image and noise-free model (same unit, e.g. Jy/beam).
    border : int
        Pixels ignored along each edge.

    Returns
    -------
    ModelFit

    Raises
    ------
    ValueError
        If the shapes differ, the border leaves no pixel, or the model is zero there.

    Examples
    --------
    >>> m = np.zeros((30, 30)); m[15, 15] = 2.0
    >>> fit = fit_model_scale(3.0 * m + 0.5, m, border=5)
    >>> round(fit.scale, 6), round(fit.background, 6)
    (3.0, 0.5)
    """
    image, model = np.asarray(image, float), np.asarray(model, float)
    if image.shape != model.shape or image.ndim != 2:
        raise ValueError(f"image and model must be 2-D of one shape, got {image.shape} "
                         f"and {model.shape}")
    inner = np.zeros(image.shape, bool)
    inner[border:image.shape[0] - border, border:image.shape[1] - border] = True
    inner &= np.isfinite(image)
    if not inner.any() or not np.any(model[inner]):
        raise ValueError(f"no usable pixel inside a border of {border} px (or a zero model)")
    design = np.stack([model[inner], np.ones(int(inner.sum()))], axis=1)
    (scale, background), *_ = np.linalg.lstsq(design, image[inner], rcond=None)
    residual = np.where(inner, image - scale * model - background, np.nan)
    return ModelFit(float(scale), float(background), residual)


def residual_statistics(residual: np.ndarray, rms: float, *,
                        mask: np.ndarray | None = None) -> dict[str, float]:
    """Is a residual pure Gaussian noise? Moments and tails in units of ``rms``.

    Parameters
    ----------
    residual : ndarray, shape (ny, nx)
        Residual image; NaN pixels are ignored.
    rms : float
        Reference rms (e.g. ``band.noise(integration)``).
    mask : ndarray of bool, optional
        True for pixels to ignore.

    Returns
    -------
    dict
        ``n``; ``median``, ``std``, ``mad_std`` (1.4826 MAD), ``min``, ``max`` in rms;
        ``skew``, ``excess_kurtosis``; ``frac_above_4``, ``frac_below_4``: fractions of
        pixels beyond +-4 std, ``gaussian_tail_4``: the Gaussian expectation of each.
    """
    if not rms > 0:
        raise ValueError(f"rms must be positive, got {rms}")
    values = np.asarray(residual, float)
    keep = np.isfinite(values) if mask is None else np.isfinite(values) & ~np.asarray(mask, bool)
    v = values[keep] / rms
    if v.size < 3:
        raise ValueError(f"need at least 3 valid residual pixels, got {v.size}")
    mean, std = v.mean(), v.std()
    return {"n": int(v.size), "median": float(np.median(v)), "std": float(std),
            "mad_std": float(stats.median_abs_deviation(v, scale="normal")),
            "min": float(v.min()), "max": float(v.max()),
            "skew": float(stats.skew(v)), "excess_kurtosis": float(stats.kurtosis(v)),
            "frac_above_4": float(np.mean(v > mean + 4 * std)),
            "frac_below_4": float(np.mean(v < mean - 4 * std)),
            "gaussian_tail_4": float(stats.norm.sf(4.0))}


def acf_table(images: Mapping[str, np.ndarray], rms: float, *, lags: Sequence[int] = DEFAULT_LAGS,
              mask_sigma: float | None = 3.0, dilate: int = 4) -> pd.DataFrame:
    """Noise autocorrelation along x and y of several images at a few lags.

    Parameters
    ----------
    images : mapping of name to ndarray (ny, nx)
        Images (e.g. real, residual, simulated), in the unit of ``rms``.
    rms : float
        Noise rms for the source mask.
    lags : sequence of int
        Lags in pixels.
    mask_sigma : float or None
        Pixels above ``mask_sigma * rms``, grown by ``dilate`` px, are ignored
        (:func:`radioseg_utils.simulation.noise_model.bright_pixel_mask`); None: no mask.
    dilate : int
        Mask growth in pixels.

    Returns
    -------
    pandas.DataFrame
        One row per image and axis: ``image``, ``axis`` (``"x"`` or ``"y"``),
        ``masked_fraction``, then ``lag1``, ``lag2``, ... correlation coefficients.
    """
    rows = []
    for name, image in images.items():
        image = np.asarray(image, float)
        mask = (None if mask_sigma is None
                else bright_pixel_mask(np.nan_to_num(image), rms, nsigma=mask_sigma,
                                       dilate=dilate))
        acf_x, acf_y = autocorrelation(image, max_lag=max(lags), mask=mask)
        frac = 0.0 if mask is None else float(mask.mean())
        for axis, acf in (("x", acf_x), ("y", acf_y)):
            rows.append({"image": name, "axis": axis, "masked_fraction": frac,
                         **{f"lag{k}": float(acf[k]) for k in lags}})
    return pd.DataFrame(rows)


def with_true_snr(truth: Table, sky: SkyImage, *, integration: int = REAL_INTEGRATION,
                  attenuation: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                  ) -> Table:
    """Copy of the truth (cores on the grid) with ``peak_snr`` from :func:`true_peak_snr`.

    ``attenuation`` (intrinsic to apparent flux, e.g. :meth:`RealCutout.attenuation`) makes
    the S/N that of the image; None keeps intrinsic fluxes.
    """
    out = truth_in_image(truth, sky).copy()
    out["peak_snr"] = true_peak_snr(out, sky.band, noise=sky.band.noise(integration),
                                    wcs=sky.wcs, primary_beam=attenuation)
    return out


def peak_finder_table(cases: Mapping[str, tuple[SkyImage, Table]], *,
                      integration: int = REAL_INTEGRATION,
                      snr_bins: Sequence[float] = SNR_BINS,
                      strict_min_snr: float = STRICT_MIN_SNR) -> pd.DataFrame:
    """Completeness per true-S/N bin and reliability of the local-maximum finder.

    Parameters
    ----------
    cases : mapping of name to (SkyImage, truth Table)
        Each truth must carry ``peak_snr`` (see :func:`with_true_snr`; simulated truth
        tables have it).
    integration : int
        Integration time (h) of the images (noise for the strict metrics).
    snr_bins : sequence of float
        True peak S/N bin edges.
    strict_min_snr : float
        True S/N from which a matched source makes a detection real (strict reliability).

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case``, ``detections``, ``n_true`` (S/N >= first edge),
        ``compl_<lo>-<hi>`` per bin, ``n_<lo>-<hi>`` true sources per bin,
        ``reliability``, ``strict_reliability``.
    """
    rows = []
    for name, (sky, truth) in cases.items():
        if "peak_snr" not in truth.colnames:
            raise ValueError(f"truth of case {name!r} lacks a peak_snr column")
        ev = evaluate_finder(run_peaks(sky), truth, sky, integration=integration,
                             snr_bins=snr_bins, strict_min_snr=strict_min_snr,
                             pixels=False, score=False, field=name)
        row = {"case": name, "detections": len(ev.result.catalogue),
               "n_true": int(np.sum(ev.true_snr >= snr_bins[0]))}
        for b in ev.bins.itertuples():
            label = f"{b.lo:g}-{b.hi:g}" if np.isfinite(b.hi) else f">{b.lo:g}"
            row[f"compl_{label}"] = float(b.completeness)
            row[f"n_{label}"] = int(b.n_true)
        row["reliability"] = ev.source.reliability
        row["strict_reliability"] = ev.strict.reliability
        rows.append(row)
    return pd.DataFrame(rows)


def replace_data(sky: SkyImage, data: np.ndarray) -> SkyImage:
    """``sky`` with other pixel values (same grid); for simulated images on a real grid."""
    data = np.asarray(data, dtype=np.float32)
    if data.shape != sky.shape:
        raise ValueError(f"data shape {data.shape} differs from the image shape {sky.shape}")
    return replace(sky, data=data)
