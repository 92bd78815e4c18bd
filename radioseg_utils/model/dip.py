"""Deep image prior: an untrained encoder-decoder fitted to one noisy image, stopped early.

Ulyanov, Vedaldi & Lempitsky (2018) observed that a randomly initialised convolutional
encoder-decoder, fitted by gradient descent to map a *fixed random input* ``z`` to one
noisy image, reproduces natural structure long before it reproduces the noise: stopped
in time, its output is a denoised image, with no training data at all. Here:

* the network (:func:`build_dip_network`) is an hourglass of :func:`conv_block`
  levels of :mod:`radioseg_utils.model.architectures` (batch norm, leaky ReLU), max pooling
  down and bilinear up-sampling, with a linear 1 x 1 head; no skip connections (a U-Net's
  full-resolution skips let it copy the input and fit the noise within a few steps);
* the image is fitted in units of its noise, ``(image - median) / noise``, with the mean
  squared error (the Gaussian likelihood) and Adam; non-finite pixels carry no weight;
* the head starts at zero, so the first output is the background and the fit adds
  structure only while the residual exceeds the noise;
* pixels brighter than ``keep_snr`` times the noise (grown by ``keep_dilate`` pixels) are
  not fitted and keep their values: their noise is negligible, and the dynamic range of a
  radio image (sources thousands of times the noise) would otherwise keep the residual
  above the noise until the cap, while the network fits the noise everywhere else;
* **stopping rule: the discrepancy principle** (Morozov 1966): stop at the first
  iteration whose residual rms (image minus output, over the fitted pixels, before that
  iteration's update) is at most ``stop_rms`` times the noise rms. The rule needs the
  noise level, which the caller estimates from the image itself (e.g. robustly with
  :func:`radioseg_utils.core.noise.estimate_noise`), never the true sky. Without it the
  fit stops at ``max_iterations``.

Everything uses Keras 3 (``keras.ops``, ``train_on_batch``) and numpy, no backend's own
API, so it runs under the TensorFlow and the JAX backend (both tested), on CPU or GPU. Weights are drawn from numpy with
the seed of :class:`DIPSettings`, so a fit is reproducible without touching the global
random state.

References
----------
Ulyanov, D., Vedaldi, A. & Lempitsky, V. 2018, "Deep Image Prior", CVPR,
doi:10.1109/CVPR.2018.00984, arXiv:1711.10925

Morozov, V. A. 1966, "On the solution of functional equations by the method of
regularization", Soviet Math. Dokl. 7, 414
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from radioseg_utils.model.architectures import conv_block
from radioseg_utils.model.backend import keras, layers
from radioseg_utils.simulation.noise_model import bright_pixel_mask

__all__ = [
    "DIPSettings",
    "DIPFit",
    "build_dip_network",
    "check_image",
    "fit_dip",
]


@dataclass(frozen=True)
class DIPSettings:
    """Settings of one deep-image-prior fit.

    Attributes
    ----------
    max_iterations : int
        Cap on the Adam steps of one fit.
    learning_rate : float
        Adam learning rate.
    width : int
        Filters of the first level (doubled at each level down).
    depth : int
        Pooling levels; cutouts are zero-padded (with no weight) to a multiple of
        ``2**depth`` pixels.
    input_channels : int
        Channels of the fixed random input ``z``.
    input_scale : float
        ``z`` is uniform on ``[0, input_scale)`` (0.1 as in Ulyanov et al.).
    stop_rms : float
        Stopping rule, the discrepancy principle: stop at the first iteration whose
        residual rms is at most ``stop_rms`` times the noise rms.
    keep_snr : float
        Pixels brighter than ``keep_snr`` times the noise, grown by ``keep_dilate`` pixels,
        are left out of the fit and keep their values: a bright point source dominates
        the residual long after the noise elsewhere is fitted (a 4000σ source needs its
        peak to 1 % before the residual of a 128² tile reaches the noise), and its own
        noise is negligible.
    keep_dilate : int
        Growth of the kept regions in pixels (2: about one SDC1 beam).
    seed : int
        Seed of ``z`` and of the initial weights.

    Raises
    ------
    ValueError
        If a count is not a positive integer or a rate, scale or ``stop_rms`` is not a
        positive finite number.

    Examples
    --------
    >>> DIPSettings().stop_rms
    1.0
    >>> DIPSettings(width=0)
    Traceback (most recent call last):
    ...
    ValueError: DIPSettings.width must be a positive integer, got 0
    """

    max_iterations: int = 300
    learning_rate: float = 0.01
    width: int = 8
    depth: int = 3
    input_channels: int = 32
    input_scale: float = 0.1
    stop_rms: float = 1.0
    keep_snr: float = 50.0
    keep_dilate: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_iterations", "width", "depth", "input_channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"DIPSettings.{name} must be a positive integer, got {value!r}")
        for name in ("learning_rate", "input_scale", "stop_rms", "keep_snr"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"DIPSettings.{name} must be a positive number, got {value!r}")
        for name in ("keep_dilate", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"DIPSettings.{name} must be a non-negative integer, got {value!r}")


@dataclass(frozen=True)
class DIPFit:
    """Result of one fit.

    Attributes
    ----------
    image : ndarray of float32, shape (ny, nx)
        Denoised image in the units of the input; NaN where the input was not finite.
    iterations : int
        Adam steps taken (the stopping iteration, or ``max_iterations``).
    stopped : bool
        True if the stopping rule fired, False if the fit ran into the cap.
    residual_rms : float
        rms of input minus output over the fitted pixels, in units of the noise.
    history : ndarray of float, shape (iterations,)
        Residual rms (units of the noise) before each step: what the rule watched.
    """

    image: np.ndarray
    iterations: int
    stopped: bool
    residual_rms: float
    history: np.ndarray = field(repr=False)


def build_dip_network(settings: DIPSettings = DIPSettings()) -> keras.Model:
    """The hourglass encoder-decoder of the deep image prior.

    ``depth`` levels of :func:`~radioseg_utils.model.architectures.conv_block` (batch
    norm, leaky ReLU) and 2 x 2 max pooling, a bottleneck block, ``depth`` levels of
    bilinear 2 x up-sampling and a block, and a linear 1 x 1 head (float32).

    Parameters
    ----------
    settings : DIPSettings
        ``width``, ``depth`` and ``input_channels`` are used.

    Returns
    -------
    keras.Model
        Input ``(None, None, None, input_channels)``, output ``(None, None, None, 1)``;
        sides must be multiples of ``2**depth``.

    Examples
    --------
    >>> net = build_dip_network(DIPSettings(width=4, depth=2, input_channels=3))
    >>> net.input_shape, net.output_shape
    ((None, None, None, 3), (None, None, None, 1))
    """
    opts = {"kernel_size": 3, "batch_norm": True, "dropout": 0.0, "activation": "leaky_relu"}
    inputs = keras.Input(shape=(None, None, settings.input_channels), name="z")
    x = inputs
    for level in range(settings.depth):
        x = conv_block(x, settings.width * 2**level, name=f"enc{level}", **opts)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, settings.width * 2**settings.depth, name="bottleneck", **opts)
    for level in reversed(range(settings.depth)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{level}_up")(x)
        x = conv_block(x, settings.width * 2**level, name=f"dec{level}", **opts)
    outputs = layers.Conv2D(1, 1, dtype="float32", name="image")(x)
    return keras.Model(inputs, outputs, name="deep_image_prior")


def _initial_weights(model: keras.Model, seed: int) -> list[np.ndarray]:
    """He-normal kernels from numpy (zero for the head), everything else as built."""
    rng = np.random.default_rng(seed)
    head = model.get_layer("image").kernel.path
    out = []
    for var, value in zip(model.weights, model.get_weights(), strict=True):
        if var.path == head:
            value = np.zeros_like(value)
        elif value.ndim == 4:  # convolution kernel (kh, kw, in, out)
            fan_in = value.shape[0] * value.shape[1] * value.shape[2]
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), value.shape).astype(value.dtype)
        out.append(value)
    return out


def check_image(image: np.ndarray, noise: float | None) -> np.ndarray:
    """The image as a float64 array, after checking what a deep-image-prior fit needs.

    Parameters
    ----------
    image : array-like
        Should be 2-D with at least one finite pixel.
    noise : float or None
        Should be a positive finite number (None: not checked).

    Returns
    -------
    ndarray of float64, shape (ny, nx)

    Raises
    ------
    ValueError
        If the image is not 2-D or has no finite pixel, or ``noise`` is not positive.

    Examples
    --------
    >>> check_image(np.zeros((2, 3)), 1.0).shape
    (2, 3)
    >>> check_image(np.full((2, 2), np.nan), None)
    Traceback (most recent call last):
    ...
    ValueError: deep image prior: the 2x2 image has no finite pixel
    """
    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"deep image prior: expected a 2-D image, got shape {data.shape}")
    if not np.isfinite(data).any():
        raise ValueError(f"deep image prior: the {data.shape[0]}x{data.shape[1]} image has "
                         "no finite pixel")
    if noise is not None and not (np.ndim(noise) == 0 and np.isfinite(noise) and noise > 0):
        raise ValueError(f"deep image prior: noise must be a positive number, got {noise!r}")
    return data


@lru_cache(maxsize=8)
def _network(settings: DIPSettings, shape: tuple[int, int]):
    """Compiled network, initial weights, fresh Adam state and input ``z`` of one cutout shape.

    Made once per settings and padded shape in a session (compiling the training step takes
    seconds) and reused: every fit restores the same weights and a fresh Adam state.
    """
    net = build_dip_network(settings)
    net.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss="mse")
    net.optimizer.build(net.trainable_variables)
    state = [keras.ops.convert_to_numpy(v) for v in net.optimizer.variables]
    z = np.random.default_rng(settings.seed).uniform(0.0, settings.input_scale,
                                                     (1, *shape, settings.input_channels))
    return net, _initial_weights(net, settings.seed), state, z.astype(np.float32)


def fit_dip(
    image: np.ndarray,
    *,
    noise: float,
    offset: float = 0.0,
    settings: DIPSettings = DIPSettings(),
) -> DIPFit:
    """Denoise one cutout with a deep image prior, stopped at the noise level.

    Every fit starts from the same seeded weights and input and a fresh Adam state, so the
    result depends only on the cutout and the settings (the compiled network is reused
    within a session for cutouts of the same padded shape).

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Noisy cutout (e.g. Jy/beam); non-finite pixels are ignored (and NaN in the output).
    noise : float
        Its noise rms, same unit: the scale of the fit and the level of the stopping rule
        (estimated from the image, e.g. with :func:`radioseg_utils.core.noise.estimate_noise`).
    offset : float
        Background level subtracted for the fit and added back (e.g. the image median).
    settings : DIPSettings
        Network, optimiser, stopping rule and seed.

    Returns
    -------
    DIPFit
        A cutout whose finite pixels are all kept (above ``keep_snr``) comes back as it is,
        after 0 iterations.

    Raises
    ------
    ValueError
        If the image is not 2-D or has no finite pixel, or ``noise`` is not positive.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fit = fit_dip(rng.normal(0.0, 1.0, (16, 16)), noise=1.0,
    ...               settings=DIPSettings(width=4, depth=2, max_iterations=50))
    >>> fit.stopped, fit.iterations < 50  # pure noise: at the noise level at once
    (True, True)
    """
    data = check_image(image, noise)
    valid = np.isfinite(data)
    ny, nx = data.shape
    m = 2**settings.depth
    shape = (-(-ny // m) * m, -(-nx // m) * m)
    sigmas = np.where(valid, (data - offset) / noise, 0.0)
    kept = valid & bright_pixel_mask(sigmas, 1.0, nsigma=settings.keep_snr,
                                     dilate=settings.keep_dilate)
    fitted = valid & ~kept
    if not fitted.any():  # all bright: nothing to denoise
        return DIPFit(np.where(valid, data, np.nan).astype(np.float32), 0, True, 0.0,
                      np.zeros(0))
    target = np.zeros((1, *shape, 1), np.float32)
    target[0, :ny, :nx, 0] = np.where(fitted, sigmas, 0.0)
    weight = np.zeros((1, *shape), np.float32)
    weight[0, :ny, :nx] = fitted
    scale = weight.size / weight.sum()  # the loss averages over every pixel
    net, weights0, state0, z = _network(settings, shape)
    net.set_weights(weights0)
    for var, value in zip(net.optimizer.variables, state0, strict=True):
        var.assign(value)  # a fresh Adam: zero moments and step count
    history = []
    stopped = False
    for _ in range(settings.max_iterations):
        loss = net.train_on_batch(z, target, sample_weight=weight)
        history.append(float(np.sqrt(float(np.ravel(loss)[0]) * scale)))
        if history[-1] <= settings.stop_rms:
            stopped = True
            break
    out = keras.ops.convert_to_numpy(net(z, training=True))[0, :ny, :nx, 0].astype(np.float64)
    out = np.where(kept, sigmas, out)
    residual = float(np.sqrt(np.mean((sigmas - out)[fitted] ** 2)))
    denoised = np.where(valid, offset + noise * out, np.nan).astype(np.float32)
    return DIPFit(denoised, len(history), stopped, residual, np.asarray(history))
