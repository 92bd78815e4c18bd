"""Restartable runs over big images: a folder of finished pieces and streamed FITS outputs.

A long run (e.g. :func:`radioseg_utils.inference.predict.predict_image` on a 32768² SDC1 image) keeps
its state in a *run folder*, ``<out_dir>/<stem>.partial/``:

* ``state.json`` holds a key, a hash of everything the result depends on (image path, size
  and modification time, model, settings; :func:`run_key`). A folder with another key is
  emptied before use, so a resumed run never mixes pieces of different runs;
* every finished piece (a row of tiles, a catalogue block) is a file written under a
  temporary name and renamed (:func:`os.replace`, atomic on POSIX) when complete: a
  piece exists whole or not at all, and an interrupted run resumes from the pieces that
  exist;
* :class:`StripStore` holds the weighted model outputs of each row of tiles
  (:func:`radioseg_utils.inference.tiling.predict_row`) as ``.npy`` files; any window of the blended
  map is their sum, in row order, so it equals the map computed in memory bit for bit;
* outputs are FITS images written block by block into preallocated files
  (:class:`radioseg_utils.io.fits_write.FitsStream`), so memory stays bounded.

Final outputs are written inside the run folder and moved into place together by
:meth:`RunFolder.commit` at the very end; the folder is then removed. A half-written output
therefore never carries a final name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.table import Table

from radioseg_utils.core.paths import check_writable
from radioseg_utils.inference.tiling import TileGrid

__all__ = ["STATE_FILE", "FOLDER_LAYOUT", "run_key", "RunFolder", "StripStore"]

logger = logging.getLogger(__name__)

#: Name of the JSON file holding the key of a run folder.
STATE_FILE: str = "state.json"

#: Version of the way pieces are stored in a run folder (2: catalogue blocks as Parquet).
FOLDER_LAYOUT: int = 2


def run_key(**parts: object) -> str:
    """Hex digest (16 characters) of keyword values, identifying what a run depends on.

    Values are turned into text with :func:`json.dumps` (``str`` for other objects), so
    two calls with equal settings give the same key. :data:`FOLDER_LAYOUT` is part of
    every key, so a folder left by a version that stored its pieces otherwise is started
    afresh rather than resumed.

    Examples
    --------
    >>> run_key(a=1, b="x") == run_key(b="x", a=1) != run_key(a=2, b="x")
    True
    """
    text = json.dumps({"layout": FOLDER_LAYOUT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunFolder:
    """The folder of a restartable run; pieces are files saved atomically.

    Parameters
    ----------
    path : str or Path
        The folder (must exist; see :meth:`open`). A ``RunFolder`` holds only its path,
        so it can be sent to the workers of a cluster sharing the file system.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def open(cls, path: str | Path, key: str, *, resume: bool = True) -> RunFolder:
        """Create the folder, or reuse it when ``resume`` and its key equals ``key``.

        A folder of another run (another key), or any folder when ``resume`` is False, is
        emptied first.
        """
        path = Path(path)
        state = path / STATE_FILE
        if path.exists():
            old = json.loads(state.read_text()).get("key") if state.is_file() else None
            if resume and old == key:
                logger.info("resuming from %s", path)
                return cls(path)
            logger.info("starting afresh in %s (%s)", path,
                        "resume off" if resume else f"key {old} != {key}")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        folder = cls(path)
        folder.save_json(STATE_FILE, {"key": key})
        return folder

    def _atomic(self, name: str, write: Callable[[Path], object]) -> Path:
        """Call ``write`` on a hidden temporary path beside ``name`` (same suffix), then
        rename it to ``name``."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{uuid.uuid4().hex}.{target.name}")
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def has(self, name: str) -> bool:
        """Whether the piece ``name`` (a relative file name) is finished."""
        return (self.path / name).is_file()

    def save_array(self, name: str, array: np.ndarray, *, compress: bool = False) -> Path:
        """Save an array as ``name`` (``.npy``; ``.npz`` with key ``data`` if ``compress``)."""
        if compress:
            return self._atomic(name, lambda tmp: np.savez_compressed(tmp, data=array))
        return self._atomic(name, lambda tmp: np.save(tmp, array))

    def load_array(self, name: str, *, mmap: bool = False) -> np.ndarray:
        """Array saved by :meth:`save_array` (a read-only memory map of ``.npy`` if ``mmap``)."""
        path = self.path / name
        if path.suffix == ".npz":
            with np.load(path) as npz:
                return npz["data"]
        return np.load(path, mmap_mode="r" if mmap else None)

    def save_table(self, name: str, table: Table) -> Path:
        """Save a table as Parquet (binary: values exact; dtypes, units, descriptions and
        metadata kept; fast to read back)."""
        return self._atomic(name, lambda tmp: table.write(tmp, format="parquet"))

    def load_table(self, name: str) -> Table:
        """Table saved by :meth:`save_table`."""
        return Table.read(self.path / name, format="parquet")

    def save_json(self, name: str, value: object) -> Path:
        """Save a JSON-serialisable value."""
        return self._atomic(name, lambda tmp: tmp.write_text(json.dumps(value)))

    def load_json(self, name: str) -> object:
        """Value saved by :meth:`save_json`."""
        return json.loads((self.path / name).read_text())

    def commit(self, outputs: dict[str, Path], *, overwrite: bool) -> None:
        """Move finished outputs (``name in the folder -> final path``) into place, then
        remove the folder.

        Raises
        ------
        FileExistsError
            If a final path exists and ``overwrite`` is False (nothing is moved then).
        """
        for target in outputs.values():
            check_writable(target, overwrite=overwrite)
        for name, target in outputs.items():
            os.replace(self.path / name, target)
        shutil.rmtree(self.path)


class StripStore:
    """Weighted model outputs of each row of tiles, stored in a :class:`RunFolder`.

    Parameters
    ----------
    folder : RunFolder
        Where the rows live (``rows/row<iy>.npy``, float32 ``(y1 - y0, nx, C)``).
    grid : TileGrid
        Tiles of the image.
    """

    def __init__(self, folder: RunFolder, grid: TileGrid) -> None:
        self.folder, self.grid = folder, grid

    @staticmethod
    def name(iy: int) -> str:
        """File name of row ``iy``."""
        return f"rows/row{iy:05d}.npy"

    def missing(self) -> list[int]:
        """Rows of tiles not yet stored."""
        return [iy for iy in range(self.grid.n_rows) if not self.folder.has(self.name(iy))]

    def save(self, iy: int, strip: np.ndarray) -> None:
        """Store row ``iy`` (output of :func:`~radioseg_utils.inference.tiling.predict_row`)."""
        self.folder.save_array(self.name(iy), np.asarray(strip, np.float32))

    def window(self, ys: slice, xs: slice) -> np.ndarray:
        """Blended map on ``[ys, xs]``: float32 ``(h, w, C)``, the rows summed in order."""
        out = None
        for iy in range(self.grid.n_rows):
            y0, y1 = self.grid.row_span(iy)
            lo, hi = max(y0, ys.start), min(y1, ys.stop)
            if lo >= hi:
                continue
            rows = self.folder.load_array(self.name(iy), mmap=True)
            if out is None:
                out = np.zeros((ys.stop - ys.start, xs.stop - xs.start, rows.shape[2]), np.float32)
            out[lo - ys.start : hi - ys.start] += rows[lo - y0 : hi - y0, xs]
            del rows  # unmap: mapped pages count in the resident memory
        return out
