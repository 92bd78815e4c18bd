"""Where radioseg reads and writes files.

Paths are resolved from environment variables or the project root, never from the
current working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PACKAGE_ROOT",
    "PROJECT_ROOT",
    "PRETRAINED_DIR",
    "check_writable",
    "data_dir",
    "data_dirs",
    "generated_dir",
    "runs_dir",
]

#: The installed ``radioseg_utils`` package folder.
PACKAGE_ROOT: Path = Path(__file__).resolve().parent.parent

#: The project checkout (``book/``, ``notebooks/``, ``data/`` ...) the package lives in.
PROJECT_ROOT: Path = PACKAGE_ROOT.parent

#: Folder of the pretrained default model shipped with the package.
PRETRAINED_DIR: Path = PACKAGE_ROOT / "pretrained"


def data_dirs() -> list[Path]:
    """Folders searched for real data files, in order: ``$RADIOSEG_DATA`` (one folder or
    several joined by ``os.pathsep``, e.g. ``../shared/data/sdc1:../shared/data/other``),
    else ``<root>/data/cache``."""
    env = os.environ.get("RADIOSEG_DATA", "")
    folders = [Path(part).expanduser().resolve() for part in env.split(os.pathsep) if part]
    return folders or [PROJECT_ROOT / "data" / "cache"]


def data_dir() -> Path:
    """The first folder of :func:`data_dirs`, where downloads go."""
    return data_dirs()[0]


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

