"""Tests of radioseg_utils.io.fits_read (reading SDC1 images) and radioseg_utils.core.noise."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from astropy.io import fits

from radioseg_utils.core.bands import get_band
from radioseg_utils.core.noise import background_rms_map, estimate_noise
from radioseg_utils.inference.tiling import tile_starts
from radioseg_utils.io.catalogue import read_truth_catalogue
from radioseg_utils.io.fits_read import (
    SDC1FormatError,
    image_info,
    image_shape,
    open_fits,
    read_image,
    read_plane,
)
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.simulation.sources import PrimaryBeam

CUTOUT = "B1_1000h_0.05tr.fits"
#: |CDELT| of the SDC1 B1 header, in arcsec (1.67847e-4 deg).
B1_HEADER_PIXEL_ARCSEC = 1.67847e-4 * 3600.0


@pytest.fixture
def cutout(sdc1_dir):
    return sdc1_dir / CUTOUT


def _write(path, data, header):
    """Write a test FITS file without going through write_image's checks."""
    fits.PrimaryHDU(np.asarray(data, dtype=">f4"), header=header).writeto(path)
    return path


@pytest.fixture
def sim_header():
    return sdc1_header(sdc1_wcs("B1", (20, 30)), "B1", ndim=4)


# --------------------------------------------------------------------------- real cutout
def test_read_real_cutout(cutout):
    img = read_image(cutout)
    assert img.data.shape == (160, 174)
    assert img.data.dtype == np.float32 and img.data.dtype.isnative
    assert img.band.name == "B1"
    assert img.beam.bmaj == pytest.approx(1.5, abs=1e-6)
    assert img.beam.bmin == pytest.approx(1.5, abs=1e-6)
    assert img.beam.bpa == 0.0  # SDC1 headers have no BPA
    assert img.pixel_arcsec == pytest.approx(B1_HEADER_PIXEL_ARCSEC, rel=1e-9)
    assert img.beam_fwhm_pix == pytest.approx((1.5 / 0.6042492, 1.5 / 0.6042492), rel=1e-6)
    assert img.n_bad == 0 and img.finite_mask.all()
    assert img.origin == (0, 0)
    assert tuple(img.wcs.wcs.crpix) == (-1653.0, -1865.0)
    assert img.wcs.naxis == 2


def test_section_equals_slice_of_full_read(cutout):
    full = read_image(cutout)
    part = read_image(cutout, section=(slice(10, 50), slice(20, 90)))
    np.testing.assert_array_equal(part.data, full.data[10:50, 20:90])
    assert part.origin == (10, 20)
    # pixel (0, 0) of the section is pixel (x=20, y=10) of the full image
    np.testing.assert_allclose(
        part.wcs.pixel_to_world_values(0, 0), full.wcs.pixel_to_world_values(20, 10), rtol=1e-12
    )
    neg = read_image(cutout, section=(slice(-10, None), slice(None, 5)))
    np.testing.assert_array_equal(neg.data, full.data[-10:, :5])
    assert neg.origin == (150, 0)


@pytest.mark.parametrize(
    "section", [(slice(0, 10, 2), slice(0, 10)), (slice(5, 5), slice(0, 10)), (slice(0, 4),)]
)
def test_bad_section(cutout, section):
    with pytest.raises(ValueError, match="section"):
        read_image(cutout, section=section)


def test_tile_starts():
    assert tile_starts(10, 4, 1) == [0, 3, 6]
    assert tile_starts(160, 64, 8) == [0, 56, 96]
    assert tile_starts(174, 64, 8) == [0, 56, 110]
    assert tile_starts(64, 64, 8) == [0]
    assert tile_starts(3, 64, 8) == [0]
    with pytest.raises(ValueError, match="overlap < tile"):
        tile_starts(10, 4, 4)



