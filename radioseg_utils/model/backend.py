"""Keras for the model layer, started without TensorFlow's C++ start-up lines.

Every module of this layer that builds, trains or loads a network takes ``keras`` (and
its ``layers`` and ``ops``) from here, so that whichever is imported first starts Keras
and its backend through :func:`radioseg_utils.core.runtime.start_keras`; the layer's
configuration (:mod:`radioseg_utils.model.config`) does not import it.
"""

from radioseg_utils.core.runtime import start_keras

start_keras()

import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

__all__ = ["keras", "layers", "ops"]
