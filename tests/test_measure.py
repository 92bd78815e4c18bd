"""Tests of radioseg_utils.postprocess.measure on analytic Gaussian sources with known parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from radioseg_utils.core.bands import get_band
from radioseg_utils.core.gaussian import FWHM_PER_SIGMA, deconvolve_fwhm, gaussian_area
from radioseg_utils.io.catalogue import wrap_ra
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.postprocess.components import label_components
from radioseg_utils.postprocess.measure import (
    GAUSS_TO_LAS,
    ClassRule,
    measure_sources,
)

BAND = get_band("B1")
SHAPE = (72, 80)


def gaussian_source(flux, maj, minor, pa, x0, y0, shape=SHAPE, band=BAND):
    """Beam-convolved elliptical Gaussian in Jy/beam; sizes in arcsec, PA east of north."""
    beam = band.beam_fwhm_arcsec
    cmaj, cmin = math.hypot(maj, beam), math.hypot(minor, beam)
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    east, north = -(x - x0) * band.pixel_arcsec, (y - y0) * band.pixel_arcsec
    t = math.radians(pa)
    u = east * math.sin(t) + north * math.cos(t)
    v = east * math.cos(t) - north * math.sin(t)
    k = 4 * math.log(2)
    return flux * beam**2 / (cmaj * cmin) * np.exp(-k * ((u / cmaj) ** 2 + (v / cmin) ** 2))


@pytest.fixture
def scene():
    image = gaussian_source(1e-3, 4.0, 2.5, 30.0, 40.3, 35.7)
    labels = (image > 1e-4 * image.max()).astype(np.int32)
    return image, labels, sdc1_wcs(BAND, SHAPE)


def test_isolated_gaussian_flux_size_pa_position(scene):
    image, labels, wcs = scene
    cat = measure_sources(image, labels, wcs, "B1", noise=1e-6)
    assert len(cat) == 1
    row = cat[0]
    assert row["flux"] == pytest.approx(1e-3, rel=0.01)
    assert row["b_maj"] == pytest.approx(4.0, rel=0.05)
    assert row["b_min"] == pytest.approx(2.5, rel=0.05)
    assert row["pa_eon"] == pytest.approx(30.0, abs=1.0)
    assert row["pa"] == pytest.approx(60.0, abs=1.0)  # SDC1: clockwise from west
    assert (row["size"], row["class"], row["core_frac"]) == (2, 3, 0.0)
    ra, dec = wcs.pixel_to_world_values(40.3, 35.7)
    assert row["ra_cent"] == pytest.approx(wrap_ra(ra), abs=1e-7)
    assert row["dec_cent"] == pytest.approx(dec, abs=1e-7)
    core_offset = math.hypot((row["ra_core"] - row["ra_cent"]) * math.cos(math.radians(dec)), row["dec_core"] - row["dec_cent"])
    assert core_offset * 3600 < 0.01 * BAND.pixel_arcsec  # sub-pixel peak
    assert (row["x"], row["y"]) == pytest.approx((40.3, 35.7), abs=1e-3)
    assert row["peak_snr"] == pytest.approx(image.max() / 1e-6)
    assert -180 <= row["ra_core"] < 180 and row["ra_core"] < 0  # left of RA 0
    assert cat["flux"].unit == "Jy" and cat["b_maj"].unit == "arcsec"


def test_background_subtracted(scene):
    image, labels, wcs = scene
    offset = -2e-5
    cat = measure_sources(image + offset, labels, wcs, "B1", noise=1e-6, background=offset)
    assert cat["flux"][0] == pytest.approx(1e-3, rel=0.01)
    biased = measure_sources(image + offset, labels, wcs, "B1", noise=1e-6)
    assert biased["flux"][0] < 0.9e-3


def test_primary_beam_map_and_callable(scene):
    image, labels, wcs = scene
    pb = np.full(SHAPE, 0.8)
    cat = measure_sources(image, labels, wcs, "B1", noise=1e-6, primary_beam=pb)
    assert cat["flux"][0] == pytest.approx(1e-3 / 0.8, rel=0.01)
    cat2 = measure_sources(image, labels, wcs, "B1", noise=1e-6, primary_beam=lambda r, d: 0.5 + 0 * r)
    assert cat2["flux"][0] == pytest.approx(2e-3, rel=0.01)
    noise_map = np.full(SHAPE, 2e-6)
    noise_map[:, :40] = 1e-6  # the peak (x = 40.3 -> column 40) reads the right half
    cat3 = measure_sources(image, labels, wcs, "B1", noise=noise_map)
    assert cat3["peak_snr"][0] == pytest.approx(image.max() / 2e-6)
    with pytest.raises(ValueError, match="primary_beam must be positive"):
        measure_sources(image, labels, wcs, "B1", noise=1e-6, primary_beam=0.0)


def test_tight_mask_grown_recovers_flux(scene):
    image, _, wcs = scene
    tight = (image > 0.3 * image.max()).astype(np.int32)
    cut = measure_sources(image, tight, wcs, "B1", noise=1e-6)
    grown = measure_sources(image, tight, wcs, "B1", noise=1e-6, grow=8)
    assert cut["flux"][0] < 0.8e-3
    assert grown["flux"][0] == pytest.approx(1e-3, rel=0.02)


def test_point_and_extended_sources_classified(rng):
    image = gaussian_source(1e-3, 0.0, 0.0, 0.0, 20.0, 30.0)
    image += gaussian_source(2e-3, 8.0, 3.0, 120.0, 58.0, 36.0)  # 8" > 2 beams
    noise = 1e-6
    image += rng.normal(0, noise, SHAPE)
    labels = label_components(image > 5 * noise, min_area=5).labels
    rule = ClassRule(extended_beams=2.0)
    cat = measure_sources(image, labels, sdc1_wcs(BAND, SHAPE), "B1", noise=noise, rule=rule)
    point, ext = cat
    assert point["b_maj"] < 0.5 and (point["size"], point["class"]) == (2, 3)
    assert point["compactness"] == pytest.approx(1.0, rel=0.03)
    assert (ext["size"], ext["class"]) == (1, 1)
    assert ext["b_maj"] == pytest.approx(8.0 * GAUSS_TO_LAS, rel=0.05)
    assert ext["pa_eon"] == pytest.approx(120.0, abs=1.0)
    assert ext["pa"] == pytest.approx(150.0, abs=1.0)
    assert ext["flux"] == pytest.approx(2e-3, rel=0.05)  # wings below 5 sigma are cut
    assert 0 < ext["core_frac"] == pytest.approx(ext["compactness"])


def test_deconvolve_and_bad_inputs(scene):
    assert deconvolve_fwhm([5.0, 1.0], 3.0).tolist() == [4.0, 0.0]
    image, labels, wcs = scene
    with pytest.raises(ValueError, match="equal 2-D shapes"):
        measure_sources(image, labels[:10], wcs, "B1")
    with pytest.raises(ValueError, match="noise must be positive"):
        measure_sources(image, labels, wcs, "B1", noise=0.0)
    assert len(measure_sources(image, 0 * labels, wcs, "B1", noise=1.0)) == 0


def pixel_blob(shape, x0, y0, sx, sy, theta_deg, amp):
    """Elliptical Gaussian in pixel units (sigmas along axes rotated by theta from x)."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    t = math.radians(theta_deg)
    u = (x - x0) * math.cos(t) + (y - y0) * math.sin(t)
    v = -(x - x0) * math.sin(t) + (y - y0) * math.cos(t)
    return amp * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