def test_image_info_real_cutout(cutout):
    info = image_info(cutout)
    assert info["shape"] == [160, 174] and info["band"] == "B1" and info["n_bad"] == 0
    assert info["freq_mhz"] == 560.0 and info["bunit"] == "JY/BEAM"
    # SDC1_FACTS: this cutout has rms 3.57e-7 and median -2.5e-7 Jy/beam
    assert info["noise_rms"] == pytest.approx(3.57e-7, rel=0.03)  # MAD error ~2.5 % (correlated)
    assert info["noise_median"] == pytest.approx(-2.5e-7, rel=0.05)
    corners = np.array(info["corners_radec"])
    assert corners.shape == (4, 2)
    assert np.all((corners[:, 0] > -0.36) & (corners[:, 0] < -0.31))
    assert np.all((corners[:, 1] > -29.69) & (corners[:, 1] < -29.65))
    # corners 0 and 3 are the centres of the first and last pixel of row 0: 173 px apart
    span_deg = (corners[0, 0] - corners[3, 0]) * np.cos(np.radians(corners[0, 1]))
    assert span_deg == pytest.approx(173 * B1_HEADER_PIXEL_ARCSEC / 3600, rel=1e-3)


# --------------------------------------------------------------------------- SDC1 pixel grid
def test_training_catalogue_pixels_follow_sdc1_wcs(sdc1_dir, cutout):
    """The SDC1 x, y columns are 0-based pixels of a grid with CRPIX = 16384 (nx/2)."""
    truth = read_truth_catalogue(sdc1_dir / "TrainingSet_B1_v2_ML.txt")
    pixel_arcsec = read_image(cutout).pixel_arcsec
    wcs = sdc1_wcs("B1", (32768, 32768), pixel_arcsec=pixel_arcsec)
    assert tuple(wcs.wcs.crpix) == (16384.0, 16384.0)
    x, y = wcs.world_to_pixel_values(truth["ra_cent"], truth["dec_cent"])
    assert np.abs(x - truth["x"]).max() < 0.05
    assert np.abs(y - truth["y"]).max() < 0.05
    # one pixel off in CRPIX would move every source by one pixel
    shifted = sdc1_wcs("B1", (32768, 32768), pixel_arcsec=pixel_arcsec, crpix=(16385, 16385))
    xs, _ = shifted.world_to_pixel_values(truth["ra_cent"], truth["dec_cent"])
    assert np.median(xs - truth["x"]) == pytest.approx(1.0, abs=0.01)


def test_cutout_lies_on_the_full_sdc1_grid(cutout):
    img = read_image(cutout)
    full = sdc1_wcs("B1", (32768, 32768), pixel_arcsec=img.pixel_arcsec)
    yy, xx = np.mgrid[0:160:53, 0:174:57]
    fx, fy = full.world_to_pixel_values(*img.wcs.pixel_to_world_values(xx, yy))
    np.testing.assert_allclose(fx - xx, 18037.0, atol=1e-6)
    np.testing.assert_allclose(fy - yy, 18249.0, atol=1e-6)


# --------------------------------------------------------------------------- synthetic files
@pytest.mark.parametrize("ndim", [2, 4])
def test_write_read_round_trip(tmp_path, rng, ndim):
    data = rng.normal(0.0, 1e-6, (20, 30)).astype(np.float32)
    header = sdc1_header(sdc1_wcs("B2", (20, 30)), "B2", ndim=ndim)
    path = write_image(tmp_path / "sim.fits", data, header)
    img = read_image(path)
    np.testing.assert_array_equal(img.data, data)
    assert img.band.name == "B2"  # 2-D: from RESTFRQ; 4-D: from the FREQ axis
    assert img.beam.bmaj == pytest.approx(get_band("B2").beam_fwhm_arcsec)
    assert img.pixel_arcsec == pytest.approx(get_band("B2").pixel_arcsec)
    with pytest.raises(FileExistsError, match="exists"):
        write_image(path, data, header)


def test_nan_pixels_are_kept_and_counted(tmp_path, rng, sim_header):
    data = rng.normal(0.0, 1.0, (20, 30))
    data[3, 4] = data[5, 6] = data[7, 8] = np.nan
    data[0, 0] = np.inf
    path = _write(tmp_path / "nan.fits", data[None, None], sim_header)
    img = read_image(path)
    assert img.n_bad == 4
    assert img.finite_mask.sum() == 20 * 30 - 4 and not img.finite_mask[3, 4]
    assert np.isnan(img.data[5, 6]) and np.isinf(img.data[0, 0])
    info = image_info(path)
    assert info["n_bad"] == 4 and np.isfinite(info["noise_rms"])


