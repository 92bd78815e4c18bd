"""Correlated Gaussian noise like that of a restored interferometric image.

The noise of an SDC1 image is correlated on the scale of the beam: its autocorrelation has
about the restoring beam's FWHM (not sqrt(2) times it, as white noise smoothed by the beam
would have). Measured on the real B1 1000 h cutout (sources above 3 sigma masked), the
autocorrelation half-width at half-maximum is 1.2 px along x (RA) and 1.4 px along y (Dec),
i.e. 0.96 and 1.12 restoring-beam FWHMs: :data:`DEFAULT_ACF_FWHM_BEAMS`.

The model here is white Gaussian noise convolved with a separable Gaussian kernel of
``sigma_k = sigma_acf / sqrt(2)`` per axis, so the autocorrelation is a Gaussian of the
requested FWHM; the kernel is normalised so that the expected pixel rms is exactly the
requested one.

The real noise is not Gaussian-correlated: its autocorrelation dips below zero at 3 px
along x (a restored interferometric image has the negative sidelobes of its uv taper).
Given target autocorrelations at lags 1, 2, ... (``acf``), the separable kernel is instead
fitted tap by tap (:func:`kernel_from_acf`) so that its autocorrelation matches them;
:data:`REAL_NOISE_ACF` holds those of the pure noise of the real B1 1000 h cutout (the
image minus its rendered truth, :mod:`radioseg_utils.evaluation.realism`), used by the simulator.

Tiles are seamless and reproducible: white noise is drawn on a fixed grid of
:data:`NOISE_BLOCK`-pixel blocks, each from its own seed ``(seed, block_y, block_x)``, and a
tile is computed from the blocks under it plus a halo of the kernel's radius. A pixel's
value therefore depends only on the seed and its position, never on the tiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import binary_dilation, correlate1d
from scipy.optimize import least_squares

from radioseg_utils.core.gaussian import FWHM_PER_SIGMA

__all__ = [
    "CorrelatedNoise",
    "DEFAULT_ACF_FWHM_BEAMS",
    "REAL_NOISE_ACF",
    "NOISE_BLOCK",
    "autocorrelation",
    "acf_fwhm",
    "bright_pixel_mask",
    "kernel_from_acf",
]

#: Autocorrelation FWHM (x, y) in units of the restoring-beam FWHM, from the real B1 cutout.
DEFAULT_ACF_FWHM_BEAMS: tuple[float, float] = (0.96, 1.12)
#: Autocorrelation (x, y) at lags 1..6 px of the noise of the real B1 1000 h cutout: the
#: image minus its truth rendered by the simulator (0.95 rms, Gaussian). Beam-sized (about
#: 2.5 px per beam FWHM in every SDC1 band), with a negative lobe at 3 px along x.
REAL_NOISE_ACF: tuple[tuple[float, ...], tuple[float, ...]] = (
    (0.628, 0.053, -0.145, -0.093, -0.048, -0.040),
    (0.708, 0.210, -0.036, -0.050, -0.004, 0.028),
)
#: Half-width (px) of a kernel fitted to an autocorrelation: its taps beyond the fitted lags.
_ACF_KERNEL_EXTRA: int = 1
#: Side in pixels of the blocks on which white noise is drawn (fixes the random stream).
NOISE_BLOCK: int = 256
#: Kernel half-width in kernel sigmas.
_KERNEL_SIGMAS: float = 4.0
#: Offset that keeps block indices (which may be negative in a halo) non-negative seeds.
_BLOCK_OFFSET: int = 1 << 24


def _kernel(fwhm_acf: float) -> np.ndarray:
    """1-D kernel whose self-convolution is a Gaussian of FWHM ``fwhm_acf`` px; sum(k²) = 1."""
    sigma = fwhm_acf / FWHM_PER_SIGMA / np.sqrt(2.0)
    radius = max(1, int(np.ceil(_KERNEL_SIGMAS * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return k / np.sqrt(np.sum(k**2))


def _kernel_acf(half: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (lags 0..) of the symmetric kernel with taps ``half``."""
    k = np.concatenate([half[:0:-1], half])
    full = np.correlate(k, k, mode="full")[k.size - 1:]
    return full / full[0]


@lru_cache(maxsize=16)
def _fit_kernel(acf: tuple[float, ...]) -> np.ndarray:
    target = np.asarray(acf, dtype=float)
    radius = target.size + _ACF_KERNEL_EXTRA
    start = _kernel(acf_fwhm(np.array([1.0, min(max(target[0], 0.05), 0.95)])))
    half0 = np.zeros(radius + 1)
    centre = start.size // 2
    n = min(radius + 1, centre + 1)
    half0[:n] = start[centre:centre + n]
    fit = least_squares(lambda h: _kernel_acf(h)[1:target.size + 1] - target, half0,
                        xtol=1e-12, ftol=1e-12, gtol=1e-12)
    k = np.concatenate([fit.x[:0:-1], fit.x])
    return k / np.sqrt(np.sum(k**2))


