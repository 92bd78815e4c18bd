"""The U-Net as a finder, run and timed the same way as the classical ones.

:func:`run_unet` is :func:`radioseg_utils.inference.predict.segment` (tiled inference, one global
threshold, connected components, measurement) inside the same
:class:`~radioseg_utils.baselines.result.ResourceMeter` as the other finders. TensorFlow is
imported only when a model file is loaded, so importing :mod:`radioseg_utils.baselines`
stays light.

References
----------
Ronneberger, O., Fischer, P. & Brox, T. 2015, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI, doi:10.1007/978-3-319-24574-4_28.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from radioseg_utils.baselines.result import FinderResult, ResourceMeter, as_sky_image
from radioseg_utils.inference.config import PredictConfig, image_noise, resolve_config
from radioseg_utils.inference.predict import segment
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.model.files import DEFAULT_MODEL, load_model_cached

__all__ = ["run_unet"]


def run_unet(
    image: SkyImage | str | Path,
    *,
    noise: float | None = None,
    model: str | Path | Callable[[np.ndarray], np.ndarray] = DEFAULT_MODEL,
    normalisation: str | None = None,
    config: PredictConfig = PredictConfig(),
    primary_beam: str | Path | Callable | None = None,
) -> FinderResult:
    """Segment an image with a U-Net and return its label map and catalogue.

    Parameters
    ----------
    image : SkyImage or path
        2-D image in Jy/beam (a FITS path is read with
        :func:`radioseg_utils.io.fits_read.read_image`).
    noise : float, optional
        Image rms in Jy/beam (tile normalisation and peak S/N); default the sigma-clipped
        rms of the central box (:func:`radioseg_utils.inference.predict.segment`).
    model : path or callable
        A radioseg ``.keras`` model with its JSON sidecar (default
        :data:`radioseg_utils.model.files.DEFAULT_MODEL`), or a loaded model / callable taking
        ``(B, H, W, 1)`` float32 batches (then give ``normalisation``, as a sidecar would).
    normalisation : str, optional
        Tile normalisation (:func:`radioseg_utils.data.normalise.normalise`); for a model file
        it defaults to, and must agree with, the sidecar's.
    config : PredictConfig
        Threshold, component, measurement and tiling settings.
    primary_beam : path or callable, optional
        SDC1 primary-beam FITS file or a callable of (RA, Dec) in deg; fluxes are divided
        by it and by nothing else, as for every finder of
        :data:`~radioseg_utils.baselines.FINDERS` (``config.flux_scale`` is not applied:
        give :class:`~radioseg_utils.simulation.simulate.Attenuation` to include the SDC1 flux scale).

    Returns
    -------
    FinderResult
        ``finder="unet"``; ``labels`` = the int32 segmentation (source ids), the catalogue
        of :func:`~radioseg_utils.postprocess.measure.measure_sources` with ``label`` equal to ``id``.
        ``runtime_s`` and ``peak_rss_mb`` cover inference, thresholding and measurement;
        loading a model file happens before the clock starts (once per session in use).

    Raises
    ------
    ValueError
        If ``noise`` is not a positive number.
    FileNotFoundError
        If the model file is missing.
    radioseg_utils.model.files.ModelMismatchError
        If the model was trained on another band or normalisation.
    """
    if noise is not None and not (np.ndim(noise) == 0 and noise > 0):
        raise ValueError(f"noise must be a positive number (Jy/beam), got {noise!r}")
    sky = as_sky_image(image)
    # the centre threshold tuned for a model file and this band and noise, its calibration;
    # fluxes divided by primary_beam only
    level = image_noise(sky)[1] if noise is None else noise
    config = replace(resolve_config(model, config, band=sky.band, noise=level), flux_scale=1.0)
    net, normalisation = load_model_cached(model, sky.band.name, normalisation)
    with ResourceMeter() as meter:
        _, labels, catalogue, _ = segment(sky, net, normalisation=normalisation, config=config,
                                          noise=noise, primary_beam=primary_beam)
    catalogue["label"] = np.asarray(catalogue["id"], dtype=np.int32)
    return FinderResult(catalogue, labels, meter.runtime_s, meter.peak_rss_mb, finder="unet")
