"""Keras models that map a radio image cutout to a per-pixel source probability map.

Three architectures, all built with Keras 3 (TensorFlow backend), all ending in a
one-channel sigmoid layer kept in float32 even under mixed precision:

- :func:`build_unet` -- the U-Net of Ronneberger et al. (2015), fully convolutional, for
  any input whose height and width are multiples of ``2**depth``;
- :func:`build_cae` -- a convolutional autoencoder (no skip connections) for fixed-size
  cutouts (60 x 60 by default);
- :func:`build_vae` -- a variational autoencoder for small fixed-size cutouts (16 x 16),
  trained to reconstruct the segmentation map from the image, in the spirit of the
  "anatomical priors" of Dalca et al. (2018).

Images are ``(batch, height, width, channels)`` float32 arrays; masks are the same shape
with one channel and values 0 (background) or 1 (source).

References
----------
Ronneberger, O., Fischer, P. & Brox, T. 2015, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI, doi:10.1007/978-3-319-24574-4_28

Dalca, A. V., Guttag, J. & Sabuncu, M. R. 2018, "Anatomical Priors in Convolutional
Networks for Unsupervised Biomedical Segmentation", CVPR, doi:10.1109/CVPR.2018.00968

Kingma, D. P. & Welling, M. 2014, "Auto-Encoding Variational Bayes", ICLR,
arXiv:1312.6114
"""

from __future__ import annotations

import numpy as np

from radioseg_utils.model.backend import keras, layers, ops
from radioseg_utils.model.shapes import CAE_SIZE, VAE_SIZE

__all__ = [
    "UNET_DEPTH",
    "UNET_FILTERS",
    "CENTRE_PRIOR",
    "DROPOUT",
    "VAE_LATENT_DIM",
    "Sampling",
    "build_unet",
    "build_cae",
    "build_vae",
    "conv_block",
    "size_multiple",
]

#: Default number of down-sampling levels of the U-Net.
UNET_DEPTH = 4
#: Default number of filters of the first U-Net level (doubled at each level).
UNET_FILTERS = 16
#: Initial output of the centre head (the fraction of pixels near a source centre).
CENTRE_PRIOR = 0.01
#: Default dropout rate after the first convolution of each block.
DROPOUT = 0.05
#: Default dimension of the VAE latent space.
VAE_LATENT_DIM = 16


def conv_block(
    x,
    filters: int,
    *,
    kernel_size: int,
    batch_norm: bool,
    dropout: float,
    name: str,
    activation: str = "relu",
):
    """Two ``kernel_size`` convolutions, each followed by (batch norm and) an activation.

    The building block of every encoder and decoder level here and of the deep image prior
    (:mod:`radioseg_utils.model.dip`).

    Parameters
    ----------
    x : KerasTensor
        Input feature map ``(None, H, W, C)``.
    filters : int
        Output channels of both convolutions.
    kernel_size : int
        Side of the kernels in pixels ("same" padding, He-normal initialisation).
    batch_norm : bool
        Batch normalisation after each convolution (then the convolutions have no bias).
    dropout : float
        Dropout rate after the first convolution (0: none).
    name : str
        Prefix of the layer names.
    activation : str
        Keras activation after each convolution (``"relu"``; the deep image prior uses
        ``"leaky_relu"``, whose units cannot die).

    Returns
    -------
    KerasTensor
        Feature map ``(None, H, W, filters)``.
    """
    for i in (1, 2):
        x = layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=f"{name}_conv{i}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation(activation, name=f"{name}_{activation}{i}")(x)
        if i == 1 and dropout > 0:
            x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def _sigmoid_head(x, name: str, *, prior: float | None = None):
    """1 x 1 convolution to one channel with a float32 sigmoid (safe under mixed precision).

    ``prior`` sets the initial output probability through the bias (CenterNet's trick for
    sparse heat maps, which otherwise start with a huge loss on the background).
    """
    bias = "zeros" if prior is None else keras.initializers.Constant(np.log(prior / (1 - prior)))
    return layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", bias_initializer=bias,
                         name=name)(x)


def _check_options(*, dropout: float = 0.0, **positive: int) -> None:
    """Raise ValueError unless every ``positive`` value is a positive int and dropout in [0, 1)."""
    for label, value in positive.items():
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


