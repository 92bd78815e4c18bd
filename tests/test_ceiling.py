"""The physical ceiling: SDC1 scores of perfect catalogues above apparent-S/N cuts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from radioseg_utils.baselines import PeakSettings, run_peaks
from radioseg_utils.evaluation.ceiling import (
    CEILING_COLUMNS,
    FRACTION_COLUMN,
    Ceiling,
    add_ceiling,
    ceiling_column,
    field_ceiling,
    fraction_of_ceiling,
    perfect_catalogue,
)
from radioseg_utils.evaluation.evaluate import truth_in_image, truth_snr
from radioseg_utils.evaluation.scoring import sdc1_score
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.simulation.simulate import FLUX_SCALE, Attenuation, simulate_field
from radioseg_utils.workflows.ablation import evaluate_ablation

SHAPE = (192, 192)


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A small simulated B1 1000 h field with its truth: (SkyImage, truth)."""
    path = tmp_path_factory.mktemp("ceiling") / "field.fits"
    sim = simulate_field("B1", 1000, shape=SHAPE, seed=5, output=path)
    return read_image(path), sim.truth


def test_ceiling_is_the_score_of_the_perfect_catalogue_and_falls_with_the_cut(field):
    sky, truth = field
    ceiling = field_ceiling(truth, sky, integration=1000)
    inside = truth_in_image(truth, sky)
    snr = np.asarray(inside["peak_snr"])
    assert ceiling.cuts == (3.0, 4.0, 5.0)
    assert ceiling.n_sources == tuple(int((snr >= cut).sum()) for cut in (3, 4, 5))
    # the field holds sources between S/N 3 and 5: each cut below adds some, each scoring ~1
    assert ceiling.n_sources[0] > ceiling.n_sources[1] > ceiling.n_sources[2] > 20
    assert ceiling.scores[0] > ceiling.scores[1] > ceiling.scores[2] > 0
    for n, score in zip(ceiling.n_sources, ceiling.scores):
        assert score == pytest.approx(n, rel=0.02)  # perfect parameters: each match scores 1
    perfect = perfect_catalogue(inside, snr, 5.0)
    assert ceiling.score(5.0) == pytest.approx(sdc1_score(perfect, inside, "B1").value)


def test_ceiling_beats_the_same_catalogue_perturbed_or_thinned(field, rng):
    sky, truth = field
    inside = truth_in_image(truth, sky)
    perfect = perfect_catalogue(inside, np.asarray(inside["peak_snr"]), 5.0)
    best = field_ceiling(truth, sky, integration=1000, cuts=(5.0,)).score(5.0)
    moved = perfect.copy()
    for name in ("ra_core", "ra_cent", "dec_core", "dec_cent"):
        moved[name] = np.asarray(moved[name]) + rng.normal(0, 0.4 / 3600, len(moved))
    moved["flux"] = np.asarray(moved["flux"]) * rng.uniform(0.7, 1.3, len(moved))
    assert sdc1_score(moved, inside, "B1").value < best - 1
    thinned = perfect[rng.random(len(perfect)) > 0.2]
    assert sdc1_score(thinned, inside, "B1").value < best - 0.1 * len(perfect)


def test_ceiling_uses_the_apparent_snr_of_the_evaluation(field):
    """Without a peak_snr column the S/N is the primary-beam x flux-scale one, as for finders."""
    sky, truth = field
    bare = truth.copy()
    bare.remove_column("peak_snr")
    gain = Attenuation(None, FLUX_SCALE)
    inside = truth_in_image(bare, sky)
    snr = truth_snr(inside, sky, noise=sky.band.noise(1000), primary_beam=gain)
    ceiling = field_ceiling(bare, sky, integration=1000, primary_beam=gain)
    assert ceiling.n_sources == tuple(int((snr >= cut).sum()) for cut in (3, 4, 5))
    # the simulated peak_snr is that same definition
    assert np.allclose(snr, np.asarray(truth_in_image(truth, sky)["peak_snr"]), rtol=1e-6)
    # a lower noise raises every S/N: more sources above each cut
    deeper = field_ceiling(bare, sky, noise=sky.band.noise(1000) / 2, primary_beam=gain)
    assert all(d > c for d, c in zip(deeper.n_sources, ceiling.n_sources))