def kernel_from_acf(acf: Sequence[float]) -> np.ndarray:
    """Symmetric 1-D kernel (``sum(k**2) == 1``) whose autocorrelation fits ``acf``.

    Parameters
    ----------
    acf : sequence of float
        Target autocorrelation at lags 1, 2, ..., n pixels (each in (-1, 1)).

    Returns
    -------
    ndarray, shape (2 (n + 1) + 1,)
        Kernel taps (least-squares fit of its normalised autocorrelation at lags 1..n,
        started from the Gaussian kernel of the same lag-1 value). White noise correlated
        with it has unit variance and that autocorrelation.

    Examples
    --------
    >>> k = kernel_from_acf([0.6, 0.1, -0.1])
    >>> acf = np.correlate(k, k, "full")[k.size - 1:]
    >>> np.round(acf[1:4], 3).tolist()
    [0.6, 0.1, -0.1]
    """
    target = tuple(float(a) for a in acf)
    if not target or not all(np.isfinite(a) and -1 < a < 1 for a in target):
        raise ValueError(f"acf must be one or more lags in (-1, 1), got {list(acf)}")
    return _fit_kernel(target).copy()


@dataclass(frozen=True)
class CorrelatedNoise:
    """Gaussian noise with a Gaussian autocorrelation, generated tile by tile.

    Attributes
    ----------
    rms : float
        Expected pixel standard deviation (e.g. Jy/beam).
    fwhm_pix : (float, float)
        FWHM (x, y) of the autocorrelation in pixels; e.g. the band's beam FWHM times
        :data:`DEFAULT_ACF_FWHM_BEAMS`.
    seed : int
        Seed of the random field; same seed and position give the same value.
    offset : float
        Constant added to every pixel (the real B1 1000 h background sits at -0.67 rms).
    acf : ((float, ...), (float, ...)), optional
        Target autocorrelation along x and along y at lags 1, 2, ... px (e.g.
        :data:`REAL_NOISE_ACF`); when given, the kernels come from :func:`kernel_from_acf`
        and ``fwhm_pix`` is not used.

    Examples
    --------
    >>> noise = CorrelatedNoise(rms=2.0, fwhm_pix=(2.5, 2.5), seed=1)
    >>> whole = noise.tile(0, 0, (64, 64))
    >>> bool(np.array_equal(whole[20:40, 10:30], noise.tile(20, 10, (20, 20))))
    True
    """

    rms: float
    fwhm_pix: tuple[float, float]
    seed: int
    offset: float = 0.0
    acf: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.rms) and self.rms >= 0):
            raise ValueError(f"noise rms must be finite and >= 0, got {self.rms}")
        if len(self.fwhm_pix) != 2 or not all(np.isfinite(f) and f > 0 for f in self.fwhm_pix):
            raise ValueError(f"fwhm_pix must be two positive numbers (x, y), got {self.fwhm_pix}")
        if self.acf is not None:
            if len(self.acf) != 2:
                raise ValueError(f"acf must be two sequences of lags (x, y), got {self.acf}")
            for axis in self.acf:
                kernel_from_acf(axis)  # validates

    def kernels(self) -> tuple[np.ndarray, np.ndarray]:
        """The 1-D kernels (x, y) applied to white noise, each with ``sum(k**2) == 1``."""
        if self.acf is not None:
            return kernel_from_acf(self.acf[0]), kernel_from_acf(self.acf[1])
        return _kernel(self.fwhm_pix[0]), _kernel(self.fwhm_pix[1])

    def _white(self, y0: int, x0: int, shape: tuple[int, int]) -> np.ndarray:
        """Unit white noise on rows y0.., columns x0.. (any integers), from the block grid."""
        ny, nx = shape
        out = np.empty((ny, nx), dtype=np.float64)
        by0, bx0 = y0 // NOISE_BLOCK, x0 // NOISE_BLOCK
        by1, bx1 = (y0 + ny - 1) // NOISE_BLOCK, (x0 + nx - 1) // NOISE_BLOCK
        for by in range(by0, by1 + 1):
            for bx in range(bx0, bx1 + 1):
                seq = np.random.SeedSequence([self.seed, by + _BLOCK_OFFSET, bx + _BLOCK_OFFSET])
                block = np.random.default_rng(seq).standard_normal((NOISE_BLOCK, NOISE_BLOCK))
                ys, xs = by * NOISE_BLOCK, bx * NOISE_BLOCK
                ylo, yhi = max(y0, ys), min(y0 + ny, ys + NOISE_BLOCK)
                xlo, xhi = max(x0, xs), min(x0 + nx, xs + NOISE_BLOCK)
                out[ylo - y0:yhi - y0, xlo - x0:xhi - x0] = \
                    block[ylo - ys:yhi - ys, xlo - xs:xhi - xs]
        return out

    def tile(self, y0: int, x0: int, shape: tuple[int, int]) -> np.ndarray:
        """Noise on the pixels ``[y0:y0+ny, x0:x0+nx]`` of the infinite field.

        Parameters
        ----------
        y0, x0 : int
            Pixel of the tile's first row / column.
        shape : (ny, nx)
            Tile shape.

        Returns
        -------
        ndarray of float32, shape (ny, nx)
        """
        ny, nx = (int(n) for n in shape)
        if ny <= 0 or nx <= 0:
            raise ValueError(f"tile shape must be positive, got {shape}")
        kx, ky = self.kernels()
        hx, hy = kx.size // 2, ky.size // 2
        white = self._white(int(y0) - hy, int(x0) - hx, (ny + 2 * hy, nx + 2 * hx))
        smooth = correlate1d(white, kx, axis=1, mode="constant")[:, hx:hx + nx]
        smooth = correlate1d(smooth, ky, axis=0, mode="constant")[hy:hy + ny]
        return (smooth * self.rms + self.offset).astype(np.float32)


