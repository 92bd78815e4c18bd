"""Completeness of faint sources against the brightness of their neighbours."""

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.baselines.result import FinderResult
from radioseg_utils.core.bands import get_band
from radioseg_utils.evaluation.crowding import neighbour_completeness, neighbour_table
from radioseg_utils.evaluation.evaluate import evaluate_finder
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
