"""The notebook runner: order, parameters, manifest, failure message and resume, real data
fetched or its sections skipped, no absolute path of the building machine in the output."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nbformat
import pytest

from radioseg_utils.cli import main
from radioseg_utils.io import registry
from radioseg_utils.workflows import book, realdata

#: The tiny notebooks read no real data: nothing is fetched for them.
NO_DATA = {"data_files": ()}


def _notebook(path, *code: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("run_dir = ''\nseed = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    _notebook(src / "01_first.ipynb",
              "from pathlib import Path\nPath(run_dir, 'first.txt').write_text(str(seed))")
    _notebook(src / "02_second.ipynb",
              "from pathlib import Path\n"
              "Path(run_dir, 'second.txt').write_text(Path(run_dir, 'first.txt').read_text() + '+')")
    return src


def test_discover_orders_numbered_notebooks(notebooks):
    (notebooks / "scratch.ipynb").write_text("{}")
    assert [p.name for p in book.discover_notebooks(notebooks)] == ["01_first.ipynb", "02_second.ipynb"]


def test_run_passes_parameters_and_writes_manifest(notebooks, tmp_path):
    run_dir = tmp_path / "run"
    manifest = book.run_notebooks("quick", run_dir=run_dir, notebook_dir=notebooks,
                                  executed_dir=tmp_path / "executed", overrides={"seed": 7},
                                  **NO_DATA)
    assert (run_dir / "second.txt").read_text() == "7+"
    saved = json.loads((run_dir / "manifest.json").read_text())
    assert [n["notebook"] for n in saved["notebooks"]] == ["01_first.ipynb", "02_second.ipynb"]
    assert all(n["status"] == "ok" for n in saved["notebooks"])
    # only declared parameters are passed: the notebooks declare run_dir (relative to their
    # folder, where they run) and seed
    assert saved["notebooks"][0]["parameters"] == {"seed": 7, "run_dir": "../run"}
    assert saved["run_dir"] == str(run_dir) and saved["skipped"] == [] and saved["data"] == {}
    assert saved["finished"] and manifest.versions["python"]
    assert (tmp_path / "executed" / "02_second.ipynb").is_file()


def test_failure_names_notebook_and_cell_then_resume(notebooks, tmp_path):
    run_dir = tmp_path / "run"
    _notebook(notebooks / "02_second.ipynb", "raise ValueError('bad flux column')")
    with pytest.raises(book.NotebookFailed, match=r"02_second.ipynb failed in cell \d+.*ValueError: bad flux column"):
        book.run_notebooks("quick", run_dir=run_dir, notebook_dir=notebooks,
                           executed_dir=tmp_path / "executed", **NO_DATA)
    status = json.loads((run_dir / "manifest.json").read_text())["notebooks"]
    assert [n["status"] for n in status] == ["ok", "failed"]
    # fix the notebook and resume from it: the first is not run again
    (run_dir / "first.txt").write_text("resumed")
    _notebook(notebooks / "02_second.ipynb",
              "from pathlib import Path\n"
              "Path(run_dir, 'second.txt').write_text(Path(run_dir, 'first.txt').read_text() + '+')")
    manifest = book.run_notebooks("quick", run_dir=run_dir, notebook_dir=notebooks,
                                  executed_dir=tmp_path / "executed", start_at="02", **NO_DATA)
    assert [n["notebook"] for n in manifest.notebooks] == ["02_second.ipynb"]
    assert (run_dir / "second.txt").read_text() == "resumed+"


def test_unknown_profile_and_start(notebooks, tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        book.run_notebooks("fast", run_dir=tmp_path, notebook_dir=notebooks, **NO_DATA)
    with pytest.raises(ValueError, match="no notebook matches --from '07'"):
        book.run_notebooks("quick", run_dir=tmp_path, notebook_dir=notebooks, start_at="07",
                           **NO_DATA)


def test_generated_figures_are_drawn_from_the_code(tmp_path):
    paths = book.write_generated_figures(tmp_path / "generated")
    assert [p.name for p in paths] == ["architecture.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 10_000



def test_from_07_selects_the_thresholding_chapter_onwards():
    chosen = book.select_notebooks(book.discover_notebooks(), start_at="07")
    numbers = [int(p.name[:2]) for p in chosen]
    assert numbers == list(range(7, 7 + len(chosen))) and len(chosen) >= 7
    assert chosen[0].stem == "07_thresholding_and_components"


def test_executed_notebooks_name_no_absolute_path_and_tensorflow_is_quiet(notebooks, tmp_path,
                                                                            monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    _notebook(notebooks / "02_second.ipynb",
              "import os\nfrom pathlib import Path\n"
              "print(Path.cwd(), Path(run_dir).resolve())\n"
              "print('log level', os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    book.run_notebooks("quick", run_dir=tmp_path / "data" / "runs" / "quick",
                       notebook_dir=notebooks, executed_dir=tmp_path / "executed", **NO_DATA)
    for path in sorted((tmp_path / "executed").glob("*.ipynb")):
        text = path.read_text()
        assert str(tmp_path) not in text, path.name  # not even in papermill's metadata
    executed = nbformat.read(tmp_path / "executed" / "02_second.ipynb", as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'run_dir = "../data/runs/quick"' in injected.source
    assert executed.cells[-1].outputs[0]["text"] == "notebooks data/runs/quick\nlog level 1\n"


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.server.requests.append(self.path)
        self.send_error(404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def no_such_file(monkeypatch):
    """Registry entry PrimaryBeam_B1.fits served by a local server that answers 404."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    name = "PrimaryBeam_B1.fits"
    entry = replace(registry.get_entry(name), urls=(f"http://127.0.0.1:{server.server_address[1]}/pb",))
    monkeypatch.setitem(registry.load_registry(), name, entry)
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_without_real_data_the_section_is_skipped_and_reported(notebooks, tmp_path, monkeypatch,
                                                               no_such_file):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("RADIOSEG_DATA", str(empty))  # the kernels inherit it
    _notebook(notebooks / "01_first.ipynb",
              "from radioseg_utils.workflows.realdata import real_data\n"
              "beam = real_data('PrimaryBeam_B1.fits', section='the primary beam')\nbeam",
              "if beam:\n    raise RuntimeError('this section should have been skipped')")
    manifest = book.run_notebooks("quick", run_dir=tmp_path / "run", notebook_dir=notebooks,
                                  executed_dir=tmp_path / "executed", only=["01"],
                                  data_files=("PrimaryBeam_B1.fits",))
    # the runner tried to download it (404), then the notebook skipped its section
    assert no_such_file.requests == ["/pb"]
    assert manifest.data["PrimaryBeam_B1.fits"]["status"] == "missing"
    assert "answered HTTP 404" in manifest.data["PrimaryBeam_B1.fits"]["reason"]
    assert [(s["notebook"], s["section"], list(s["files"])) for s in manifest.skipped] == [
        ("01_first.ipynb", "the primary beam", ["PrimaryBeam_B1.fits"])]
    why = manifest.skipped[0]["files"]["PrimaryBeam_B1.fits"]
    assert why.startswith("not found in the data folder") and "radioseg fetch PrimaryBeam_B1.fits" in why
    assert [n["skipped"] for n in manifest.notebooks] == [["the primary beam"]]
    executed = nbformat.read(tmp_path / "executed" / "01_first.ipynb", as_version=4)
    box = executed.cells[2].outputs[0]  # after the parameters and the injected parameters
    assert box["output_type"] == "execute_result" and realdata.SKIPPED_KEY in box["metadata"]
    assert box["data"]["text/html"].startswith(
        '<div class="admonition warning"><p class="admonition-title">Skipped: the primary beam</p>')
    summary = realdata.format_skipped(manifest.skipped)
    assert summary.splitlines()[0] == "1 section of the book was skipped for lack of real data:"
    assert "radioseg fetch PrimaryBeam_B1.fits" in summary and "radioseg book --from 01" in summary


def test_book_command_ends_with_the_skipped_sections(monkeypatch, capsys, tmp_path):
    seen = {}
    skipped = [{"notebook": "09_x.ipynb", "section": "the real cutout",
                "files": {"truth_B1_1000h_0.05tr.cat": "not found"}}]

    def fake_run(profile, **kwargs):
        seen.update(kwargs)
        return book.RunManifest(profile=profile, run_dir=str(tmp_path), parameters={},
                                started="", git_commit=None, versions={}, skipped=skipped)

    monkeypatch.setattr(book, "run_notebooks", fake_run)
    assert main(["book", "--no-build", "--no-download"]) == 0
    assert seen["download"] is False
    out = capsys.readouterr().out
    assert out == realdata.format_skipped(skipped) + "\n"
    assert "truth_B1_1000h_0.05tr.cat: it has no public URL (cut from True_560_v2.txt)" in out