def autocorrelation(image: np.ndarray, *, max_lag: int = 5,
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised autocorrelation of an image along x and y at lags 0..max_lag.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Image; non-finite pixels are ignored.
    max_lag : int
        Largest lag in pixels.
    mask : ndarray of bool, shape (ny, nx), optional
        True for pixels to ignore (e.g. sources).

    Returns
    -------
    acf_x, acf_y : ndarray, shape (max_lag + 1,)
        Correlation coefficient of pixel pairs separated by the lag along x (axis 1) and
        y (axis 0), over pairs where both pixels are valid; 1 at lag 0.
    """
    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    valid = np.isfinite(image) if mask is None else np.isfinite(image) & ~np.asarray(mask, bool)
    if max_lag < 1 or max_lag >= min(image.shape):
        raise ValueError(f"max_lag must be in 1..{min(image.shape) - 1}, got {max_lag}")
    mean = image[valid].mean()
    var = ((image[valid] - mean) ** 2).mean()
    centred = np.where(valid, image - mean, 0.0)
    out = []
    for axis in (1, 0):
        acf = [1.0]
        for lag in range(1, max_lag + 1):
            a = np.take(centred, range(lag, image.shape[axis]), axis=axis)
            b = np.take(centred, range(0, image.shape[axis] - lag), axis=axis)
            pairs = (np.take(valid, range(lag, image.shape[axis]), axis=axis)
                     & np.take(valid, range(0, image.shape[axis] - lag), axis=axis))
            acf.append(float((a * b)[pairs].mean() / var))
        out.append(np.array(acf))
    return out[0], out[1]


def acf_fwhm(acf: np.ndarray) -> float:
    """FWHM (pixels) of a Gaussian autocorrelation, from its value at lag 1.

    Examples
    --------
    >>> round(acf_fwhm(np.array([1.0, 0.5])), 6)  # half maximum at 1 px: FWHM 2 px
    2.0
    """
    rho = float(acf[1])
    if not 0 < rho < 1:
        raise ValueError(f"lag-1 autocorrelation must be in (0, 1) for a Gaussian, got {rho}")
    return float(2.0 * np.sqrt(np.log(2.0) / -np.log(rho)))


def bright_pixel_mask(image: np.ndarray, rms: float, *, nsigma: float = 3.0,
                      dilate: int = 4) -> np.ndarray:
    """Pixels above ``nsigma * rms`` grown by ``dilate`` pixels (sources, for noise statistics).

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Image (same unit as ``rms``).
    rms : float
        Noise rms.
    nsigma : float
        Threshold in units of ``rms`` (the SDC1 facts use 3).
    dilate : int
        Binary dilation iterations (pixels); 0 for none.

    Returns
    -------
    ndarray of bool, shape (ny, nx)

    Examples
    --------
    >>> image = np.zeros((5, 5)); image[2, 2] = 10.0
    >>> int(bright_pixel_mask(image, 1.0, dilate=1).sum())
    5
    """
    mask = np.asarray(image) > nsigma * rms
    return binary_dilation(mask, iterations=dilate) if dilate > 0 else mask