def build_unet(
    *,
    depth: int = UNET_DEPTH,
    base_filters: int = UNET_FILTERS,
    batch_norm: bool = True,
    dropout: float = DROPOUT,
    input_channels: int = 1,
    kernel_size: int = 3,
    centre_head: bool = False,
    name: str = "unet",
) -> keras.Model:
    """Build a fully convolutional U-Net with a sigmoid mask output (and a centre head).

    Each of the ``depth`` encoder levels is two convolutions then 2 x 2 max pooling; the
    filters double at each level, starting from ``base_filters``. Each decoder level is a
    2 x 2 stride-2 transposed convolution, concatenated with the encoder map of the same
    level (skip connection), then two convolutions.

    Parameters
    ----------
    depth : int
        Number of pooling levels; inputs must be multiples of ``2**depth`` pixels.
    base_filters : int
        Filters of the first level; the bottleneck has ``base_filters * 2**depth``.
    batch_norm : bool
        Batch normalisation after each convolution.
    dropout : float
        Dropout rate after the first convolution of each block (0 disables it).
    input_channels : int
        Channels of the input image.
    kernel_size : int
        Side of the convolution kernels, in pixels.
    centre_head : bool
        Add a second 1 x 1 sigmoid head on the last decoder map that predicts the centre
        heat map of :mod:`radioseg_utils.postprocess.centres` (initial output :data:`CENTRE_PRIOR`).
    name : str
        Name of the Keras model.

    Returns
    -------
    keras.Model
        Input ``(None, None, None, input_channels)``, output ``(None, None, None, 1)``
        of probabilities in [0, 1], float32 (``(..., 2)``: mask, centre with
        ``centre_head``).

    Raises
    ------
    ValueError
        If an option is not a positive integer or ``dropout`` is outside [0, 1).

    Examples
    --------
    >>> model = build_unet(depth=2, base_filters=4)
    >>> model.output_shape
    (None, None, None, 1)
    >>> build_unet(depth=2, base_filters=4, centre_head=True).output_shape
    (None, None, None, 2)
    """
    _check_options(depth=depth, base_filters=base_filters, dropout=dropout,
                   input_channels=input_channels, kernel_size=kernel_size)
    opts = {"kernel_size": kernel_size, "batch_norm": batch_norm, "dropout": dropout}
    inputs = keras.Input(shape=(None, None, input_channels), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, name=f"enc{level}", **opts)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, base_filters * 2**depth, name="bottleneck", **opts)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(
            base_filters * 2**level, 2, strides=2, padding="same", name=f"dec{level}_up"
        )(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
        x = conv_block(x, base_filters * 2**level, name=f"dec{level}", **opts)
    outputs = _sigmoid_head(x, "mask")
    if centre_head:
        centre = _sigmoid_head(x, "centre", prior=CENTRE_PRIOR)
        outputs = layers.Concatenate(name="mask_centre", dtype="float32")([outputs, centre])
    return keras.Model(inputs, outputs, name=name)


def build_cae(
    input_size: int = CAE_SIZE,
    *,
    depth: int = 3,
    base_filters: int = UNET_FILTERS,
    batch_norm: bool = True,
    dropout: float = DROPOUT,
    input_channels: int = 1,
    kernel_size: int = 3,
    name: str = "cae",
) -> keras.Model:
    """Build a convolutional autoencoder from an image cutout to its segmentation map.

    Same blocks as :func:`build_unet` but without skip connections, so everything passes
    through the ``input_size / 2**depth`` bottleneck. Sizes that are not multiples of
    ``2**depth`` are zero-padded after the input and cropped before the output layer
    (60 -> 64 -> ... -> 64 -> 60 for the default).

    Parameters
    ----------
    input_size : int
        Side of the square input cutouts in pixels (fixed: the model rejects other sizes).
    depth, base_filters, batch_norm, dropout, input_channels, kernel_size
        As in :func:`build_unet`.
    name : str
        Name of the Keras model.

    Returns
    -------
    keras.Model
        Input ``(None, input_size, input_size, input_channels)``, output
        ``(None, input_size, input_size, 1)`` probabilities, float32.
    """
    _check_options(depth=depth, base_filters=base_filters, dropout=dropout,
                   input_channels=input_channels, kernel_size=kernel_size)
    _check_size(input_size, depth)
    opts = {"kernel_size": kernel_size, "batch_norm": batch_norm, "dropout": dropout}
    pad = -input_size % 2**depth
    margins = (pad // 2, pad - pad // 2)
    inputs = keras.Input(shape=(input_size, input_size, input_channels), name="image")
    x = layers.ZeroPadding2D((margins, margins), name="pad")(inputs) if pad else inputs
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, name=f"enc{level}", **opts)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, base_filters * 2**depth, name="bottleneck", **opts)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(
            base_filters * 2**level, 2, strides=2, padding="same", name=f"dec{level}_up"
        )(x)
        x = conv_block(x, base_filters * 2**level, name=f"dec{level}", **opts)
    if pad:
        x = layers.Cropping2D((margins, margins), name="crop")(x)
    return keras.Model(inputs, _sigmoid_head(x, "mask"), name=name)


