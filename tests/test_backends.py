"""The same code trains and predicts on another Keras backend (JAX), and agrees with TensorFlow
(the shipped model and an ensemble file written here).

Keras picks its backend when it is first imported, so the JAX side runs in a subprocess
with ``KERAS_BACKEND=jax``; this process stays on TensorFlow (the default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from radioseg_utils.model.architectures import build_unet
from radioseg_utils.model.ensemble import save_ensemble
from radioseg_utils.model.files import DEFAULT_MODEL, load_model, save_model

pytest.importorskip("jax")

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import keras
    import numpy as np

    from radioseg_utils.core.bands import get_band
    from radioseg_utils.data.shards import build_dataset
    from radioseg_utils.model.config import get_profile
    from radioseg_utils.model.files import DEFAULT_MODEL, load_model
    from radioseg_utils.model.train import train_from_shards
    from radioseg_utils.simulation.simulate import simulate_field

    out = Path(sys.argv[1])
    batch = np.load(out / "batch.npy")
    model, _ = load_model(DEFAULT_MODEL)
    np.save(out / "jax_prediction.npy", np.asarray(model.predict(batch, verbose=0)))
    ensemble, _ = load_model(out / "ensemble.keras")
    np.save(out / "jax_ensemble.npy", np.asarray(ensemble.predict(batch, verbose=0)))

    field = simulate_field("B1", 1000, shape=(256, 256), seed=3)
    build_dataset(field.image, field.truth, field.wcs, "B1", out_dir=out / "shards", size=16,
                  noise=get_band("B1").noise(1000), seed=3, block=64, normalisation="asinh")
    config = get_profile("quick", epochs=1, depth=2, base_filters=4, tensorboard=False,
                         centre_head=True, centre_pair_beta=1.0)
    result = train_from_shards(config, out / "shards", out_dir=out / "model", progress=False)
    reloaded, meta = load_model(result.model_path)
    print(json.dumps({"backend": keras.backend.backend(), "epochs": result.epochs_done,
                      "loss": result.history["loss"][-1], "outputs": meta["outputs"],
                      "pair_beta": reloaded.loss.pair_beta,
                      "shape": list(reloaded.predict(batch[:, :16, :16], verbose=0).shape)}))
""")


@pytest.mark.slow
def test_jax_backend_trains_from_shards_and_matches_tensorflow_predictions(tmp_path):
    rng = np.random.default_rng(11)
    batch = np.arcsinh(rng.normal(size=(2, 64, 64, 1)) * 3.0).astype(np.float32)
    batch[0, 30:36, 30:36, 0] += 4.0  # a source, so the outputs are not all background
    np.save(tmp_path / "batch.npy", batch)
    members = [save_model(build_unet(depth=1, base_filters=2, centre_head=True, name=f"u{i}"),
                          tmp_path / f"member{i}.keras",
                          metadata={"band": "B1", "normalisation": "asinh"}) for i in (0, 1)]
    ensemble, _ = load_model(save_ensemble(members, tmp_path / "ensemble.keras"))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax" and report["epochs"] == 1
    assert np.isfinite(report["loss"]) and report["outputs"] == ["mask", "centre"]
    assert report["pair_beta"] == 1.0  # the close-pair centre loss trains under JAX too
    assert report["shape"] == [2, 16, 16, 2]

    model, _ = load_model(DEFAULT_MODEL)
    tensorflow = np.asarray(model.predict(batch, verbose=0))
    jax = np.load(tmp_path / "jax_prediction.npy")
    assert jax.shape == tensorflow.shape == (2, 64, 64, 2)
    np.testing.assert_allclose(jax, tensorflow, atol=1e-4)
    assert tensorflow.max() > 0.5  # the source is found by both
    np.testing.assert_allclose(np.load(tmp_path / "jax_ensemble.npy"),
                               np.asarray(ensemble.predict(batch, verbose=0)), atol=1e-5)
