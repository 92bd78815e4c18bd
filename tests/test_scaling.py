"""Extrapolation of measured costs to full SDC1 images, and the GPU benchmark's result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radioseg_utils.workflows.scaling import RunCost, extrapolate, read_gpu_benchmark

GPU_RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gpu_jax.json"


def test_committed_gpu_result_is_read_with_its_provenance():
    tiles_per_s, note = read_gpu_benchmark(GPU_RESULT)
    saved = json.loads(GPU_RESULT.read_text())
    assert tiles_per_s == max(r["tiles_per_s"] for r in saved["results"])
    assert note.startswith("measured on ") and saved["backend"] in note
    cost = RunCost("unet", 1024, runtime_s=10.0, peak_rss_mb=500.0, n_sources=90, n_tiles=25,
                   inference_s=5.0)
    table = extrapolate([cost], "B1", gpu_tiles_per_s=tiles_per_s, gpu_note=note)
    assert note in table["device"][1] and table.meta["gpu_note"] == note
    # the faster the GPU, the closer the time to the CPU-only catalogue stage
    slow = extrapolate([cost], "B1", gpu_tiles_per_s=tiles_per_s / 10)
    assert table["hours_per_image"][1] < slow["hours_per_image"][1] < table["hours_per_image"][0]


@pytest.mark.parametrize("change, match", [({"complete": False}, "not a complete run"),
                                           ({"accelerator": False}, "not a complete run"),
                                           ({"tile": 128}, "128")])
def test_bad_gpu_results_are_refused(tmp_path, change, match):
    saved = {**json.loads(GPU_RESULT.read_text()), **change}
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=match):
        read_gpu_benchmark(path)
    with pytest.raises(FileNotFoundError):
        read_gpu_benchmark(tmp_path / "missing.json")


def test_measure_finder_takes_only_finders_run_in_a_subprocess(tmp_path):
    from radioseg_utils.workflows.scaling import measure_finder

    with pytest.raises(ValueError, match=r"'peaks' is not a finder run in a subprocess; .*'aegean'"):
        measure_finder("peaks", tmp_path / "field.fits", workdir=tmp_path)


def test_read_end_to_end_records_one_row_per_run_and_names_a_bad_file(tmp_path):
    import json

    from radioseg_utils.workflows.scaling import PREDICT_STAGES, read_end_to_end

    run = {"size": 1024, "mpx": 1.048576, "workers": 2, "simulate": {"seconds": 3.0},
           "predict": {"seconds": 20.0, "peak_tree_mb": 900.0, "tiles_per_s": 4.5,
                       "n_sources": 700, "stages": {s: 1.0 for s in PREDICT_STAGES}}}
    good = tmp_path / "e2e.json"
    good.write_text(json.dumps({"device": "tensorflow: cpu", "cpu_count": 2,
                                "runs": [run, {**run, "size": 2048, "mpx": 4.194304,
                                                "simulate_workers": 1}]}))
    table = read_end_to_end(good)
    assert list(table["side"]) == [1024, 2048] and set(table["record"]) == {"e2e.json"}
    assert table["peak_tree_mb"][0] == 900.0 and table["tiles_s"][1] == 1.0
    assert list(table["simulate_workers"]) == [2, 1]  # the predict workers unless recorded
    assert set(table["commit"]) == {"unrecorded"}
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"device": "tensorflow: cpu", "cpu_count": 2,
                                 "runs": [{**run, "fresh_processes": True}],
                                 "git_commit": "68636f7c0ffee"}))
    both = read_end_to_end(good, newer)
    assert list(both["commit"]) == ["unrecorded"] * 2 + ["68636f7"]
    assert list(both["fresh_process"]) == [False, False, True]  # older records: not recorded
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"device": "x", "runs": [{"size": 1}]}))
    with pytest.raises(ValueError, match="bad.json is not a benchmarks/end_to_end.py record"):
        read_end_to_end(good, bad)


def test_read_inference_options_one_row_per_setting_and_names_a_bad_file(tmp_path):
    import json

    from radioseg_utils.workflows.scaling import read_inference_options

    setting = {"tile": 256, "batch": 8, "variant": "float32", "useful_mpx_per_s": [0.4, 0.5, 0.9],
               "ratio_to_baseline": 1.0, "max_probability_change": 0.0}
    good = tmp_path / "options.json"
    good.write_text(json.dumps({"backend": "tensorflow", "cpu_count": 2, "model": "m.keras",
                                "settings": {"baseline": setting,
                                             "xla": {**setting, "variant": "xla",
                                                     "ratio_to_baseline": 1.1}}}))
    table = read_inference_options(good)
    assert list(table["setting"]) == ["baseline", "xla"] and table["useful_mpx_per_s"][0] == 0.5
    assert table.meta["cpu_count"] == 2 and table["ratio_to_baseline"][1] == 1.1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"settings": {"baseline": {"tile": 256}}}))
    with pytest.raises(ValueError, match="bad.json is not a benchmarks/inference_options.py record"):
        read_inference_options(bad)


@pytest.mark.datacheck
def test_committed_inference_options_justify_the_defaults():
    """XLA, on by default with TensorFlow, was measured faster with unchanged results;
    bf16, left off, was measured slower."""
    from radioseg_utils.workflows.scaling import read_inference_options

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "inference_options_cpu.json"
    table = read_inference_options(path)
    row = {r["setting"]: r for r in table}
    assert row["xla"]["ratio_to_baseline"] > 1.0 and row["xla"]["max_probability_change"] < 1e-4
    assert row["bf16"]["ratio_to_baseline"] < 1.0