def reference_measurements(image, labels, wcs):
    """One label at a time with the plain formulas: the reference for the vectorised code."""
    ny, nx = image.shape
    scale = wcs.celestial.pixel_scale_matrix
    design = np.array([[1, dx, dy, dx * dx, dx * dy, dy * dy] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], float)
    out = {}
    for lab in np.unique(labels[labels > 0]):
        ys, xs = np.nonzero(labels == lab)  # raster order
        values = image[ys, xs]
        j = int(np.argmax(values))  # first of the brightest
        xp, yp = float(xs[j]), float(ys[j])
        if 0 < xs[j] < nx - 1 and 0 < ys[j] < ny - 1:
            patch = image[ys[j] - 1 : ys[j] + 2, xs[j] - 1 : xs[j] + 2].ravel()
            patch = np.log(patch) if np.all(patch > 0) else patch
            _, bx, by, axx, axy, ayy = np.linalg.lstsq(design, patch, rcond=None)[0]
            hessian = np.array([[2 * axx, axy], [axy, 2 * ayy]])
            if hessian[0, 0] < 0 and np.linalg.det(hessian) > 0:
                step = np.linalg.solve(hessian, [-bx, -by])
                if np.all(np.abs(step) <= 1):
                    xp, yp = xp + step[0], yp + step[1]
        w = np.clip(values, 0, None)
        xc, yc, maj, mnr, pa = xp, yp, 0.0, 0.0, 0.0
        if w.sum() > 0:
            xc, yc = np.average(xs, weights=w), np.average(ys, weights=w)
            cov = np.cov(np.stack([xs, ys]).astype(float), aweights=w, bias=True)
            evals, evecs = np.linalg.eigh(scale @ cov @ scale.T * 3600.0**2)
            mnr, maj = FWHM_PER_SIGMA * np.sqrt(np.clip(evals, 0, None))
            pa = math.degrees(math.atan2(evecs[0, 1], evecs[1, 1])) % 180
        out[int(lab)] = {"xp": xp, "yp": yp, "x": xc, "y": yc, "fwhm_maj": maj, "fwhm_min": mnr,
                         "pa_eon": pa, "peak_flux": values[j], "total": values.sum(), "area_pix": values.size}
    return out


