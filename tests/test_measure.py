"""Tests of radioseg_utils.postprocess.measure on analytic Gaussian sources with known parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radioseg_utils.core.bands import get_band
from radioseg_utils.core.gaussian import deconvolve_fwhm
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
