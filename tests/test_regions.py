"""Tests of the catalogue ellipses drawn on an image's axes (radioseg_utils.io.regions)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from matplotlib.figure import Figure

from radioseg_utils.core.bands import get_band
from radioseg_utils.io.regions import plot_catalogue_ellipses
from radioseg_utils.io.wcs import sdc1_wcs

BAND = get_band("B1")
SHAPE = (100, 120)


def _catalogue(wcs, x, y, **columns):
    ra, dec = wcs.wcs_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return Table({"ra_cent": np.where(ra >= 180, ra - 360, ra), "dec_cent": dec, **columns})


def _axes():
    return Figure().add_subplot()


def test_sdc1_ellipses_sit_on_their_pixels_with_their_size_and_angle():
    wcs = sdc1_wcs(BAND, SHAPE)
    pixel = BAND.pixel_arcsec
    # SDC1 pa 0 (major axis east-west), 90 (north-south), 45 (north-west to south-east)
    cat = _catalogue(wcs, [20.0, 60.5, 90.0], [30.0, 50.0, 70.25],
                     b_maj=[10 * pixel, 6 * pixel, 4 * pixel],
                     b_min=[5 * pixel, 3 * pixel, 2 * pixel], pa=[0.0, 90.0, 45.0])
    ax = _axes()
    patches = plot_catalogue_ellipses(ax, cat, wcs, edgecolor="red")
    assert len(patches) == 3 and len(ax.patches) == 3
    centres = np.array([p.center for p in patches])
    np.testing.assert_allclose(centres, [[20.0, 30.0], [60.5, 50.0], [90.0, 70.25]], atol=1e-6)
    np.testing.assert_allclose([p.width for p in patches], [10, 6, 4], rtol=1e-3)
    np.testing.assert_allclose([p.height for p in patches], [5, 3, 2], rtol=1e-3)
    # north is +y and east -x: PA east of north 90 (SDC1 0) lies along x
    np.testing.assert_allclose(np.mod([p.angle for p in patches], 180), [0, 90, 135], atol=0.1)
    assert not patches[0].get_fill() and patches[0].get_edgecolor()[:3] == (1.0, 0.0, 0.0)


def test_measured_ellipses_keep_a_minimum_width_and_follow_a_section_wcs():
    wcs = sdc1_wcs(BAND, SHAPE)
    cat = _catalogue(wcs, [50.0], [40.0], fwhm_maj=[0.0], fwhm_min=[0.0], pa_eon=[30.0])
    section = wcs[20:80, 30:100]  # image[20:80, 30:100]
    (patch,) = plot_catalogue_ellipses(_axes(), cat, section, kind="measured", min_width=1.5)
    np.testing.assert_allclose(patch.center, (20.0, 20.0), atol=1e-6)
    assert (patch.width, patch.height) == (1.5, 1.5)
    assert patch.angle == pytest.approx(120.0, abs=0.1)


def test_an_empty_catalogue_draws_nothing_and_a_bad_kind_is_rejected():
    wcs = sdc1_wcs(BAND, SHAPE)
    empty = _catalogue(wcs, [], [], b_maj=[], b_min=[], pa=[])
    assert plot_catalogue_ellipses(_axes(), empty, wcs) == []
    with pytest.raises(ValueError, match="unknown ellipse kind"):
        plot_catalogue_ellipses(_axes(), empty, wcs, kind="ds9")
