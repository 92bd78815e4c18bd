"""Input normalisations of radio images for the segmentation networks.

Radio continuum images span five decades of brightness, from noise at ~1e-7 Jy/beam to
bright AGN at ~1e-2 Jy/beam, so how pixel values are mapped to network inputs matters.
Each normalisation is one small function with the same signature family
``f(image, *, ...) -> ndarray`` (float32, same shape), collected in :data:`NORMALISERS`
and called by name through :func:`normalise`:

``"minmax"``
    ``(x - min) / (max - min)``, in [0, 1] (the poster, and ContinUNet).
``"log"``
    ``log1p(a * m) / log1p(a)`` of the min–max scaled image ``m``, in [0, 1]; ``a``
    (default 1000) sets how strongly faint emission is stretched.
``"histeq"``
    Histogram equalisation (:func:`skimage.exposure.equalize_hist`), in [0, 1]. The
    bins are linear between min and max, so use many (default 4096) on radio images,
    where a few bright pixels would otherwise put all the noise in one bin.
``"asinh"``
    ``arcsinh(x / (b * sigma))``: linear within ``b`` noise sigmas of zero, logarithmic
    above; unbounded, in units of "asinh magnitudes" of the noise (Lupton et al. 1999).
``"noise"``
    ``clip(x / sigma, -c, c) / c``: the image in units of the noise, clipped at ``c``
    sigma (default 20) and scaled to [-1, 1].

``sigma`` is the sigma-clipped robust rms of :func:`radioseg_utils.core.noise.estimate_noise`
(2-D images only) unless a ``noise`` (scalar or map,
Jy/beam) is given, which is better for small cutouts whose own statistics are noisy.

NaN handling (all methods): statistics (min, max, median, histogram) use the finite
pixels only, and non-finite pixels (NaN, ±inf) are set to ``fill`` (default 0.0) in the
output. An image with no finite pixel raises :class:`ValueError`. A constant image maps
to 0 for the bounded methods (no division by zero).

References
----------
Lupton, R. H., Gunn, J. E. & Szalay, A. S. 1999, AJ 118, 1406, "A modified magnitude
system that produces well-behaved magnitudes, colors, and errors even for low
signal-to-noise ratio measurements", doi:10.1086/301004
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from skimage import exposure

from radioseg_utils.core.noise import estimate_noise

__all__ = [
    "NORMALISATIONS",
    "NORMALISERS",
    "NOISE_METHODS",
    "normalise",
    "minmax",
    "log",
    "histeq",
    "asinh",
    "noise",
]

#: Default stretch ``a`` of the ``"log"`` normalisation.
LOG_STRETCH = 1000.0
#: Default softening ``b`` (in noise sigmas) of the ``"asinh"`` normalisation.
ASINH_SOFTENING = 1.0
#: Default clip ``c`` (in noise sigmas) of the ``"noise"`` normalisation.
NOISE_CLIP = 20.0
#: Default number of histogram bins of ``"histeq"``.
HISTEQ_BINS = 4096


def _finite(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the image as float64 and its finite-pixel mask; raise if none is finite."""
    arr = np.asarray(image, dtype=np.float64)
    good = np.isfinite(arr)
    if not good.any():
        raise ValueError(f"image of shape {arr.shape} has no finite pixel to normalise")
    return arr, good


def _finish(out: np.ndarray, good: np.ndarray, fill: float) -> np.ndarray:
    out = np.where(good, out, fill)
    return out.astype(np.float32)


def _sigma(arr: np.ndarray, good: np.ndarray, noise: float | np.ndarray | None) -> np.ndarray:
    if noise is None:
        sigma = np.asarray(estimate_noise(np.where(good, arr, np.nan))[1])
    else:
        sigma = np.asarray(noise, dtype=np.float64)
        if sigma.ndim and sigma.shape != arr.shape:
            raise ValueError(f"noise map shape {sigma.shape} differs from image shape {arr.shape}")
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError(f"noise sigma must be finite and positive, got {noise if noise is not None else float(sigma)}")
    return sigma


