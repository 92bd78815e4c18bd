"""Tests of the ``radioseg`` command line (no network)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from radioseg_utils import __version__
from radioseg_utils.cli import EXIT_OK, EXIT_USAGE, build_parser, main
from radioseg_utils.core import paths
from radioseg_utils.inference.config import PredictConfig, PredictResult
from radioseg_utils.io import registry


def test_fetch_list_marks_present_files(sdc1_dir, capsys):
    assert main(["fetch", "--list"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    folders = paths.data_dirs()
    assert lines[0].endswith(f": {os.pathsep.join(map(str, folders))}")
    assert len(lines) == 2 + len(registry.list_files()) + 1
    present = [line.split()[-1] for line in lines[2:-1] if line.startswith("*")]
    assert present == [name for name in registry.list_files()
                       if any((folder / name).is_file() for folder in folders)]
    assert set(present) >= set(registry.list_files(max_size=registry.SMALL_FILE_BYTES))
    # the published B1 training truth has no registered size: listed by its known copy's
    assert "~3.3 MB  training  B1   TrainingSet_B1_v2_ML.txt" in "\n".join(lines)


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
    assert "TrainingSet_B1_v2_ML.txt" in names and len(printed) == 9


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
    assert seen["config"].calibration is None and seen["config"].reliability == "model"
    assert main(["predict", str(image), "--out", str(tmp_path), "--no-reliability"]) == 0
    assert seen["config"].reliability is None and seen["config"].calibration == "model"
    assert main(["predict", str(image), "--out", str(tmp_path), "--selection", "score",
                 "--min-p-real", "0.7"]) == 0
    assert (seen["config"].selection, seen["config"].min_p_real) == ("score", 0.7)


def test_predict_score_selection_and_a_bad_cut_with_the_shipped_model(tmp_path, capsys,
                                                                     tiny_image):
    """--selection score takes the shipped sidecar's B1 choice; a cut outside [0, 1] or one
    without p_real is a one-line error before anything is written."""
    from astropy.table import Table

    from radioseg_utils.model.files import DEFAULT_MODEL, read_sidecar

    chosen = read_sidecar(DEFAULT_MODEL)["score_selection"]["bands"]["B1"]
    assert main(["predict", str(tiny_image), "--out", str(tmp_path / "s"), "--selection",
                 "score"]) == EXIT_OK
    meta = Table.read(tmp_path / "s" / "tiny_cat.ecsv", format="ascii.ecsv").meta
    assert meta["CENTRE"] == chosen["centre_threshold"]
    assert meta.get("PREALMIN") == chosen["min_p_real"]
    capsys.readouterr()
    for argv, message in (
            (["--min-p-real", "1.5"], "min_p_real must lie in [0, 1], got 1.5"),
            (["--min-p-real", "0.5", "--no-reliability"],
             "a p_real cut (0.5) needs p_real, and this run has none (no reliability file, "
             "or a centre threshold below its range)")):
        assert main(["predict", str(tiny_image), "--out", str(tmp_path / "bad"), *argv]) == EXIT_USAGE
        assert capsys.readouterr().err == f"radioseg: error: {message}\n"
        assert not (tmp_path / "bad").exists()


def test_predict_takes_a_primary_beam_by_its_registry_name(tmp_path, monkeypatch, sdc1_dir):
    from radioseg_utils.inference import predict as pr

    seen = {}
    monkeypatch.setattr(pr, "predict_image", lambda path, model, **kwargs: seen.update(kwargs)
                        or PredictResult(n_sources=0, threshold=0.5, noise=1.0, paths={}))
    image = tmp_path / "img.fits"
    image.write_bytes(b"")
    assert main(["predict", str(image), "--out", str(tmp_path),
                 "--primary-beam", "PrimaryBeam_B1.fits"]) == 0
    assert seen["primary_beam"] == registry.fetch("PrimaryBeam_B1.fits")
    assert main(["predict", str(image), "--out", str(tmp_path),
                 "--primary-beam", str(sdc1_dir / "PrimaryBeam_B1.fits")]) == 0
    assert seen["primary_beam"] == sdc1_dir / "PrimaryBeam_B1.fits"


# --------------------------------------------------------------------------- bad input
#: What TensorFlow's C++ runtime writes to stderr as it starts, unless quietened.
TENSORFLOW_START_UP = ("cpu_feature_guard", "oneDNN custom operations", "absl::InitializeLog")


@pytest.fixture
def tiny_image(tmp_path, rng):
    """A 64 x 64 px B1 noise image in the SDC1 layout."""
    from radioseg_utils.io.fits_write import write_image
    from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs

    data = rng.normal(0.0, 3.6e-7, (64, 64)).astype(np.float32)
    return write_image(tmp_path / "tiny.fits", data,
                       sdc1_header(sdc1_wcs("B1", (64, 64)), "B1", ndim=4))


@pytest.mark.parametrize("kind", ["empty", "text", "truncated data"])
@pytest.mark.parametrize("command", ["info", "predict", "dataset"])
def test_a_bad_image_is_one_line_error_for_every_command(tmp_path, capsys, tiny_image, bad_fits,
                                                         kind, command):
    path, message = bad_fits(kind, tiny_image)
    argv = {"info": ["info", str(path)],
            "predict": ["predict", str(path), "--out", str(tmp_path / "out")],
            "dataset": ["dataset", str(path), str(tmp_path / "truth.txt"),
                        "--out", str(tmp_path / "shards")]}[command]
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err == f"radioseg: error: {message}\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "shards").exists()


@pytest.mark.parametrize("command", ["predict", "simulate", "dataset"])
def test_out_naming_an_existing_file_is_one_line_error(tmp_path, capsys, tiny_image, command):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep")
    argv = {"predict": ["predict", str(tiny_image)],
            "simulate": ["simulate", "--size", "32"],
            "dataset": ["dataset", str(tiny_image), str(tmp_path / "truth.txt")]}[command]
    assert main([*argv, "--out", str(taken)]) == EXIT_USAGE
    assert capsys.readouterr().err == f"radioseg: error: --out {taken} is a file, not a folder\n"
    assert main([*argv, "--out", str(taken / "sub")]) == EXIT_USAGE
    assert capsys.readouterr().err.endswith(f"(inside the file {taken})\n")
    assert taken.read_text() == "keep"


def test_existing_output_names_the_overwrite_option(tmp_path, capsys):
    argv = ["simulate", "--size", "32", "--out", str(tmp_path)]
    assert main(argv) == EXIT_OK
    capsys.readouterr()
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == (f"radioseg: error: {tmp_path / 'sim_B1_1000h_32_seed0.fits'} exists; "
                   "to replace, add --overwrite\n")
    assert main([*argv, "--overwrite"]) == EXIT_OK


def test_predict_with_a_bad_primary_beam_is_quiet_and_one_line(tmp_path, tiny_image):
    """Run as a user would: no traceback, no TensorFlow start-up lines, nothing written."""
    beam = tmp_path / "beam.fits"
    beam.write_text("not a beam")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    done = subprocess.run(
        [sys.executable, "-m", "radioseg_utils", "predict", str(tiny_image), "--primary-beam",
         str(beam), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, check=False, env=env)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.splitlines()[-1] == (f"radioseg: error: {beam} is not a FITS file "
                                            "(it does not start with 'SIMPLE  =')")
    for noise in ("Traceback", *TENSORFLOW_START_UP):
        assert noise not in done.stderr
    assert not (tmp_path / "out").exists()


def test_held_stderr_loses_only_the_named_lines():
    """C-level and Python writes to stderr come back in order, less the named lines."""
    code = ("import os, sys\n"
            "from radioseg_utils.core.runtime import without_lines\n"
            "with without_lines(('oneDNN', 'absl::')):\n"
            "    os.write(2, b'I0000 port.cc] oneDNN custom operations are on\\nkept\\n')\n"
            "    print('python', file=sys.stderr)\n"
            "    os.write(2, b'W absl:: before init\\n')\n"
            "print('after', file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stderr == "kept\npython\nafter\n"


def test_importing_the_model_layer_starts_tensorflow_quietly():
    code = ("import radioseg_utils.model.files, tensorflow as tf; "
            "print(float(tf.reduce_sum(tf.constant([1.0, 2.0]))))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True, env=env)
    assert done.stdout.strip() == "3.0"
    for noise in TENSORFLOW_START_UP:
        assert noise not in done.stderr


def test_predict_choices_are_the_configs():
    """The literal choices of --selection and --corrections (the CLI imports no TensorFlow to
    parse) are the values PredictConfig takes."""
    from radioseg_utils.inference.conditioning import CORRECTIONS
    from radioseg_utils.inference.config import SELECTIONS

    commands = next(a.choices for a in build_parser()._actions
                    if isinstance(a.choices, dict) and "predict" in a.choices)
    options = {a.dest: a.choices for a in commands["predict"]._actions}
    assert tuple(options["selection"]) == SELECTIONS
    assert tuple(options["corrections"]) == CORRECTIONS


def test_pretrain_profile_choices_are_the_recipes():
    """Each recipe in PRETRAIN_PROFILES is offered by the CLI, and nothing else."""
    from radioseg_utils.workflows.pretrain import PRETRAIN_PROFILES

    commands = next(a.choices for a in build_parser()._actions
                    if isinstance(a.choices, dict) and "pretrain" in a.choices)
    profile = next(a for a in commands["pretrain"]._actions if a.dest == "profile")
    assert set(profile.choices) == set(PRETRAIN_PROFILES)
