"""Shared fixtures.

Real data files are found through the data registry. When ``RADIOSEG_DATA`` is unset the
tests point it at ``../shared/data/sdc1`` and ``../shared/data/other`` beside the checkout
(present here and in CI);
tests that need real data skip, with that reason, only when that folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from radioseg_utils.core.paths import data_dir

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHARED_SDC1 = SHARED_DATA / "sdc1"

# The machine is shared (2 cores): keep TensorFlow to two threads in every test that uses
# it; these variables are read when TensorFlow starts, so they must be set before.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

if not os.environ.get("RADIOSEG_DATA") and SHARED_SDC1.is_dir():  # unset or empty
    os.environ["RADIOSEG_DATA"] = os.pathsep.join(str(SHARED_DATA / f) for f in ("sdc1", "other"))


@pytest.fixture(scope="session")
def sdc1_dir() -> Path:
    """Folder holding the real SDC1 files; skips the test when it is missing."""
    path = data_dir()
    if not (path / "B1_1000h_0.05tr.fits").is_file():
        pytest.skip(f"real SDC1 files not found in {path} (set RADIOSEG_DATA)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator, so every test is deterministic."""
    return np.random.default_rng(20261125)


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """Send generated outputs of every test to its own temporary folder."""
    monkeypatch.setenv("RADIOSEG_OUTPUT", str(tmp_path / "generated"))
