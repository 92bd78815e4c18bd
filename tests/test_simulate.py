"""Tests of the correlated noise model and the field simulator."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from radioseg_utils.cli import main
from radioseg_utils.core.bands import get_band
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.simulation.noise_model import (
    REAL_NOISE_ACF,
    CorrelatedNoise,
    acf_fwhm,
    autocorrelation,
    kernel_from_acf,
)
from radioseg_utils.simulation.simulate import (
    BACKGROUND_SIGMA,
    FLUX_SCALE,
    NOISE_SIGMA,
    PAIR_SIGMA,
    load_primary_beam,
    simulate_field,
)
from radioseg_utils.simulation.sources import PrimaryBeam

BAND = get_band("B1")
RMS = BAND.noise(1000)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _catalogue(positions, flux=1e-2, shape=(256, 256), centre=(0.0, -30.0)):
    """Point sources (SFG, size 2, zero size) at pixel positions of the simulated grid."""
    wcs = sdc1_wcs(BAND, shape, centre=centre)
    x, y = np.array(positions, dtype=float).T
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    ra = np.where(ra > 180, ra - 360, ra)
    n = len(x)
    return Table({"id": np.arange(n) + 100, "ra_core": ra, "dec_core": dec, "ra_cent": ra,
                  "dec_cent": dec, "flux": np.full(n, flux), "core_frac": np.zeros(n),
                  "b_maj": np.zeros(n), "b_min": np.zeros(n), "pa": np.zeros(n),
                  "size": np.full(n, 2), "class": np.full(n, 3)})


# ----------------------------------------------------------------------------- noise
@pytest.mark.parametrize("fwhm", [(2.5, 2.5), (2.4, 2.8), (4.0, 3.0)])
def test_noise_rms_and_correlation_length_match_the_request(fwhm):
    image = CorrelatedNoise(rms=2.0, fwhm_pix=fwhm, seed=11).tile(0, 0, (512, 512))
    assert image.std() == pytest.approx(2.0, rel=0.03)
    acf_x, acf_y = autocorrelation(image, max_lag=3)
    assert acf_fwhm(acf_x) == pytest.approx(fwhm[0], rel=0.10)
    assert acf_fwhm(acf_y) == pytest.approx(fwhm[1], rel=0.10)


def test_noise_tiles_are_seamless_anywhere_and_offset_is_added():
    noise = CorrelatedNoise(rms=1.0, fwhm_pix=(2.5, 2.5), seed=4, offset=-0.5)
    big = noise.tile(-300, 250, (400, 300))
    np.testing.assert_array_equal(big[123:300, 7:260], noise.tile(-177, 257, (177, 253)))
    assert big.mean() == pytest.approx(-0.5, abs=0.1)
    other = CorrelatedNoise(rms=1.0, fwhm_pix=(2.5, 2.5), seed=5).tile(-300, 250, (400, 300))
    assert abs(np.corrcoef(big.ravel(), other.ravel())[0, 1]) < 0.05


def test_autocorrelation_exact_on_a_striped_image():
    stripes = np.tile([1.0, -1.0], (6, 4))  # columns alternate: lag 1 -> -1, lag 2 -> +1
    acf_x, acf_y = autocorrelation(stripes, max_lag=2)
    np.testing.assert_allclose(acf_x, [1.0, -1.0, 1.0])
    np.testing.assert_allclose(acf_y, [1.0, 1.0, 1.0])
    mask = np.zeros_like(stripes, dtype=bool)
    mask[:, 0] = True  # masking the first column drops only the pairs that touch it
    np.testing.assert_allclose(autocorrelation(stripes, max_lag=2, mask=mask)[0][1:], [-1.0, 1.0],
                               atol=0.1)
    with pytest.raises(ValueError, match="max_lag must be in 1..5"):
        autocorrelation(stripes, max_lag=6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"rms": -1.0}, "rms must be finite"), ({"fwhm_pix": (2.0,)}, "two positive numbers"),
     ({"fwhm_pix": (2.0, 0.0)}, "two positive numbers")],
)
def test_bad_noise_parameters(kwargs, match):
    options = {"rms": 1.0, "fwhm_pix": (2.0, 2.0), "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        CorrelatedNoise(**options)


def test_noise_fitted_to_an_acf_has_that_acf_and_unit_variance():
    noise = CorrelatedNoise(rms=2.0, fwhm_pix=(2.5, 2.5), seed=12, acf=REAL_NOISE_ACF)
    image = noise.tile(0, 0, (768, 768))
    assert np.std(image) == pytest.approx(2.0, rel=0.03)
    acf_x, acf_y = autocorrelation(image, max_lag=3)
    np.testing.assert_allclose(acf_x[1:], REAL_NOISE_ACF[0][:3], atol=0.02)
    np.testing.assert_allclose(acf_y[1:], REAL_NOISE_ACF[1][:3], atol=0.02)
    assert acf_x[3] < -0.1  # the negative lobe along x of the real noise


def test_kernel_from_acf_matches_the_lags_and_rejects_bad_ones():
    k = kernel_from_acf([0.5, 0.0, -0.1])
    acf = np.correlate(k, k, "full")[k.size - 1:]
    np.testing.assert_allclose(acf[:4], [1.0, 0.5, 0.0, -0.1], atol=1e-6)
    with pytest.raises(ValueError, match="acf must be one or more lags"):
        kernel_from_acf([1.2])
    with pytest.raises(ValueError, match="acf must be two sequences"):
        CorrelatedNoise(rms=1.0, fwhm_pix=(2.0, 2.0), seed=0, acf=((0.5,),))


# ----------------------------------------------------------------------------- fields
def test_flux_scale_scales_the_image_and_the_true_snr():
    cat = _catalogue([(100.0, 60.0)], flux=1e-2)
    kwargs = {"shape": (256, 256), "seed": 1, "catalogue": cat, "add_noise": False}
    one = simulate_field(BAND, 1000, flux_scale=1.0, **kwargs)
    default = simulate_field(BAND, 1000, **kwargs)
    assert float(np.abs(one.image).max()) == pytest.approx(1e-2, rel=1e-3)  # no noise
    np.testing.assert_allclose(default.image, FLUX_SCALE * one.image, rtol=1e-5, atol=1e-12)
    assert default.truth["peak_snr"][0] == pytest.approx(FLUX_SCALE * 1e-2 / RMS, rel=1e-6)
    with pytest.raises(ValueError, match="flux_scale must be positive"):
        simulate_field(BAND, 1000, flux_scale=0.0, **kwargs)


def test_noise_of_a_1000h_field_matches_the_real_noise_level():
    field = simulate_field("B1", 1000, shape=(256, 256), seed=6, catalogue=_catalogue([(5, 5)]),
                           flux_scale=1e-9)  # a negligible source: noise only
    assert np.std(field.image) == pytest.approx(NOISE_SIGMA[1000] * RMS, rel=0.05)
    assert np.mean(field.image) == pytest.approx(BACKGROUND_SIGMA[1000] * RMS, abs=0.1 * RMS)


def test_catalogue_source_lands_on_its_pixel_with_its_flux():
    cat = _catalogue([(100.0, 60.0), (30.0, 200.0)], flux=1e-2)
    field = simulate_field(BAND, 1000, shape=(256, 256), seed=1, catalogue=cat,
                           background_sigma=0.0, flux_scale=1.0)
    image = field.image
    assert np.unravel_index(np.argmax(image), image.shape) in {(60, 100), (200, 30)}
    assert image[60, 100] == pytest.approx(1e-2, rel=1e-3)  # point source: peak = flux
    box = image[40:81, 80:121]
    assert box.sum() / BAND.beam_area_pix == pytest.approx(1e-2, rel=0.01)
    truth = field.truth
    assert sorted(truth["id"]) == [100, 101]
    row = truth[truth["id"] == 100][0]
    assert (row["x"], row["y"]) == (pytest.approx(100.0, abs=1e-6), pytest.approx(60.0, abs=1e-6))
    assert row["peak_snr"] == pytest.approx(1e-2 / RMS, rel=1e-3)
    assert row["selection"] == 1


def test_point_source_fwhm_in_the_render_is_the_beam():
    cat = _catalogue([(128.0, 128.0)], flux=1.0)
    image = simulate_field(BAND, 1000, shape=(256, 256), seed=2, catalogue=cat).image
    cut = image[128, 118:139].astype(float)
    xs = np.arange(-10, 11)
    sigma = np.sqrt(np.sum(cut * xs**2) / np.sum(cut))
    assert 2 * np.sqrt(2 * np.log(2)) * sigma == pytest.approx(BAND.beam_fwhm_pix, rel=0.02)


def test_same_seed_same_bytes_for_any_workers_and_tiles(tmp_path):
    kwargs = {"shape": (300, 420), "seed": 9}
    one = simulate_field("B1", 1000, tile=128, output=tmp_path / "one.fits", **kwargs)
    two = simulate_field("B1", 1000, tile=128, n_workers=2, output=tmp_path / "two.fits", **kwargs)
    assert _sha(one.path) == _sha(two.path)
    assert _sha(one.truth_path) == _sha(two.truth_path)
    big_tiles = simulate_field("B1", 1000, tile=512, **kwargs)
    with fits.open(one.path) as hdul:
        data = hdul[0].data[0, 0]
        np.testing.assert_array_equal(data, big_tiles.image)
    other = simulate_field("B1", 1000, tile=512, shape=(300, 420), seed=10)
    assert not np.array_equal(other.image, big_tiles.image)
    assert len(one.truth) == len(big_tiles.truth) > 100


def test_fits_header_and_truth_file(tmp_path):
    field = simulate_field("B2", 100, shape=(128, 160), seed=3, output=tmp_path / "f.fits", ndim=2)
    with fits.open(field.path) as hdul:
        hdul.verify("exception")
        header, data = hdul[0].header, hdul[0].data
    assert data.shape == (128, 160) and data.dtype == np.dtype(">f4")
    assert header["NAXIS"] == 2 and header["BUNIT"] == "JY/BEAM"
    assert header["BMAJ"] == pytest.approx(0.60 / 3600) and header["CTYPE1"] == "RA---SIN"
    truth = Table.read(field.truth_path, format="ascii.ecsv")
    assert truth["flux"].unit == "Jy" and {"peak_snr", "selection", "x", "y"} <= set(truth.colnames)
    rms = get_band("B2").noise(100)
    assert np.all(truth["flux"] >= rms) and np.all(truth["selection"] == 1)  # flux >= 1 rms
    assert np.all(truth["peak_snr"] <= truth["flux"] / rms * (1 + 1e-6))  # peak <= flux
    assert np.all((truth["x"] >= 0) & (truth["x"] < 160) & (truth["y"] >= 0) & (truth["y"] < 128))
    four = simulate_field("B2", 100, shape=(128, 160), seed=3, output=tmp_path / "g.fits")
    with fits.open(four.path) as hdul:
        assert hdul[0].data.shape == (1, 1, 128, 160)
        np.testing.assert_array_equal(hdul[0].data[0, 0], data)


def test_noise_of_a_synthetic_field_is_near_the_request():
    field = simulate_field("B1", 8, shape=(512, 512), seed=4)
    image = field.image
    mask = image > 3 * BAND.noise(8)
    assert np.std(image[~mask]) == pytest.approx(BAND.noise(8), rel=0.10)
    assert BACKGROUND_SIGMA[8] == 0.0 and abs(np.median(image)) < 0.2 * BAND.noise(8)


def test_primary_beam_attenuation_is_applied(sdc1_dir):
    centre = (-1.0, -30.0)  # one degree from the pointing centre
    cat = _catalogue([(128.0, 128.0)], flux=1e-3, centre=centre)
    beam = PrimaryBeam.from_fits(sdc1_dir / "PrimaryBeam_B1.fits")
    gain = float(beam(cat["ra_cent"], cat["dec_cent"])[0])
    assert 0.3 < gain < 0.95
    field = simulate_field(BAND, 1000, shape=(256, 256), seed=5, catalogue=cat, centre=centre,
                           primary_beam=True)
    assert field.truth["peak_snr"][0] * RMS == pytest.approx(1e-3 * gain * FLUX_SCALE, rel=1e-3)
    assert field.image[128, 128] == pytest.approx(1e-3 * gain * FLUX_SCALE, abs=5 * RMS)
    assert load_primary_beam("B1", False) is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [({"shape": (0, 10)}, ValueError, "shape must be positive"),
     ({"integration_h": 7}, ValueError, "unknown integration 7"),
     ({"n_workers": 0}, ValueError, "n_workers must be positive"),
     ({"ndim": 3}, ValueError, "ndim must be 2 or 4"),
     ({"pair_fraction": -0.1}, ValueError, r"pair_fraction must be in \[0, 1\]"),
     ({"pair_sigma": 0.0}, ValueError, "pair_sigma must be positive and finite, got 0.0"),
     ({"pair_fraction": 0.1, "catalogue": Table({"ra_cent": [0.0], "dec_cent": [-30.0]})},
      ValueError, "not with a catalogue")],
)
def test_bad_field_arguments(kwargs, error, match):
    options = {"band": "B1", "integration_h": 1000, "shape": (16, 16), "seed": 0, **kwargs}
    band, integration = options.pop("band"), options.pop("integration_h")
    with pytest.raises(error, match=match):
        simulate_field(band, integration, **options)


def test_existing_output_is_not_replaced(tmp_path):
    path = tmp_path / "x.fits"
    path.write_text("keep")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        simulate_field("B1", 1000, shape=(16, 16), seed=0, output=path)
    assert path.read_text() == "keep"


def test_cli_simulate_writes_fits_and_truth(tmp_path, capsys):
    argv = ["simulate", "--band", "B1", "--size", "96", "--seed", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    fits_path = tmp_path / "sim_B1_1000h_96_seed1.fits"
    assert capsys.readouterr().out.splitlines()[0] == str(fits_path)
    with fits.open(fits_path) as hdul:
        assert hdul[0].data.shape == (1, 1, 96, 96)
    assert (tmp_path / "sim_B1_1000h_96_seed1.truth.ecsv").is_file()


def test_a_field_with_pairs_says_so_and_keeps_its_sources():
    plain = simulate_field("B1", 1000, shape=(128, 128), seed=3, add_noise=False)
    paired = simulate_field("B1", 1000, shape=(128, 128), seed=3, add_noise=False,
                            pair_fraction=0.5)
    assert "SIMPAIRS" not in plain.header and paired.header["SIMPAIRS"] == 0.5
    assert not np.array_equal(plain.image, paired.image)
    # the same population: the sources too faint to be moved are where they were
    floor = PAIR_SIGMA * RMS / FLUX_SCALE

    def faint(truth):
        rows = truth[np.asarray(truth["flux"]) < floor]
        return sorted(zip(rows["flux"], rows["ra_cent"], rows["dec_cent"]))

    assert faint(plain.truth) == faint(paired.truth) and len(faint(plain.truth)) > 10
    bright = np.asarray(paired.truth["flux"]) >= floor
    assert bright.any() and not set(paired.truth["ra_cent"][bright]) <= set(plain.truth["ra_cent"])
    assert paired.header["SIMPSIG"] == PAIR_SIGMA and "SIMPSIG" not in plain.header


def test_a_higher_pair_floor_moves_only_brighter_sources():
    plain = simulate_field("B1", 1000, shape=(128, 128), seed=3, add_noise=False)
    paired = simulate_field("B1", 1000, shape=(128, 128), seed=3, add_noise=False,
                            pair_fraction=0.5, pair_sigma=4 * PAIR_SIGMA)
    assert paired.header["SIMPSIG"] == 4 * PAIR_SIGMA
    floor = 4 * PAIR_SIGMA * RMS / FLUX_SCALE

    def below(truth):
        rows = truth[np.asarray(truth["flux"]) < floor]
        return sorted(zip(rows["flux"], rows["ra_cent"], rows["dec_cent"]))

    # every source under the raised floor stays, among them some the default floor moves
    assert below(plain.truth) == below(paired.truth)
    between = ((np.asarray(plain.truth["flux"]) >= PAIR_SIGMA * RMS / FLUX_SCALE)
               & (np.asarray(plain.truth["flux"]) < floor))
    assert between.sum() > 5
    above = np.asarray(paired.truth["flux"]) >= floor
    assert not set(paired.truth["ra_cent"][above]) <= set(plain.truth["ra_cent"])
