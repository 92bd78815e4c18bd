"""Registry of the real SKA SDC1 files, and a resumable, verified downloader.

The file list lives in the package data file ``registry.json``: for every file its public
URL(s), size in bytes, sha256, kind, band, description and provenance. Files are looked for
in :func:`radioseg_utils.core.paths.data_dir` (``$RADIOSEG_DATA``, default the git-ignored
``data/cache``) and downloaded there on request.

Downloads stream to ``<file>.part``, resume with an HTTP ``Range`` request when a partial
file exists, are checked against the registered size and sha256 and only then renamed to
their final name. No checksums are published for the large SDC1 release files: for those the
size and sha256 seen on the first download are recorded in ``<folder>/registry-local.json``
and later checks are made against that record. The same file caches hashes by modification
time, so a verified 4 GB image is not hashed again. An entry may also list *known copies*
(size and sha256 of a variant accepted in place of the published file, e.g. the B1
training truth with the reserved evaluation region already removed).

Data: Bonaldi et al. 2021, MNRAS 500, 3821, doi:10.1093/mnras/staa3023.

Examples
--------
>>> from radioseg_utils.io import registry
>>> path = registry.fetch("B1_1000h_0.05tr.fits")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from http.client import HTTPException, HTTPResponse
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from radioseg_utils.core import paths
from radioseg_utils.core.provenance import PACKAGE_VERSION

__all__ = [
    "FileEntry",
    "KnownCopy",
    "RegistryError",
    "UnknownFileError",
    "DataNotFoundError",
    "DownloadError",
    "HostUnreachableError",
    "ChecksumError",
    "SMALL_FILE_BYTES",
    "LOCAL_RECORD_NAME",
    "load_registry",
    "get_entry",
    "list_files",
    "describe",
    "how_to_get",
    "format_listing",
    "local_path",
    "fetch",
    "sha256sum",
]

logger = logging.getLogger(__name__)

#: Files at most this large (bytes) count as "small" (``radioseg fetch --small``).
SMALL_FILE_BYTES = 100 * 2**20
#: Name of the per-folder record of sizes/sha256 seen on download and of cached hashes.
LOCAL_RECORD_NAME = "registry-local.json"
#: Bytes read or written per step while hashing or downloading.
CHUNK_BYTES = 2**20
#: Seconds to wait for a server to connect or send the next block.
TIMEOUT_S = 30.0
_PART_SUFFIX = ".part"
_USER_AGENT = f"radioseg/{PACKAGE_VERSION} (python urllib)"

# In-process cache of sha256 by (path, size, mtime_ns), for folders that are read-only.
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


class RegistryError(Exception):
    """Base class of every data-registry error."""


class UnknownFileError(RegistryError, KeyError):
    """The name is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataNotFoundError(RegistryError, FileNotFoundError):
    """A registered file is not in the data folder and downloading was not requested."""


class DownloadError(RegistryError, ConnectionError):
    """A file could not be downloaded (no URL, server unreachable, HTTP error, interrupted)."""


class HostUnreachableError(DownloadError):
    """The server of a URL could not be reached (no network, DNS failure, refused)."""


class ChecksumError(RegistryError, ValueError):
    """A file's size or sha256 differs from the registered (or recorded) one."""


@dataclass(frozen=True)
class KnownCopy:
    """A variant of a registered file accepted in its place (by exact size and sha256).

    Attributes
    ----------
    size : int
        Size in bytes.
    sha256 : str
        Lower-case hex sha256.
    description : str
        How it differs from the published file.
    """

    size: int
    sha256: str
    description: str


@dataclass(frozen=True)
class FileEntry:
    """One registered file.

    Attributes
    ----------
    name : str
        File name, also the key in the registry and the name on disk.
    urls : tuple of str
        Download URLs, tried in order; empty for files with no public URL.
    size : int or None
        Size in bytes; ``None`` when unknown until the first download.
    sha256 : str or None
        Lower-case hex sha256; ``None`` when unknown until the first download.
    kind : str
        ``"image"``, ``"beam"``, ``"truth"``, ``"training"``, ``"catalogue"`` or ``"document"``.
    band : str or None
        SDC1 band (``"B1"``, ``"B2"``, ``"B5"``) or ``None``.
    description : str
        What the file holds.
    source : str
        Where it was published.
    derived_from : str or None
        Registry name of the file it was cut from, for files with no public URL.
    known_copies : tuple of KnownCopy
        Variants accepted in place of the published file when found in a data folder
        (never downloaded).
    """

    name: str
    urls: tuple[str, ...]
    size: int | None
    sha256: str | None
    kind: str
    band: str | None
    description: str
    source: str
    derived_from: str | None = None
    known_copies: tuple[KnownCopy, ...] = ()

    @property
    def approx_size(self) -> int | None:
        """The registered size, else the largest known copy's (a guide to the download
        size, for listings and ``radioseg fetch --small``), else None."""
        if self.size is not None:
            return self.size
        return max((copy.size for copy in self.known_copies), default=None)


