"""The package's layers, read from its source: the import graph, its checks and a diagram.

``radioseg_utils`` is built in layers (:data:`LAYERS`, bottom first), one subpackage each;
a module may import from its own layer or from layers below it, never from above, and
the module import graph has no cycles. :func:`import_graph` reads every ``import`` of every
module with :mod:`ast` (imports inside functions included, since they are imports all
the same), :func:`upward_imports`, :func:`import_cycles` and :func:`private_imports` list
what breaks the rules (the test suite asserts all three are empty), and
:func:`plot_layers` draws the layers with the number of imports between them, the
diagram of the method chapter.

Examples
--------
>>> graph = import_graph()
>>> upward_imports(graph), import_cycles(graph), private_imports()
([], [], [])
>>> layer_of("radioseg_utils.io.fits_read")
'io'
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from radioseg_utils.core.paths import PACKAGE_ROOT

__all__ = [
    "LAYERS",
    "PACKAGE",
    "module_name",
    "layer_of",
    "import_graph",
    "upward_imports",
    "import_cycles",
    "private_imports",
    "layer_edges",
    "plot_layers",
]

#: Import name of the package.
PACKAGE: str = "radioseg_utils"

#: The layers, bottom first: each is a subpackage, except ``cli`` (the command line and
#: the package's own ``__init__``/``__main__``, on top of everything).
LAYERS: tuple[str, ...] = ("core", "io", "simulation", "data", "model", "postprocess",
                           "inference", "baselines", "evaluation", "workflows", "cli")


def module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    """Dotted module name of a source file under the package folder ``root``."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """The layer of a module of the package (``cli`` for the top-level modules).

    Raises
    ------
    ValueError
        If the module is not in the package or its subpackage is not a layer.
    """
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(f"{module} is not a module of {PACKAGE}")
    if len(parts) == 1 or parts[1] in ("cli", "__main__"):
        return "cli"
    if parts[1] not in LAYERS:
        raise ValueError(f"{module}: {parts[1]!r} is not a layer ({', '.join(LAYERS)})")
    return parts[1]


def _sources(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """Absolute name of the module a ``from ... import`` statement reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, module: str, modules: set[str]) -> list[tuple[str, str | None]]:
    """``(imported module, imported name or None)`` of every import of the package in a file."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names
                      if alias.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node, module, path.name == "__init__.py")
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((submodule, None) if submodule in modules else (source, alias.name))
    return found


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (anywhere in the file).

    ``import a.b.c`` counts as an import of ``a.b.c`` only (its parents' ``__init__``
    files are docstrings or re-exports of their own layer).
    """
    sources = _sources(root)
    names = set(sources)
    return {module: {target for target, _ in _imports(path, module, names) if target != module}
            for module, path in sources.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(importer, imported)`` pairs where a lower layer imports a higher one."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted((src, dst) for src, targets in graph.items() for dst in targets
                  if rank[layer_of(dst)] > rank[layer_of(src)])


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan's
    strongly connected components of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def private_imports(root: Path = PACKAGE_ROOT) -> list[tuple[str, str, str]]:
    """``(importer, module, name)`` for every ``_private`` name imported from another module."""
    sources = _sources(root)
    names = set(sources)
    return sorted((module, source, name) for module, path in sources.items()
                  for source, name in _imports(path, module, names)
                  if name is not None and name.startswith("_") and not name.startswith("__"))


def layer_edges(graph: dict[str, set[str]]) -> Counter:
    """Number of module imports from each layer to each other layer: ``{(src, dst): n}``."""
    return Counter((layer_of(src), layer_of(dst)) for src, targets in graph.items()
                   for dst in targets if layer_of(src) != layer_of(dst))


def plot_layers(graph: dict[str, set[str]] | None = None):
    """Draw the layers and the imports between them.

    Left: the layers bottom-up, each with its modules. Right: the number of module imports
    from each layer (row) to each other layer (column); the cells above the diagonal would
    be upward imports and are outlined in red when not zero.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import FancyBboxPatch, Rectangle

    graph = import_graph() if graph is None else graph
    edges = layer_edges(graph)
    n = len(LAYERS)
    members: dict[str, set[str]] = {layer: set() for layer in LAYERS}
    for module in graph:
        parts = module.split(".")
        members[layer_of(module)].add(parts[-1] if len(parts) > 2 else "/".join(parts[1:]) or "__init__")
    fig, (ax, mx) = plt.subplots(1, 2, figsize=(13, 0.6 * n + 1.2),
                                 gridspec_kw={"width_ratios": [1.5, 1]})
    for i, layer in enumerate(LAYERS):
        ax.add_patch(FancyBboxPatch((0.0, i + 0.1), 1.0, 0.8, boxstyle="round,pad=0.01",
                                    facecolor=plt.cm.Blues(0.12 + 0.5 * i / n), edgecolor="0.3"))
        ax.text(0.02, i + 0.5, layer, fontsize=10, fontweight="bold", va="center")
        names = sorted(members[layer] - {layer})
        lines = [", ".join(names[k:k + 6]) for k in range(0, len(names), 6)]
        ax.text(0.2, i + 0.5, "\n".join(lines), fontsize=7.5, va="center")
    ax.set(xlim=(-0.02, 1.02), ylim=(0, n))
    ax.axis("off")
    ax.set_title("layers, bottom first, and their modules", fontsize=9)
    counts = np.zeros((n, n), int)
    for (src, dst), k in edges.items():
        counts[LAYERS.index(src), LAYERS.index(dst)] = k
    mx.imshow(np.ma.masked_equal(counts, 0), cmap="Greys", origin="lower", vmin=0,
              vmax=max(1, counts.max()) * 1.6)
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                mx.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7)
            if j > i and counts[i, j]:
                mx.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, color="red", lw=2))
    mx.plot([-0.5, n - 0.5], [-0.5, n - 0.5], color="0.6", lw=0.8)
    mx.set_xticks(range(n), LAYERS, rotation=60, ha="right", fontsize=8)
    mx.set_yticks(range(n), LAYERS, fontsize=8)
    mx.set(xlabel="imported layer", ylabel="importing layer")
    upward = len(upward_imports(graph))
    verdict = "all downward" if upward == 0 else f"{upward} upward (red)"
    mx.set_title(f"{sum(edges.values())} imports between layers, {verdict}", fontsize=9)
    fig.suptitle(f"radioseg_utils: {len(graph)} modules in {n} layers", fontsize=11)
    fig.tight_layout()
    return fig