def minmax(image: np.ndarray, *, fill: float = 0.0) -> np.ndarray:
    """Min–max scaling to [0, 1] over the finite pixels (the poster's normalisation).

    Parameters
    ----------
    image : ndarray
        Image of any shape.
    fill : float
        Output value of non-finite pixels.

    Returns
    -------
    ndarray, float32, same shape
        ``(x - min) / (max - min)``; all zeros for a constant image.

    Examples
    --------
    >>> minmax(np.array([1.0, 2.0, 3.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    arr, good = _finite(image)
    lo, hi = arr[good].min(), arr[good].max()
    out = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return _finish(out, good, fill)


def log(image: np.ndarray, *, stretch: float = LOG_STRETCH, fill: float = 0.0) -> np.ndarray:
    """Logarithmic stretch of the min–max scaled image, in [0, 1].

    Parameters
    ----------
    image : ndarray
        Image of any shape.
    stretch : float
        ``a > 0`` in ``log1p(a * m) / log1p(a)``; larger values lift faint emission more.
    fill : float
        Output value of non-finite pixels.

    Returns
    -------
    ndarray, float32, same shape
    """
    if not stretch > 0:
        raise ValueError(f"log stretch must be positive, got {stretch}")
    arr, good = _finite(image)
    scaled = minmax(np.where(good, arr, np.nan)).astype(np.float64)
    out = np.log1p(stretch * scaled) / np.log1p(stretch)
    return _finish(out, good, fill)


def histeq(image: np.ndarray, *, nbins: int = HISTEQ_BINS, fill: float = 0.0) -> np.ndarray:
    """Histogram equalisation of the finite pixels, in [0, 1].

    Parameters
    ----------
    image : ndarray
        Image of any shape.
    nbins : int
        Number of histogram bins.
    fill : float
        Output value of non-finite pixels.

    Returns
    -------
    ndarray, float32, same shape
        The cumulative distribution of the pixel values evaluated at each pixel
        (:func:`skimage.exposure.equalize_hist`); zeros for a constant image.
    """
    arr, good = _finite(image)
    vals = arr[good]
    if vals.min() == vals.max():
        return _finish(np.zeros_like(arr), good, fill)
    out = np.zeros_like(arr)
    out[good] = exposure.equalize_hist(vals, nbins=nbins)
    return _finish(out, good, fill)


def asinh(
    image: np.ndarray,
    *,
    noise: float | np.ndarray | None = None,
    softening: float = ASINH_SOFTENING,
    fill: float = 0.0,
) -> np.ndarray:
    """Inverse hyperbolic sine stretch in units of the noise.

    Parameters
    ----------
    image : ndarray
        Image of any shape, e.g. Jy/beam.
    noise : float or ndarray, optional
        Noise sigma (scalar or map of the image's shape, same unit as the image).
        Default: the robust rms of the (2-D) image,
        :func:`radioseg_utils.core.noise.estimate_noise`.
    softening : float
        ``b > 0``: the stretch is linear for ``|x| << b sigma``, logarithmic above.
    fill : float
        Output value of non-finite pixels.

    Returns
    -------
    ndarray, float32, same shape
        ``arcsinh(x / (b * sigma))``.

    Examples
    --------
    >>> [round(float(v), 4) for v in asinh(np.array([0.0, 2.0]), noise=2.0)]
    [0.0, 0.8814]
    """
    if not softening > 0:
        raise ValueError(f"asinh softening must be positive, got {softening}")
    arr, good = _finite(image)
    sigma = _sigma(arr, good, noise)
    return _finish(np.arcsinh(arr / (softening * sigma)), good, fill)


def noise(
    image: np.ndarray,
    *,
    noise: float | np.ndarray | None = None,
    clip: float = NOISE_CLIP,
    fill: float = 0.0,
) -> np.ndarray:
    """Image in units of the noise, clipped to ``[-clip, clip]`` and scaled to [-1, 1].

    Parameters
    ----------
    image : ndarray
        Image of any shape, e.g. Jy/beam.
    noise : float or ndarray, optional
        Noise sigma (scalar or map of the image's shape, same unit as the image).
        Default: the robust rms of the (2-D) image,
        :func:`radioseg_utils.core.noise.estimate_noise`.
    clip : float
        Clipping level ``c > 0`` in sigmas.
    fill : float
        Output value of non-finite pixels.

    Returns
    -------
    ndarray, float32, same shape
        ``clip(x / sigma, -c, c) / c``.

    Examples
    --------
    >>> noise(np.array([-50.0, 1.0, 10.0]), noise=1.0, clip=5.0).tolist()
    [-1.0, 0.20000000298023224, 1.0]
    """
    if not clip > 0:
        raise ValueError(f"noise clip must be positive, got {clip}")
    arr, good = _finite(image)
    sigma = _sigma(arr, good, noise)
    return _finish(np.clip(arr / sigma, -clip, clip) / clip, good, fill)


#: Normalisation functions by name.
NORMALISERS: dict[str, Callable[..., np.ndarray]] = {
    "minmax": minmax,
    "log": log,
    "histeq": histeq,
    "asinh": asinh,
    "noise": noise,
}

#: Names of the available normalisations, the poster's first.
NORMALISATIONS: tuple[str, ...] = tuple(NORMALISERS)

#: Normalisations that use a noise level (``noise=`` keyword).
NOISE_METHODS: frozenset[str] = frozenset({"asinh", "noise"})


def normalise(
    image: np.ndarray,
    method: str = "minmax",
    *,
    noise: float | np.ndarray | None = None,
    **kwargs: float,
) -> np.ndarray:
    """Normalise an image with a named method.

    Parameters
    ----------
    image : ndarray
        Image of any shape, e.g. a (H, W) cutout in Jy/beam.
    method : str
        One of :data:`NORMALISATIONS`.
    noise : float or ndarray, optional
        Noise sigma for the methods in :data:`NOISE_METHODS`; ignored by the others, so
        callers can pass it whatever the method.
    **kwargs
        Method options (``stretch``, ``nbins``, ``softening``, ``clip``, ``fill``).

    Returns
    -------
    ndarray, float32, same shape as ``image``

    Raises
    ------
    ValueError
        If ``method`` is unknown, or the image has no finite pixel.

    Examples
    --------
    >>> normalise(np.array([0.0, 5.0, 10.0]), "minmax").tolist()
    [0.0, 0.5, 1.0]
    """
    try:
        func = NORMALISERS[method]
    except KeyError:
        raise ValueError(
            f"unknown normalisation {method!r}; expected one of {', '.join(NORMALISATIONS)}"
        ) from None
    if method in NOISE_METHODS:
        kwargs["noise"] = noise
    return func(image, **kwargs)
