"""Peak memory of a process and everything it starts, sampled while work runs.

``ru_maxrss`` and ``VmHWM`` see one process; a run that spreads over worker processes (a
dask cluster, a process pool, PyBDSF in a subprocess) needs the sum over the process tree
at each moment. :class:`TreeMemory` samples it in a background thread with ``psutil``.

Examples
--------
>>> with TreeMemory(interval=0.01) as memory:
...     block = bytearray(50_000_000)
>>> memory.peak_mb >= 50
True
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psutil

__all__ = ["TreeMemory", "tree_rss_bytes"]


def tree_rss_bytes(pid: int | None = None) -> tuple[int, int]:
    """Resident memory of a process and of its whole tree, in bytes.

    Parameters
    ----------
    pid : int, optional
        Root process (default: this one).

    Returns
    -------
    own, tree : int
        RSS of the root process alone, and summed over it and all its descendants
        (processes that end while being read are skipped).
    """
    root = psutil.Process(pid or os.getpid())
    own = root.memory_info().rss
    total = own
    for child in root.children(recursive=True):
        try:
            total += child.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return own, total


class TreeMemory:
    """Context manager sampling the resident memory of this process tree.

    Attributes (after exit)
    -----------------------
    peak_mb : float
        Largest sum of RSS over the process and its descendants, in MB (10^6 bytes).
    peak_own_mb : float
        Largest RSS of this process alone, in MB.
    samples : int
        Samples taken (at least one, at exit).
    runtime_s : float
        Wall-clock seconds inside the block.

    Parameters
    ----------
    interval : float
        Seconds between samples; a peak shorter than it can be missed.
    """

    def __init__(self, interval: float = 0.2):
        if not interval > 0:
            raise ValueError(f"TreeMemory interval must be > 0 s, got {interval!r}")
        self.interval = float(interval)
        self.peak_mb = self.peak_own_mb = 0.0
        self.samples = 0
        self.runtime_s = float("nan")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        own, tree = tree_rss_bytes()
        self.peak_own_mb = max(self.peak_own_mb, own / 1e6)
        self.peak_mb = max(self.peak_mb, tree / 1e6)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeMemory:
        self._t0 = time.perf_counter()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.runtime_s = time.perf_counter() - self._t0
