"""Tests of the ``radioseg`` command line (no network)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace

import pytest

from radioseg_utils import __version__
from radioseg_utils.cli import EXIT_OK, EXIT_USAGE, build_parser, main
from radioseg_utils.inference.config import PredictConfig, PredictResult
from radioseg_utils.io import registry


def test_fetch_list_marks_present_files(sdc1_dir, capsys, monkeypatch):
    monkeypatch.setenv("RADIOSEG_DATA", str(sdc1_dir))
    assert main(["fetch", "--list"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"data folder: {sdc1_dir.resolve()}"
    assert len(lines) == 2 + len(registry.list_files()) + 1
    present = [line.split()[-1] for line in lines[2:-1] if line.startswith("*")]
    assert present == [name for name in registry.list_files(max_size=registry.SMALL_FILE_BYTES)
                       if (sdc1_dir / name).is_file()]


def test_fetch_unknown_name_returns_2(capsys):
    assert main(["fetch", "nope"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("radioseg: error: unknown data file 'nope'; known files: ")
    assert "Traceback" not in err


def test_verbose_reraises():
    with pytest.raises(registry.UnknownFileError):
        main(["-v", "fetch", "nope"])


def test_fetch_without_names_is_an_error(capsys):
    assert main(["fetch"]) == EXIT_USAGE
    assert "name at least one file" in capsys.readouterr().err


def test_bad_arguments_and_version(capsys):
    assert main([]) == EXIT_USAGE  # a subcommand is required
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"radioseg {__version__}"


def test_fetch_downloads_into_dest(tmp_path, monkeypatch, capsys):
    source = tmp_path / "source.bin"
    source.write_bytes(b"0123456789" * 100)
    name = "B1_1000h_0.05tr.pybdsm.srl"
    entry = replace(registry.get_entry(name), urls=(source.as_uri(),), size=1000,
                    sha256=hashlib.sha256(source.read_bytes()).hexdigest())
    monkeypatch.setitem(registry.load_registry(), name, entry)
    dest = tmp_path / "dest"
    assert main(["fetch", name, "--dest", str(dest)]) == EXIT_OK
    assert capsys.readouterr().out.strip() == str(dest / name)
    assert (dest / name).read_bytes() == source.read_bytes()


def test_parser_has_fetch_subcommand():
    args = build_parser().parse_args(["fetch", "--all", "--dest", "x"])
    assert (args.command, args.all, args.dest.name) == ("fetch", True, "x")


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "radioseg_utils", "fetch", "nope"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_USAGE
    assert "radioseg: error: unknown data file 'nope'" in done.stderr


def test_fetch_small_verifies_every_small_downloadable_file(sdc1_dir, capsys):
    assert main(["fetch", "--small"]) == EXIT_OK
    printed = capsys.readouterr().out.split()
    names = registry.list_files(max_size=registry.SMALL_FILE_BYTES, downloadable=True)
    assert printed == [str(registry.local_path(name)) for name in names]
    assert len(printed) == 9


def test_predict_options_reach_the_config(tmp_path, monkeypatch):
    from radioseg_utils.inference import predict as pr

    seen = {}

    def fake_predict_image(path, model, **kwargs):
        seen.update(kwargs, path=path)
        return PredictResult(n_sources=0, threshold=0.5, noise=1.0, paths={})

    monkeypatch.setattr(pr, "predict_image", fake_predict_image)
    image = tmp_path / "img.fits"
    image.write_bytes(b"")
    assert main(["predict", str(image), "--out", str(tmp_path), "--tta", "--centre-threshold",
                     "0.45", "--flux-scale", "1", "--workers", "2"]) == 0
    config = seen["config"]
    assert (config.tta, config.centre_threshold, config.flux_scale) == (True, 0.45, 1.0)
    assert seen["n_workers"] == 2 and seen["out_dir"] == tmp_path
    assert main(["predict", str(image), "--out", str(tmp_path)]) == 0
    assert seen["config"] == PredictConfig()  # defaults: tuned threshold, SDC1 flux scale
    assert main(["predict", str(image), "--out", str(tmp_path), "--no-calibration"]) == 0
    assert seen["config"].calibration is None
