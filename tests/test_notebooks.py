"""Guards of the committed notebooks: stripped of outputs, parametrised, thin.

The notebooks in ``notebooks/`` are committed without outputs (the book executes them
with papermill into ``book/executed``), carry exactly one ``parameters`` cell for
papermill, and reach into the package only through its public modules and names: the
logic lives in ``radioseg_utils``, where it is tested.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

import pytest

from radioseg_utils.core.paths import PACKAGE_ROOT
from radioseg_utils.workflows.architecture import PACKAGE, module_name

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _cells(path: Path, kind: str | None = None) -> list[dict]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [cell for cell in cells if kind is None or cell["cell_type"] == kind]


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


@cache
def _modules() -> dict[str, Path]:
    """Every module of the package -> its source file."""
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


@cache
def _exported(module: str) -> frozenset[str]:
    """The names in a module's ``__all__``, read from its source without importing it."""
    tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return frozenset(ast.literal_eval(node.value))
    return frozenset()


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _package_import_problems(code: str) -> list[str]:
    """What a notebook's code imports from the package that is not public."""
    problems = []
    modules = _modules()
    module_aliases = set()
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != PACKAGE:
                    continue
                if alias.name not in modules or _is_private(alias.name):
                    problems.append(f"import {alias.name}: not a public module")
                module_aliases.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            source = node.module
            if source not in modules or _is_private(source):
                problems.append(f"from {source}: not a public module")
                continue
            for alias in node.names:
                if f"{source}.{alias.name}" in modules and not _is_private(alias.name):
                    module_aliases.add(alias.asname or alias.name)
                elif alias.name not in _exported(source):
                    problems.append(f"from {source} import {alias.name}: not in its __all__")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            problems.append(f"{node.value.id}.{node.attr}: private attribute of a module")
    return problems


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 13, NOTEBOOK_DIR


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_carries_no_outputs(path):
    dirty = [i for i, cell in enumerate(_cells(path, "code"))
             if cell.get("outputs") != [] or cell.get("execution_count") is not None]
    assert not dirty, (f"{path.name}: code cells {dirty} carry outputs or execution counts; "
                       "clear them (e.g. nbstripout) before committing")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_one_code_cell_tagged_parameters(path):
    tagged = [cell for cell in _cells(path)
              if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert tagged[0]["cell_type"] == "code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_imports_only_public_package_names(path):
    code = "\n".join(_source(cell) for cell in _cells(path, "code"))
    assert _package_import_problems(code) == [], path.name


@pytest.mark.parametrize(("code", "problem"), [
    ("from radioseg_utils.io.catalogue import _parse_rows", "not in its __all__"),
    ("from radioseg_utils.io.catalogue import np", "not in its __all__"),
    ("import radioseg_utils.io.nowhere", "not a public module"),
    ("from radioseg_utils.io import catalogue\ncatalogue._parse_rows", "private attribute"),
])
def test_private_package_imports_are_caught(code, problem):
    assert any(problem in p for p in _package_import_problems(code))


def test_public_package_imports_pass():
    code = ("import radioseg_utils.io.catalogue\n"
            "from radioseg_utils.io import registry\n"
            "from radioseg_utils.io.catalogue import CLASS_NAMES as names, read_truth_catalogue\n"
            "registry.fetch")
    assert _package_import_problems(code) == []


def test_notebook_numbers_follow_the_reading_order_of_the_book():
    """The table of contents lists the executed notebooks in the order of their numbers,
    so `radioseg book --from NN` resumes at the chapter a reader sees as NN."""
    toc = (NOTEBOOK_DIR.parent / "_toc.yml").read_text(encoding="utf-8")
    listed = [line.split("book/executed/")[1].strip() for line in toc.splitlines()
              if "book/executed/" in line and not line.lstrip().startswith("#")]
    assert listed == [path.stem for path in NOTEBOOKS]
    numbers = [int(stem[:2]) for stem in listed]
    assert numbers == list(range(1, len(listed) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_title_carries_its_number(path):
    """The book's table of contents shows each chapter's title: its number is the file's."""
    title = _source(_cells(path)[0]).splitlines()[0]
    assert title.startswith(f"# {path.name[:2]} · "), title
