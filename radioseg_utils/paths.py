"""Where radioseg reads and writes files.

Paths are resolved from environment variables or the project root, never from the
current working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PROJECT_ROOT", "data_dir", "runs_dir", "generated_dir"]

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