@keras.saving.register_keras_serializable(package="radioseg")
class Sampling(layers.Layer):
    """Reparameterisation ``z = mean + exp(log_var / 2) * eps`` that adds the KL loss.

    During training ``eps`` is standard normal noise; at inference ``z = mean``. The layer
    adds ``kl_weight * KL(q(z|x) || N(0, I)) / n_pixels`` to the model losses, so with
    ``kl_weight = 1`` and a per-pixel mean reconstruction loss the total is the negative
    ELBO per pixel.

    Parameters
    ----------
    kl_weight : float
        Weight of the KL term (the beta of a beta-VAE).
    n_pixels : int
        Pixels per output map, to put the KL term on the per-pixel scale.
    seed : int, optional
        Seed of the noise generator.
    """

    def __init__(self, kl_weight: float = 1.0, n_pixels: int = 1, seed: int | None = None,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.kl_weight = float(kl_weight)
        self.n_pixels = int(n_pixels)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        mean, log_var = (ops.cast(t, "float32") for t in inputs)
        kl = -0.5 * ops.mean(ops.sum(1.0 + log_var - mean**2 - ops.exp(log_var), axis=-1))
        self.add_loss(self.kl_weight * kl / self.n_pixels)
        if not training:
            return mean
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "kl_weight": self.kl_weight,
                "n_pixels": self.n_pixels, "seed": self.seed}


def build_vae(
    input_size: int = VAE_SIZE,
    *,
    latent_dim: int = VAE_LATENT_DIM,
    depth: int = 2,
    base_filters: int = UNET_FILTERS,
    kl_weight: float = 1.0,
    input_channels: int = 1,
    seed: int | None = None,
    name: str = "vae",
) -> keras.Model:
    """Build a variational autoencoder from an image cutout to its segmentation map.

    The encoder (``depth`` stride-2 convolutions, then dense layers) gives the mean and log
    variance of a Gaussian posterior over ``latent_dim`` latent variables; a
    :class:`Sampling` layer draws ``z`` and adds the KL term to the model losses; the
    decoder sub-model (layer ``"decoder"``) maps ``z`` to the segmentation map. It trains
    with ``model.fit`` and any reconstruction loss of :mod:`radioseg_utils.model.losses`.

    Parameters
    ----------
    input_size : int
        Side of the square input cutouts in pixels; must be a multiple of ``2**depth``.
    latent_dim : int
        Dimension of the latent space.
    depth : int
        Number of stride-2 down-sampling (and up-sampling) steps.
    base_filters : int
        Filters of the first convolution, doubled at each step.
    kl_weight : float
        Weight of the KL term (see :class:`Sampling`).
    input_channels : int
        Channels of the input image.
    seed : int, optional
        Seed of the sampling noise.
    name : str
        Name of the Keras model.

    Returns
    -------
    keras.Model
        Input ``(None, input_size, input_size, input_channels)``, output
        ``(None, input_size, input_size, 1)`` probabilities, float32. The decoder is
        ``model.get_layer("decoder")``, input ``(None, latent_dim)``.
    """
    _check_options(depth=depth, base_filters=base_filters, latent_dim=latent_dim,
                   input_channels=input_channels)
    if input_size % 2**depth:
        raise ValueError(
            f"VAE input_size {input_size} px is not a multiple of 2**depth = {2**depth}"
        )
    if kl_weight < 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight!r}")
    low = input_size // 2**depth
    top = base_filters * 2 ** (depth - 1)

    inputs = keras.Input(shape=(input_size, input_size, input_channels), name="image")
    x = inputs
    for level in range(depth):
        x = layers.Conv2D(base_filters * 2**level, 3, strides=2, padding="same",
                          activation="relu", name=f"enc{level}_conv")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4 * latent_dim, activation="relu", name="enc_dense")(x)
    z_mean = layers.Dense(latent_dim, dtype="float32", name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, dtype="float32", name="z_log_var")(x)
    z = Sampling(kl_weight, input_size**2, seed=seed, name="z")([z_mean, z_log_var])

    latent = keras.Input(shape=(latent_dim,), name="z")
    y = layers.Dense(low * low * top, activation="relu", name="dec_dense")(latent)
    y = layers.Reshape((low, low, top), name="dec_reshape")(y)
    for level in reversed(range(depth)):
        y = layers.Conv2DTranspose(base_filters * 2**level, 3, strides=2, padding="same",
                                   activation="relu", name=f"dec{level}_up")(y)
    decoder = keras.Model(latent, _sigmoid_head(y, "mask"), name="decoder")
    return keras.Model(inputs, decoder(z), name=name)


def _check_size(size: int, depth: int) -> None:
    if int(size) != size or size < 2**depth:
        raise ValueError(f"input_size must be an integer >= 2**depth = {2**depth}, got {size!r}")


def size_multiple(model: keras.Model) -> int:
    """Return the factor that input heights and widths of ``model`` must be multiples of.

    ``2**n`` for a model with ``n`` pooling layers (1 for none), found by walking the
    layers, so it works on loaded models too.
    """
    n = sum(isinstance(layer, layers.MaxPooling2D) for layer in model.layers)
    return 2**n

