"""Runtime and peak memory of the U-Net and the classical finders on the same simulated field.

Usage::

    python benchmarks/finders.py --size 4096 --seed 1 [--band B1] [--model M.keras] [--out results.csv]

The field is ``radioseg_utils.simulation.simulate.simulate_field`` when that module is installed,
else an analytic one: point sources (S/N drawn from ``dN/dS ~ S^-2`` between 3 and 1000,
``DENSITY`` per pixel, about the density of sources detected in the real B1 1000 h image)
convolved with the restoring beam, plus beam-correlated Gaussian noise at the band's
1000 h rms. Every finder runs with its default settings; PyBDSF and Aegean in their own
processes, in tiles of ``radioseg_utils.baselines.pybdsf.PYBDSF_TILE`` and
``radioseg_utils.baselines.aegean.AEGEAN_TILE``. Results are printed as a table with the
time and memory per megapixel and the ratios to the local-maximum finder, and optionally
written to a CSV file. PyBDSF and Aegean fit Gaussians to every island: on B1 1000 h fields
(about 3000 islands per megapixel) they took about 26 and 120 CPU seconds per megapixel on
the project's 2-core machine, so a 4096² field keeps Aegean busy for about half an hour of
CPU (``--finders`` leaves it out).

The U-Net uses ``--model`` if given, else the pretrained
:data:`radioseg_utils.model.files.DEFAULT_MODEL` when it is installed, else a freshly built
U-Net of the ``--profile`` architecture with random weights: its runtime and memory do not
depend on the weights (its detections do; the output says which model ran). Loading the
model is not timed.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
from pathlib import Path

import numpy as np
from astropy.convolution import Gaussian2DKernel, convolve_fft
from astropy.table import Table

from radioseg_utils.baselines import FINDERS
from radioseg_utils.core.bands import get_band
from radioseg_utils.core.gaussian import fwhm_to_sigma
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.model.files import DEFAULT_MODEL

#: Sources per pixel of the analytic field (~2000 detections per 10^6 px in real B1 1000 h).
DENSITY: float = 2e-3
#: Peak S/N range of the analytic sources.
SNR_RANGE: tuple[float, float] = (3.0, 1000.0)


def analytic_field(band: str, size: int, *, seed: int) -> np.ndarray:
    """Point sources convolved with the beam plus beam-correlated noise, in Jy/beam."""
    band = get_band(band)
    rng = np.random.default_rng(seed)
    sigma = band.noise(1000)
    kernel = Gaussian2DKernel(fwhm_to_sigma(band.beam_fwhm_pix))
    noise = convolve_fft(rng.normal(size=(size, size)), kernel, boundary="wrap")
    n = rng.poisson(DENSITY * size * size)
    lo, hi = SNR_RANGE
    snr = lo * hi / (hi - rng.uniform(size=n) * (hi - lo))  # dN/dS ~ S^-2
    deltas = np.zeros((size, size))
    np.add.at(deltas, (rng.integers(0, size, n), rng.integers(0, size, n)), snr * sigma)
    peak_kernel = kernel.array / kernel.array.max()
    sources = convolve_fft(deltas, peak_kernel, normalize_kernel=False, boundary="wrap")
    return sources + noise * sigma / noise.std()


def field_image(band: str, size: int, *, seed: int, folder: Path):
    """The benchmark field as a SkyImage, written to ``folder``."""
    try:
        from radioseg_utils.simulation.simulate import simulate_field
    except ImportError:
        data = analytic_field(band, size, seed=seed)
        source = "analytic"
    else:
        data = np.asarray(simulate_field(band, 1000, shape=(size, size), seed=seed).image)
        source = "simulate_field"
    wcs = sdc1_wcs(band, data.shape)
    path = write_image(folder / "field.fits", data, sdc1_header(wcs, band), overwrite=True)
    return read_image(path), source


def unet_model(model: Path | None, profile: str):
    """(model, normalisation, description) for the U-Net finder; see the module docstring."""
    path = model or (DEFAULT_MODEL if DEFAULT_MODEL.is_file() else None)
    if path is not None:
        return path, None, f"model {path}"
    from radioseg_utils.model.config import get_profile
    from radioseg_utils.model.train import build_model

    config = get_profile(profile)
    note = (f"freshly built '{profile}' U-Net (depth {config.depth}, {config.base_filters} "
            "filters) with random weights: timing does not depend on the weights")
    return build_model(config), config.normalisation, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--band", default="B1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--finders", nargs="+", default=list(FINDERS), choices=list(FINDERS))
    parser.add_argument("--model", type=Path, help="U-Net .keras model (default: see docstring)")
    parser.add_argument("--profile", default="full", help="architecture of a random-weight U-Net")
    parser.add_argument("--out", type=Path, help="optional CSV file for the results")
    args = parser.parse_args(argv)
    options = {name: {} for name in FINDERS}
    if "unet" in args.finders:
        net, normalisation, note = unet_model(args.model, args.profile)
        options["unet"] = {"model": net, "normalisation": normalisation}
        print(f"unet: {note}")
    with tempfile.TemporaryDirectory(prefix="radioseg-bench-") as tmp:
        image, source = field_image(args.band, args.size, seed=args.seed, folder=Path(tmp))
        rows = []
        for name in args.finders:
            if "workdir" in inspect.signature(FINDERS[name]).parameters:  # PyBDSF, Aegean
                options[name]["workdir"] = Path(tmp) / name
            result = FINDERS[name](image, **options[name])
            rows.append((name, len(result.catalogue), result.runtime_s, result.peak_rss_mb))
    table = Table(rows=rows, names=("finder", "n_sources", "runtime_s", "peak_rss_mb"))
    table["s_per_mpx"] = table["runtime_s"] / (args.size**2 / 1e6)
    table["mb_per_mpx"] = table["peak_rss_mb"] / (args.size**2 / 1e6)
    ref = table[table["finder"] == "peaks"] if "peaks" in table["finder"] else table[:1]
    table["runtime_ratio"] = table["runtime_s"] / ref["runtime_s"][0]
    table["memory_ratio"] = table["peak_rss_mb"] / ref["peak_rss_mb"][0]
    table.meta.update(size=args.size, band=args.band, seed=args.seed, field=source)
    for col in ("runtime_s", "peak_rss_mb", "s_per_mpx", "mb_per_mpx", "runtime_ratio",
                "memory_ratio"):
        table[col].format = ".2f"
    print(f"{args.size}² {args.band} field ({source}, seed {args.seed}); ratios to '{ref['finder'][0]}'")
    table.pprint(max_lines=-1, max_width=-1)
    if args.out:
        table.write(args.out, overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
