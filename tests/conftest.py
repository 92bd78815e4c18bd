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
from astropy.io import fits

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


@pytest.fixture
def bad_fits(tmp_path):
    """Make a bad input file of one kind, from a good FITS image when the kind needs one.

    ``bad_fits(kind, good=None) -> (path, message)``: the file, and the exact message every
    reader must give for it. Kinds: ``"empty"``, ``"text"``, ``"truncated data"`` (1000 bytes
    of data left), ``"truncated header"`` (the first 1000 bytes), ``"no image"``.
    """

    def make(kind: str, good: Path | None = None) -> tuple[Path, str]:
        path = tmp_path / f"{kind.replace(' ', '_')}.fits"
        if kind == "empty":
            path.write_bytes(b"")
            return path, f"{path} is not a FITS file (it is empty)"
        if kind == "text":
            path.write_text("ID RA DEC\n1 2 3\n")
            return path, f"{path} is not a FITS file (it does not start with 'SIMPLE  =')"
        if kind == "no image":
            table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0])])
            fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
            return path, f"{path}: no image data in any HDU (it holds PrimaryHDU, BinTableHDU)"
        data = Path(good).read_bytes()
        if kind == "truncated header":
            path.write_bytes(data[:1000])
            return path, f"{path} is truncated: its header stops after 1000 bytes without an END card"
        if kind == "truncated data":
            with fits.open(good) as hdul:
                start, size = hdul.fileinfo(0)["datLoc"], hdul[0].size
            path.write_bytes(data[: start + 1000])
            return path, f"{path} is truncated: expected {size} bytes of data, found 1000"
        raise ValueError(f"unknown kind of bad file {kind!r}")

    return make
