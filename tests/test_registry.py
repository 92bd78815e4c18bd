"""Tests of the SDC1 data registry and downloader, against a local HTTP server only."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from radioseg_utils.core import paths
from radioseg_utils.io import registry

NAME = "B1_1000h_0.05tr.fits"  # registry entry whose URL the tests point at the local server
PAYLOAD_BYTES = 300_000


class _RangeHandler(BaseHTTPRequestHandler):
    """Serves ``server.files`` with single ``bytes=N-`` ranges; records every request."""

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and server.honour_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        stop = len(body) if server.cut_at is None else min(server.cut_at, len(body))
        server.sent += max(stop - start, 0)  # counted before sending: no race with the client
        self.wfile.write(body[start:stop])

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def http_server():
    """A threaded HTTP server on 127.0.0.1 with Range support (no internet)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    server.files, server.requests = {}, []
    server.honour_range, server.cut_at, server.sent = True, None, 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def payload(rng) -> bytes:
    return rng.integers(0, 256, PAYLOAD_BYTES, dtype="uint8").tobytes()


@pytest.fixture
def served(http_server, payload, monkeypatch):
    """Point registry entry NAME at the local server, with the payload's size and sha256."""
    http_server.files["/f.fits"] = payload
    entry = replace(
        registry.get_entry(NAME),
        urls=(f"{http_server.url}/f.fits",),
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )
    monkeypatch.setitem(registry.load_registry(), NAME, entry)
    return http_server


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/f.fits"


def test_download_verifies_and_records(served, payload, tmp_path):
    path = registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    assert path == tmp_path / NAME
    assert path.read_bytes() == payload
    assert not (tmp_path / f"{NAME}.part").exists()
    record = json.loads((tmp_path / registry.LOCAL_RECORD_NAME).read_text())["files"][NAME]
    assert record["size"] == PAYLOAD_BYTES
    assert record["sha256"] == hashlib.sha256(payload).hexdigest()
    assert served.requests == [("/f.fits", None)]
    # present now: found again without any request
    assert registry.fetch(NAME, download=True, dest=tmp_path, verify=True) == path
    assert len(served.requests) == 1


@pytest.mark.parametrize("honour_range", [True, False])
def test_resume_from_partial_file(served, payload, tmp_path, honour_range):
    served.honour_range = honour_range
    (tmp_path / f"{NAME}.part").write_bytes(payload[:1000])
    path = registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    assert path.read_bytes() == payload
    assert served.requests == [("/f.fits", "bytes=1000-")]
    assert served.sent == PAYLOAD_BYTES - (1000 if honour_range else 0)


def test_interrupted_download_keeps_part_and_resumes(served, payload, tmp_path):
    served.cut_at = 120_000
    with pytest.raises(registry.DownloadError, match="again to resume"):
        registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    assert (tmp_path / f"{NAME}.part").stat().st_size == 120_000
    assert not (tmp_path / NAME).exists()
    served.cut_at = None
    registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    assert (tmp_path / NAME).read_bytes() == payload
    assert served.requests[-1] == ("/f.fits", "bytes=120000-")


def test_checksum_mismatch_leaves_no_file(served, tmp_path, monkeypatch):
    bad = replace(registry.get_entry(NAME), sha256="0" * 64)
    monkeypatch.setitem(registry.load_registry(), NAME, bad)
    with pytest.raises(registry.ChecksumError, match="does not match the registry.*deleted"):
        registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unreachable_host_gives_clear_error(tmp_path, monkeypatch):
    entry = replace(registry.get_entry(NAME), urls=(_closed_port_url(),))
    monkeypatch.setitem(registry.load_registry(), NAME, entry)
    with pytest.raises(registry.HostUnreachableError,
                       match=rf"could not reach 127\.0\.0\.1 .*{NAME}"):
        registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    assert not (tmp_path / NAME).exists()


def test_http_error_and_fallback_to_next_url(served, payload, tmp_path, monkeypatch):
    entry = registry.get_entry(NAME)
    monkeypatch.setitem(registry.load_registry(), NAME, replace(entry, urls=(
        f"{served.url}/missing.fits",)))
    with pytest.raises(registry.DownloadError, match="answered HTTP 404"):
        registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    monkeypatch.setitem(registry.load_registry(), NAME, replace(entry, urls=(
        f"{served.url}/missing.fits", entry.urls[0])))
    assert registry.fetch(NAME, download=True, dest=tmp_path).read_bytes() == payload


def test_unknown_hash_is_recorded_then_verified(served, payload, tmp_path, monkeypatch):
    entry = replace(registry.get_entry(NAME), size=None, sha256=None)
    monkeypatch.setitem(registry.load_registry(), NAME, entry)
    path = registry.fetch(NAME, download=True, dest=tmp_path, progress=False)
    assert "sha256:  " + hashlib.sha256(payload).hexdigest() in registry.describe(
        NAME, dest=tmp_path)
    assert registry.fetch(NAME, dest=tmp_path, verify=True) == path
    path.write_bytes(payload[::-1])  # same size, new content, new mtime
    os.utime(path, ns=(1, 1))
    with pytest.raises(registry.ChecksumError, match=f"{NAME} has sha256 .*expected"):
        registry.fetch(NAME, dest=tmp_path, verify=True)
    path.write_bytes(payload[:10])
    expects = f"has 10 bytes but the registry expects {PAYLOAD_BYTES}"
    with pytest.raises(registry.ChecksumError, match=expects):
        registry.fetch(NAME, dest=tmp_path)


