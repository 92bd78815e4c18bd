"""Layer 4, the networks: architectures, losses, training configuration, training, and
model files with their JSON sidecars (the only place that reads or writes a sidecar).

Importing any module of this layer first quiets TensorFlow's C++ start-up lines
(:func:`radioseg_utils.core.runtime.quiet_tensorflow`), before Keras starts TensorFlow.
"""

from radioseg_utils.core.runtime import quiet_tensorflow

quiet_tensorflow()
