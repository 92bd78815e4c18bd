"""The package's layers: no upward import, no import cycle, no private name across modules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from radioseg_utils.workflows import architecture as arch


def test_every_module_sits_in_a_layer():
    graph = arch.import_graph()
    assert len(graph) > 50
    layers = {arch.layer_of(module) for module in graph}
    assert layers == set(arch.LAYERS)


def test_no_upward_import():
    assert arch.upward_imports(arch.import_graph()) == []


def test_no_import_cycle():
    assert arch.import_cycles(arch.import_graph()) == []


def test_no_private_name_imported_across_modules():
    assert arch.private_imports() == []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / arch.PACKAGE
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_checks_catch_upward_imports_cycles_and_private_names(tmp_path):
    root = _package(tmp_path, {
        "core/__init__.py": "",
        "core/a.py": "from radioseg_utils.io.b import thing\n",
        "io/__init__.py": "",
        "io/b.py": """
            def thing():
                from ..io import c  # a relative import inside a function still counts
            """,
        "io/c.py": "from radioseg_utils.io.b import thing, _hidden\n",
    })
    graph = arch.import_graph(root)
    assert graph["radioseg_utils.io.b"] == {"radioseg_utils.io.c"}
    assert arch.upward_imports(graph) == [("radioseg_utils.core.a", "radioseg_utils.io.b")]
    assert arch.import_cycles(graph) == [["radioseg_utils.io.b", "radioseg_utils.io.c"]]
    assert arch.private_imports(root) == [("radioseg_utils.io.c", "radioseg_utils.io.b", "_hidden")]


def test_layer_of_rejects_unknown_places():
    assert arch.layer_of("radioseg_utils") == "cli"
    assert arch.layer_of("radioseg_utils.cli") == "cli"
    with pytest.raises(ValueError, match="not a layer"):
        arch.layer_of("radioseg_utils.misc.tool")
    with pytest.raises(ValueError, match="not a module of radioseg_utils"):
        arch.layer_of("numpy.linalg")


def test_model_configuration_does_not_start_tensorflow():
    import subprocess
    import sys

    code = ("import sys, radioseg_utils.model.config, radioseg_utils.workflows.architecture; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plot_layers_draws_every_layer():
    import matplotlib

    matplotlib.use("Agg")
    fig = arch.plot_layers()
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(arch.LAYERS) <= texts
    assert "all downward" in fig.axes[1].get_title()
    upward = {"radioseg_utils.core.x": {"radioseg_utils.io.y"}, "radioseg_utils.io.y": set()}
    assert "1 upward (red)" in arch.plot_layers(upward).axes[1].get_title()