@cache
def load_registry() -> dict[str, FileEntry]:
    """Read ``registry.json`` (package data) once.

    Returns
    -------
    dict of str to FileEntry
        Entries by file name, in the order of the JSON file. The same dict is returned on
        every call (tests may patch entries in it).
    """
    text = resources.files("radioseg_utils.io").joinpath("registry.json").read_text("utf-8")
    raw = json.loads(text)["files"]
    return {name: FileEntry(name=name, **{
        **fields, "urls": tuple(fields["urls"]),
        "known_copies": tuple(KnownCopy(**copy) for copy in fields.get("known_copies", ()))})
        for name, fields in raw.items()}


def get_entry(name: str) -> FileEntry:
    """Return the registry entry of ``name``.

    Raises
    ------
    UnknownFileError
        If ``name`` is not registered; the message lists the known names.
    """
    entries = load_registry()
    if name not in entries:
        raise UnknownFileError(
            f"unknown data file {name!r}; known files: {', '.join(entries)}"
        )
    return entries[name]


def list_files(
    *,
    kind: str | None = None,
    band: str | None = None,
    max_size: int | None = None,
    downloadable: bool = False,
) -> list[str]:
    """Names of registered files, optionally filtered.

    Parameters
    ----------
    kind, band : str, optional
        Keep only entries with this kind / band (see :class:`FileEntry`).
    max_size : int, optional
        Keep only entries whose size is known (:attr:`FileEntry.approx_size`) and at most
        this many bytes.
    downloadable : bool, default False
        Keep only entries with at least one URL.
    """
    return [
        e.name
        for e in load_registry().values()
        if (kind is None or e.kind == kind)
        and (band is None or e.band == band)
        and (max_size is None or (e.approx_size is not None and e.approx_size <= max_size))
        and (e.urls or not downloadable)
    ]


def local_path(name: str, *, dest: str | os.PathLike | None = None) -> Path:
    """Where ``name`` is (or would be) stored: in ``dest``, else in the first data folder
    that holds it (:func:`radioseg_utils.core.paths.data_dirs`), else in the first one."""
    get_entry(name)
    return _folder(dest, name) / name


def describe(name: str, *, dest: str | os.PathLike | None = None) -> str:
    """A human-readable, multi-line description of one registered file and its local copy."""
    entry = get_entry(name)
    record = _read_record(_folder(dest, name)).get(name, {})
    path = local_path(name, dest=dest)
    lines = [
        f"{entry.name} ({entry.kind}{', ' + entry.band if entry.band else ''})",
        f"  {entry.description}",
        f"  size:    {_human_size(entry.size)}"
        + ("" if entry.size is not None or "size" not in record
           else f" (recorded locally: {record['size']} bytes)"),
        f"  sha256:  {entry.sha256 or record.get('sha256') or 'unknown until first download'}",
        f"  source:  {entry.source}",
        *(f"  url:     {url}" for url in entry.urls),
        *(f"  also accepted: {copy.size} bytes, sha256 {copy.sha256}: {copy.description}"
          for copy in entry.known_copies),
    ]
    if entry.derived_from:
        lines.append(f"  derived from: {entry.derived_from}")
    lines.append(f"  local:   {path} ({'present' if path.is_file() else 'missing'})")
    return "\n".join(lines)


def format_listing(*, dest: str | os.PathLike | None = None) -> str:
    """A table of every registered file: present locally or not, size, kind, band, name."""
    folders = [_folder(dest)] if dest is not None else paths.data_dirs()
    rows = [f"data folder{'s' if len(folders) > 1 else ''}: {os.pathsep.join(map(str, folders))}",
            f"{'':2}{'size':>10}  {'kind':<9} {'band':<4} name"]
    for entry in load_registry().values():
        mark = "*" if any((f / entry.name).is_file() for f in folders) else " "
        size = _human_size(entry.approx_size)
        size = size if entry.size is not None or entry.approx_size is None else f"~{size}"
        rows.append(
            f"{mark:2}{size:>10}  {entry.kind:<9} {entry.band or '-':<4} {entry.name}"
        )
    rows.append("(* = present; get one with `radioseg fetch NAME`)")
    return "\n".join(rows)


