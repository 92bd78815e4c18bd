"""Run the numbered notebooks with papermill and build the Jupyter Book.

The compendium is a sequence of notebooks ``notebooks/NN_name.ipynb`` executed in order.
Each reads and writes files in one run folder (its ``run_dir`` parameter), so no state
passes between notebooks other than those files. Executed copies go to ``book/executed/``
(git-ignored), from where the Jupyter Book (``_config.yml``, ``_toc.yml``) renders them
without executing them again.

Before the notebooks run, the small real files they read are fetched through the data
registry (:func:`radioseg_utils.workflows.realdata.fetch_book_data`); without them (e.g.
offline) the sections that need them are skipped with a box saying so, and the run
manifest lists them (``skipped``). What the book shows never names the machine that built
it: ``run_dir`` is passed relative to the notebooks' folder, and the executed copies name
files relative to the project (:func:`relative_to_project`). The notebook kernels start
with TensorFlow's C++ start-up lines silenced
(:func:`radioseg_utils.core.runtime.quiet_tensorflow`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from radioseg_utils.core.paths import PROJECT_ROOT, runs_dir
from radioseg_utils.core.provenance import BOOK_PACKAGES, git_commit, versions
from radioseg_utils.core.runtime import quiet_tensorflow
from radioseg_utils.workflows.realdata import BOOK_DATA_FILES, fetch_book_data, skipped_sections

__all__ = [
    "BOOK_PROFILES",
    "BookError",
    "NotebookFailed",
    "RunManifest",
    "build_book",
    "write_generated_figures",
    "check_book",
    "discover_notebooks",
    "relative_to_project",
    "run_notebooks",
    "select_notebooks",
]

logger = logging.getLogger(__name__)

NOTEBOOK_DIR: Path = PROJECT_ROOT / "notebooks"
EXECUTED_DIR: Path = PROJECT_ROOT / "book" / "executed"
#: Figures of the prose chapters, drawn from the code when the book is built (git-ignored).
GENERATED_DIR: Path = PROJECT_ROOT / "book" / "generated"

#: Papermill parameters of each profile. A notebook receives those it declares.
BOOK_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"profile": "quick", "seed": 1, "field_size": 2048, "epochs": 8, "size": 1024,
              "grid_size": 1024, "b5_size": 1024, "dip_size": 256},
    "full": {"profile": "full", "seed": 1, "field_size": 8192, "epochs": 60, "size": 8192,
             "grid_size": 2048, "b5_size": 8192, "dip_size": 1024},
}


class BookError(RuntimeError):
    """Running the notebooks or building the book failed."""


class NotebookFailed(BookError):
    """A notebook raised an error; the message names the notebook and the cell."""


@dataclass
class RunManifest:
    """What a run did: parameters, versions, real data, timings and the executed notebooks.

    ``data`` is the report of :func:`~radioseg_utils.workflows.realdata.fetch_book_data`
    (file name -> status); ``skipped`` lists the sections skipped for lack of real data,
    ``{"notebook", "section", "files"}`` each (``files``: name -> why it was missing).
    """

    profile: str
    run_dir: str
    parameters: dict[str, Any]
    started: str
    git_commit: str | None
    versions: dict[str, str]
    data: dict[str, dict[str, str]] = field(default_factory=dict)
    notebooks: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    finished: str | None = None

    def write(self, path: Path) -> None:
        """Write the manifest as JSON (atomically)."""
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)


def discover_notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """Numbered notebooks ``NN_*.ipynb`` of ``directory``, in order."""
    notebooks = sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {directory}")
    return notebooks


def select_notebooks(
    notebooks: list[Path], *, start_at: str | None = None, only: list[str] | None = None
) -> list[Path]:
    """The notebooks a run executes: ``only`` these, or those from ``start_at`` on, or all.

    A key matches a notebook by the start of its name (``"07"``, ``"07_thr"``) or its stem.

    Raises
    ------
    ValueError
        If a key matches no notebook (the message lists them).

    Examples
    --------
    >>> names = [Path("01_a.ipynb"), Path("02_b.ipynb"), Path("03_c.ipynb")]
    >>> [p.name for p in select_notebooks(names, start_at="02")]
    ['02_b.ipynb', '03_c.ipynb']
    """

    def matches(path: Path, key: str) -> bool:
        return path.name.startswith(key) or path.stem == key

    if only:
        chosen = [nb for nb in notebooks if any(matches(nb, k) for k in only)]
        missing = [k for k in only if not any(matches(nb, k) for nb in notebooks)]
        if missing:
            raise ValueError(f"no notebook matches {missing}; have {[nb.name for nb in notebooks]}")
        return chosen
    if start_at:
        for i, nb in enumerate(notebooks):
            if matches(nb, start_at):
                return notebooks[i:]
        raise ValueError(f"no notebook matches --from {start_at!r}; have {[nb.name for nb in notebooks]}")
    return notebooks


def relative_to_project(notebook: str | Path, root: Path = PROJECT_ROOT) -> int:
    """Rewrite an executed notebook so that it names files relative to the project.

    Every occurrence of the project folder ``root`` in the notebook (cell outputs,
    tracebacks, warnings of libraries installed in the project's ``.venv``, papermill's
    metadata) becomes a relative path: ``<root>/notebooks/x`` reads ``notebooks/x`` and
    ``<root>`` alone ``.``.

    Returns
    -------
    int
        How many occurrences were rewritten.
    """
    path = Path(notebook)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(str(root)) + r"(/|(?![\w.-]))")
    new, count = pattern.subn(lambda m: "" if m.group(1) == "/" else ".", text)
    if count:
        path.write_text(new, encoding="utf-8")
    return count


def run_notebooks(
    profile: str = "quick",
    *,
    run_dir: str | Path | None = None,
    start_at: str | None = None,
    only: list[str] | None = None,
    notebook_dir: Path = NOTEBOOK_DIR,
    executed_dir: Path = EXECUTED_DIR,
    kernel_name: str = "python3",
    overrides: dict[str, Any] | None = None,
    data_files: Sequence[str] = BOOK_DATA_FILES,
    download: bool = True,
) -> RunManifest:
    """Execute the numbered notebooks in order with papermill.

    Parameters
    ----------
    profile : {"quick", "full"}
        Parameter set of :data:`BOOK_PROFILES`: ``quick`` runs on a CPU in minutes, ``full`` is
        the GPU batch.
    run_dir : path, optional
        Folder the notebooks read and write; default ``runs_dir() / profile``.
    start_at : str, optional
        Resume from this notebook (``"05"`` or ``"05_unet_training"``); earlier ones are
        assumed done in ``run_dir``.
    only : list of str, optional
        Run just these notebooks.
    overrides : dict, optional
        Extra papermill parameters, applied over the profile's.
    data_files : sequence of str
        Registry names of the real files the notebooks read, fetched first
        (:func:`~radioseg_utils.workflows.realdata.fetch_book_data`); default
        :data:`~radioseg_utils.workflows.realdata.BOOK_DATA_FILES`.
    download : bool, default True
        Download the missing ones (False: use only what the data folders hold).

    Returns
    -------
    RunManifest
        Also written to ``run_dir/manifest.json``. The notebooks receive ``run_dir``
        relative to ``notebook_dir`` (their working folder); the executed copies name
        files relative to ``notebook_dir.parent`` (:func:`relative_to_project`).

    Raises
    ------
    NotebookFailed
        Naming the notebook, the cell and the error; the executed copy with the
        traceback is kept.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    if profile not in BOOK_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(BOOK_PROFILES)}")
    run_dir = (Path(run_dir) if run_dir else runs_dir() / profile).absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    executed_dir.mkdir(parents=True, exist_ok=True)
    notebooks = select_notebooks(discover_notebooks(notebook_dir), start_at=start_at, only=only)
    quiet_tensorflow()  # the kernels inherit this process's environment
    params = {**BOOK_PROFILES[profile], **(overrides or {}),
              "run_dir": os.path.relpath(run_dir, notebook_dir)}
    manifest = RunManifest(
        profile=profile,
        run_dir=str(run_dir),
        parameters=params,
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        git_commit=git_commit(),
        versions=versions(*BOOK_PACKAGES),
        data=fetch_book_data(data_files, download=download),
    )
    manifest_path = run_dir / "manifest.json"
    for nb in notebooks:
        declared = pm.inspect_notebook(str(nb))
        nb_params = {k: v for k, v in params.items() if k in declared}
        out = executed_dir / nb.name
        logger.info("executing %s with %s", nb.name, nb_params)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb), str(out), parameters=nb_params, cwd=str(notebook_dir),
                kernel_name=kernel_name, progress_bar=False, log_output=False,
            )
        except PapermillExecutionError as err:
            relative_to_project(out, notebook_dir.parent)
            manifest.notebooks.append({"notebook": nb.name, "status": "failed",
                                       "seconds": round(time.perf_counter() - t0, 1)})
            manifest.write(manifest_path)
            raise NotebookFailed(
                f"{nb.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
                f"{err.ename}: {err.evalue}\nexecuted copy with the traceback: {out}\n"
                f"fix it and resume with: radioseg book --profile {profile} --from {nb.name[:2]}"
            ) from None
        seconds = round(time.perf_counter() - t0, 1)
        relative_to_project(out, notebook_dir.parent)
        skipped = [{"notebook": nb.name, **s} for s in skipped_sections(out)]
        manifest.skipped += skipped
        manifest.notebooks.append({"notebook": nb.name, "status": "ok", "seconds": seconds,
                                   "parameters": nb_params, "executed": str(out),
                                   "skipped": [s["section"] for s in skipped]})
        manifest.write(manifest_path)
        logger.info("%s done in %.1f s%s", nb.name, seconds,
                    f" ({len(skipped)} section(s) skipped for lack of real data)" if skipped else "")
    manifest.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest.write(manifest_path)
    return manifest


