"""Real data in the book: the registry files a section reads, or a box saying what was
skipped and how to get it.

The book runs on simulated fields; a few sections also show the small real files of the
data registry (the SDC1 B1 cutout, its truth, PyBDSF list and primary beam, the training
catalogues). ``radioseg book`` first makes sure they are there (:func:`fetch_book_data`:
each missing one is downloaded and verified by sha256, :data:`BOOK_DATA_FILES`). A
notebook section then asks for its files with :func:`real_data`. When one is missing
(offline machine, a file with no public URL, a bad checksum) the section is skipped
instead of failing the book: the returned :class:`RealData` is false, and shown in the
notebook it is a warning box naming the files, why each is missing and how to get it.
The book runner collects the skipped sections of the executed notebooks
(:func:`skipped_sections`, read from the box's output metadata) into its run manifest,
and ``radioseg book`` ends with :func:`format_skipped`.

Examples
--------
In a notebook (the box is the cell's output when a file is missing)::

    cutout = real_data("B1_1000h_0.05tr.fits", "PrimaryBeam_B1.fits", section="The real cutout")
    cutout
    if cutout:
        image = read_image(cutout["B1_1000h_0.05tr.fits"])
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from radioseg_utils.core import paths
from radioseg_utils.io import registry

__all__ = [
    "BOOK_DATA_FILES",
    "SKIPPED_KEY",
    "RealData",
    "real_data",
    "fetch_book_data",
    "skipped_sections",
    "format_skipped",
]

logger = logging.getLogger(__name__)

#: Registry names of the real files the notebooks read (all small: about 4.4 MB in all).
BOOK_DATA_FILES: tuple[str, ...] = (
    "B1_1000h_0.05tr.fits",
    "truth_B1_1000h_0.05tr.cat",
    "B1_1000h_0.05tr.pybdsm.srl",
    "PrimaryBeam_B1.fits",
    "TrainingSet_B1_v2_ML.txt",
    "TrainingSet_B2_v2_ML.txt",
    "TrainingSet_B5_v2_ML.txt",
    "1904-66_SIN.fits",
    "1904_comp.fits",
)
#: Key of the output metadata by which the book runner finds a skipped section.
SKIPPED_KEY: str = "radioseg_skipped"
#: Registry errors that skip a section (an unknown name is a bug and still raises).
_MISSING_ERRORS = (registry.DataNotFoundError, registry.DownloadError, registry.ChecksumError)


@dataclass(frozen=True)
class RealData:
    """The real files of one section of a notebook, or why the section is skipped.

    True when every file was found. Shown in a notebook (``_repr_mimebundle_``) it is a
    one-line note of the files read, or a warning box listing the missing ones.

    Attributes
    ----------
    section : str
        Title of the section, as the box names it.
    paths : dict of str to Path
        The files found, by registry name.
    missing : dict of str to str
        The files not available, by registry name: why, and how to get each.
    """

    section: str
    paths: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return not self.missing

    def __getitem__(self, name: str) -> Path:
        """Path of a file of the section.

        Raises
        ------
        KeyError
            If the file is missing (the section should have been skipped) or was not asked for.
        """
        if name in self.missing:
            raise KeyError(f"{name} is missing ({self.missing[name]}); check `if data:` first")
        return self.paths[name]

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict, dict]:
        if self:
            names = ", ".join(f"`{name}`" for name in self.paths)
            text = f"Real data read here (data registry, verified): {names}."
            return {"text/markdown": text, "text/plain": text.replace("`", "")}, {}
        items = "".join(f"<li><code>{html.escape(name)}</code>: {html.escape(why)}</li>"
                        for name, why in self.missing.items())
        box = (
            '<div class="admonition warning">'
            f'<p class="admonition-title">Skipped: {html.escape(self.section)}</p>'
            "<p>This part reads real data that was not available when this page was "
            "made, so its code did not run and its figures and numbers are absent:</p>"
            f"<ul>{items}</ul>"
            "<p>Get the files, then run the book again (<code>make all</code> or "
            "<code>radioseg book</code>).</p></div>"
        )
        text = "\n".join([f"Skipped: {self.section} (real data missing)",
                          *(f"  {name}: {why}" for name, why in self.missing.items())])
        metadata = {SKIPPED_KEY: {"section": self.section, "files": dict(self.missing)}}
        return {"text/html": box, "text/plain": text}, metadata


def _why_missing(name: str, error: registry.RegistryError) -> str:
    """Why a file is missing and how to get it, without this machine's folders."""
    if isinstance(error, registry.DataNotFoundError):
        folders = ", ".join(paths.display_path(f) for f in paths.data_dirs())
        why = f"not found in the data folder ({folders})"
    elif isinstance(error, registry.ChecksumError):
        why = "present, but its size or sha256 differs from the registry's (a bad copy)"
    else:
        why = f"download failed ({str(error).split(';')[0]})"
    return (f"{why}; to get it, {registry.how_to_get(name)}, or set RADIOSEG_DATA to a "
            "folder that holds it")