def how_to_get(name: str) -> str:
    """How to get a registered file that is missing, as a clause (callers add that
    setting ``RADIOSEG_DATA`` to a folder holding it works too).

    Examples
    --------
    >>> how_to_get("B1_1000h_0.05tr.pybdsm.srl")
    'run `radioseg fetch B1_1000h_0.05tr.pybdsm.srl` (33.5 kB from raw.githubusercontent.com)'
    >>> how_to_get("truth_B1_1000h_0.05tr.cat")
    'it has no public URL (cut from True_560_v2.txt): copy it into a data folder'
    """
    entry = get_entry(name)
    if not entry.urls:
        return f"it has no public URL (cut from {entry.derived_from}): copy it into a data folder"
    approx = "~" if entry.size is None and entry.approx_size is not None else ""
    return (f"run `radioseg fetch {entry.name}` ({approx}{_human_size(entry.approx_size)} "
            f"from {urlsplit(entry.urls[0]).hostname})")


def fetch(
    name: str,
    *,
    download: bool = False,
    dest: str | os.PathLike | None = None,
    verify: bool = False,
    progress: bool = True,
) -> Path:
    """Return the local path of a registered SDC1 file, downloading it if asked.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"B1_1000h_0.05tr.fits"`` (see :func:`list_files`).
    download : bool, default False
        Download the file when it is not present locally.
    dest : path-like, optional
        Folder to look in and download into; default the data folders
        (:func:`radioseg_utils.core.paths.data_dirs`; downloads go to the first).
    verify : bool, default False
        Also check the sha256 of a file already present (the size is always checked).
        Hashes are cached by size and modification time in ``registry-local.json``.
    progress : bool, default True
        Show a tqdm progress bar while downloading.

    Returns
    -------
    pathlib.Path
        Absolute path of the verified file.

    Raises
    ------
    UnknownFileError
        ``name`` is not registered.
    DataNotFoundError
        The file is missing and ``download`` is False; the message says how to get it.
    DownloadError
        No URL, server unreachable, HTTP error or interrupted transfer (a partial
        ``.part`` file is kept, and the next call resumes it).
    ChecksumError
        Size or sha256 differs from the registry (a bad download is deleted; a bad file
        already in the folder is left for the user to inspect).
    """
    entry = get_entry(name)
    folder = _folder(dest, name)
    path = folder / name
    if path.is_file():
        _check_file(entry, path, full=verify)
        return path
    if not download:
        raise DataNotFoundError(_not_found_message(entry, folder))
    if not entry.urls:
        raise DownloadError(
            f"{name} has no public URL: it was cut from {entry.derived_from}. "
            f"Copy it into {folder} or set RADIOSEG_DATA to a folder that holds it."
        )
    folder.mkdir(parents=True, exist_ok=True)
    *mirrors, last = entry.urls
    for url in mirrors:
        try:
            _download_verified(entry, url, path, progress=progress)
            return path
        except (DownloadError, ChecksumError) as exc:
            logger.warning("%s; trying the next URL", exc)
    _download_verified(entry, last, path, progress=progress)
    return path


def sha256sum(path: str | os.PathLike, *, progress: bool = False) -> str:
    """Lower-case hex sha256 of a file, read in chunks of :data:`CHUNK_BYTES`."""
    digest = hashlib.sha256()
    path = Path(path)
    with open(path, "rb") as fh, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, disable=not progress,
        desc=f"sha256 {path.name}",
    ) as bar:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


# --------------------------------------------------------------------------- private
def _folder(dest: str | os.PathLike | None, name: str | None = None) -> Path:
    """``dest``; else the first data folder holding ``name``; else the first data folder."""
    if dest is not None:
        return Path(dest).expanduser().resolve()
    folders = paths.data_dirs()
    return next((f for f in folders if name is not None and (f / name).is_file()), folders[0])


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if size < 1000 * scale:
            return f"{size} B" if size < 1000 else f"{size / scale:.1f} {unit}"
    return f"{size / 1e9:.1f} GB"


def _not_found_message(entry: FileEntry, folder: Path) -> str:
    return (
        f"SDC1 file {entry.name} not found in {folder} (the data folder, $RADIOSEG_DATA or "
        f"data/cache). To get it, {how_to_get(entry.name)}, or set RADIOSEG_DATA to a "
        "folder that holds it."
    )


def _expected(entry: FileEntry, folder: Path) -> tuple[int | None, str | None]:
    """Registered size and sha256, else those recorded on the first download."""
    record = _read_record(folder).get(entry.name, {})
    return (
        entry.size if entry.size is not None else record.get("size"),
        entry.sha256 or record.get("sha256"),
    )


def _check_file(entry: FileEntry, path: Path, *, full: bool) -> None:
    size, sha = _expected(entry, path.parent)
    actual = path.stat().st_size
    copy = next((c for c in entry.known_copies if c.size == actual), None)
    if copy is not None and actual != size:
        if full and (got := _cached_sha256(path)) != copy.sha256:
            raise ChecksumError(
                f"{path} has the size of a known copy ({copy.description}) but sha256 {got}, "
                f"expected {copy.sha256}: delete it and run `radioseg fetch {entry.name}`"
            )
        return
    if size is not None and actual != size:
        raise ChecksumError(
            f"{path} has {actual} bytes but the registry expects {size}: the file is "
            f"truncated or a different version; delete it and run `radioseg fetch {entry.name}`"
        )
    if full and sha is not None:
        got = _cached_sha256(path)
        if got != sha:
            raise ChecksumError(
                f"{path} has sha256 {got}, expected {sha}: delete it and run "
                f"`radioseg fetch {entry.name}`"
            )


