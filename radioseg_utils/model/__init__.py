"""Layer 4, the networks: architectures, losses, training configuration, training, and
model files with their JSON sidecars (the only place that reads or writes a sidecar).

Importing any module of this layer first starts Keras without TensorFlow's C++ start-up
lines (:func:`radioseg_utils.core.runtime.start_keras`).
"""

from radioseg_utils.core.runtime import start_keras

start_keras()