def test_vectorised_measurements_match_per_source_reference(rng):
    shape = (48, 64)
    parts = {3: pixel_blob(shape, 10.3, 8.6, 1.8, 1.8, 0, 1.0),  # round Gaussian
             7: pixel_blob(shape, 46.4, 32.2, 4.0, 1.2, 35, 0.5),  # elongated, rotated
             12: pixel_blob(shape, -0.3, 35.5, 2.0, 1.5, 0, 0.8),  # peak on the image edge
             20: pixel_blob(shape, 22.0, 40.0, 1.5, 1.5, 0, 0.3),  # made all-negative below
             31: pixel_blob(shape, 52.0, 6.0, 3.0, 2.0, 10, 0.2),  # two tied peaks set below
             44: pixel_blob(shape, 21.3, 22.5, 5.0, 0.35, math.degrees(math.atan2(1, 3)), 0.4)}
    # 44: a thin noise-free ridge (the log fit is exact) whose brightest pixel (20, 22) lies
    # 1.3 px in x from its centre: the fit steps more than a pixel, the pixel is kept
    image = rng.normal(0, 2e-3, shape)  # the masks' wings hold negative pixels
    labels = np.zeros(shape, np.int32)
    for lab, part in parts.items():
        image += part
        labels[part > 0.01 * part.max()] = lab
    assert sum((part > 0.01 * part.max()).sum() for part in parts.values()) == (labels > 0).sum()
    negative = labels == 20
    image[negative] = -np.abs(image[negative])
    ridge = ndimage.binary_dilation(labels == 44, np.ones((3, 3)))
    image[ridge] = sum(parts.values())[ridge]
    image[5, 56] = image[8, 48] = 0.5  # tie: the first in raster order is (y, x) = (5, 56)
    wcs = sdc1_wcs(BAND, shape)
    t = math.radians(25.0)
    wcs.wcs.pc = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]  # rotated sky axes,
    wcs.wcs.cdelt[1] *= 1.2  # non-square pixels: pixel_scale_matrix is not symmetric
    wcs.wcs.set()
    ref = reference_measurements(image, labels, wcs)
    assert (ref[31]["peak_flux"], round(ref[31]["xp"]), round(ref[31]["yp"])) == (0.5, 56, 5)
    assert (ref[12]["xp"], ref[20]["fwhm_maj"], ref[20]["x"]) == (0.0, 0.0, ref[20]["xp"])
    assert (ref[44]["xp"], ref[44]["yp"]) == (20.0, 22.0) and ref[3]["xp"] % 1 != 0
    assert ref[7]["fwhm_maj"] > 2 * ref[7]["fwhm_min"] > 0

    cat = measure_sources(image, labels, wcs, BAND, noise=1e-3)
    assert cat["label"].tolist() == cat["id"].tolist() == sorted(parts)
    pixel_arcsec2 = abs(np.linalg.det(wcs.pixel_scale_matrix)) * 3600.0**2
    beam_area_pix = gaussian_area(BAND.beam_fwhm_arcsec) / pixel_arcsec2
    for row in cat:
        r = ref[row["label"]]
        for key in ("x", "y", "fwhm_maj", "fwhm_min", "peak_flux", "area_pix"):
            assert row[key] == pytest.approx(r[key], rel=1e-9, abs=1e-12), (row["label"], key)
        assert abs((row["pa_eon"] - r["pa_eon"] + 90) % 180 - 90) < 1e-7, row["label"]
        assert row["flux"] == pytest.approx(r["total"] / beam_area_pix, rel=1e-9)
        ra, dec = wcs.pixel_to_world_values(r["xp"], r["yp"])
        assert (row["ra_core"], row["dec_core"]) == pytest.approx((float(wrap_ra(ra)), float(dec)), abs=1e-12)