def _cached_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    record = _read_record(path.parent).get(path.name, {})
    if record.get("mtime_ns") == stat.st_mtime_ns and record.get("size") == stat.st_size:
        return record["sha256"]
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256sum(path, progress=stat.st_size > SMALL_FILE_BYTES)
        if record.get("sha256") in (None, _HASH_CACHE[key]):
            _write_record(path, _HASH_CACHE[key], url=record.get("url"))
    return _HASH_CACHE[key]


def _read_record(folder: Path) -> dict[str, dict]:
    try:
        return json.loads((folder / LOCAL_RECORD_NAME).read_text("utf-8"))["files"]
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError) as exc:
        raise RegistryError(f"{folder / LOCAL_RECORD_NAME} is not a valid record: {exc}") from exc


def _write_record(path: Path, sha256: str, *, url: str | None) -> None:
    """Record size, sha256 and mtime of ``path``; quietly skipped in a read-only folder."""
    record_path = path.parent / LOCAL_RECORD_NAME
    files = _read_record(path.parent)
    stat = path.stat()
    files[path.name] = {
        "size": stat.st_size,
        "sha256": sha256,
        "mtime_ns": stat.st_mtime_ns,
        "url": url,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = record_path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps({"files": files}, indent=2) + "\n", "utf-8")
        os.replace(tmp, record_path)
    except OSError as exc:
        logger.debug("could not write %s: %s", record_path, exc)


def _download_verified(entry: FileEntry, url: str, path: Path, *, progress: bool) -> None:
    """Download ``url`` to ``path`` via ``path.part``; verify; rename atomically."""
    size, sha = _expected(entry, path.parent)
    part = path.with_name(path.name + _PART_SUFFIX)
    _download(url, part, size=size, progress=progress)
    actual = part.stat().st_size
    got = sha256sum(part, progress=progress and actual > SMALL_FILE_BYTES)
    if (size is not None and actual != size) or (sha is not None and got != sha):
        part.unlink()
        raise ChecksumError(
            f"download of {entry.name} from {url} does not match the registry: got "
            f"{actual} bytes, sha256 {got}; expected {size} bytes, sha256 {sha}. "
            "The partial file was deleted; the server may hold a different version."
        )
    os.replace(part, path)
    if sha is None:
        logger.info("recorded size %d and sha256 %s of %s", actual, got, entry.name)
    _write_record(path, got, url=url)


def _download(url: str, part: Path, *, size: int | None, progress: bool) -> None:
    """Stream ``url`` into ``part``, resuming from its current length with ``Range``."""
    host = urlsplit(url).hostname
    start = part.stat().st_size if part.is_file() else 0
    if size is not None and start >= size:
        if start == size:
            return
        part.unlink()
        start = 0
    headers = {"User-Agent": _USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # stale .part: restart from zero
            part.unlink()
            _download(url, part, size=size, progress=progress)
            return
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HostUnreachableError(
            f"could not reach {host} ({reason}) to download {part.name[:-len(_PART_SUFFIX)]}; "
            f"check the network connection, or copy the file into {part.parent} by hand"
        ) from exc
    with response:
        resumed = response.status == 206
        if start and not resumed:
            logger.info("%s ignored the range request; downloading from the start", host)
            start = 0
        total = _total_size(response, start) or size
        with open(part, "ab" if resumed else "wb") as fh, tqdm(
            total=total, initial=start, unit="B", unit_scale=True,
            disable=not progress, desc=part.name[: -len(_PART_SUFFIX)],
        ) as bar:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    fh.write(chunk)
                    bar.update(len(chunk))
            except (OSError, HTTPException) as exc:
                raise DownloadError(
                    f"download from {host} interrupted after {fh.tell()} bytes ({exc}); "
                    "run the same command again to resume"
                ) from exc
    if total is not None and part.stat().st_size < total:
        raise DownloadError(
            f"download from {host} stopped at {part.stat().st_size} of {total} bytes; "
            "run the same command again to resume"
        )


def _total_size(response: HTTPResponse, start: int) -> int | None:
    """Full file size from ``Content-Range`` (206) or ``Content-Length`` (200)."""
    match = re.search(r"/(\d+)\s*$", response.headers.get("Content-Range", ""))
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return int(length) + (start if response.status == 206 else 0) if length else None