def test_blank_keyword_on_float_data_is_harmless(tmp_path, rng, sim_header):
    data = rng.normal(0.0, 1.0, (1, 1, 20, 30)).astype(">f4")
    path = _write(tmp_path / "blank.fits", data, sim_header)
    with warnings.catch_warnings(), fits.open(path, mode="update") as hdul:
        warnings.simplefilter("ignore")
        hdul[0].header["BLANK"] = -1  # invalid on float data, as in the SDC1 headers
    assert fits.Header.fromfile(path)["BLANK"] == -1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = read_image(path)
    np.testing.assert_array_equal(img.data, data[0, 0])


def _header_without(header, *keys):
    header = header.copy()
    for key in keys:
        del header[key]
    return header


@pytest.mark.parametrize(
    ("shape", "edit", "match"),
    [
        ((2, 20, 30), None, r"NAXIS3 = 2.*cubes are not supported"),
        ((1, 3, 20, 30), None, r"NAXIS3 = 3"),
        ((1, 1, 20, 30), ("CTYPE1",), r"no WCS, header keyword CTYPE1 is missing"),
        ((1, 1, 20, 30), ("BMAJ",), r"header keyword BMAJ is missing"),
        ((1, 1, 20, 30), ("BMIN",), r"header keyword BMIN is missing"),
        ((1, 1, 20, 30), ("CTYPE3", "RESTFRQ"), r"no frequency in the header"),
        ((30,), None, r"expected a 2-D or 4-D image, found NAXIS = 1"),
        ((2, 1, 20, 30), None, r"NAXIS4 = 2"),
    ],
)
def test_bad_images(tmp_path, sim_header, shape, edit, match):
    header = _header_without(sim_header, *(edit or ()))
    if len(shape) != 4:
        axis_keys = ("CTYPE", "CRVAL", "CDELT", "CRPIX", "CUNIT")
        for key in [k for k in header if k[-1:] in "34" and k[:5] in axis_keys]:
            del header[key]
    path = _write(tmp_path / "bad.fits", np.zeros(shape), header)
    with pytest.raises(SDC1FormatError, match=match) as err:
        read_image(path)
    assert "bad.fits" in str(err.value)


def test_unknown_frequency(tmp_path, sim_header):
    header = sim_header.copy()
    header["CRVAL3"] = 3.0e9
    path = _write(tmp_path / "freq.fits", np.zeros((1, 1, 20, 30)), header)
    match = r"freq.fits: unknown frequency CRVAL3 = 3000000000.0"
    with pytest.raises(SDC1FormatError, match=match):
        read_image(path)


def test_not_fits_and_missing(tmp_path):
    text = tmp_path / "image.fits"
    text.write_text("ID RA DEC\n1 2 3\n")
    with pytest.raises(SDC1FormatError, match=r"image.fits is not a FITS file"):
        read_image(text)
    with pytest.raises(FileNotFoundError, match="nothere.fits"):
        read_image(tmp_path / "nothere.fits")


