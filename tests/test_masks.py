"""Tests of radioseg_utils.data.masks: footprints, S/N selection, labels, skips and tiling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.core.bands import get_band
from radioseg_utils.data.masks import EmptySelectionError, make_masks
from radioseg_utils.io.catalogue import wrap_ra
from radioseg_utils.io.wcs import sdc1_wcs

BAND = get_band("B1")
SHAPE = (64, 80)
NOISE = 1e-7
SIGMA_BEAM = BAND.beam_fwhm_pix / (2 * math.sqrt(2 * math.log(2)))


@pytest.fixture(scope="module")
def wcs():
    return sdc1_wcs(BAND, SHAPE)


def point_sources(wcs, x, y, flux, *, b_maj=0.0, b_min=0.0, pa=0.0, cls=3) -> Table:
    """Catalogue of SFGs (Gaussian, ``size`` 2) at 0-based pixel positions."""
    x, y, flux, b_maj, b_min, pa, cls = np.broadcast_arrays(x, y, flux, b_maj, b_min, pa, cls)
    ra, dec = wcs.wcs_pix2world(np.atleast_1d(x).astype(float), np.atleast_1d(y).astype(float), 0)
    n = ra.size
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()  # noqa: E731
    return Table({
        "id": np.arange(n), "ra_core": wrap_ra(ra), "dec_core": dec, "ra_cent": wrap_ra(ra),
        "dec_cent": dec, "flux": full(flux), "core_frac": np.zeros(n), "b_maj": full(b_maj),
        "b_min": full(b_min), "pa": full(pa), "size": np.full(n, 2),
        "class": np.broadcast_to(cls, (n,)).astype(int),
    })


def lattice_count(peak_over_threshold: float) -> int:
    """Pixels of an integer grid where a beam centred on a pixel is >= the threshold."""
    r2 = 2 * SIGMA_BEAM**2 * math.log(peak_over_threshold)
    k = np.arange(-10, 11)
    return int(np.count_nonzero(k[:, None] ** 2 + k[None, :] ** 2 <= r2))


@pytest.mark.parametrize("k_sigma", [1.0, 3.0])
def test_point_source_footprint_is_beam_area(wcs, k_sigma):
    peak_snr = 1e4
    cat = point_sources(wcs, 40, 30, peak_snr * NOISE)
    binary, labels, report = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE, k_sigma=k_sigma)
    area = int(binary.sum())
    assert area == lattice_count(peak_snr / k_sigma)
    analytic = BAND.beam_area_pix * math.log(peak_snr / k_sigma)  # pi FWHM^2/(4 ln2) ln(peak/k sigma)
    assert area == pytest.approx(analytic, rel=0.1)
    assert binary[30, 40] == 1 and labels[30, 40] == 1
    assert report.peak_snr[0] == pytest.approx(peak_snr, rel=1e-5)
    assert report.n_zero_size == 1


def test_ellipse_footprint_of_point_and_elongated_source(wcs):
    cat = point_sources(wcs, [20, 55], [30, 30], 1e-4, b_maj=[0.0, 6.0], b_min=[0.0, 1.5])
    binary, labels, _ = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE, footprint="ellipse")
    # point source: half-maximum circle of diameter FWHM = 2.5 px -> the centre and 4 neighbours
    assert int((labels == 1).sum()) == 5
    # SFG of size 2: Gaussian of FWHM b_maj, convolved with the beam
    fwhm = [math.hypot(b / BAND.pixel_arcsec, BAND.beam_fwhm_pix) for b in (6.0, 1.5)]
    assert int((labels == 2).sum()) == pytest.approx(math.pi * fwhm[0] * fwhm[1] / 4, rel=0.1)
    assert binary.sum() == (labels > 0).sum()


def test_snr_cut_removes_exactly_the_faint_sources(wcs):
    snr = np.array([3.0, 4.9, 5.1, 8.0, 20.0, 4.99, 5.001])
    x = 6 + 11 * np.arange(snr.size)
    cat = point_sources(wcs, x, np.full(snr.size, 32), snr * NOISE)
    _, labels, report = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE, snr_min=5.0)
    assert report.rows.tolist() == [2, 3, 4, 6]
    np.testing.assert_allclose(report.peak_snr, [5.1, 8.0, 20.0, 5.001], rtol=1e-5)
    assert report.n_below_snr == 3
    assert sorted(np.unique(labels[labels > 0]).tolist()) == [3, 4, 5, 7]


def test_label_map_round_trips_source_count(wcs, rng):
    n = 12
    gx, gy = np.meshgrid(np.arange(8, 80, 18), np.arange(8, 64, 20))
    x, y = gx.ravel()[:n], gy.ravel()[:n]
    flux = rng.uniform(20, 200, n) * NOISE
    binary, labels, report = make_masks(point_sources(wcs, x, y, flux), wcs, BAND, shape=SHAPE,
                                        noise=NOISE)
    assert report.n_selected == n and report.n_labelled == n
    assert np.unique(labels[labels > 0]).tolist() == list(range(1, n + 1))
    assert labels[y, x].tolist() == list(range(1, n + 1))
    np.testing.assert_array_equal(binary, labels > 0)
    assert binary.dtype == np.uint8 and labels.dtype == np.int32


def test_overlap_goes_to_the_brightest_model(wcs):
    cat = point_sources(wcs, [30, 34], [32, 32], [100 * NOISE, 1000 * NOISE])
    _, labels, report = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE)
    assert labels[32, 30] == 1 and labels[32, 34] == 2
    # Midway (x = 32) the brighter source's model is 10x higher.
    assert labels[32, 32] == 2
    # The faint source keeps the pixels left of its peak only.
    assert labels[32, 27] == 1 and not np.any(labels[:, 33:] == 1)
    assert report.n_labelled == 2


def test_hidden_source_is_counted_as_not_labelled(wcs):
    cat = point_sources(wcs, [40, 40], [30, 30], [10 * NOISE, 1000 * NOISE])
    _, labels, report = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE)
    assert report.n_selected == 2 and report.n_labelled == 1
    assert set(np.unique(labels).tolist()) == {0, 2}


def test_bad_rows_are_skipped_and_counted(wcs):
    cat = point_sources(wcs, [10, 20, 30, 40, 50, 60, 500, 70], [32] * 8, [50 * NOISE] * 8)
    cat["flux"][1] = np.nan
    cat["flux"][2] = 0.0
    cat["b_maj"][3] = -1.0
    cat["class"][4] = 7
    cat["ra_cent"][5] = np.nan
    _, labels, report = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE)
    assert report.skipped == {"bad_position": 1, "nan_flux": 1, "nonpositive_flux": 1,
                              "bad_size": 1, "bad_class": 1, "off_grid": 1}
    assert report.rows.tolist() == [0, 7]
    assert report.as_dict()["n_selected"] == 2


def test_empty_selection_raises_with_counts(wcs):
    cat = point_sources(wcs, [10, 500], [32, 32], [2 * NOISE, 50 * NOISE])
    with pytest.raises(EmptySelectionError, match=r"no source selected out of 2: 1 below.*off_grid 1"):
        make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE)
    binary, labels, report = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE, allow_empty=True)
    assert binary.sum() == 0 and labels.sum() == 0 and report.n_selected == 0


def test_tiled_uncached_memmap_equals_single_pass(wcs, rng, tmp_path):
    n = 40
    cat = point_sources(wcs, rng.uniform(-3, 83, n), rng.uniform(-3, 67, n),
                        rng.uniform(3, 300, n) * NOISE, b_maj=rng.uniform(0, 4, n),
                        b_min=0.5, pa=rng.uniform(0, 180, n))
    ref_b, ref_l, ref_r = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE)
    b, lab, r = make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE, tile=7, cache_bytes=0,
                           out_dir=tmp_path / "m")
    np.testing.assert_array_equal(lab, ref_l)
    np.testing.assert_array_equal(b, ref_b)
    np.testing.assert_array_equal(np.load(tmp_path / "m" / "labels.npy"), ref_l)
    assert r.n_labelled == ref_r.n_labelled and r.rows.tolist() == ref_r.rows.tolist()
    assert ref_r.n_selected > 10


def test_noise_map_sets_local_snr_and_footprint(wcs):
    cat = point_sources(wcs, [20, 60], [32, 32], [8 * NOISE, 8 * NOISE])
    noise_map = np.full(SHAPE, NOISE)
    noise_map[:, 40:] = 2 * NOISE  # the right-hand source is at S/N 4 there
    _, labels, report = make_masks(cat, wcs, BAND, shape=SHAPE, noise=noise_map)
    assert report.rows.tolist() == [0]
    assert report.peak_snr.tolist() == pytest.approx([8.0], rel=1e-5)
    assert int((labels == 1).sum()) == lattice_count(8.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"footprint": "box"}, "unknown footprint 'box'"),
        ({"noise": 0.0}, "noise must be finite and positive"),
        ({"noise": np.ones((3, 3))}, r"noise map shape \(3, 3\) differs from grid shape \(64, 80\)"),
        ({"k_sigma": 0.0}, "k_sigma positive"),
        ({"tile": 0}, "tile must be a positive"),
    ],
)
def test_bad_options_raise(wcs, kwargs, match):
    cat = point_sources(wcs, 10, 10, 50 * NOISE)
    options = {"shape": SHAPE, "noise": NOISE, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_masks(cat, wcs, BAND, **options)


def test_missing_column_raises(wcs):
    cat = point_sources(wcs, 10, 10, 50 * NOISE)
    del cat["class"]
    with pytest.raises(ValueError, match="lacks column.*class"):
        make_masks(cat, wcs, BAND, shape=SHAPE, noise=NOISE)
