"""Layer 4, the networks: architectures, losses, training configuration, training, and
model files with their JSON sidecars (the only place that reads or writes a sidecar).
"""
