"""The notebook runner: order, parameters, manifest, failure message and resume."""

from __future__ import annotations

import json

import nbformat
import pytest

from radioseg_utils.workflows import book


def _notebook(path, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("run_dir = ''\nseed = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
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
                                  executed_dir=tmp_path / "executed", overrides={"seed": 7})
    assert (run_dir / "second.txt").read_text() == "7+"
    saved = json.loads((run_dir / "manifest.json").read_text())
    assert [n["notebook"] for n in saved["notebooks"]] == ["01_first.ipynb", "02_second.ipynb"]
    assert all(n["status"] == "ok" for n in saved["notebooks"])
    # only declared parameters are passed: the notebooks declare run_dir and seed
    assert saved["notebooks"][0]["parameters"] == {"seed": 7, "run_dir": str(run_dir)}
    assert saved["finished"] and manifest.versions["python"]
    assert (tmp_path / "executed" / "02_second.ipynb").is_file()


def test_failure_names_notebook_and_cell_then_resume(notebooks, tmp_path):
    run_dir = tmp_path / "run"
    _notebook(notebooks / "02_second.ipynb", "raise ValueError('bad flux column')")
    with pytest.raises(book.NotebookFailed, match=r"02_second.ipynb failed in cell \d+.*ValueError: bad flux column"):
        book.run_notebooks("quick", run_dir=run_dir, notebook_dir=notebooks,
                           executed_dir=tmp_path / "executed")
    status = json.loads((run_dir / "manifest.json").read_text())["notebooks"]
    assert [n["status"] for n in status] == ["ok", "failed"]
    # fix the notebook and resume from it: the first is not run again
    (run_dir / "first.txt").write_text("resumed")
    _notebook(notebooks / "02_second.ipynb",
              "from pathlib import Path\n"
              "Path(run_dir, 'second.txt').write_text(Path(run_dir, 'first.txt').read_text() + '+')")
    manifest = book.run_notebooks("quick", run_dir=run_dir, notebook_dir=notebooks,
                                  executed_dir=tmp_path / "executed", start_at="02")
    assert [n["notebook"] for n in manifest.notebooks] == ["02_second.ipynb"]
    assert (run_dir / "second.txt").read_text() == "resumed+"


def test_unknown_profile_and_start(notebooks, tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        book.run_notebooks("fast", run_dir=tmp_path, notebook_dir=notebooks)
    with pytest.raises(ValueError, match="no notebook matches --from '07'"):
        book.run_notebooks("quick", run_dir=tmp_path, notebook_dir=notebooks, start_at="07")


def test_generated_figures_are_drawn_from_the_code(tmp_path):
    paths = book.write_generated_figures(tmp_path / "generated")
    assert [p.name for p in paths] == ["architecture.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 10_000

