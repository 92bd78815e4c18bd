"""Layer 7, the finders: the U-Net and the classical finders, run the same way for a fair
comparison.

Every finder is called as ``finder(image, *, noise=None, primary_beam=None, **options) -> FinderResult``
with a :class:`~radioseg_utils.io.fits_read.SkyImage` (or a FITS path) and returns a label map
on the image grid and a catalogue in the schema of
:data:`radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`, so the same matching, metrics and
scoring code evaluates all of them.

==============  =========================================================================
name            finder
==============  =========================================================================
``pybdsf``      :func:`run_pybdsf`: PyBDSF with the SDC1 baseline settings, in a subprocess
``aegean``      :func:`run_aegean`: Aegean with BANE and Aegean's default settings, in a
                subprocess
``photutils``   :func:`run_photutils`: background, beam-matched filter, segmentation and
                deblending (the Python analogue of ProFound)
``peaks``       :func:`run_peaks`: local maxima above 4 sigma, the floor to beat
``unet``        :func:`run_unet`: the U-Net of :mod:`radioseg_utils.inference.predict`
``unet_score``  the same with the model's score selection (``selection="score"`` of
                :class:`~radioseg_utils.inference.config.PredictConfig`: the detections
                and ``p_real`` cut with the highest SDC1 score on its validation fields)
==============  =========================================================================

:func:`run_unet` (and with it TensorFlow) is imported on first use, so importing this
package stays light: the PyBDSF and Aegean worker processes import it and start in about
a second.

:func:`radioseg_utils.evaluation.evaluate.compare_finders` runs them on the same image and scores
them with the same metrics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from radioseg_utils.baselines.aegean import AegeanError, AegeanSettings, run_aegean
from radioseg_utils.baselines.peaks import PeakSettings, run_peaks
from radioseg_utils.baselines.photutils_finder import PhotutilsSettings, run_photutils
from radioseg_utils.baselines.pybdsf import (
    PyBDSFError,
    PyBDSFSettings,
    run_pybdsf,
    srl_to_catalogue,
)
from radioseg_utils.baselines.result import FinderResult, ResourceMeter

__all__ = [
    "FINDERS",
    "AegeanError",
    "AegeanSettings",
    "FinderResult",
    "PeakSettings",
    "PhotutilsSettings",
    "PyBDSFError",
    "PyBDSFSettings",
    "ResourceMeter",
    "run_aegean",
    "run_peaks",
    "run_photutils",
    "run_pybdsf",
    "run_unet",
    "srl_to_catalogue",
]



def __getattr__(name: str) -> Any:
    """``run_unet``, imported from :mod:`radioseg_utils.baselines.unet` on first use (PEP 562)."""
    if name != "run_unet":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from radioseg_utils.baselines.unet import run_unet

    return run_unet


def _unet(image: Any, **options: Any) -> FinderResult:
    """The ``unet`` entry of :data:`FINDERS`: :func:`run_unet`, imported when first called."""
    from radioseg_utils.baselines.unet import run_unet

    return run_unet(image, **options)


def _unet_score(image: Any, **options: Any) -> FinderResult:
    """The ``unet_score`` entry of :data:`FINDERS`: :func:`run_unet` with the model's score
    selection."""
    from radioseg_utils.baselines.unet import run_unet
    from radioseg_utils.inference.config import PredictConfig

    result = run_unet(image, config=PredictConfig(selection="score"), **options)
    return dataclasses.replace(result, finder="unet_score")


#: Finder name -> callable ``(image, *, noise=None, primary_beam=None, **options) -> FinderResult``.
FINDERS: dict[str, Callable[..., FinderResult]] = {
    "pybdsf": run_pybdsf,
    "aegean": run_aegean,
    "photutils": run_photutils,
    "peaks": run_peaks,
    "unet": _unet,
    "unet_score": _unet_score,
}
