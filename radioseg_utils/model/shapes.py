"""Input sizes of the networks, checked without importing Keras or TensorFlow.

The fixed input sides of the convolutional and variational autoencoders, and the check
that training cutouts fit a network (:func:`check_input_size`), used by the training
configuration before anything is built.
"""

from __future__ import annotations

__all__ = [
    "CAE_SIZE",
    "VAE_SIZE",
    "check_input_size",
]


#: Default side of the convolutional-autoencoder cutouts, in pixels.
CAE_SIZE = 60


#: Default side of the variational-autoencoder cutouts, in pixels.
VAE_SIZE = 16


def check_input_size(shape: tuple[int, ...], *, multiple: int = 1,
                     size: int | None = None, what: str = "input") -> None:
    """Raise a clear error when cutouts cannot be fed to a model for training.

    Parameters
    ----------
    shape : tuple of int
        Shape ``(..., height, width, channels)`` of a batch or cutout.
    multiple : int
        Height and width must be multiples of this (``2**depth`` for a U-Net).
    size : int, optional
        Exact side the model expects (fixed-size CAE and VAE).
    what : str
        Name of the data, used in the message.

    Raises
    ------
    ValueError
        Naming ``what``, its size and the required size.
    """
    if len(shape) < 3:
        raise ValueError(f"{what}: expected (..., height, width, channels), got shape {shape}")
    height, width = shape[-3], shape[-2]
    if size is not None and (height, width) != (size, size):
        raise ValueError(
            f"{what}: cutouts are {height}x{width} px but the model takes {size}x{size} px"
        )
    if height % multiple or width % multiple:
        raise ValueError(
            f"{what}: cutouts of {height}x{width} px are not multiples of {multiple} px "
            f"(2**depth) as training needs; choose such a tile size"
        )
