"""Completeness of faint sources against the brightness of their neighbours."""

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.baselines.result import FinderResult
from radioseg_utils.core.bands import get_band
from radioseg_utils.evaluation.crowding import (
    NEIGHBOUR_CLASSES,
    TRUE_SOURCES_ROW,
    class_bin_completeness,
    class_completeness,
    class_overview,
    class_pivot,
    class_table,
    neighbour_completeness,
    neighbour_table,
)
from radioseg_utils.evaluation.evaluate import evaluate_finder
from radioseg_utils.evaluation.metrics import SNR_BINS
from radioseg_utils.io.fits_read import Beam, SkyImage
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs


def _field():
    shape = (64, 64)
    wcs = sdc1_wcs("B1", shape)
    band = get_band("B1")
    sky = SkyImage(data=np.zeros(shape, np.float32), wcs=wcs, header=sdc1_header(wcs, band),
                   band=band, beam=Beam(band.beam_fwhm_arcsec, band.beam_fwhm_arcsec),
                   pixel_arcsec=band.pixel_arcsec, path=None)
    #            A alone, B by bright C, D by medium E
    x = np.array([10.0, 40.0, 45.0, 20.0, 24.0])
    y = np.array([10.0, 40.0, 40.0, 50.0, 50.0])
    snr = np.array([6.0, 7.0, 200.0, 8.0, 12.0])
    ra, dec = wcs.pixel_to_world_values(x, y)
    truth = Table({"ra_core": ra, "dec_core": dec, "flux": snr * 1e-6, "peak_snr": snr})
    return sky, truth


def test_faint_sources_binned_by_their_brightest_neighbour():
    sky, truth = _field()
    found = truth[[0, 2, 4]]  # A, C and E detected; B and D missed
    result = FinderResult(catalogue=found, labels=np.zeros(sky.shape, np.int32), runtime_s=0.0,
                          peak_rss_mb=0.0, finder="test")
    ev = evaluate_finder(result, truth, sky, integration=1000, pixels=False, score=False)
    table = neighbour_completeness(ev, truth, sky)
    assert table["n_true"].tolist() == [1, 1, 0, 1]
    assert table["n_found"].tolist() == [1, 0, 0, 0]
    assert table["completeness"].iloc[0] == 1.0 and np.isnan(table["completeness"].iloc[2])
    # a smaller radius leaves B and D without neighbours
    small = neighbour_completeness(ev, truth, sky, radius=3.0)
    assert small["n_true"].tolist() == [3, 0, 0, 0]
    assert small["completeness"].iloc[0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="truth has"):
        neighbour_completeness(ev, truth[:3], sky)


def test_neighbour_table_stacks_finders_in_order():
    sky, truth = _field()
    evaluations = {}
    for name, rows in (("all", [0, 1, 2, 3, 4]), ("bright only", [2, 4])):
        result = FinderResult(catalogue=truth[rows], labels=np.zeros(sky.shape, np.int32),
                              runtime_s=0.0, peak_rss_mb=0.0, finder=name)
        evaluations[name] = evaluate_finder(result, truth, sky, integration=1000, pixels=False,
                                            score=False)
    table = neighbour_table(evaluations, truth, sky)
    assert table.columns[0] == "finder" and table["finder"].tolist() == ["all"] * 4 + ["bright only"] * 4
    wide = table.pivot(index="finder", columns="lo", values="n_found")
    assert wide.loc["all"].tolist() == [1, 1, 0, 1] and wide.loc["bright only"].tolist() == [0] * 4
    assert neighbour_table(evaluations, truth, sky, radius=3.0)["n_true"].tolist()[:4] == [3, 0, 0, 0]
    with pytest.raises(ValueError, match="no evaluations"):
        neighbour_table({}, truth, sky)


