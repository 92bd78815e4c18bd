"""Real data in the book: a section's files, or the box saying why it was skipped (no network)."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from radioseg_utils.core.paths import display_path
from radioseg_utils.io import registry
from radioseg_utils.workflows.grid import REAL_CUTOUT_FILES
from radioseg_utils.workflows.realdata import (
    BOOK_DATA_FILES,
    SKIPPED_KEY,
    fetch_book_data,
    format_skipped,
    real_data,
    skipped_sections,
)

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file"


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.setenv("RADIOSEG_DATA", str(folder))
    return folder


def test_present_files_are_returned_with_a_one_line_note(sdc1_dir):
    files = real_data("B1_1000h_0.05tr.fits", "PrimaryBeam_B1.fits", section="the cutout")
    assert files and files["PrimaryBeam_B1.fits"] == sdc1_dir.resolve() / "PrimaryBeam_B1.fits"
    data, metadata = files._repr_mimebundle_()
    assert data["text/plain"] == ("Real data read here (data registry, verified): "
                                  "B1_1000h_0.05tr.fits, PrimaryBeam_B1.fits.")
    assert metadata == {}


def test_missing_files_give_a_false_marker_shown_as_a_warning_box(no_data):
    files = real_data("PrimaryBeam_B1.fits", "truth_B1_1000h_0.05tr.cat", section="a <b> section")
    assert not files and files.paths == {}
    assert list(files.missing) == ["PrimaryBeam_B1.fits", "truth_B1_1000h_0.05tr.cat"]
    assert files.missing["PrimaryBeam_B1.fits"] == (
        f"not found in the data folder ({display_path(no_data)}); to get it, run `radioseg fetch "
        "PrimaryBeam_B1.fits` (20.2 kB from raw.githubusercontent.com), or set RADIOSEG_DATA "
        "to a folder that holds it")
    assert "it has no public URL (cut from True_560_v2.txt)" in files.missing[
        "truth_B1_1000h_0.05tr.cat"]
    data, metadata = files._repr_mimebundle_()
    assert data["text/html"].startswith('<div class="admonition warning"><p class="admonition-'
                                        'title">Skipped: a &lt;b&gt; section</p>')
    assert "<li><code>PrimaryBeam_B1.fits</code>: not found" in data["text/html"]
    assert data["text/plain"].splitlines()[0] == "Skipped: a <b> section (real data missing)"
    assert metadata == {SKIPPED_KEY: {"section": "a <b> section", "files": files.missing}}
    with pytest.raises(KeyError, match="PrimaryBeam_B1.fits is missing"):
        files["PrimaryBeam_B1.fits"]


def test_a_bad_copy_skips_the_section_and_an_unknown_name_raises(no_data):
    (no_data / "PrimaryBeam_B1.fits").write_bytes(b"x")
    files = real_data("PrimaryBeam_B1.fits", section="s")
    assert files.missing["PrimaryBeam_B1.fits"].startswith("present, but its size or sha256")
    with pytest.raises(registry.UnknownFileError):
        real_data("nope.fits", section="s")


def test_fetch_book_data_reports_and_tries_an_unreachable_host_once(no_data, monkeypatch):
    url = _closed_port_url()
    names = ("B1_1000h_0.05tr.fits", "PrimaryBeam_B1.fits", "truth_B1_1000h_0.05tr.cat")
    for name in names[:2]:
        monkeypatch.setitem(registry.load_registry(), name,
                            replace(registry.get_entry(name), urls=(url,)))
    report = fetch_book_data(names)
    assert {n: r["status"] for n, r in report.items()} == dict.fromkeys(names, "missing")
    assert report[names[0]]["reason"].startswith("could not reach 127.0.0.1")
    assert report[names[1]]["reason"] == f"not tried: 127.0.0.1 could not be reached for {names[0]}"
    assert report[names[2]]["reason"].startswith("truth_B1_1000h_0.05tr.cat has no public URL")
    offline = fetch_book_data(names[:1], download=False)
    assert offline[names[0]]["reason"].startswith(f"SDC1 file {names[0]} not found in {no_data}")


def test_fetch_book_data_verifies_present_files(sdc1_dir):
    report = fetch_book_data(("PrimaryBeam_B1.fits",))
    path = display_path(sdc1_dir / "PrimaryBeam_B1.fits")
    assert report == {"PrimaryBeam_B1.fits": {"status": "present", "path": path}}


def test_skipped_sections_are_read_from_the_outputs(tmp_path):
    box = {"output_type": "execute_result", "data": {}, "execution_count": 1,
           "metadata": {SKIPPED_KEY: {"section": "s", "files": {"a": "why"}}}}
    cells = [{"cell_type": "code", "outputs": [box]}, {"cell_type": "markdown"}]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert skipped_sections(path) == [{"section": "s", "files": {"a": "why"}}]
    assert format_skipped([]) == ""


def test_summary_of_several_skipped_sections():
    skipped = [{"notebook": "09_c.ipynb", "section": "one",
                "files": {"PrimaryBeam_B1.fits": "", "truth_B1_1000h_0.05tr.cat": ""}},
               {"notebook": "02_s.ipynb", "section": "two", "files": {"B1_1000h_0.05tr.fits": ""}}]
    assert format_skipped(skipped).splitlines() == [
        "2 sections of the book were skipped for lack of real data:",
        "  09_c.ipynb, one: PrimaryBeam_B1.fits, truth_B1_1000h_0.05tr.cat",
        "  02_s.ipynb, two: B1_1000h_0.05tr.fits",
        "To include them: run `radioseg fetch PrimaryBeam_B1.fits B1_1000h_0.05tr.fits`; "
        "truth_B1_1000h_0.05tr.cat: it has no public URL (cut from True_560_v2.txt): copy it "
        "into a data folder, or set RADIOSEG_DATA to a folder that holds them; then run "
        "`radioseg book --from 02`."]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_read_real_files_only_through_real_data(path):
    """Every registry file a notebook names is fetched by `radioseg book`, and read through
    `real_data` (so its section is skipped, not failed, without it)."""
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                     if c["cell_type"] == "code")
    assert "registry.fetch" not in code
    known = set(registry.list_files())
    named = {re.sub(r"\{(band|b)\}", band, literal)
             for literal in re.findall(r"""["']([\w{}.\-]+)["']""", code)
             for band in ("B1", "B2", "B5")}
    assert named & known <= set(BOOK_DATA_FILES)


def test_the_book_data_are_small_and_include_the_real_cutout():
    assert set(REAL_CUTOUT_FILES.values()) <= set(BOOK_DATA_FILES)
    assert sum(registry.get_entry(n).approx_size for n in BOOK_DATA_FILES) < 5e6