#: Every reader of FITS files; each must go through the validated opening path.
READERS = {
    "read_image": read_image,
    "image_info": image_info,
    "image_shape": image_shape,
    "read_plane": read_plane,
    "PrimaryBeam.from_fits": PrimaryBeam.from_fits,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("kind", ["empty", "text", "truncated data", "truncated header", "no image"])
def test_every_reader_names_a_bad_file_and_what_is_wrong(tmp_path, sim_header, bad_fits, kind,
                                                        reader):
    good = _write(tmp_path / "good.fits", np.zeros((1, 1, 20, 30)), sim_header)
    path, message = bad_fits(kind, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no astropy warning on the way either
        with pytest.raises(SDC1FormatError, match=f"^{re.escape(message)}$"):
            READERS[reader](path)


def test_a_cube_is_refused_by_every_reader(tmp_path, sim_header):
    path = _write(tmp_path / "cube.fits", np.zeros((1, 2, 20, 30)), sim_header)
    for reader in READERS.values():
        with pytest.raises(SDC1FormatError, match=r"cube.fits: expected one plane, but NAXIS3 = 2"):
            reader(path)


def test_read_plane_reads_a_primary_beam_like_file(tmp_path, sim_header, rng):
    data = rng.random((1, 1, 20, 30))
    path = _write(tmp_path / "pb.fits", data, sim_header)
    plane, header = read_plane(path)
    np.testing.assert_array_equal(plane, data[0, 0].astype(">f4"))
    assert plane.dtype == np.float64 and plane.dtype.isnative and header["NAXIS1"] == 30
    assert image_shape(path) == (20, 30)
    np.testing.assert_array_equal(PrimaryBeam.from_fits(path).data, plane)


def test_open_fits_checks_every_hdu(tmp_path, sim_header):
    image = fits.ImageHDU(np.zeros((20, 30), ">f4"))
    path = tmp_path / "two.fits"
    fits.HDUList([fits.PrimaryHDU(), image]).writeto(path)
    with open_fits(path) as hdul:
        assert len(hdul) == 2
    path.write_bytes(path.read_bytes()[:-2880])  # the last record of the image data
    with pytest.raises(SDC1FormatError, match=r"expected 2400 bytes of data in HDU 1, found 0"):
        image_shape(path)


# --------------------------------------------------------------------------- noise
def test_estimate_noise_ignores_sources_and_nan(rng):
    data = rng.normal(2.0, 0.5, (256, 256))
    data[100:110, 100:110] += 50.0  # a bright "source"
    data[0, :] = np.nan
    median, rms = estimate_noise(data)
    assert median == pytest.approx(2.0, abs=0.01)
    assert rms == pytest.approx(0.5, rel=0.03)
    mask = np.zeros(data.shape, bool)
    mask[:, :128] = True
    data[:, :128] += 10.0
    median, _ = estimate_noise(data, mask=mask)
    assert median == pytest.approx(2.0, abs=0.02)


def test_estimate_noise_small_exact():
    data = np.array([[1.0, 1.0, 2.0], [3.0, 3.0, 1000.0]])
    median, rms = estimate_noise(data, sigma_clip=3.0)
    # 1000 is clipped; of (1, 1, 2, 3, 3): median 2, MAD 1 -> rms 1.4826
    assert median == 2.0
    assert rms == pytest.approx(1.482602, rel=1e-6)


def test_estimate_noise_errors():
    with pytest.raises(ValueError, match="no finite, unmasked pixel"):
        estimate_noise(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="mask shape"):
        estimate_noise(np.zeros((4, 4)), mask=np.zeros((3, 3), bool))


def test_background_rms_map_tracks_gradient(rng):
    ny, nx = 120, 160
    gradient = np.linspace(0.0, 4.0, nx)[None, :] * np.ones((ny, 1))
    data = gradient + rng.normal(0.0, 1.0, (ny, nx))
    data[5, 5] = np.nan
    background, rms = background_rms_map(data, box=40, filter_size=1)
    assert background.shape == rms.shape == (ny, nx)
    inner = (slice(40, 80), slice(40, 120))
    assert np.abs(background[inner] - gradient[inner]).max() < 0.4
    assert np.nanmedian(rms) == pytest.approx(1.0, rel=0.1)
    with pytest.raises(ValueError, match="smaller than the box size"):
        background_rms_map(data, box=200)


# --------------------------------------------------------------------------- CLI
def test_cli_info(cutout, tmp_path, capsys):
    import json

    from radioseg_utils.cli import main

    assert main(["info", str(cutout), "--noise-box", "64"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [160, 174] and info["band"] == "B1" and info["noise_box"] == [64, 64]
    text = tmp_path / "notfits.fits"
    text.write_text("hello")
    assert main(["info", str(text)]) == 2
    assert "notfits.fits is not a FITS file" in capsys.readouterr().err