def _classed_field():
    """Seven true sources, two found per class; pixels of 0.6 arcsec."""
    sky, _ = _field()
    #            A    B (0.6" from C)  C    D (2.4" from E)  E   F (1.8" from G)  G
    x = np.array([10.0, 40.0, 41.0, 20.0, 24.0, 50.0, 53.0])
    y = np.array([10.0, 40.0, 40.0, 50.0, 50.0, 10.0, 10.0])
    snr = np.array([6.0, 7.0, 200.0, 8.0, 12.0, 4.0, 30.0])
    ra, dec = sky.wcs.pixel_to_world_values(x, y)
    truth = Table({"ra_core": ra, "dec_core": dec, "flux": snr * 1e-6, "peak_snr": snr})
    evaluations = {}
    for name, rows in (("some", [0, 2, 3, 6]), ("bright only", [2, 6])):
        result = FinderResult(catalogue=truth[rows], labels=np.zeros(sky.shape, np.int32),
                              runtime_s=0.0, peak_rss_mb=0.0, finder=name)
        evaluations[name] = evaluate_finder(result, truth, sky, integration=1000, pixels=False,
                                            score=False)
    return sky, truth, evaluations


def test_class_bin_completeness_per_class_and_bin_sums_to_the_bins():
    sky, truth, evaluations = _classed_field()
    ev = evaluations["some"]
    table = class_bin_completeness(ev, truth, sky)
    assert list(table["neighbour_class"].unique()) == list(NEIGHBOUR_CLASSES)
    assert len(table) == 3 * (len(SNR_BINS) - 1)
    cell = table.set_index(["neighbour_class", "snr_lo"])
    assert cell.loc[("isolated", 5.0), ["n_true", "n_found"]].tolist() == [1, 1]       # A
    assert cell.loc[("isolated", 10.0), ["n_true", "n_found"]].tolist() == [1, 0]      # E
    assert cell.loc[("1.5-3arcsec", 3.0), ["n_true", "n_found"]].tolist() == [1, 0]    # F
    assert cell.loc[("1.5-3arcsec", 5.0), ["n_true", "n_found"]].tolist() == [1, 1]    # D
    assert cell.loc[("lt1.5arcsec", 5.0), ["n_true", "n_found"]].tolist() == [1, 0]    # B
    assert np.isnan(cell.loc[("lt1.5arcsec", 3.0), "completeness"])
    # summed over the classes: the evaluation's own bins
    per_bin = table.groupby("snr_lo", sort=True)[["n_true", "n_found"]].sum()
    assert per_bin["n_true"].tolist() == ev.bins["n_true"].tolist()
    assert per_bin["n_found"].tolist() == ev.bins["n_found"].tolist()
    # class_completeness is the one open bin from S/N 5
    above5 = table[table["snr_lo"] >= 5].groupby("neighbour_class", sort=False)["n_true"].sum()
    assert class_completeness(ev, truth, sky)["n_true"].tolist() == above5.tolist() == [4, 1, 1]
    with pytest.raises(ValueError, match="increasing"):
        class_bin_completeness(ev, truth, sky, snr_bins=(5.0, 3.0))
    with pytest.raises(ValueError, match="truth has"):
        class_bin_completeness(ev, truth[:3], sky)


def test_class_table_pivot_and_overview():
    sky, truth, evaluations = _classed_field()
    table = class_table(evaluations, truth, sky)
    assert table.columns[0] == "finder" and table["finder"].unique().tolist() == ["some", "bright only"]
    wide = class_pivot(table)
    assert wide.index.names == ["finder", "neighbour_class"]
    assert list(wide.columns) == ["3-5", "5-10", "10-20", "20-50", ">50"]
    assert wide.loc[("some", "isolated")].tolist()[1:] == [1.0, 0.0, 1.0, 1.0]
    assert wide.loc[("bright only", "1.5-3arcsec"), "5-10"] == 0.0
    overview = class_overview(table)
    assert overview.index.get_level_values(0).unique().tolist() == [TRUE_SOURCES_ROW, "some",
                                                                    "bright only"]
    counts = overview.loc[TRUE_SOURCES_ROW]
    assert list(counts.index) == list(NEIGHBOUR_CLASSES)
    assert counts.sum().tolist() == [1, 3, 1, 1, 1]  # true sources per S/N bin
    with pytest.raises(ValueError, match="several rows per"):
        class_pivot(table, keys=())
    shifted = table.assign(n_true=np.where(table["finder"] == "some", table["n_true"] + 1,
                                           table["n_true"]))
    with pytest.raises(ValueError, match="differ between finders"):
        class_overview(shifted)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['n_true'\]"):
        class_overview(table.drop(columns="n_true"))
    with pytest.raises(ValueError, match="no evaluations"):
        class_table({}, truth, sky)
