"""Run independent tasks in this process or on a dask distributed cluster, with progress.

The same task functions run serially (no dask needed) or as dask futures on

* an existing cluster, given the scheduler address (``tcp://host:8786``): its workers must
  see the same file system as the caller (inputs and the run folder), and have radioseg
  installed;
* a :class:`distributed.LocalCluster` of ``n_workers`` single-threaded workers started for
  the call (processes by default; threads with ``processes=False``). Each worker process
  gives TensorFlow its share of the cores (:func:`worker_env`), so that the workers'
  thread pools do not fight over them.

Tasks must be module-level functions whose arguments can be pickled; they return small
results (the big ones go to files). Results come back in the order of the inputs, so the
outcome is the same whatever the cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from tqdm.auto import tqdm

__all__ = ["WORKER_START_TIMEOUT", "THREAD_VARIABLES", "worker_env", "cluster_client", "map_tasks"]

logger = logging.getLogger(__name__)

#: Seconds a local worker process may take to start before the cluster is given up.
WORKER_START_TIMEOUT: float = 60.0

#: Environment variables that size the thread pools of TensorFlow and of the BLAS/OpenMP
#: libraries (dask sets the latter to 1 in its workers; TensorFlow's pool ignores them).
THREAD_VARIABLES: tuple[str, ...] = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                     "OMP_NUM_THREADS")


def worker_env(n_workers: int, cpu_count: int | None = None,
               environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of each of ``n_workers`` local worker processes: its share of the cores
    (at least one) in :data:`THREAD_VARIABLES`, unless ``environ`` (default: this
    process's environment) sets them already.

    By default TensorFlow starts a thread per core in every process: two workers on two
    cores then run four busy threads. Measured on 2 cores, 8192² field: the rows of tiles
    took 177 s on two workers without this, 168 s with it, 152 s in one process (the model
    alone runs 13.1 tiles/s in two one-thread processes, 10.1 in one two-thread process;
    padded batches and the per-row work take the rest).

    Examples
    --------
    >>> worker_env(2, cpu_count=16, environ={})["TF_NUM_INTRAOP_THREADS"]
    '8'
    >>> worker_env(2, cpu_count=16, environ={"TF_NUM_INTRAOP_THREADS": "5"})["TF_NUM_INTRAOP_THREADS"]
    '5'
    """
    environ = os.environ if environ is None else environ
    share = str(max(1, (cpu_count or os.cpu_count() or 1) // n_workers))
    return {name: environ.get(name, share) for name in THREAD_VARIABLES}


@contextlib.contextmanager
def cluster_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    *,
    processes: bool = True,
) -> Iterator[Any]:
    """A dask client for ``scheduler`` or a local cluster of ``n_workers``; None for serial.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running dask scheduler; the cluster is left running afterwards.
    n_workers : int, optional
        Without ``scheduler``: start a :class:`distributed.LocalCluster` of this many
        single-threaded workers (closed afterwards). None or 1 without ``scheduler``:
        run in this process (yields None).
    processes : bool
        Local workers are processes (True) or threads of this process (False).

    A local cluster whose workers do not start within :data:`WORKER_START_TIMEOUT`
    seconds is given up with a warning, and the tasks run in this process (yields None).

    Raises
    ------
    ValueError
        If ``n_workers`` is below 1, or given together with ``scheduler``.
    """
    if n_workers is not None and n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if scheduler is not None and n_workers is not None:
        raise ValueError("give either a scheduler address or n_workers for a local cluster, not both")
    if scheduler is None and (n_workers is None or n_workers == 1):
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            logger.info("dask scheduler %s", scheduler)
            yield client
        return
    try:
        options = {"env": worker_env(n_workers)} if processes else {}
        # no dashboard; the scheduler's HTTP server (metrics) on a free local port, not on
        # 8787, which a Jupyter dask dashboard or another run may hold (dask then warns)
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None, death_timeout=WORKER_START_TIMEOUT,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, **options)
    except (TimeoutError, OSError, RuntimeError) as exc:
        # seen on a lent GPU machine: worker processes that never came up; the results do
        # not depend on where the tasks run, so run them here rather than hang
        logger.warning("the local dask cluster of %d workers did not start (%s: %s); "
                       "running in this process instead", n_workers, type(exc).__name__, exc)
        yield None
        return
    with cluster, Client(cluster) as client:
        logger.info("dask local cluster: %d workers (%s)", n_workers,
                    "processes" if processes else "threads")
        yield client


def map_tasks(
    func: Callable[..., Any],
    items: Sequence[Any],
    *,
    client: Any = None,
    progress: bool = True,
    desc: str = "tasks",
    unit: str = "task",
    weight: int = 1,
    total: int | None = None,
    **kwargs: Any,
) -> list[Any]:
    """``[func(item, **kwargs) for item in items]``, serially or on a dask client.

    Parameters
    ----------
    func : callable
        Module-level function (pickled for a cluster).
    items : sequence
        One task per item.
    client : distributed.Client, optional
        From :func:`cluster_client`; None runs the tasks here, in order.
    progress : bool
        Show a tqdm bar with the remaining time.
    desc, unit : str
        Bar label and unit.
    weight : int
        Units counted per task (e.g. tiles per row of tiles).
    total : int, optional
        Units of the whole job, when some were done before (resumed runs); default
        ``weight * len(items)``.

    Returns
    -------
    list
        The results, in the order of ``items``. The first failing task raises its error
        (remaining futures are cancelled).
    """
    n = weight * len(items)
    total = n if total is None else total
    with tqdm(total=total, initial=total - n, desc=desc, unit=unit, disable=not progress) as bar:
        if client is None:
            results = []
            for item in items:
                results.append(func(item, **kwargs))
                bar.update(weight)
            return results
        from distributed import as_completed

        futures = client.map(func, list(items), pure=False, **kwargs)
        try:
            for future in as_completed(futures):
                future.result()  # raises the task's error here
                bar.update(weight)
            return client.gather(futures)
        finally:
            client.cancel(futures)
