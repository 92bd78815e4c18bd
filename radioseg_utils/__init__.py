"""radioseg: deep segmentation of radio sources in SKA SDC1-like continuum images.

The package is built in layers, each a subpackage that imports only from the layers below
it (:mod:`radioseg_utils.workflows.architecture` checks and draws this):

``core`` < ``io`` < ``simulation`` < ``data`` < ``model`` < ``postprocess`` <
``inference`` < ``baselines`` < ``evaluation`` < ``workflows`` < the command line.

The handful of functions a notebook reader needs are re-exported here and imported on
first use, so ``import radioseg_utils`` stays fast and does not start TensorFlow:

>>> import radioseg_utils
>>> radioseg_utils.read_image.__module__
'radioseg_utils.io.fits_read'
"""

from __future__ import annotations

import importlib
from typing import Any

from radioseg_utils.core.provenance import PACKAGE_VERSION as __version__

#: Public name -> the module that owns it.
_EXPORTS: dict[str, str] = {
    "read_image": "radioseg_utils.io.fits_read",
    "read_truth_catalogue": "radioseg_utils.io.catalogue",
    "fetch": "radioseg_utils.io.registry",
    "simulate_field": "radioseg_utils.simulation.simulate",
    "make_masks": "radioseg_utils.data.masks",
    "predict_image": "radioseg_utils.inference.predict",
    "segment": "radioseg_utils.inference.predict",
    "PredictConfig": "radioseg_utils.inference.config",
    "FINDERS": "radioseg_utils.baselines",
    "evaluate_finder": "radioseg_utils.evaluation.evaluate",
    "compare_finders": "radioseg_utils.evaluation.evaluate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a re-exported name from its owning module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'radioseg_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
