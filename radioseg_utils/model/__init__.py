"""Layer 4, the networks: architectures, losses, training configuration, training, and
model files with their JSON sidecars (the only place that reads or writes a sidecar).

Importing this layer sets TensorFlow's C++ log level
(:func:`radioseg_utils.core.runtime.quiet_tensorflow`); its modules that use Keras start it
through :mod:`radioseg_utils.model.backend`, without TensorFlow's start-up lines. The
configuration (:mod:`radioseg_utils.model.config`) starts neither.
"""

from radioseg_utils.core.runtime import quiet_tensorflow

quiet_tensorflow()
