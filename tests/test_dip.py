"""The deep-image-prior denoiser: its stopping rule, its tiling, its error to the true sky,
the switch every finder goes through, and the neighbour classes of the ablation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from radioseg_utils.baselines.result import FinderResult
from radioseg_utils.core.bands import get_band
from radioseg_utils.evaluation.crowding import (
    NEIGHBOUR_CLASSES,
    class_completeness,
    neighbour_classes,
)
from radioseg_utils.evaluation.evaluate import compare_finders, evaluate_finder
from radioseg_utils.evaluation.fidelity import acf_table, sky_error_table
from radioseg_utils.inference.denoise import denoise_file, denoise_sky, dip_denoise
from radioseg_utils.io.fits_read import Beam, SkyImage, read_image
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.model.dip import DIPSettings, build_dip_network, fit_dip
from radioseg_utils.simulation.simulate import simulate_field

#: A small network: fits of 32² cutouts take a fraction of a second per step.
TINY = DIPSettings(width=4, depth=2, input_channels=4, max_iterations=200, seed=3)


def _sky(data: np.ndarray) -> SkyImage:
    band = get_band("B1")
    wcs = sdc1_wcs(band, data.shape)
    return SkyImage(data=np.asarray(data, np.float32), wcs=wcs, header=sdc1_header(wcs, band),
                    band=band, beam=Beam(band.beam_fwhm_arcsec, band.beam_fwhm_arcsec),
                    pixel_arcsec=band.pixel_arcsec, path=None)


def _sources(shape, positions, amplitude, sigma=1.06):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape)
    for y, x in positions:
        out += amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    return out


# --------------------------------------------------------------------------- settings, input
@pytest.mark.parametrize(("options", "message"), [
    ({"width": 0}, "width must be a positive integer, got 0"),
    ({"max_iterations": 2.5}, "max_iterations must be a positive integer"),
    ({"learning_rate": -0.1}, "learning_rate must be a positive number"),
    ({"stop_rms": 0.0}, "stop_rms must be a positive number"),
    ({"input_scale": float("nan")}, "input_scale must be a positive number"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"keep_dilate": -2}, "keep_dilate must be a non-negative integer"),
    ({"keep_snr": -5.0}, "keep_snr must be a positive number"),
])
def test_settings_reject_bad_values(options, message):
    with pytest.raises(ValueError, match=message):
        DIPSettings(**options)


def test_network_is_an_hourglass_with_a_linear_head():
    net = build_dip_network(DIPSettings(width=4, depth=2, input_channels=3))
    assert net.input_shape == (None, None, None, 3) and net.output_shape == (None, None, None, 1)
    assert net.get_layer("image").activation.__name__ == "linear"
    assert not any("concat" in layer.name for layer in net.layers)  # no skip connections
    assert net.get_layer("enc0_bn1") is not None


def test_bad_input_is_rejected_clearly(rng):
    with pytest.raises(ValueError, match="has no finite pixel"):
        fit_dip(np.full((16, 16), np.nan), noise=1.0, settings=TINY)
    with pytest.raises(ValueError, match=r"expected a 2-D image, got shape \(2, 16, 16\)"):
        fit_dip(np.zeros((2, 16, 16)), noise=1.0, settings=TINY)
    for noise in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="noise must be a positive number"):
            fit_dip(rng.normal(size=(16, 16)), noise=noise, settings=TINY)
    image = rng.normal(size=(40, 30))
    with pytest.raises(ValueError, match=r"tile 32 px must be between 1 and the image's "
                                         r"shorter side \(30 px"):
        dip_denoise(image, tile=32, settings=TINY, progress=False)
    with pytest.raises(ValueError, match=r"overlap must be in \[0, tile=16\), got 16"):
        dip_denoise(image, tile=16, overlap=16, settings=TINY, progress=False)
    with pytest.raises(ValueError, match="noise must be a positive number"):
        dip_denoise(image, tile=16, noise=-2.0, settings=TINY, progress=False)
    with pytest.raises(ValueError, match="has no finite pixel"):
        dip_denoise(np.full((20, 20), np.inf), tile=16, settings=TINY, progress=False)
    with pytest.raises(ValueError, match="expected a 2-D image"):
        dip_denoise(np.zeros(20), tile=16, settings=TINY, progress=False)
    with pytest.raises(ValueError, match=r"unknown denoising method 'bm3d'; expected one of \['dip'\]"):
        denoise_sky(_sky(image), "bm3d")


# --------------------------------------------------------------------------- stopping rule
def test_stops_at_the_noise_level_by_its_rule_and_deterministically(rng):
    noise = rng.normal(0.0, 5.0, (32, 32))  # pure, strong noise: nothing to fit
    fit = fit_dip(noise, noise=5.0, settings=TINY)
    assert fit.stopped and fit.iterations < 10 < TINY.max_iterations
    assert fit.history.shape == (fit.iterations,)
    assert fit.history[-1] <= TINY.stop_rms and np.all(fit.history[:-1] > TINY.stop_rms)
    assert np.std(fit.image) < 1.0  # stayed near the flat background

    sources = _sources((32, 32), [(8, 9), (20, 22), (25, 6)], 30.0) + rng.normal(0.0, 1.0, (32, 32))
    first = fit_dip(sources, noise=1.0, settings=TINY)
    assert first.stopped and first.iterations > fit.iterations  # structure takes steps to fit
    assert first.history[-1] <= 1.0 and np.all(first.history[:-1] > 1.0)
    # the same seed gives the same fit, whatever the (reused) network fitted before
    again = fit_dip(sources, noise=1.0, settings=TINY)
    assert again.iterations == first.iterations
    np.testing.assert_allclose(again.image, first.image, atol=1e-5 * np.abs(first.image).max())
    # an unreachable level runs into the cap
    capped = fit_dip(sources, noise=1.0, settings=DIPSettings(**{**vars(TINY), "stop_rms": 1e-3,
                                                                 "max_iterations": 7}))
    assert not capped.stopped and capped.iterations == 7 and capped.history.size == 7


def test_bright_pixels_are_kept_as_they_are(rng):
    image = _sources((32, 32), [(16, 16)], 4000.0) + rng.normal(0.0, 1.0, (32, 32))
    fit = fit_dip(image, noise=1.0, settings=TINY)
    assert fit.stopped  # the 4000-sigma peak does not hold the residual above the noise
    core = np.zeros((32, 32), bool)
    core[16 - 5:16 + 6, 16 - 5:16 + 6] = True  # > 50 sigma out to r = 3 px, grown by 2
    bright = np.hypot(*np.mgrid[-16:16, -16:16]) <= 3  # inside the kept region
    np.testing.assert_array_equal(fit.image[bright], image[bright].astype(np.float32))
    assert not np.array_equal(fit.image[~core], image[~core].astype(np.float32))
    everything = fit_dip(np.full((8, 8), 100.0), noise=1.0, settings=TINY)
    assert everything.iterations == 0 and everything.stopped
    np.testing.assert_array_equal(everything.image, 100.0)


def test_non_finite_pixels_carry_no_weight_and_stay_nan(rng):
    image = _sources((24, 20), [(12, 10)], 40.0) + rng.normal(0.0, 1.0, (24, 20))
    image[:4] = np.nan
    fit = fit_dip(image, noise=1.0, offset=0.5, settings=TINY)
    assert np.isnan(fit.image[:4]).all() and np.isfinite(fit.image[4:]).all()
    assert fit.image.shape == (24, 20) and fit.image.dtype == np.float32  # padded inside
    assert fit.residual_rms == pytest.approx(
        np.sqrt(np.mean((image[4:] - fit.image[4:]) ** 2)), rel=1e-4)


# --------------------------------------------------------------------------- whole images
def test_tiles_are_fitted_one_by_one_and_blended(rng):
    image = _sources((40, 40), [(10, 10), (30, 33)], 30.0) + rng.normal(0.0, 1.0, (40, 40))
    image[0, :5] = np.nan
    out = dip_denoise(image, tile=24, overlap=8, settings=TINY, progress=False)
    assert out.iterations.shape == out.stopped.shape == (2, 2) and out.stopped.all()
    assert (out.iterations >= 1).all()
    assert np.isnan(out.image[0, :5]).all() and np.isfinite(out.image).sum() == image.size - 5
    assert out.noise == pytest.approx(1.0, rel=0.15) and out.runtime_s > 0
    assert out.s_per_mpx == pytest.approx(out.runtime_s / (40 * 40 / 1e6))
    # the sources survive the fit and the blend
    assert out.image[10, 10] > 20 and out.image[30, 33] > 20
    given = dip_denoise(image, tile=24, overlap=8, settings=TINY, noise=2.0, progress=False)
    assert given.noise == 2.0 and (given.iterations <= out.iterations).all()
    image[:24, :24] = np.nan  # the first tile blanked
    blanked = dip_denoise(image, tile=24, overlap=8, settings=TINY, progress=False)
    assert blanked.iterations[0, 0] == 0 and (blanked.iterations[1:] > 0).all()
    assert np.isnan(blanked.image[:24, :24]).all() and np.isfinite(blanked.image[24:]).all()


@pytest.mark.slow  # 8-11 s on 2 cores: two simulated fields and a 128² fit
def test_lowers_the_error_to_the_true_sky_of_a_simulated_field():
    shape, seed = (128, 128), 12345
    noisy = simulate_field("B1", 1000, shape=shape, seed=seed).image
    clean = simulate_field("B1", 1000, shape=shape, seed=seed, add_noise=False)
    out = dip_denoise(noisy, tile=128, progress=False)  # the default settings
    assert out.stopped.all() and out.iterations[0, 0] < DIPSettings().max_iterations
    errors = sky_error_table({"image": noisy, "dip": out.image}, clean.image, clean.truth,
                             _sky(noisy), noise=get_band("B1").noise(1000))
    table = errors.set_index(["image", "region"])
    err = table["rms_error"]
    assert err["dip", "all"] < 0.8 * err["image", "all"]  # measured: 0.68 vs 0.95
    assert err["dip", "background"] < 0.6 * err["image", "background"]  # 0.48 vs 0.94
    # ... by flattening the faint sources with the noise (peaks kept: 64 % at S/N 3-5)
    assert table.loc[("dip", "snr 3-5"), "peak_ratio"] < 0.8
    assert err["dip", "snr 5-10"] > err["image", "snr 5-10"]


# --------------------------------------------------------------------------- the switch
def test_denoise_sky_caches_a_fits_file_with_the_input_wcs(tmp_path, rng):
    image = _sources((32, 32), [(16, 16)], 1e-4, sigma=1.2) + rng.normal(0.0, 2e-6, (32, 32))
    sky = _sky(image)
    cache = tmp_path / "dn" / "field_dip.fits"
    denoised, record = denoise_sky(sky, settings=TINY, tile=32, cache=cache, progress=False)
    assert cache.is_file() and denoised.wcs is sky.wcs and denoised.shape == sky.shape
    assert not np.array_equal(denoised.data, sky.data)
    written = read_image(cache)
    np.testing.assert_array_equal(written.data, record.image)
    corners = ([0, 31, 0], [0, 31, 31])
    np.testing.assert_allclose(written.wcs.pixel_to_world_values(*corners),
                               sky.wcs.pixel_to_world_values(*corners), rtol=0, atol=1e-10)
    assert written.band.name == "B1" and written.beam.bmaj == pytest.approx(sky.beam.bmaj)
    with fits.open(cache) as hdul:
        assert hdul[0].header["DNMETH"] == "dip"
        np.testing.assert_array_equal(hdul["ITERS"].data, record.iterations)
    again, cached = denoise_sky(sky, settings=TINY, tile=32, cache=cache, progress=False)
    assert cached.runtime_s == pytest.approx(record.runtime_s)  # read, not refitted
    np.testing.assert_array_equal(again.data, denoised.data)
    np.testing.assert_array_equal(cached.iterations, record.iterations)
    other = DIPSettings(**{**vars(TINY), "seed": 4})
    _, refit = denoise_sky(sky, settings=other, tile=32, cache=cache, progress=False)
    assert refit.settings == other and fits.getheader(cache)["DNSET"].count('"seed": 4') == 1
    # from one FITS file to another
    source = tmp_path / "in.fits"
    header = sdc1_header(sky.wcs, "B1", ndim=4)
    header["TELESCOP"] = "Parkes"
    write_image(source, image, header)
    out = denoise_file(source, tmp_path / "in_dip.fits", settings=TINY, tile=32, progress=False)
    np.testing.assert_array_equal(read_image(out).data, record.image)
    assert fits.getheader(out)["TELESCOP"] == "Parkes"  # the input's, not SDC1's


def test_compare_finders_denoises_once_for_every_finder(tmp_path, rng):
    band = get_band("B1")
    noise = band.noise(1000)
    positions = [(12, 12), (30, 40), (48, 20)]
    image = _sources((64, 64), positions, 40 * noise) + rng.normal(0.0, noise, (64, 64))
    sky = _sky(image)
    ra, dec = sky.wcs.pixel_to_world_values([p[1] for p in positions], [p[0] for p in positions])
    truth = Table({"ra_core": ra, "dec_core": dec, "flux": np.full(3, 40 * noise),
                   "peak_snr": np.full(3, 40.0)})
    cache = tmp_path / "dip.fits"
    evs = compare_finders(sky, truth, integration=1000, finders=("peaks", "peaks"),
                          pixels=False, score=False, denoise="dip",
                          denoise_options={"settings": TINY, "tile": 32, "cache": cache,
                                           "progress": False})
    assert [e.denoise for e in evs] == ["dip", "dip"] and evs[0].denoise_s > 0
    assert evs[0].denoise_s == evs[1].denoise_s == fits.getheader(cache)["DNTIME"]
    assert evs[0].source.completeness == 1.0
    plain = compare_finders(sky, truth, integration=1000, finders=("peaks",), pixels=False,
                            score=False)
    assert plain[0].denoise == "" and plain[0].denoise_s == 0.0
    with pytest.raises(ValueError, match="unknown denoising method 'nlm'"):
        compare_finders(sky, truth, integration=1000, finders=("peaks",), denoise="nlm")


def test_grid_and_command_line_take_the_switch():
    from radioseg_utils.cli import build_parser
    from radioseg_utils.workflows.grid import evaluate_grid, evaluate_real_cutout

    with pytest.raises(ValueError, match="unknown denoising method 'tv'"):
        evaluate_grid(["B1"], [1000], ["peaks"], denoise="tv")
    with pytest.raises(ValueError, match="unknown denoising method 'tv'"):
        evaluate_real_cutout(["peaks"], denoise="tv")
    parser = build_parser()
    assert parser.parse_args(["evaluate", "--denoise", "dip"]).denoise == "dip"
    assert parser.parse_args(["predict", "x.fits", "--denoise", "dip"]).denoise == "dip"
    assert parser.parse_args(["predict", "x.fits"]).denoise is None
    both = parser.parse_args(["predict", "x.fits", "--denoise", "dip", "--corrections", "none"])
    assert (both.denoise, both.corrections) == ("dip", "none")
    assert parser.parse_args(["evaluate", "--denoise", "dip", "--finders", "aegean"]).finders == [
        "aegean"]
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--denoise", "median"])


# --------------------------------------------------------------------------- measurements
def test_sky_error_table_exact_small_answers():
    shape = (40, 40)
    sky = _sky(np.zeros(shape))
    clean = _sources(shape, [(10, 10), (30, 30)], 10.0)
    ra, dec = sky.wcs.pixel_to_world_values([10, 30], [10, 30])
    truth = Table({"ra_core": ra, "dec_core": dec, "flux": [1.0, 1.0], "peak_snr": [4.0, 60.0]})
    halved = clean.copy()
    halved[25:, 25:] /= 2  # the bright source flattened to half
    table = sky_error_table({"same": clean + 3.0, "halved": halved}, clean, truth, sky,
                            noise=2.0, snr_bins=(3.0, 5.0, np.inf))
    same = table[table["image"] == "same"].set_index("region")
    assert list(same.index) == ["all", "background", "snr 3-5", "snr >5"]
    assert (same["rms_error"] == 0).all() and np.isinf(same["psnr_db"]).all()  # offset removed
    assert same.loc["snr 3-5", "peak_ratio"] == pytest.approx(1.0)
    assert same.loc["snr >5", "n_sources"] == 1 and same.loc["all", "n_sources"] == 2
    halved = table[table["image"] == "halved"].set_index("region")
    assert halved.loc["snr >5", "peak_ratio"] == pytest.approx(0.5)
    assert halved.loc["snr 3-5", "rms_error"] == pytest.approx(0.0)
    assert halved.loc["snr >5", "rms_error"] > 1.0
    rms = halved.loc["all", "rms_error"]
    assert halved.loc["all", "psnr_db"] == pytest.approx(20 * np.log10(10.0 / (2.0 * rms)))
    with pytest.raises(ValueError, match=r"image 'x' has shape \(3, 3\)"):
        sky_error_table({"x": np.zeros((3, 3))}, clean, truth, sky, noise=1.0)
    with pytest.raises(ValueError, match="noise must be a positive number"):
        sky_error_table({}, clean, truth, sky, noise=0.0)


def test_acf_table_sees_correlation(rng):
    white = rng.normal(size=(128, 128))
    smooth = white + np.roll(white, 1, axis=1) + np.roll(white, 1, axis=0)
    table = acf_table({"white": white, "smooth": smooth}, max_lag=3)
    assert table.groupby("series").size().to_dict() == {"smooth": 4, "white": 4}
    lag1 = table[table["lag"] == 1].set_index("series")
    assert abs(lag1.loc["white", "acf"]) < 0.05
    assert lag1.loc["smooth", "acf_x"] == pytest.approx(1 / 3, abs=0.05)
    with pytest.raises(ValueError, match="max_lag"):
        acf_table({"white": white}, max_lag=0)


def test_neighbour_classes_and_their_completeness():
    sky = _sky(np.zeros((64, 64)))
    #                 A alone, B 1 px (0.6") from bright C, D 4 px (2.4") from brighter E
    x = np.array([10.0, 40.0, 41.0, 20.0, 24.0])
    y = np.array([10.0, 40.0, 40.0, 50.0, 50.0])
    snr = np.array([6.0, 7.0, 200.0, 8.0, 12.0])
    ra, dec = sky.wcs.pixel_to_world_values(x, y)
    truth = Table({"ra_core": ra, "dec_core": dec, "flux": snr * 1e-6, "peak_snr": snr})
    classes = neighbour_classes(truth, sky, snr)
    assert classes.tolist() == ["isolated", "lt1.5arcsec", "isolated", "1.5-3arcsec", "isolated"]
    assert neighbour_classes(truth, sky, snr, edges=(0.5, 2.0)).tolist() == [
        "isolated", "1.5-3arcsec", "isolated", "isolated", "isolated"]  # names stay the same
    result = FinderResult(catalogue=truth[[0, 2, 3]], labels=np.zeros(sky.shape, np.int32),
                          runtime_s=0.0, peak_rss_mb=0.0, finder="test")
    ev = evaluate_finder(result, truth, sky, integration=1000, pixels=False, score=False)
    table = class_completeness(ev, truth, sky).set_index("neighbour_class")
    assert list(table.index) == list(NEIGHBOUR_CLASSES)
    assert table["n_true"].tolist() == [3, 1, 1] and table["n_found"].tolist() == [2, 1, 0]
    assert table.loc["isolated", "completeness"] == pytest.approx(2 / 3)
    assert class_completeness(ev, truth, sky, min_snr=100)["n_true"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="one per source"):
        neighbour_classes(truth, sky, snr[:2])
    with pytest.raises(ValueError, match="0 < inner < outer"):
        neighbour_classes(truth, sky, snr, edges=(3.0, 1.5))
    with pytest.raises(ValueError, match="truth has"):
        class_completeness(ev, truth[:3], sky)


# --------------------------------------------------------------------------- backends
@pytest.mark.slow
def test_runs_under_the_jax_backend():
    pytest.importorskip("jax")
    code = ("import numpy as np, keras; from radioseg_utils.model.dip import DIPSettings, fit_dip; "
            "rng = np.random.default_rng(0); yy, xx = np.mgrid[:16, :16]; "
            "img = 30 * np.exp(-((yy - 8) ** 2 + (xx - 7) ** 2) / 2) + rng.normal(size=(16, 16)); "
            "f = fit_dip(img, noise=1.0, settings=DIPSettings(width=4, depth=2, input_channels=4)); "
            "print(keras.backend.backend(), f.stopped, f.image[8, 7] > 15)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parents[1], check=True, timeout=300)
    assert out.stdout.split()[-3:] == ["jax", "True", "True"]
