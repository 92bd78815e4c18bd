"""Tests of the evaluation grid: seeds, caching, error rows, tables and the real cutout."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.baselines import FINDERS, PeakSettings, run_peaks
from radioseg_utils.cli import main
from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.evaluation.ceiling import CEILING_COLUMNS, field_ceiling
from radioseg_utils.evaluation.crowding import NEIGHBOUR_CLASSES
from radioseg_utils.evaluation.evaluate import truth_in_image
from radioseg_utils.evaluation.metrics import SNR_BINS
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.model.files import ModelMismatchError
from radioseg_utils.workflows import grid
from radioseg_utils.workflows.pipeline import field_seed

matplotlib.use("Agg")

SIZE = 256
#: SDC1_FACTS.md, plain local maxima > 4 sigma on the real B1 1000 h cutout: completeness
#: in true peak S/N bins 5-10, 10-20, 20-50, > 50.
REFERENCE_PEAKS = {"5_10": 0.65, "10_20": 0.90, "20_50": 0.96, "gt50": 0.99}


@pytest.fixture
def counted(monkeypatch):
    """Replace the peaks finder by a counting wrapper; returns the list of calls."""
    calls = []

    def peaks(image, **options):
        calls.append(options)
        return run_peaks(image, **options)

    monkeypatch.setitem(FINDERS, "peaks", peaks)
    return calls


def test_grid_seeds_are_disjoint_from_pipeline_seeds():
    assert grid.grid_seed(1, "B2", 100) == 2**62 + 13
    seeds = {grid.grid_seed(s, b, t) for s in (0, 1, 2, 2**32 - 1) for b in ("B1", "B2", "B5")
             for t in (8, 100, 1000)}
    assert len(seeds) == 36 and min(seeds) == grid.GRID_SEED_BASE
    pipeline_seeds = {field_seed(name, s) for s in (0, 1, 2, 2026, 2**32 - 1)
                      for name in ("train", "test", "grid", "a_very_long_field_name" * 10)}
    assert max(pipeline_seeds) < grid.GRID_SEED_BASE


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
def test_grid_seed_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="grid seed must be an integer"):
        grid.grid_seed(seed, "B1", 8)


def test_grid_seed_rejects_bad_integration():
    with pytest.raises(ValueError, match="unknown integration 10"):
        grid.grid_seed(1, "B1", 10)


def test_grid_counts_and_caches(tmp_path, counted):
    df = grid.evaluate_grid(["B1"], [1000], ["peaks"], size=SIZE, run_dir=tmp_path,
                            progress=False)
    assert len(counted) == 1 and list(df.columns) == list(grid.GRID_COLUMNS)
    row = df.iloc[0]
    assert (row.field, row.band, row.integration, row.finder) == ("simulated", "B1", 1000, "peaks")
    files = grid.ensure_grid_field(grid.RunLayout(tmp_path.resolve()), "B1", 1000, size=SIZE)
    assert read_image(files.image).header["SIMSEED"] == grid.grid_seed(1, "B1", 1000)
    truth = truth_in_image(Table.read(files.truth), read_image(files.image))
    truth_snr = np.asarray(truth["peak_snr"])
    counts, _ = np.histogram(truth_snr, bins=SNR_BINS)
    assert [row[f"n_true_{b}"] for b in ("3_5", "5_10", "10_20", "20_50", "gt50")] == counts.tolist()
    assert row.n_detections == len(run_peaks(read_image(files.image)).catalogue) > 50
    assert row.completeness_gt10 > 0.9 and row.strict_reliability > 0.9 and not row.cached
    # the physical ceiling of the field: perfect catalogues above apparent S/N 3, 4, 5
    assert set(CEILING_COLUMNS) <= set(df.columns)
    ceiling = field_ceiling(Table.read(files.truth), read_image(files.image), integration=1000)
    assert [row.ceiling_snr3, row.ceiling_snr4, row.ceiling_snr5] == pytest.approx(ceiling.scores)
    assert row.ceiling_snr3 > row.ceiling_snr4 > row.ceiling_snr5 > row.sdc1_score > 0
    assert row.fraction_of_ceiling_snr5 == pytest.approx(row.sdc1_score / row.ceiling_snr5)
    # completeness per neighbour class and S/N bin: the classes add up to the bins
    classes = grid.grid_class_table(df)
    assert len(classes) == 3 * len(SNR_BINS[:-1])
    assert classes["neighbour_class"].unique().tolist() == list(NEIGHBOUR_CLASSES)
    per_bin = classes.groupby("snr_lo", sort=True)["n_true"].sum()
    assert per_bin.tolist() == counts.tolist()
    found = (classes["n_true"] * classes["completeness"].fillna(0)).groupby(classes["snr_lo"]).sum()
    assert found.to_numpy() / counts == pytest.approx(
        [row[f"completeness_{b}"] for b in ("3_5", "5_10", "10_20", "20_50", "gt50")])
    with pytest.raises(ValueError, match="lacks column"):
        grid.grid_class_table(df.drop(columns="n_true_isolated_5_10"))
    again = grid.evaluate_grid(["B1"], [1000], ["peaks"], size=SIZE, run_dir=tmp_path,
                               progress=False)
    assert len(counted) == 1 and again.iloc[0].cached
    assert again.drop(columns="cached").equals(df.drop(columns="cached"))
    stricter = grid.evaluate_grid(["B1"], [1000], ["peaks"], size=SIZE, run_dir=tmp_path,
                                  progress=False,
                                  finder_options={"peaks": {"settings": PeakSettings(threshold_snr=6)}})
    assert len(counted) == 2 and counted[-1]["settings"].threshold_snr == 6
    assert 0 < stricter.iloc[0].n_detections < row.n_detections


def test_failing_finder_gives_error_row_and_is_not_cached(tmp_path, monkeypatch):
    def mismatch(image, **options):
        raise ModelMismatchError("model m.keras does not match the data: trained on band B1, "
                                 "data is band B2")

    monkeypatch.setitem(FINDERS, "peaks", mismatch)
    df = grid.evaluate_grid(["B2"], [1000], ["peaks", "photutils"], size=SIZE, run_dir=tmp_path,
                            progress=False)
    failed, ran = df.iloc[0], df.iloc[1]
    assert failed.error.startswith("ModelMismatchError: model m.keras") and ran.error == ""
    assert math.isnan(failed.n_detections) and math.isnan(failed.sdc1_score)
    assert failed.ceiling_snr5 == ran.ceiling_snr5 > 0 and math.isnan(failed.fraction_of_ceiling_snr5)
    assert math.isnan(failed.completeness_isolated_5_10) and ran.n_true_isolated_5_10 > 0
    assert ran.n_detections > 0 and ran.completeness_gt10 > 0.8
    monkeypatch.setitem(FINDERS, "peaks", run_peaks)
    df = grid.evaluate_grid(["B2"], [1000], ["peaks"], size=SIZE, run_dir=tmp_path,
                            progress=False)
    assert df.iloc[0].error == "" and not df.iloc[0].cached and df.iloc[0].n_detections > 0


def test_field_without_truth_scores_minus_detections(tmp_path):
    # a 256 px B5 field is 9.4 arcsec wide: at 8 h no source is above the noise
    df = grid.evaluate_grid(["B5"], [8], ["photutils"], size=SIZE, run_dir=tmp_path,
                            progress=False)
    row = df.iloc[0]
    assert row.n_true_3_5 == 0 and row.sdc1_score == -row.n_detections
    assert row.ceiling_snr3 == 0 and math.isnan(row.fraction_of_ceiling_snr5)


def test_bad_finder_options(tmp_path):
    with pytest.raises(ValueError, match=r"unknown finder\(s\) \['sextractor'\]"):
        grid.evaluate_grid(["B1"], [8], ["sextractor"], size=SIZE, run_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="U-Net model file .*missing.keras not found"):
        grid.evaluate_grid(["B1"], [8], ["unet"], size=SIZE, run_dir=tmp_path,
                           finder_options={"unet": {"model": tmp_path / "missing.keras"}})
    with pytest.raises(TypeError, match="option 'noise' of finder 'peaks'.*cannot key"):
        grid.evaluate_grid(["B1"], [8], ["peaks"], size=SIZE, run_dir=tmp_path,
                           finder_options={"peaks": {"noise": np.ones((SIZE, SIZE))}})


def test_tables_plot_and_cli(tmp_path, capsys):
    assert main(["evaluate", "--bands", "B1", "B2", "--integrations", "1000", "--finders",
                 "peaks", "--size", str(SIZE), "--run-dir", str(tmp_path)]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("| field | band | integration | finder | n_detections |")
    assert markdown.count("| simulated | B") == 2
    df = Table.read(tmp_path / "results" / "grid.ecsv").to_pandas()
    assert df["band"].tolist() == ["B1", "B2"] and (tmp_path / "results" / "grid.csv").is_file()
    table = grid.grid_table(df)
    assert table.index.names == ["field", "band", "integration", "finder"]
    assert list(table.columns) == list(grid.TABLE_COLUMNS)
    assert set(CEILING_COLUMNS) <= set(table.columns)
    assert markdown.splitlines()[0].count("ceiling_snr") == 4  # three ceilings and the fraction
    fig = grid.plot_grid(df)
    assert sum(ax.get_visible() for ax in fig.axes) == 2
    assert fig.axes[0].get_title() == "simulated B1 1000 h"
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['finder'\]"):
        grid.grid_table(df.drop(columns="finder"))


def test_real_cutout_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="B1_1000h_0.05tr.fits not found.*RADIOSEG_DATA"):
        grid.evaluate_real_cutout(["peaks"], data_dir=tmp_path)


@pytest.mark.realdata
def test_real_cutout_reproduces_reference_plain_finder(sdc1_dir):
    """Our evaluation gives the SDC1_FACTS plain-finder completeness on the real cutout.

    The reference finder keeps pixels above 4 rms *above zero*; the image background sits
    at -0.7 rms, so that is 4.7 rms above the background that ``run_peaks`` subtracts. The
    cutout holds 7 to 43 true sources per bin: agreement is asked within twice the binomial
    error of the reference fraction plus 3 %.
    """
    background, rms = estimate_noise(np.asarray(read_image(sdc1_dir / "B1_1000h_0.05tr.fits").data))
    settings = PeakSettings(threshold_snr=4.0 - background / rms)
    row = grid.evaluate_real_cutout(["peaks"], finder_options={"peaks": {"settings": settings}},
                                    data_dir=sdc1_dir).iloc[0]
    assert (row.field, row.band, row.integration) == ("real cutout", "B1", 1000)
    for name, reference in REFERENCE_PEAKS.items():
        n = row[f"n_true_{name}"]
        tolerance = 2 * math.sqrt(reference * (1 - reference) / n) + 0.03
        assert abs(row[f"completeness_{name}"] - reference) <= tolerance, name
    assert row.strict_reliability > 0.9 and row.sdc1_score > 0
    # the real cutout's ceiling is scored on the training area with the primary beam
    assert row.ceiling_snr3 > row.ceiling_snr4 > row.ceiling_snr5 > 0
    assert row.fraction_of_ceiling_snr5 == pytest.approx(row.sdc1_score / row.ceiling_snr5)
