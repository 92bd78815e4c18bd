"""Tests of radioseg_utils.workflows.pipeline: named datasets in a run folder, made once."""

from __future__ import annotations

import json

import pytest

from radioseg_utils.data.shards import read_metadata
from radioseg_utils.simulation.simulate import PAIR_SIGMA
from radioseg_utils.workflows import pipeline


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with a small simulated training field."""
    layout = pipeline.RunLayout(tmp_path_factory.mktemp("run"))
    return layout, pipeline.ensure_field(layout, "train", size=256, seed=1)


def test_named_datasets_are_made_once_in_their_own_folders(run):
    layout, field = run
    assert layout.dataset == layout.dataset_dir() == layout.root / "dataset"
    small = pipeline.ensure_dataset(layout, field, size=16, n_random=60, name="dataset_16",
                                    normalisation="noise")
    assert read_metadata(layout.root / "dataset_16") == small
    assert (small["size"], small["n_random"], small["normalisation"]) == (16, 60, "noise")
    assert sum(s["n_cutouts"] for s in small["splits"].values()) == 60
    # asked again with the same parameters: the saved dataset is returned, not rebuilt
    again = pipeline.ensure_dataset(layout, field, size=16, n_random=60, name="dataset_16",
                                    normalisation="noise")
    assert again["provenance"]["created_utc"] == small["provenance"]["created_utc"]
    assert not layout.dataset.exists()  # the default dataset is untouched


@pytest.mark.parametrize(("changes", "match"), [
    ({"size": 32}, r"'size': \(16, 32\)"),
    ({"n_random": 30}, r"'n_random': \(60, 30\)"),
    ({"snr_min": 3.0}, r"'snr_min': \(5.0, 3.0\)"),
    ({"normalisation": "minmax"}, r"'normalisation': \('noise', 'minmax'\)"),
])
def test_a_dataset_made_with_other_parameters_is_refused(run, changes, match):
    layout, field = run
    options = {"size": 16, "n_random": 60, "normalisation": "noise", **changes}
    pipeline.ensure_dataset(layout, field, size=16, n_random=60, name="dataset_16",
                            normalisation="noise")
    with pytest.raises(ValueError, match="dataset in .*dataset_16 was made with other "
                                         "parameters .*" + match):
        pipeline.ensure_dataset(layout, field, name="dataset_16", **options)


def test_ensure_model_trains_on_a_named_dataset_once(run):
    from radioseg_utils.model.config import TrainConfig
    from radioseg_utils.model.files import load_model

    layout, field = run
    pipeline.ensure_dataset(layout, field, size=16, n_random=60, name="dataset_16",
                            normalisation="noise")
    config = TrainConfig(model="vae", tile_size=16, depth=2, base_filters=4, latent_dim=4,
                         epochs=1, normalisation="noise", tensorboard=False, seed=2)
    path = pipeline.ensure_model(layout, config, name="vae", dataset="dataset_16",
                                 progress=False)
    assert path == layout.model_dir("vae") / "model.keras"
    _, meta = load_model(path, expect_normalisation="noise", expect_input=16)
    assert (meta["model"], meta["training_set"], meta["epochs_done"]) == ("vae", "dataset_16", 1)
    stamp = path.stat().st_mtime_ns
    assert pipeline.ensure_model(layout, config.replace(epochs=5), name="vae",
                                 dataset="dataset_16") == path
    assert path.stat().st_mtime_ns == stamp  # a finished model is reused, not retrained
    with pytest.raises(ValueError, match=r"model 'vae' in .* was trained with other settings "
                                         r"\(saved, requested\): \{'seed': \(2, 3\)\}"):
        pipeline.ensure_model(layout, config.replace(seed=3), name="vae", dataset="dataset_16")


def test_a_field_with_pairs_is_recorded_and_not_taken_for_a_plain_one(tmp_path):
    layout = pipeline.RunLayout(tmp_path)
    files = pipeline.ensure_field(layout, "train", size=64, seed=1, pair_fraction=0.2)
    assert files.saved_parameters()["pair_fraction"] == 0.2
    with pytest.raises(ValueError, match="other parameters"):
        pipeline.ensure_field(layout, "train", size=64, seed=1)
    plain = pipeline.ensure_field(layout, "val", size=64, seed=1)
    assert "pair_fraction" not in plain.saved_parameters()
    # the pair floor is recorded with the fraction; a record from before it existed was
    # made with the default floor
    assert files.saved_parameters()["pair_sigma"] == PAIR_SIGMA
    with pytest.raises(ValueError, match="other parameters"):
        pipeline.ensure_field(layout, "train", size=64, seed=1, pair_fraction=0.2,
                              pair_sigma=6.0)
    old = {k: v for k, v in files.saved_parameters().items() if k != "pair_sigma"}
    files.record.write_text(json.dumps(old))
    assert pipeline.ensure_field(layout, "train", size=64, seed=1, pair_fraction=0.2) == files
    with pytest.raises(ValueError, match="other parameters"):
        pipeline.ensure_field(layout, "train", size=64, seed=1, pair_fraction=0.2,
                              pair_sigma=6.0)


def test_cpu_description_names_the_model_and_the_units_that_matter(tmp_path):
    from radioseg_utils.core.provenance import cpu_description

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n"
                    "flags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Some CPU @ 2.0GHz\n")
    assert cpu_description(info) == {"model": "Some CPU @ 2.0GHz",
                                     "features": ["avx2", "avx512f", "amx_bf16"]}
    missing = cpu_description(tmp_path / "none")
    assert missing["features"] == [] and isinstance(missing["model"], str)
