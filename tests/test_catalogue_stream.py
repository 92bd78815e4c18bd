"""Streamed catalogue files equal the files written from the whole table."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import MaskedColumn, Table, vstack

from radioseg_utils.io.catalogue import catalogue_table, submission_lines, write_submission
from radioseg_utils.io.catalogue_stream import STREAM_FORMATS, CatalogueStream, ecsv_data_lines
from radioseg_utils.io.regions import ds9_lines, write_ds9_regions

META = {"BAND": "B1", "NOISE": 2.1e-7, "THRESH": "fixed", "CORRECT": "primary beam"}


def _block(rng: np.random.Generator, n: int, first_id: int) -> Table:
    return catalogue_table({
        "id": np.arange(first_id, first_id + n), "ra_core": rng.uniform(-1, 1, n),
        "dec_core": rng.uniform(-31, -29, n), "ra_cent": rng.uniform(-1, 1, n),
        "dec_cent": rng.uniform(-31, -29, n), "flux": rng.uniform(1e-6, 1e-3, n),
        "core_frac": np.zeros(n), "b_maj": rng.uniform(0, 5, n), "b_min": rng.uniform(0, 2, n),
        "pa": rng.uniform(0, 180, n), "size": np.full(n, 2), "class": np.full(n, 3),
        "peak_snr": rng.uniform(5, 50, n), "fwhm_maj": rng.uniform(1, 5, n),
        "fwhm_min": rng.uniform(1, 2, n), "pa_eon": rng.uniform(0, 180, n),
        "label": np.arange(first_id, first_id + n) + 1})


@pytest.fixture
def blocks(rng):
    return [_block(rng, 5, 0), _block(rng, 0, 5), _block(rng, 7, 5)]


def test_streamed_files_equal_whole_table_files(tmp_path, blocks):
    paths = {key: tmp_path / f"cat.{key}" for key in STREAM_FORMATS}
    with CatalogueStream(paths, meta=META) as out:
        for block in blocks:
            out.append(block)
    assert out.n_rows == 12
    whole = vstack(blocks)
    whole.meta = dict(META)
    for key in ("ecsv", "fits", "parquet"):
        fmt = {"ecsv": "ascii.ecsv", "fits": "fits", "parquet": "parquet"}[key]
        back = Table.read(paths[key], format=fmt)
        assert back.colnames == whole.colnames, key
        for name in whole.colnames:
            np.testing.assert_array_equal(back[name], whole[name], err_msg=f"{key} {name}")
            assert back[name].unit == whole[name].unit, (key, name)
        assert back.meta["NOISE"] == META["NOISE"] and back.meta["BAND"] == "B1", key
    with fits.open(paths["fits"]) as hdul:
        hdul.verify("exception")  # a valid FITS file: sizes, padding, NAXIS2
        assert hdul[1].header["NAXIS2"] == 12
    reference = tmp_path / "ref"
    reference.mkdir()
    whole.write(reference / "cat.ecsv", format="ascii.ecsv")
    assert paths["ecsv"].read_text() == (reference / "cat.ecsv").read_text()  # byte for byte
    write_submission(whole, reference / "sub.txt", allow_empty=True)
    assert paths["submission"].read_text() == (reference / "sub.txt").read_text()
    write_ds9_regions(whole, reference / "cat.reg")
    assert paths["regions"].read_text() == (reference / "cat.reg").read_text()


def test_a_stream_of_empty_blocks_gives_valid_empty_files(tmp_path, blocks):
    paths = {key: tmp_path / f"cat.{key}" for key in ("ecsv", "fits", "parquet")}
    with CatalogueStream(paths) as out:
        out.append(blocks[1])
    for key, fmt in (("ecsv", "ascii.ecsv"), ("fits", "fits"), ("parquet", "parquet")):
        back = Table.read(paths[key], format=fmt)
        assert len(back) == 0 and back.colnames == blocks[1].colnames


def test_blocks_must_share_columns_and_formats_must_be_known(tmp_path, blocks):
    with pytest.raises(ValueError, match="unknown catalogue format"):
        CatalogueStream({"csv": tmp_path / "x.csv"})
    out = CatalogueStream({"ecsv": tmp_path / "cat.ecsv"})
    out.append(blocks[0])
    other = blocks[2].copy()
    other.remove_column("peak_snr")
    with pytest.raises(ValueError, match="differ from the first block"):
        out.append(other)
    out.close()


def _astropy_data_lines(table: Table) -> list[str]:
    text = io.StringIO()
    table.write(text, format="ascii.ecsv")
    lines = text.getvalue().splitlines(keepends=True)
    return lines[next(i for i, line in enumerate(lines) if not line.startswith("#")) + 1:]


@pytest.mark.parametrize("extra", [None, "name", "masked"])
def test_ecsv_data_lines_are_astropys(rng, extra):
    values = np.concatenate([rng.normal(size=50) * 10.0 ** rng.integers(-30, 30, 50),
                             [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e16, 1e-4, 9.999e-5, 0.1 + 0.2]])
    n = values.size
    table = Table({"f8": values, "f4": values.astype(np.float32), "i8": np.arange(n) - 3,
                   "u1": np.arange(n, dtype=np.uint8), "flag": np.arange(n) % 3 == 0})
    if extra == "name":  # text goes through astropy's own writer (quoting)
        table[extra] = [f"src {k}" if k % 2 else "" for k in range(n)]
    if extra == "masked":  # so do masked values (written as empty fields)
        table[extra] = MaskedColumn(values, mask=np.arange(n) % 4 == 0)
    assert ecsv_data_lines(table) == _astropy_data_lines(table)


def _mixed_widths(rng: np.random.Generator, n: int) -> Table:
    """A block whose float columns are partly float32, with angles past the wrap points."""
    block = _block(rng, n, 10**6)
    for name in ("ra_cent", "fwhm_maj", "flux", "b_min"):
        block[name] = block[name].astype(np.float32)
    block["ra_cent"][:3] = [-0.0, 359.99999999, -360.5]
    block["pa_eon"][:3] = [90.0, 270.0, -90.000001]
    return block


def test_region_and_submission_lines_are_those_of_each_row(rng):
    """The lines, made column by column, equal the plain per-row formatting."""
    block = _mixed_widths(rng, 40)
    regions = [f"ellipse({float(r['ra_cent']) % 360.0:.7f},{float(r['dec_cent']):.7f},"
               f"{float(r['fwhm_maj']) / 2:.3f}\",{float(r['fwhm_min']) / 2:.3f}\","
               f"{(float(r['pa_eon']) + 90.0) % 180.0:.2f}) # text={{{int(r['id'])}}}\n"
               for r in block]
    assert ds9_lines(block) == regions
    columns = ("id", "ra_core", "dec_core", "ra_cent", "dec_cent", "flux", "core_frac", "b_maj",
               "b_min", "pa", "size", "class")
    submission = []
    for r in block:
        values = [float(r[c]) for c in columns]
        for k in (1, 3):  # RA into -180 <= RA < 180, only where outside
            if not -180.0 <= values[k] < 180.0:
                values[k] = (values[k] + 180.0) % 360.0 - 180.0
        submission.append(" ".join("%d" % v if c in ("id", "size", "class") else "%.10g" % v
                                   for c, v in zip(columns, values, strict=True)) + "\n")
    assert submission_lines(block) == submission