def write_generated_figures(directory: Path = GENERATED_DIR) -> list[Path]:
    """Draw the figures of the prose chapters from the code into ``directory``.

    Today one: ``architecture.png``, the package's layers and the imports between them
    (:func:`radioseg_utils.workflows.architecture.plot_layers`), read from the source tree
    at build time so the method chapter always shows the code as it is.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from radioseg_utils.workflows.architecture import plot_layers

    directory.mkdir(parents=True, exist_ok=True)
    fig = plot_layers()
    path = directory / "architecture.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def build_book(root: Path = PROJECT_ROOT, *, strict: bool = True) -> Path:
    """Build the HTML book with Jupyter Book; returns ``root/_build/html``.

    The figures of the prose chapters are drawn first (:func:`write_generated_figures`).
    With ``strict`` (default) Sphinx warnings such as broken references or missing
    images fail the build.
    """
    write_generated_figures(root / "book" / "generated")
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(root), "--keep-going"]
    if strict:
        cmd.append("--warningiserror")
    logger.info("building the book: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    return root / "_build" / "html"


def check_book(html_dir: Path, *, screenshots: bool = True) -> None:
    """Quality gate: no error outputs, broken links or missing images, no blank page.

    Screenshots of every chapter go to ``html_dir/../screenshots`` when Chromium is
    installed; without Chromium that part is skipped with a warning.

    Raises
    ------
    BookError
        Listing every problem found.
    """
    import warnings

    from radioseg_utils.workflows import bookcheck

    problems = bookcheck.check_html(html_dir)
    if screenshots:
        if bookcheck.find_chromium() is None:
            warnings.warn("Chromium not found: page screenshots skipped (apt-get install chromium)",
                          stacklevel=2)
        else:
            problems += bookcheck.screenshot_pages(html_dir, Path(html_dir).parent / "screenshots")
    if problems:
        raise BookError("the built book failed its quality gate:\n" + "\n".join(map(str, problems)))