def test_columns_fraction_and_empty_field(field):
    sky, truth = field
    ceiling = Ceiling((3.0, 4.0, 5.0), (300.0, 250.0, 200.0), (300, 250, 200))
    columns = ceiling.columns(50.0)
    assert list(columns) == list(CEILING_COLUMNS) == ["ceiling_snr3", "ceiling_snr4",
                                                      "ceiling_snr5", "fraction_of_ceiling_snr5"]
    assert columns[FRACTION_COLUMN] == pytest.approx(50.0 / 200.0)  # score / the S/N 5 ceiling
    assert math.isnan(ceiling.columns()[FRACTION_COLUMN])
    assert ceiling_column(4.5) == "ceiling_snr4.5"
    assert math.isnan(fraction_of_ceiling(10.0, 0.0))
    with pytest.raises(KeyError, match="no ceiling at S/N 6"):
        ceiling.score(6.0)
    empty = field_ceiling(truth[:0], sky, integration=1000)
    assert empty.scores == (0.0, 0.0, 0.0) and empty.n_sources == (0, 0, 0)
    assert math.isnan(empty.columns(-3.0)[FRACTION_COLUMN])
    with pytest.raises(ValueError, match="noise or the integration"):
        field_ceiling(truth, sky)
    with pytest.raises(ValueError, match="at least one S/N cut"):
        field_ceiling(truth, sky, integration=1000, cuts=())
    with pytest.raises(ValueError, match="one per source"):
        perfect_catalogue(truth, np.ones(3), 5.0)


def test_add_ceiling_per_field():
    low = Ceiling((3.0, 4.0, 5.0), (30.0, 20.0, 10.0), (30, 20, 10))
    high = Ceiling((3.0, 4.0, 5.0), (300.0, 200.0, 100.0), (300, 200, 100))
    table = pd.DataFrame({"finder": ["a", "b", "a"], "field": ["x", "x", "y"],
                          "sdc1_score": [5.0, 20.0, 50.0]})
    out = add_ceiling(table, {"x": low, "y": high})
    assert list(out.columns) == [*table.columns, *CEILING_COLUMNS]
    assert out["ceiling_snr5"].tolist() == [10.0, 10.0, 100.0]
    assert out[FRACTION_COLUMN].tolist() == pytest.approx([0.5, 2.0, 0.5])
    assert add_ceiling(out, {"x": low, "y": high}).equals(out)  # columns replaced, not doubled
    with pytest.raises(ValueError, match=r"no ceiling for field\(s\) \['y'\]"):
        add_ceiling(table, {"x": low})
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['sdc1_score'\]"):
        add_ceiling(table.drop(columns="sdc1_score"), {"x": low, "y": high})


def test_ablation_table_carries_the_field_ceiling(field):
    sky, truth = field
    gain = Attenuation(None, FLUX_SCALE)
    extra = {"peaks 4": lambda s: run_peaks(s, primary_beam=gain),
             "peaks 6": lambda s: run_peaks(s, primary_beam=gain,
                                            settings=PeakSettings(threshold_snr=6))}
    table, _ = evaluate_ablation(sky, truth, integration=1000, variants=(), extra=extra,
                                 primary_beam=gain)
    ceiling = field_ceiling(truth, sky, integration=1000, primary_beam=gain)
    assert set(CEILING_COLUMNS) <= set(table.columns)
    assert (table["ceiling_snr5"] == ceiling.score(5.0)).all()  # once per field
    assert table["sdc1_score"].nunique() == 2
    assert table[FRACTION_COLUMN].tolist() == pytest.approx(
        (table["sdc1_score"] / ceiling.score(5.0)).tolist())
