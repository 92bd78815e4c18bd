"""Reference input and output of the shipped U-Net for the correctness check of gpu_inference.py.

Usage::

    KERAS_BACKEND=tensorflow python benchmarks/make_gpu_reference.py [--model M.keras]
        [--tiles 4] [--tile 256] [--seed 1] [--out benchmarks/results/unet_B1_reference.npz]

Builds ``--tiles`` images of ``--tile``² pixels: unit Gaussian noise plus
``BLOBS_PER_TILE`` circular Gaussian blobs of peak amplitude ``AMPLITUDE`` (in noise
sigmas) and width ``SIGMA_PX``, all drawn with ``--seed``, then stretched with
``arcsinh`` (the ``"asinh"`` normalisation of :mod:`radioseg_utils.data.normalise` at unit
noise and softening). Runs the model on them (on the CPU, as Keras sees it here) and
writes a compressed ``.npz`` with the float32 arrays ``x`` (input, ``(tiles, tile, tile,
1)``) and ``y`` (output, one channel per model output map), the model's ``sha256``, and
the ``backend`` and ``keras_version`` that made ``y``.

``benchmarks/gpu_inference.py --reference FILE`` compares its device output with ``y``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import keras
import numpy as np
from gpu_inference import DEFAULT_MODEL, file_sha256, load_unet

#: Blobs added to each tile.
BLOBS_PER_TILE: int = 12
#: Range of the blobs' peak amplitudes, in noise sigmas.
AMPLITUDE: tuple[float, float] = (5.0, 50.0)
#: Range of the blobs' Gaussian sigmas, in pixels.
SIGMA_PX: tuple[float, float] = (1.5, 4.0)
#: Default output file.
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "unet_B1_reference.npz"


def reference_input(tiles: int, tile: int, *, seed: int) -> np.ndarray:
    """``(tiles, tile, tile, 1)`` float32 asinh-stretched noise with Gaussian blobs.

    Parameters
    ----------
    tiles, tile : int
        Number of images and their side in pixels.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        ``arcsinh(noise + blobs)``, noise of unit standard deviation.
    """
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((tiles, tile, tile))
    yy, xx = np.mgrid[:tile, :tile]
    for image in images:
        for _ in range(BLOBS_PER_TILE):
            cy, cx = rng.uniform(0, tile, size=2)
            sigma = rng.uniform(*SIGMA_PX)
            image += rng.uniform(*AMPLITUDE) * np.exp(
                -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return np.arcsinh(images)[..., None].astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="U-Net .keras model")
    parser.add_argument("--tiles", type=int, default=4, help="number of input images")
    parser.add_argument("--tile", type=int, default=256, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz file")
    args = parser.parse_args(argv)
    x = reference_input(args.tiles, args.tile, seed=args.seed)
    y = np.asarray(load_unet(args.model).predict_on_batch(x), dtype=np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x=x, y=y, sha256=file_sha256(args.model),
                        backend=keras.backend.backend(), keras_version=keras.__version__)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): x {x.shape}, "
          f"y {y.shape}, {keras.backend.backend()} backend, keras {keras.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
