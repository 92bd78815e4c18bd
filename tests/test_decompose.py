"""Gaussian components of segmented sources: curvature summits, the joint amplitude fit,
the flux shares, blanked pixels, and the block bookkeeping of the streamed catalogue."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.core.gaussian import FWHM_PER_SIGMA
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.postprocess import blocks as bl
from radioseg_utils.postprocess.decompose import curvature_summits, decompose_sources
from radioseg_utils.postprocess.measure import measure_sources

BEAM_PIX = 4.0
SHAPE = (48, 64)
RMS = 0.01


def scene(sources, rng=None):
    """Image of circular beam-shaped point sources ``(x, y, peak)`` plus optional noise."""
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(float)
    sigma = BEAM_PIX / FWHM_PER_SIGMA
    image = np.zeros(SHAPE)
    for x0, y0, peak in sources:
        image += peak * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
    if rng is not None:
        image += rng.normal(0.0, RMS, SHAPE)
    return image


def measured(image, labels):
    wcs = sdc1_wcs("B1", SHAPE)
    beam = BEAM_PIX * abs(wcs.wcs.cdelt[1]) * 3600
    cat = measure_sources(image, labels, wcs, "B1", noise=RMS, beam_fwhm_arcsec=beam, grow=0)
    return cat, wcs, beam


def decompose(image, labels, **kwargs):
    cat, wcs, beam = measured(image, labels)
    return cat, decompose_sources(image, labels, cat, wcs, noise=RMS, beam_fwhm_arcsec=beam, **kwargs)


def test_a_pair_1p5_beams_apart_in_one_segment_is_two_components():
    image = scene([(20.0, 24.0, 1.0), (26.0, 24.0, 0.5)])
    labels = (image > 0.05).astype(np.int32)
    cat, comps = decompose(image, labels)
    assert len(cat) == 1 and len(comps) == 2
    assert comps["x"].tolist() == pytest.approx([20.0, 26.0], abs=0.1)
    assert comps["peak_flux"].tolist() == pytest.approx([1.0, 0.5], rel=0.01)
    assert comps["flux"].sum() == pytest.approx(cat["flux"][0], rel=1e-12)  # shares add up
    assert comps["fixed_beam"].all() and np.all(comps["label"] == 1)
    assert str(comps["flux"].unit) == "Jy" and str(comps["ra"].unit) == "deg"
    # the further component must reach min_snr in the joint fit, else it is dropped
    _, one = decompose(image, labels, min_snr=0.6 / RMS)
    assert len(one) == 1 and not one["fixed_beam"][0] and one["flux"][0] == cat["flux"][0]


def test_a_single_source_is_one_component_with_its_measured_shape(rng):
    image = scene([(30.3, 20.6, 0.5)], rng)
    labels = (image > 5 * RMS).astype(np.int32)
    labels[:, :5] = 0  # noise peaks away from the source are not in its segment
    cat, comps = decompose(image, labels)
    assert len(comps) == 1 and not comps["fixed_beam"][0]
    for name in ("flux", "fwhm_maj", "fwhm_min", "pa_eon"):
        assert comps[name][0] == cat[name][0]
    assert (comps["x"][0], comps["y"][0]) == pytest.approx((30.3, 20.6), abs=0.2)
    assert comps["peak_snr"][0] == pytest.approx(50.0, rel=0.1)


def test_summits_are_per_segment_and_every_segment_has_one():
    image = scene([(15.0, 24.0, 1.0), (45.0, 24.0, 1.0)])
    labels = np.zeros(SHAPE, np.int32)
    labels[image > 0.05] = 1
    labels[:, 30:][image[:, 30:] > 0.05] = 2
    labels[2:4, 2:4] = 3  # a flat patch: no negative curvature, its brightest pixel
    image[2:4, 2:4] = 0.02
    lab, y, x = curvature_summits(image, labels, image / RMS, min_snr=5.0)
    assert lab.tolist() == [1, 2, 3]
    assert (x[:2].tolist(), y[:2].tolist()) == ([15, 45], [24, 24])
    # a summit across the border of two segments is one in each
    labels[:, 15:] = np.where(labels[:, 15:] == 1, 4, labels[:, 15:])
    assert sorted(curvature_summits(image, labels, image / RMS)[0].tolist()) == [1, 2, 3, 4]


def test_blanked_pixels_take_no_part(rng):
    image = scene([(20.0, 24.0, 1.0), (26.0, 24.0, 0.5)], rng)
    labels = (scene([(20.0, 24.0, 1.0), (26.0, 24.0, 0.5)]) > 0.05).astype(np.int32)
    cat, comps = decompose(image, labels)
    blanked = image.copy()
    blanked[:, 28:] = np.nan  # the outer wing of the fainter one
    labels[:, 28:] = 0
    cat_b, comps_b = decompose(blanked, labels)
    assert len(comps_b) == 2 and np.isfinite(comps_b["peak_flux"]).all()
    assert comps_b["peak_flux"].tolist() == pytest.approx(comps["peak_flux"].tolist(), rel=0.15)


def test_block_bookkeeping_keeps_the_owned_sources_components():
    block = bl.catalogue_blocks((100, 100), block=64, margin=8)[1]  # core x 64..100, window 56..
    labels = np.zeros((72, 44), np.int32)
    labels[10:14, 2:5] = 1  # centroid x = 59.5: owned by the block to the left
    labels[30:36, 20:30] = 2
    labels[50:54, 30:34] = 3
    window = Table({"label": [1, 2, 3], "x": [3.0, 24.5, 31.5], "y": [11.5, 32.5, 51.5]})
    parts = Table({"label": [1, 2, 2, 3], "x": [3.0, 22.0, 27.0, 31.5], "y": [11.5, 32.5, 32.5, 51.5],
                   "flux": [1.0, 2.0, 3.0, 4.0]})
    core, cat = bl.own_core(block, labels, window)
    comps = bl.own_components(block, labels, window, parts)
    assert cat["id"].tolist() == [1, 2] and comps["source_id"].tolist() == [1, 1, 2]
    assert comps["x"].tolist() == [78.0, 83.0, 87.5] and "label" not in comps.colnames
    assert comps["flux"].tolist() == [2.0, 3.0, 4.0]
    shifted = bl.offset_components(comps, offset=10, first=5)
    assert shifted["component"].tolist() == [5, 6, 7] and shifted["source_id"].tolist() == [11, 11, 12]
    assert comps["source_id"].tolist() == [1, 1, 2]  # the input is untouched


def test_a_catalogue_missing_a_segment_is_an_error():
    image = scene([(20.0, 24.0, 1.0)])
    labels = (image > 0.05).astype(np.int32)
    cat, wcs, beam = measured(image, labels)
    cat["label"] = [7]
    with pytest.raises(ValueError, match="lacks sources"):
        decompose_sources(image, labels, cat, wcs, noise=RMS, beam_fwhm_arcsec=beam)
