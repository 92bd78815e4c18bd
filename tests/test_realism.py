"""Tests of the simulator-versus-real comparisons (radioseg_utils.evaluation.realism)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.core.bands import get_band
from radioseg_utils.evaluation import realism
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.simulation.noise_model import REAL_NOISE_ACF
from radioseg_utils.simulation.simulate import BACKGROUND_SIGMA, FLUX_SCALE, NOISE_SIGMA

BAND = get_band("B1")
RMS = BAND.noise(1000)


def _points(n, rng, shape=(160, 174)):
    """Catalogue of n bright point sources scattered on the grid of ``sdc1_wcs(B1, shape)``."""
    wcs = sdc1_wcs(BAND, shape)
    x, y = rng.uniform(10, shape[1] - 10, n), rng.uniform(10, shape[0] - 10, n)
    ra, dec = wcs.wcs_pix2world(x, y, 0)
    ra = np.where(ra > 180, ra - 360, ra)
    zero = np.zeros(n)
    return Table({"id": np.arange(n), "ra_core": ra, "dec_core": dec, "ra_cent": ra,
                  "dec_cent": dec, "flux": rng.uniform(5, 50, n) * RMS, "core_frac": zero,
                  "b_maj": rng.uniform(0, 2, n), "b_min": zero, "pa": rng.uniform(-90, 90, n),
                  "size": np.full(n, 2), "class": np.full(n, 3)})


# --------------------------------------------------------------- synthetic, always run
def test_rendered_catalogue_minus_itself_leaves_the_noise(rng):
    from radioseg_utils.simulation.simulate import simulate_field

    cat = _points(40, rng)
    kwargs = {"shape": (160, 174), "catalogue": cat}
    noisy = simulate_field(BAND, 1000, seed=3, **kwargs).image
    model = simulate_field(BAND, 1000, seed=3, add_noise=False, **kwargs).image
    fit = realism.fit_model_scale(noisy, model)
    assert fit.scale == pytest.approx(1.0, abs=0.02)
    assert fit.background / RMS == pytest.approx(BACKGROUND_SIGMA[1000], abs=0.1)
    stats = realism.residual_statistics(fit.residual, RMS)
    assert stats["std"] == pytest.approx(NOISE_SIGMA[1000], rel=0.05)
    assert abs(stats["skew"]) < 0.1 and abs(stats["excess_kurtosis"]) < 0.2
    acf = realism.acf_table({"residual": fit.residual}, RMS, mask_sigma=None)
    row_x = acf[acf.axis == "x"].iloc[0]
    assert row_x.lag1 == pytest.approx(REAL_NOISE_ACF[0][0], abs=0.05)
    assert row_x.lag3 < -0.05  # the negative lobe of the real noise


def test_a_wrong_flux_scale_is_measured(rng):
    model = np.zeros((60, 60))
    for y, x in rng.integers(15, 45, (5, 2)):
        model[y, x] += 1.0
    image = 0.9 * model - 0.3 + rng.normal(0, 0.01, model.shape)
    fit = realism.fit_model_scale(image, model, border=5)
    assert (fit.scale, fit.background) == (pytest.approx(0.9, abs=0.01), pytest.approx(-0.3, abs=0.01))
    assert np.isnan(fit.residual[0, 0]) and np.isfinite(fit.residual[30, 30])


def test_residual_statistics_of_gaussian_noise(rng):
    stats = realism.residual_statistics(rng.normal(0.0, 2.0, (300, 300)), 2.0)
    assert stats["std"] == pytest.approx(1.0, abs=0.01)
    assert stats["mad_std"] == pytest.approx(1.0, abs=0.02)
    assert abs(stats["median"]) < 0.02 and abs(stats["skew"]) < 0.05


@pytest.mark.parametrize(("call", "match"), [
    (lambda: realism.fit_model_scale(np.zeros((5, 5)), np.zeros((5, 6))), "one shape"),
    (lambda: realism.fit_model_scale(np.ones((20, 20)), np.zeros((20, 20))), "zero model"),
    (lambda: realism.residual_statistics(np.ones((4, 4)), 0.0), "rms must be positive"),
])
def test_bad_input_is_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------- real cutout
@pytest.fixture(scope="module")
def cutout(sdc1_dir):
    return realism.load_real_cutout()


def test_real_cutout_is_its_truth_times_the_attenuation_plus_gaussian_noise(cutout):
    model = realism.render_on_grid(cutout.truth, cutout.sky, seed=0, flux_scale=1.0,
                                   primary_beam=cutout.primary_beam, add_noise=False).image
    fit = realism.fit_model_scale(cutout.sky.data, model)
    assert fit.scale == pytest.approx(FLUX_SCALE, abs=0.005)  # beyond the primary beam
    assert fit.background / cutout.rms == pytest.approx(BACKGROUND_SIGMA[1000], abs=0.03)
    stats = realism.residual_statistics(fit.residual, cutout.rms)
    assert stats["std"] == pytest.approx(NOISE_SIGMA[1000], abs=0.02)
    assert max(stats["max"], -stats["min"]) < 5.0  # nothing left around bright sources
    acf = realism.acf_table({"residual": fit.residual}, cutout.rms, mask_sigma=None)
    measured = acf.set_index("axis")[["lag1", "lag2", "lag3"]]
    np.testing.assert_allclose(measured.loc["x"], REAL_NOISE_ACF[0][:3], atol=0.01)
    np.testing.assert_allclose(measured.loc["y"], REAL_NOISE_ACF[1][:3], atol=0.01)


def test_render_on_grid_puts_sources_on_the_real_pixels(cutout):
    model = realism.render_on_grid(cutout.truth, cutout.sky, seed=0, add_noise=False,
                                   primary_beam=cutout.primary_beam)
    order = np.argsort(-np.asarray(model.truth["flux"]))[:5]
    for y, x in zip(np.rint(model.truth["y"][order]), np.rint(model.truth["x"][order])):
        box = (slice(int(y) - 3, int(y) + 4), slice(int(x) - 3, int(x) + 4))
        assert np.argmax(cutout.sky.data[box]) == np.argmax(model.image[box])  # same pixel


def test_peak_finder_on_real_and_on_rendered_real_truth_agree(cutout):
    att = cutout.attenuation()
    truth = realism.with_true_snr(cutout.truth, cutout.sky, attenuation=att)
    sim = realism.render_on_grid(cutout.truth, cutout.sky, seed=101,
                                 primary_beam=cutout.primary_beam)
    table = realism.peak_finder_table({
        "real": (cutout.sky, truth),
        "rendered": (realism.replace_data(cutout.sky, sim.image), truth)}).set_index("case")
    assert table.loc["real", "detections"] == 99
    assert table.loc["real", "compl_5-10"] == pytest.approx(36 / 40)
    assert table.loc["real", "n_true"] == table.loc["rendered", "n_true"] == 117
    for column in ("compl_5-10", "compl_10-20"):
        assert table.loc["rendered", column] == pytest.approx(table.loc["real", column], abs=0.1)
    assert table.loc["rendered", "detections"] == pytest.approx(99, rel=0.2)
