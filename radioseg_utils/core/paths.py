"""Where radioseg reads and writes files, and how paths are shown.

Paths are resolved from environment variables or the project root, never from the
current working directory. :func:`display_path` shows a path relative to the project
(what the book prints, so it never shows the folders of the machine that built it).

Examples
--------
>>> display_path(PROJECT_ROOT / "data" / "generated" / "runs")
'data/generated/runs'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PACKAGE_ROOT",
    "PROJECT_ROOT",
    "PRETRAINED_DIR",
    "OVERWRITE_REMEDY",
    "OutputExistsError",
    "OutputNotADirectoryError",
    "check_output_dir",
    "check_writable",
    "data_dir",
    "data_dirs",
    "display_path",
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


#: What a Python caller does to replace existing outputs (the command line says ``--overwrite``).
OVERWRITE_REMEDY: str = "to replace, pass overwrite=True"


class OutputExistsError(FileExistsError):
    """An output exists and replacing it was not asked for.

    ``str()`` is ``"<what>; <remedy>"``: the remedy for a Python caller by default;
    :meth:`with_remedy` words it for another caller (the command line's ``--overwrite``).

    Parameters
    ----------
    what : str
        What exists, naming the path(s), e.g. ``"out/cat.ecsv exists"``.
    remedy : str
        How to replace it; default :data:`OVERWRITE_REMEDY`.

    Examples
    --------
    >>> err = OutputExistsError("out/cat.ecsv exists")
    >>> str(err)
    'out/cat.ecsv exists; to replace, pass overwrite=True'
    >>> err.with_remedy("to replace, add --overwrite")
    'out/cat.ecsv exists; to replace, add --overwrite'
    """

    def __init__(self, what: str, remedy: str = OVERWRITE_REMEDY) -> None:
        self.what = what
        super().__init__(self.with_remedy(remedy))

    def with_remedy(self, remedy: str) -> str:
        """The message with another remedy."""
        return f"{self.what}; {remedy}"


def check_writable(path: str | Path, *, overwrite: bool) -> Path:
    """Refuse to replace an existing output file unless ``overwrite`` is True.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False (a :class:`FileExistsError`).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists")
    return path


class OutputNotADirectoryError(NotADirectoryError, ValueError):
    """An output folder names an existing file."""


def check_output_dir(path: str | Path, *, what: str = "output folder") -> Path:
    """Refuse an output folder that names an existing file, before any work is done.

    Parameters
    ----------
    path : str or Path
        Folder to write into; it may be missing (it is made when written to).
    what : str
        How the message names it, e.g. ``"--out"``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputNotADirectoryError
        If ``path``, or a folder above it, is an existing file (a :class:`ValueError` too,
        which the command line reports in one line).

    Examples
    --------
    >>> check_output_dir(PROJECT_ROOT / "pyproject.toml", what="--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    radioseg_utils.core.paths.OutputNotADirectoryError: --out .../pyproject.toml is a file, not a folder
    """
    path = Path(path)
    existing = next(folder for folder in (path, *path.absolute().parents) if folder.exists())
    if not existing.is_dir():
        inside = "" if existing == path else f" (inside the file {existing})"
        raise OutputNotADirectoryError(f"{what} {path} is a file, not a folder{inside}")
    return path


def display_path(path: str | Path) -> str:
    """``path`` as the book and messages show it: relative to the project when it lies in
    it or beside it (``../shared/...``), else under ``~`` when in the home folder, else
    absolute; so nothing printed names the folders of the machine that made it.

    Examples
    --------
    >>> display_path(PRETRAINED_DIR / "unet_B1.keras")
    'radioseg_utils/pretrained/unet_B1.keras'
    >>> display_path(PROJECT_ROOT.parent / "shared" / "data")
    '../shared/data'
    """
    path = Path(path).expanduser().absolute()
    for base, prefix in ((PROJECT_ROOT, ""), (PROJECT_ROOT.parent, "../"), (Path.home(), "~/")):
        if base != Path(base.anchor) and path.is_relative_to(base):
            relative = path.relative_to(base).as_posix()
            return prefix + relative if relative != "." else (prefix.rstrip("/") or ".")
    return str(path)
