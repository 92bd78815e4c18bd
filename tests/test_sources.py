"""Tests of the beam-convolved source models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning

from radioseg_utils.core.bands import get_band
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.simulation.sources import (
    EXP_MIXTURE,
    PrimaryBeam,
    SourceStamp,
    add_stamp,
    clip_stamp,
    gaussian_components,
    pa_east_of_north,
    source_stamps,
)

SHAPE = (96, 96)
BAND = get_band("B1")


def _catalogue(wcs, rows):
    """Tidy catalogue from (x, y, flux, core_frac, b_maj, b_min, pa, size, class) pixel rows."""
    columns = (np.array(c, dtype=float) for c in zip(*rows))
    x, y, flux, core_frac, b_maj, b_min, pa, size, cls = columns
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    ra = np.where(ra > 180, ra - 360, ra)
    return Table({"ra_core": ra, "dec_core": dec, "ra_cent": ra, "dec_cent": dec, "flux": flux,
                  "core_frac": core_frac, "b_maj": b_maj, "b_min": b_min, "pa": pa,
                  "size": size.astype(int), "class": cls.astype(int)})


def _render(cat, wcs, shape=SHAPE, **kwargs):
    image = np.zeros(shape)
    for stamp in source_stamps(cat, wcs, BAND, shape=shape, **kwargs):
        add_stamp(image, stamp)
    return image


def _moments(image):
    """Centroid (x, y) and second moments (xx, yy, xy) of an image, in pixels."""
    yy, xx = np.indices(image.shape)
    total = image.sum()
    mx, my = (image * xx).sum() / total, (image * yy).sum() / total
    return (mx, my, (image * (xx - mx) ** 2).sum() / total, (image * (yy - my) ** 2).sum() / total,
            (image * (xx - mx) * (yy - my)).sum() / total)


@pytest.mark.parametrize(
    "row",
    [
        (48.0, 48.0, 1e-4, 0.0, 1.2, 0.5, 30.0, 2, 3),   # SFG, Gaussian
        (48.3, 47.6, 1e-4, 0.0, 2.0, 1.0, 75.0, 3, 3),   # SFG, exponential disc
        (48.0, 48.0, 1e-4, 0.7, 1.5, 1.5, 0.0, 2, 2),    # FS-AGN
        (47.5, 48.2, 1e-4, 0.05, 12.0, 4.0, 120.0, 1, 1),  # SS-AGN, LAS 12"
    ],
    ids=["sfg-gauss", "sfg-exp", "fs-agn", "ss-agn"],
)
def test_flux_conserved_per_source_type(row):
    wcs = sdc1_wcs(BAND, SHAPE)
    image = _render(_catalogue(wcs, [row]), wcs)
    assert image.sum() / BAND.beam_area_pix == pytest.approx(row[2], rel=0.01)


def test_point_source_has_beam_fwhm_and_lands_on_its_pixel():
    wcs = sdc1_wcs(BAND, SHAPE)
    image = _render(_catalogue(wcs, [(40.0, 55.0, 2e-4, 0.0, 0.0, 0.0, 0.0, 2, 3)]), wcs)
    assert np.unravel_index(np.argmax(image), SHAPE) == (55, 40)
    mx, my, vxx, vyy, vxy = _moments(image)
    assert (mx, my) == (pytest.approx(40.0, abs=1e-3), pytest.approx(55.0, abs=1e-3))
    fwhm = 2 * np.sqrt(2 * np.log(2)) * np.sqrt([vxx, vyy])
    np.testing.assert_allclose(fwhm, BAND.beam_fwhm_pix, rtol=0.02)
    assert image.max() == pytest.approx(2e-4, rel=1e-3)  # peak of a point source = its flux


def test_pa_zero_lies_along_ra_and_ninety_along_dec():
    wcs = sdc1_wcs(BAND, SHAPE)
    along_x = _moments(_render(_catalogue(wcs, [(48, 48, 1e-4, 0, 4.0, 0.5, 0.0, 2, 3)]), wcs))
    along_y = _moments(_render(_catalogue(wcs, [(48, 48, 1e-4, 0, 4.0, 0.5, 90.0, 2, 3)]), wcs))
    assert along_x[2] > 4 * along_x[3]
    assert along_y[3] > 4 * along_y[2]
    assert pa_east_of_north(0.0) == 90.0 and pa_east_of_north(120.0) == pytest.approx(150.0)


def test_ss_agn_lobes_put_the_centroid_on_the_catalogue_centroid():
    wcs = sdc1_wcs(BAND, SHAPE)
    cat = _catalogue(wcs, [(48.0, 48.0, 1e-4, 0.02, 20.0, 5.0, 0.0, 1, 1)])
    ra_c, dec_c = wcs.wcs_pix2world([51.0], [48.0], 0)  # centroid 3 px along +x of the core
    cat["ra_cent"], cat["dec_cent"] = ra_c - 360.0, dec_c
    mx, my, *_ = _moments(_render(cat, wcs))
    assert (mx, my) == (pytest.approx(51.0, abs=0.05), pytest.approx(48.0, abs=0.05))


def test_exponential_mixture_matches_exponential_enclosed_flux():
    amp, var = np.array(EXP_MIXTURE).T
    amp = amp / amp.sum()
    for radius in (0.5, 1.0, 2.0, 4.0):
        exact = 1 - (1 + radius) * np.exp(-radius)
        mixture = np.sum(amp * (1 - np.exp(-radius**2 / (2 * var))))
        assert mixture == pytest.approx(exact, abs=5e-4)


def test_batched_stamps_equal_single_source_stamps(rng):
    wcs = sdc1_wcs(BAND, SHAPE)
    rows = [(rng.uniform(10, 86), rng.uniform(10, 86), 1e-5, 0.1 * (c != 3), rng.uniform(0, 3),
             0.5, rng.uniform(0, 180), 1 if c == 1 else 2, c) for c in (1, 2, 3, 3, 3, 2)]
    cat = _catalogue(wcs, rows)
    together = {s.index: s for s in source_stamps(cat, wcs, BAND, shape=SHAPE)}
    for i in range(len(cat)):
        alone = next(source_stamps(cat[i:i + 1], wcs, BAND, shape=SHAPE))
        np.testing.assert_allclose(together[i].data, alone.data, rtol=1e-5, atol=1e-12)
        assert (together[i].y0, together[i].x0) == (alone.y0, alone.x0)


def test_clip_and_add_stamp_partly_off_grid():
    stamp = SourceStamp(index=0, y0=-2, x0=8, data=np.arange(16, dtype=np.float32).reshape(4, 4))
    image = np.zeros((5, 10))
    add_stamp(image, stamp)
    assert image.sum() == stamp.data[2:, :2].sum() == 8 + 9 + 12 + 13
    assert clip_stamp(SourceStamp(0, 20, 20, stamp.data), (5, 10)) is None
    off = _catalogue(sdc1_wcs(BAND, SHAPE), [(-200.0, 48.0, 1e-4, 0, 0, 0, 0, 2, 3)])
    assert list(source_stamps(off, sdc1_wcs(BAND, SHAPE), BAND, shape=SHAPE)) == []


def test_primary_beam_attenuates_flux():
    wcs = sdc1_wcs(BAND, SHAPE)
    cat = _catalogue(wcs, [(48.0, 48.0, 1e-4, 0, 0, 0, 0, 2, 3)])
    def beam(ra, dec):
        return np.full(np.shape(ra), 0.8)

    comps = gaussian_components(cat, wcs, BAND, primary_beam=beam)
    assert comps.flux.sum() == pytest.approx(0.8e-4)
    image = _render(cat, wcs, primary_beam=beam)
    assert image.sum() / BAND.beam_area_pix == pytest.approx(0.8e-4, rel=1e-4)


def test_sdc1_primary_beam_file(sdc1_dir):
    beam = PrimaryBeam.from_fits(sdc1_dir / "PrimaryBeam_B1.fits")
    ra = np.array([0.0, -0.33, -1.0, -2.0])
    values = beam(ra, np.array([-30.0, -29.66, -30.0, -30.0]))
    assert values[0] == pytest.approx(1.0, abs=2e-3)
    assert values[1] == pytest.approx(0.897, abs=0.01)  # PyBDSF/truth flux ratio ~0.9 there
    assert np.all(np.diff(values[[0, 2, 3]]) < 0)


def test_truth_renders_like_the_real_cutout(sdc1_dir):
    """The documented PA convention fits the real image much better than the others."""
    with warnings.catch_warnings():  # the SDC1 header has an invalid BLANK and no MJD-OBS
        warnings.filterwarnings("ignore", "Invalid 'BLANK' keyword", VerifyWarning)
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        with fits.open(sdc1_dir / "B1_1000h_0.05tr.fits", memmap=False) as hdul:
            image = hdul[0].data[0, 0].astype(float)
            wcs = WCS(hdul[0].header).celestial
    names = ["id", "ra_core", "dec_core", "ra_cent", "dec_cent", "flux", "core_frac", "b_maj",
             "b_min", "pa", "size", "class"]
    truth = Table(np.loadtxt(sdc1_dir / "truth_B1_1000h_0.05tr.cat"), names=names)
    beam = PrimaryBeam.from_fits(sdc1_dir / "PrimaryBeam_B1.fits")
    model = _render(truth, wcs, image.shape, primary_beam=beam)
    bright = model > 5 * BAND.noise(1000)
    assert np.corrcoef(image[bright], model[bright])[0, 1] > 0.9
    truth["pa"] = 90.0 - truth["pa"]  # the astronomical convention read as SDC1 PA
    wrong = _render(truth, wcs, image.shape, primary_beam=beam)
    assert np.std(image - wrong) > 1.2 * np.std(image - model)


@pytest.mark.parametrize(
    ("change", "match"),
    [({"drop": "flux"}, "lacks column"), ({"class": 4}, "class 4"),
     ({"flux": np.nan}, "'flux' is not finite in row 0")],
)
def test_bad_catalogue_is_rejected(change, match):
    wcs = sdc1_wcs(BAND, SHAPE)
    cat = _catalogue(wcs, [(48.0, 48.0, 1e-4, 0, 0, 0, 0, 2, 3)])
    if "drop" in change:
        cat.remove_column(change["drop"])
    else:
        for key, value in change.items():
            cat[key] = [value]
    with pytest.raises(ValueError, match=match):
        list(source_stamps(cat, wcs, BAND, shape=SHAPE))


def test_bad_pad_is_rejected():
    wcs = sdc1_wcs(BAND, SHAPE)
    cat = _catalogue(wcs, [(48.0, 48.0, 1e-4, 0, 0, 0, 0, 2, 3)])
    with pytest.raises(ValueError, match="pad_fwhm must be positive"):
        list(source_stamps(cat, wcs, BAND, shape=SHAPE, pad_fwhm=0))
