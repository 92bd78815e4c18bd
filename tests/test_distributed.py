"""Tests of radioseg_utils.inference.distributed and of predict_image on a dask LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest
from test_streaming import CONFIG, NOISE, SOURCES, make_scene, read_outputs, snr_model

from radioseg_utils.inference import predict as pr
from radioseg_utils.inference.distributed import (
    THREAD_VARIABLES,
    cluster_client,
    map_tasks,
    worker_env,
)

pytest.importorskip("distributed")


def square(x: int, *, plus: int = 0) -> int:
    if x < 0:
        raise ValueError(f"negative item {x}")
    return x * x + plus


@pytest.fixture
def scene(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(pr, "CATALOGUE_BLOCK", 128)
    monkeypatch.setattr(pr, "BLOCK_MARGIN", 24)
    return make_scene(tmp_path / "scene.fits", rng)


def test_map_tasks_serial_and_errors():
    with cluster_client() as client:
        assert client is None
        assert map_tasks(square, [3, 1, 2], client=client, progress=False, plus=1) == [10, 2, 5]
        with pytest.raises(ValueError, match="negative item -1"):
            map_tasks(square, [1, -1], client=client, progress=False)


@pytest.mark.parametrize(("kwargs", "match"), [({"n_workers": 0}, "n_workers must be >= 1"),
                                               ({"scheduler": "tcp://x:1", "n_workers": 2}, "not both")])
def test_cluster_client_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match), cluster_client(**kwargs):
        pass


def test_local_cluster_of_threads_equals_serial(scene, tmp_path):
    serial = pr.predict_image(scene, snr_model, out_dir=tmp_path / "serial", noise=NOISE,
                              config=CONFIG, progress=False)
    with cluster_client(n_workers=2, processes=False) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert map_tasks(square, [1, 2], client=client, progress=False) == [1, 4]
        with pytest.raises(ValueError, match="negative item -3"):
            map_tasks(square, [2, -3], client=client, progress=False)
    dask = pr.predict_image(scene, snr_model, out_dir=tmp_path / "dask", noise=NOISE,
                            config=CONFIG, progress=False, n_workers=2, processes=False)
    assert len(dask.catalogue) == len(SOURCES)
    for a, b in zip(read_outputs(serial), read_outputs(dask)):
        assert np.array_equal(a, b)
    for name in ("id", "x", "y", "flux", "ra_core", "b_maj", "peak_snr"):
        assert np.array_equal(serial.catalogue[name], dask.catalogue[name])
    assert not (tmp_path / "dask" / "scene.partial").exists()


@pytest.mark.slow
def test_local_cluster_of_processes_equals_serial(scene, tmp_path):
    serial = pr.predict_image(scene, snr_model, out_dir=tmp_path / "serial", noise=NOISE,
                              config=CONFIG, progress=False)
    dask = pr.predict_image(scene, snr_model, out_dir=tmp_path / "dask", noise=NOISE,
                            config=CONFIG, progress=False, n_workers=2, processes=True)
    for a, b in zip(read_outputs(serial), read_outputs(dask)):
        assert np.array_equal(a, b)
    assert np.array_equal(serial.catalogue["flux"], dask.catalogue["flux"])


def _thread_env() -> dict[str, str | None]:
    import os

    return {name: os.environ.get(name) for name in THREAD_VARIABLES}


@pytest.mark.slow
def test_local_worker_processes_share_the_cores(monkeypatch):
    for name in THREAD_VARIABLES:  # conftest sets TensorFlow's pool for the tests
        monkeypatch.delenv(name, raising=False)
    assert worker_env(3, cpu_count=2) == dict.fromkeys(THREAD_VARIABLES, "1")  # at least one
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "5")  # the user's setting wins
    assert worker_env(2, cpu_count=16)["TF_NUM_INTRAOP_THREADS"] == "5"
    assert worker_env(2, cpu_count=16, environ={})["TF_NUM_INTRAOP_THREADS"] == "8"
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS")
    with cluster_client(n_workers=2) as client:
        seen = client.run(_thread_env)
    assert len(seen) == 2
    for env in seen.values():
        assert env == worker_env(2)  # TensorFlow's pool and OpenMP: half the cores each


def test_a_local_cluster_starts_quietly_beside_a_held_dashboard_port():
    """Port 8787 (dask's dashboard) held by someone else: no warning (an error here), a cluster."""
    import socket

    with socket.socket() as held:
        try:
            held.bind(("0.0.0.0", 8787))
            held.listen()
        except OSError:  # already held elsewhere: the case under test all the same
            pass
        with cluster_client(n_workers=2, processes=False) as client:
            assert client is not None
            assert client.submit(square, 3).result() == 9


def test_a_local_cluster_that_does_not_start_falls_back_to_this_process(monkeypatch, caplog):
    import distributed

    def no_workers(**kwargs):
        assert kwargs["death_timeout"] > 0  # workers that hang are given up, not waited on
        raise TimeoutError("workers did not connect")

    monkeypatch.setattr(distributed, "LocalCluster", no_workers)
    with caplog.at_level("WARNING"), cluster_client(n_workers=4) as client:
        assert client is None
        assert map_tasks(square, [1, 2, 3], client=client, progress=False) == [1, 4, 9]
    assert "did not start" in caplog.text and "running in this process" in caplog.text