def real_data(*names: str, section: str, download: bool = False) -> RealData:
    """The registry files a notebook section reads, or the reason to skip the section.

    Parameters
    ----------
    *names : str
        Registry names (:func:`radioseg_utils.io.registry.list_files`).
    section : str
        Title of the section (shown in the box when it is skipped).
    download : bool, default False
        Download missing files (``radioseg book`` has already fetched
        :data:`BOOK_DATA_FILES`, so the notebooks leave this off).

    Returns
    -------
    RealData
        True with every path, or false with the missing files.

    Raises
    ------
    radioseg_utils.io.registry.UnknownFileError
        If a name is not registered.
    """
    found, missing = {}, {}
    for name in names:
        try:
            found[name] = registry.fetch(name, download=download, verify=True, progress=False)
        except _MISSING_ERRORS as error:
            missing[name] = _why_missing(name, error)
    return RealData(section=section, paths=found, missing=missing)


def fetch_book_data(
    names: Sequence[str] = BOOK_DATA_FILES, *, download: bool = True
) -> dict[str, dict[str, str]]:
    """Make sure the real files of the book are in a data folder, downloading what is missing.

    Every file is verified (size and sha256, :func:`radioseg_utils.io.registry.fetch`);
    a missing one is downloaded when ``download``. Failures are logged and reported, not
    raised: the sections that need a missing file are skipped. After one server proves
    unreachable the other files it serves are not tried again.

    Parameters
    ----------
    names : sequence of str
        Registry names; default :data:`BOOK_DATA_FILES`.
    download : bool, default True
        Download missing files (False: only look and verify).

    Returns
    -------
    dict of str to dict
        By name: ``{"status": "present" | "downloaded", "path": ...}`` (the path as
        :func:`radioseg_utils.core.paths.display_path` shows it) or
        ``{"status": "missing", "reason": ...}``.
    """
    report: dict[str, dict[str, str]] = {}
    unreachable: dict[str, str] = {}
    for name in names:
        entry = registry.get_entry(name)
        host = urlsplit(entry.urls[0]).hostname if entry.urls else None
        present = registry.local_path(name).is_file()
        try:
            if download and not present and host in unreachable:
                raise registry.HostUnreachableError(
                    f"not tried: {host} could not be reached for {unreachable[host]}")
            path = registry.fetch(name, download=download, verify=True, progress=False)
        except _MISSING_ERRORS as error:
            if isinstance(error, registry.HostUnreachableError) and host not in unreachable:
                unreachable[host] = name
            logger.warning("real data file %s is not available: %s", name, error)
            report[name] = {"status": "missing", "reason": str(error)}
            continue
        report[name] = {"status": "present" if present else "downloaded",
                        "path": paths.display_path(path)}
    return report


def skipped_sections(notebook: str | Path) -> list[dict[str, Any]]:
    """The sections an executed notebook skipped: ``{"section", "files"}`` of each
    :class:`RealData` box in its outputs (``files``: name -> why it was missing)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    return [dict(output["metadata"][SKIPPED_KEY])
            for cell in cells for output in cell.get("outputs", [])
            if SKIPPED_KEY in output.get("metadata", {})]


def format_skipped(skipped: Sequence[dict[str, Any]]) -> str:
    """A summary of the skipped sections of a book run (``""`` when none was skipped).

    Parameters
    ----------
    skipped : sequence of dict
        ``{"notebook", "section", "files"}`` per skipped section, as the run manifest
        records them.

    Examples
    --------
    >>> print(format_skipped([{"notebook": "01_data.ipynb", "section": "The cutout",
    ...                        "files": {"PrimaryBeam_B1.fits": "not found"}}]))
    1 section of the book was skipped for lack of real data:
      01_data.ipynb, The cutout: PrimaryBeam_B1.fits
    To include it: run `radioseg fetch PrimaryBeam_B1.fits` (20.2 kB from raw.githubusercontent.com), or set RADIOSEG_DATA to a folder that holds it; then run `radioseg book --from 01`.
    """
    if not skipped:
        return ""
    n = len(skipped)
    lines = [f"{n} section{'s' if n > 1 else ''} of the book {'were' if n > 1 else 'was'} "
             "skipped for lack of real data:"]
    lines += [f"  {s['notebook']}, {s['section']}: {', '.join(s['files'])}" for s in skipped]
    names = list(dict.fromkeys(name for s in skipped for name in s["files"]))
    public = [name for name in names if registry.get_entry(name).urls]
    how = ([f"run `radioseg fetch {' '.join(public)}`" if len(public) > 1
            else registry.how_to_get(public[0])] if public else [])
    how += [f"{name}: {registry.how_to_get(name)}" for name in names if name not in public]
    first = min(s["notebook"][:2] for s in skipped)
    lines.append(f"To include {'them' if n > 1 else 'it'}: {'; '.join(how)}, or set "
                 f"RADIOSEG_DATA to a folder that holds {'them' if len(names) > 1 else 'it'}; "
                 f"then run `radioseg book --from {first}`.")
    return "\n".join(lines)
