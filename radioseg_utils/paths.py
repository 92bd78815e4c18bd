"""Where radioseg reads and writes files.

Paths are resolved from environment variables or the project root, never from the
current working directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["PROJECT_ROOT", "check_writable", "data_dir", "generated_dir", "git_commit", "runs_dir"]

#: Root of the source checkout (the folder that holds ``pyproject.toml``).
PROJECT_ROOT: Path = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder searched first for real SDC1 files (``$RADIOSEG_DATA`` or ``<root>/data/cache``)."""
    env = os.environ.get("RADIOSEG_DATA")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "data" / "cache"


def generated_dir() -> Path:
    """Git-ignored folder for generated data: simulations, cutouts, models, outputs.

    ``$RADIOSEG_OUTPUT`` if set, else ``<root>/data/generated``.
    """
    env = os.environ.get("RADIOSEG_OUTPUT")
    return Path(env).expanduser().resolve() if env else PROJECT_ROOT / "data" / "generated"


def runs_dir() -> Path:
    """Folder holding one sub-folder per pipeline / book run."""
    return generated_dir() / "runs"


def check_writable(path: str | Path, *, overwrite: bool) -> Path:
    """Refuse to replace an existing output file unless ``overwrite`` is True.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    return path


def git_commit() -> str | None:
    """Commit of the source checkout (recorded in run manifests and model sidecars).

    ``None`` outside a git work tree or without git.
    """
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
