"""Tests of radioseg_utils.core.matching with hand-built catalogues of known TP/FP/FN."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from radioseg_utils.core.matching import match_labels, match_positions

ARCSEC = 1.0 / 3600.0
DEC0 = -30.0


def _cat(offsets_arcsec, flux=None) -> Table:
    """Sources at (dRA cos dec, dDec) offsets in arcsec from (RA 0, Dec -30)."""
    off = np.asarray(offsets_arcsec, dtype=float).reshape(-1, 2)
    ra = off[:, 0] * ARCSEC / np.cos(np.radians(DEC0))
    table = Table({"ra_core": ra, "dec_core": DEC0 + off[:, 1] * ARCSEC})
    if flux is not None:
        table["flux"] = flux
    return table


def test_known_counts_and_separations():
    truth = _cat([(0, 0), (10, 0), (20, 0), (30, 0)], flux=[4.0, 3.0, 2.0, 1.0])
    pred = _cat([(0.5, 0), (10, 1.0), (-25, 0), (29, 0), (50, 50)])
    m = match_positions(pred, truth, radius_arcsec=1.5)
    assert (m.tp, m.fp.tolist(), m.fn.tolist()) == (3, [2, 4], [2])
    assert m.true.tolist() == [0, 1, 3] and m.pred.tolist() == [0, 1, 3]
    assert m.distance == pytest.approx([0.5, 1.0, 1.0], abs=1e-6)
    assert m.true_of_pred().tolist() == [0, 1, -1, 3, -1]
    assert m.true_found().tolist() == [True, True, False, True]
    assert len(m.to_table()) == 3


def test_brightest_truth_picks_first_and_one_to_one():
    # one detection between two true sources: it goes to the brighter, though farther
    truth = _cat([(0, 0), (1.6, 0)], flux=[1.0, 5.0])
    pred = _cat([(0.7, 0)])
    m = match_positions(pred, truth, radius_arcsec=1.5)
    assert m.true.tolist() == [1] and m.fn.tolist() == [0]
    # table order instead: the first true source takes it
    assert match_positions(pred, truth, order_by=None).true.tolist() == [0]
    # two detections near one truth: only the nearest is a TP
    m2 = match_positions(_cat([(0.9, 0), (0.2, 0)]), _cat([(0, 0)], flux=[1.0]))
    assert (m2.pred.tolist(), m2.fp.tolist()) == ([1], [0])


def test_ra_wrap_and_empty():
    truth = Table({"ra_core": [-0.0001], "dec_core": [DEC0], "flux": [1.0]})
    pred = Table({"ra_core": [359.9999], "dec_core": [DEC0]})
    assert match_positions(pred, truth).tp == 1
    empty = match_positions(pred[:0], truth)
    assert (empty.tp, empty.fn.tolist(), empty.fp.tolist()) == (0, [0], [])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"radius_arcsec": 0.0}, "radius_arcsec must be positive"),
     ({"pred_columns": ("ra", "dec")}, "predicted catalogue lacks column"),
     ({"order_by": "snr"}, "lacks column 'snr'")],
)
def test_bad_inputs(kwargs, match):
    cat = _cat([(0, 0)], flux=[1.0])
    with pytest.raises(ValueError, match=match):
        match_positions(cat, cat, **kwargs)


def test_label_overlap_matching():
    true = np.zeros((6, 10), int)
    true[0:3, 0:3] = 1  # matched well
    true[0:3, 5:8] = 2  # predicted too small: IoU 3/9
    true[4:6, 0:2] = 3  # missed
    pred = np.zeros_like(true)
    pred[0:3, 0:2] = 2  # IoU 6/9 with true 1
    pred[0, 5:8] = 1
    pred[5, 8:10] = 3  # false positive
    m = match_labels(pred, true, min_iou=0.5)
    assert (m.tp, m.pred.tolist(), m.true.tolist()) == (1, [1], [0])
    assert m.distance == pytest.approx([1 / 3])
    assert (m.fp.tolist(), m.fn.tolist()) == ([0, 2], [1, 2])
    assert match_labels(pred, true, min_iou=0.3).tp == 2
    with pytest.raises(ValueError, match="label shapes differ"):
        match_labels(pred[:2], true)
    with pytest.raises(ValueError, match="min_iou"):
        match_labels(pred, true, min_iou=0.0)