def test_fetch_finds_data_dir_without_network(sdc1_dir, monkeypatch):
    entry = replace(registry.get_entry(NAME), urls=(_closed_port_url(),))
    monkeypatch.setitem(registry.load_registry(), NAME, entry)
    monkeypatch.setenv("RADIOSEG_DATA", str(sdc1_dir))
    assert registry.fetch(NAME, download=True, verify=True) == sdc1_dir.resolve() / NAME


def test_missing_file_message_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RADIOSEG_DATA", str(tmp_path))
    with pytest.raises(registry.DataNotFoundError) as info:
        registry.fetch(NAME)
    message = str(info.value)
    assert NAME in message and str(tmp_path) in message
    assert f"radioseg fetch {NAME}" in message and "RADIOSEG_DATA" in message
    assert "raw.githubusercontent.com" in message
    assert isinstance(info.value, FileNotFoundError)


def test_derived_file_cannot_be_downloaded(tmp_path):
    with pytest.raises(registry.DownloadError, match="no public URL: it was cut from True_560"):
        registry.fetch("truth_B1_1000h_0.05tr.cat", download=True, dest=tmp_path)


def test_unknown_name_lists_known_files():
    with pytest.raises(registry.UnknownFileError, match=f"unknown data file 'nope'.*{NAME}"):
        registry.fetch("nope")
    with pytest.raises(KeyError):
        registry.get_entry("nope")


def test_list_files_filters():
    assert len(registry.list_files()) == 22
    assert registry.list_files(kind="image", band="B2") == ["SKAMid_B2_1000h_v3.fits"]
    assert registry.list_files(kind="training", max_size=registry.SMALL_FILE_BYTES) == [
        "TrainingSet_B1_v2_ML.txt", "TrainingSet_B2_v2_ML.txt", "TrainingSet_B5_v2_ML.txt"]
    assert len(registry.list_files(max_size=registry.SMALL_FILE_BYTES)) == 10
    assert "truth_B1_1000h_0.05tr.cat" not in registry.list_files(downloadable=True)
    assert len(registry.list_files(downloadable=True)) == 21


def test_every_entry_is_complete():
    for entry in registry.load_registry().values():
        assert entry.urls or entry.derived_from in registry.load_registry(), entry.name
        assert all(u.startswith("https://") for u in entry.urls), entry.name
        assert (entry.size is None) == (entry.sha256 is None), entry.name
        assert entry.sha256 is None or len(entry.sha256) == 64, entry.name
        assert entry.kind in {"image", "beam", "truth", "training", "catalogue", "document"}
        assert entry.band in {None, "B1", "B2", "B5"}


@pytest.mark.parametrize("name", registry.list_files(max_size=registry.SMALL_FILE_BYTES))
def test_registered_hashes_match_shared_files(sdc1_dir, name):
    entry = registry.get_entry(name)
    path = registry.local_path(name)
    if not path.is_file():
        pytest.skip(f"{name} not found in {registry.paths.data_dirs()} (set RADIOSEG_DATA)")
    accepted = [(entry.size, entry.sha256)] + [(c.size, c.sha256) for c in entry.known_copies]
    assert (path.stat().st_size, registry.sha256sum(path)) in accepted


def test_b1_training_truth_is_registered_as_published():
    """The public file keeps the reserved region: its size and sha256 are learnt on the first
    download; the reduced copy of the shared folder is accepted as a known copy."""
    entry = registry.get_entry("TrainingSet_B1_v2_ML.txt")
    assert entry.urls == (
        "https://raw.githubusercontent.com/ICRAR/skasdc1/HEAD/data/TrainingSet_B1_v2_ML.txt",)
    assert entry.size is None and entry.sha256 is None
    assert [(c.size, c.sha256[:12]) for c in entry.known_copies] == [(3330431, "68e48ac4f21d")]
    assert entry.approx_size == 3330431
    assert "TrainingSet_B1_v2_ML.txt" in registry.list_files(max_size=registry.SMALL_FILE_BYTES)


def test_a_known_copy_is_accepted_and_checked(served, payload, tmp_path, monkeypatch):
    reduced = payload[:1000]
    copy = registry.KnownCopy(size=1000, sha256=hashlib.sha256(reduced).hexdigest(),
                              description="the reduced copy")
    entry = replace(registry.get_entry(NAME), size=None, sha256=None, known_copies=(copy,))
    monkeypatch.setitem(registry.load_registry(), NAME, entry)
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / NAME).write_bytes(reduced)
    assert registry.fetch(NAME, dest=folder, verify=True) == folder / NAME
    assert "also accepted: 1000 bytes" in registry.describe(NAME, dest=folder)
    other = tmp_path / "other"
    other.mkdir()
    (other / NAME).write_bytes(payload[-1000:])  # the known copy's size, not its content
    with pytest.raises(registry.ChecksumError, match=r"size of a known copy \(the reduced copy\)"):
        registry.fetch(NAME, dest=other, verify=True)
    # the published file, of unknown size and hash, downloads and is recorded
    path = registry.fetch(NAME, download=True, dest=tmp_path / "fresh", progress=False)
    assert path.read_bytes() == payload
    assert registry.fetch(NAME, dest=tmp_path / "fresh", verify=True) == path


def test_data_folders_are_searched_in_order_and_downloads_go_to_the_first(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.setenv("RADIOSEG_DATA", os.pathsep.join([str(first), str(second)]))
    assert paths.data_dirs() == [first.resolve(), second.resolve()]
    assert paths.data_dir() == first.resolve()
    name = "1904_comp.fits"
    assert registry.local_path(name) == first.resolve() / name  # missing: the first folder
    (second / name).write_bytes(b"x")
    assert registry.local_path(name) == second.resolve() / name
    with pytest.raises(registry.ChecksumError, match="bytes"):
        registry.fetch(name)  # found in the second folder, and checked there
    assert "data folders:" in registry.format_listing()
