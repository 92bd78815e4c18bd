"""Tests of the synthetic source population and its fit to the SDC1 training catalogues."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.table import vstack

from radioseg_utils.core.bands import get_band
from radioseg_utils.io.catalogue import read_truth_catalogue
from radioseg_utils.io.wcs import sdc1_wcs
from radioseg_utils.simulation.population import (
    FAINT_SLOPE,
    PAIR_SEPARATION_BEAMS,
    POPULATION_MODELS,
    ClassModel,
    differential_counts,
    expected_counts,
    fit_population_model,
    place_pairs,
    synthetic_population,
    training_area_deg2,
)

SHAPE = (1024, 1024)


def _population(seed=3, flux_min=1e-7, band="B1", models=None):
    wcs = sdc1_wcs(band, SHAPE)
    return synthetic_population(band, wcs=wcs, region=(0, 0, SHAPE[1], SHAPE[0]), seed=seed,
                                flux_min=flux_min, models=models)


def test_training_area_matches_flat_sky_estimate():
    # 0.6723 deg x cos(29.67) x 0.5339 deg minus the 0.25 x 0.21 deg reserved box
    flat = 0.6723 * np.cos(np.radians(29.673)) * 0.5339 - 0.25 * np.cos(np.radians(29.675)) * 0.21
    assert training_area_deg2("B1") == pytest.approx(flat, rel=1e-3)


def test_refitting_the_training_catalogues_gives_the_recorded_models(sdc1_dir):
    previous = None
    for band in ("B1", "B2", "B5"):
        catalogue = read_truth_catalogue(sdc1_dir / f"TrainingSet_{band}_v2_ML.txt")
        fitted = fit_population_model(catalogue, band, fallback=previous)
        previous = fitted
        assert sorted(fitted) == sorted(POPULATION_MODELS[band]) == [1, 2, 3]
        for cls, model in fitted.items():
            recorded = dataclasses.asdict(POPULATION_MODELS[band][cls])
            for name, value in dataclasses.asdict(model).items():
                assert value == pytest.approx(recorded[name], rel=1e-3, abs=1e-9), (band, cls, name)


def test_counts_above_the_reference_flux_follow_the_density():
    pop = _population(seed=1)
    area = SHAPE[0] * SHAPE[1] * (0.6 / 3600) ** 2
    for cls, model in POPULATION_MODELS["B1"].items():
        n = np.sum((pop["class"] == cls) & (pop["flux"] >= model.flux_ref))
        expected = model.density * area
        assert abs(n - expected) < 5 * np.sqrt(expected) + 1, cls


def test_fitting_a_synthetic_population_recovers_its_slopes():
    density = 3e6  # dense enough for tight fits in a 1024² B1 field
    model = dataclasses.replace(POPULATION_MODELS["B1"][3], density=density,
                                density_break=density * 10**-0.8)
    wcs = sdc1_wcs("B1", SHAPE)
    pop = synthetic_population("B1", wcs=wcs, region=(0, 0, 1024, 1024), seed=2,
                               flux_min=model.flux_ref, models={3: model})
    area = SHAPE[0] * SHAPE[1] * (0.6 / 3600) ** 2
    fitted = fit_population_model(pop, "B1", area_deg2=area, flux_ref=model.flux_ref)[3]
    assert fitted.density == pytest.approx(model.density, rel=0.02)
    assert fitted.slope == pytest.approx(model.slope, abs=0.05)
    assert fitted.bright_slope == pytest.approx(model.bright_slope, abs=0.1)
    assert fitted.size_b == pytest.approx(model.size_b, abs=0.02)
    assert fitted.size_scatter == pytest.approx(model.size_scatter, rel=0.05)


def test_faint_counts_continue_the_fitted_counts():
    """dN/dS just below flux_ref (faint piece) equals that just above (fitted piece)."""
    model = POPULATION_MODELS["B1"][3]
    ref, eps = model.flux_ref, 1e-3

    def dnds(flux):
        return (expected_counts(model, flux * (1 - eps), 1.0)
                - expected_counts(model, flux * (1 + eps), 1.0)) / (2 * eps * flux)

    assert dnds(ref * 0.99) == pytest.approx(dnds(ref * 1.01), rel=0.05)
    ratio = dnds(ref / 10) / dnds(ref / 100)
    assert ratio == pytest.approx(10.0**-FAINT_SLOPE, rel=0.01)


def test_population_is_deterministic_and_well_formed():
    a, b, c = _population(seed=7), _population(seed=7), _population(seed=8)
    assert len(a) == len(b) and np.array_equal(a["flux"], b["flux"]) and len(a) != len(c)
    assert set(np.unique(a["class"])) == {1, 2, 3}
    assert a["flux"].min() >= 1e-7 and a["flux"].unit == "Jy"
    assert np.all(a["b_min"] <= a["b_maj"] + 1e-12)
    assert np.all((a["core_frac"] >= 0) & (a["core_frac"] <= 1))
    assert np.all(a["core_frac"][a["class"] == 3] == 0)
    assert np.all((a["x"] >= 0) & (a["x"] < 1024) & (a["y"] >= 0) & (a["y"] < 1024))
    sfg = a[a["class"] == 3]
    assert np.all(sfg["size"][sfg["b_maj"] <= 3 * 0.6] == 2)  # only > 3 px may be discs
    assert np.all((a["ra_core"] == a["ra_cent"])[a["class"] != 1])


def test_ss_agn_cores_sit_on_the_axis_through_the_centroid():
    pop = _population(seed=4, flux_min=1e-6)
    agn = pop[(pop["class"] == 1) & (pop["b_maj"] > 2)]
    assert len(agn) > 3
    d_east = (agn["ra_core"] - agn["ra_cent"]) * np.cos(np.radians(agn["dec_cent"]))
    d_north = agn["dec_core"] - agn["dec_cent"]
    moved = np.hypot(d_east, d_north) > 0
    theta = np.radians(90.0 - agn["pa"][moved])  # east of north, see sources.pa_east_of_north
    cross = d_east[moved] * np.cos(theta) - d_north[moved] * np.sin(theta)
    np.testing.assert_allclose(cross, 0.0, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"flux_min": 0.0}, "flux_min must be positive"), ({"region": (10, 0, 10, 5)}, "is empty")],
)
def test_bad_population_arguments(kwargs, match):
    options = {"wcs": sdc1_wcs("B1", SHAPE), "region": (0, 0, 10, 10), "seed": 0, "flux_min": 1e-7}
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        synthetic_population("B1", **options)


def test_fit_leaves_out_the_reserved_region():
    """Sources in the region reserved for evaluation never reach the fit: a catalogue with
    a copy of the population moved into it fits exactly as the population alone."""
    pop = _population(seed=1)
    moved = pop.copy()
    for kind in ("core", "cent"):  # a 1024 px field at (0, -30) moved into the B1 box
        moved[f"ra_{kind}"] -= 0.335
        moved[f"dec_{kind}"] += 0.325
    assert fit_population_model(vstack([pop, moved]), "B1") == fit_population_model(pop, "B1")


def test_fit_rejects_incomplete_catalogues():
    pop = _population(seed=1)
    with pytest.raises(ValueError, match="lacks column.*core_frac"):
        fit_population_model(pop[["flux", "b_maj", "b_min", "size", "class", "ra_core", "dec_core",
                                  "ra_cent", "dec_cent"]], "B1")
    with pytest.raises(ValueError, match="no class has 50 sources"):
        fit_population_model(pop[:10], "B1")


def test_class_model_defaults_are_neutral():
    model = ClassModel(density=1.0, flux_ref=1e-6, slope=1.5, flux_break=1e-5, density_break=0.1,
                       bright_slope=1.5, size_a=0.0, size_b=0.0, size_scatter=0.0,
                       size_max=1.0)
    defaults = (model.q_alpha, model.q_beta, model.core_zero, model.extended_frac)
    assert defaults == (1.0, 1.0, 0.0, 0.0)


def test_differential_counts_of_a_population_add_up_to_its_sources():
    pop = _population(seed=2)
    area = SHAPE[0] * SHAPE[1] * get_band("B1").pixel_deg ** 2
    edges = np.geomspace(1e-7, 1e-2, 11)  # 0.5 dex bins
    centres, dn_dlogs, error = differential_counts(pop["flux"], edges, area)
    n, _ = np.histogram(np.asarray(pop["flux"]), edges)
    np.testing.assert_allclose(centres, np.sqrt(edges[1:] * edges[:-1]))
    np.testing.assert_allclose(dn_dlogs * area * 0.5, n)
    np.testing.assert_allclose(error * area * 0.5, np.sqrt(n))
    assert dn_dlogs[0] > dn_dlogs[-1]  # faint sources outnumber bright ones


@pytest.mark.parametrize(("edges", "area", "match"), [
    ([1e-6], 1.0, "at least two"), ([1e-5, 1e-6], 1.0, "increasing"),
    ([0.0, 1e-6], 1.0, "positive"), ([1e-6, 1e-5], 0.0, "area_deg2 must be positive"),
])
def test_differential_counts_rejects_bad_bins(edges, area, match):
    with pytest.raises(ValueError, match=match):
        differential_counts([1e-6], edges, area)


def test_placed_pairs_sit_beside_brighter_staying_sources():
    rng = np.random.default_rng(1)
    n = 400
    x, y, flux = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n), rng.pareto(1.5, n) + 1
    nx, ny = place_pairs(x, y, flux, np.random.default_rng(2), fraction=0.3, flux_floor=1.5,
                         separation_pix=(2.0, 4.0))
    moved = (nx != x) | (ny != y)
    eligible = flux >= 1.5
    assert not np.any(moved & ~eligible)  # faint sources stay where they were
    assert 0.2 < moved.sum() / eligible.sum() < 0.4
    assert not moved[np.argmax(flux)]
    staying = eligible & ~moved
    for i in np.flatnonzero(moved):
        d = np.hypot(nx[staying] - nx[i], ny[staying] - ny[i])
        beside = (d >= 2.0 - 1e-9) & (d <= 4.0 + 1e-9) & (flux[staying] > flux[i])
        assert beside.any(), i
    assert np.array_equal(x, np.asarray(x)) and nx is not x  # copies, inputs untouched
    with pytest.raises(ValueError, match="pair fraction must be in"):
        place_pairs(x, y, flux, rng, fraction=1.5, flux_floor=1.0, separation_pix=(1, 2))


def test_a_population_with_pairs_has_the_same_sources_more_of_them_close():
    """Same fluxes and sizes, seeded alike; far more sources 1-2 beams from a brighter one."""
    from scipy.spatial import cKDTree

    band = get_band("B1")
    wcs = sdc1_wcs(band, SHAPE)
    options = {"wcs": wcs, "region": (0, 0, SHAPE[1], SHAPE[0]), "seed": 5, "flux_min": 1e-6}
    plain = synthetic_population(band, **options)
    paired = synthetic_population(band, **options, pair_fraction=0.3, pair_flux_min=3e-6)
    again = synthetic_population(band, **options, pair_fraction=0.3, pair_flux_min=3e-6)
    assert np.array_equal(paired["x"], again["x"])
    for name in ("flux", "b_maj", "class", "pa"):
        assert np.array_equal(plain[name], paired[name])
    assert np.array_equal(paired["x"] == plain["x"], paired["y"] == plain["y"])

    def close_to_brighter(table):
        bright = np.flatnonzero(np.asarray(table["flux"]) >= 3e-6)
        xy = np.column_stack([table["x"][bright], table["y"][bright]])
        lo, hi = (b * band.beam_fwhm_pix for b in PAIR_SEPARATION_BEAMS)
        count = 0
        for i, near in enumerate(cKDTree(xy).query_ball_point(xy, hi + 1e-6)):
            flux = table["flux"][bright]
            count += any(j != i and flux[j] > flux[i]
                         and np.hypot(*(xy[j] - xy[i])) >= lo - 1e-6 for j in near)
        return count

    assert close_to_brighter(paired) > 3 * close_to_brighter(plain) > 0
