"""Denoising an image before a finder: the deep image prior, tile by tile.

:func:`dip_denoise` fits the deep image prior of :mod:`radioseg_utils.model.dip` to every
overlapping tile of an image, one network fit per tile, and blends the tiles with the
seam-free weights of :func:`radioseg_utils.inference.tiling.predict_tiled` (the fit is the
"model" called on each tile). The noise rms and background that scale the fits and set
the stopping rule are estimated once from the whole image with the robust
:func:`radioseg_utils.core.noise.estimate_noise`; nothing else is known to the fit.

:func:`denoise_sky` is the one switch every finder goes through (``denoise="dip"`` of
:func:`radioseg_utils.evaluation.evaluate.compare_finders`, of the evaluation grid and of
``radioseg predict/evaluate --denoise dip``): it returns the image with denoised pixels
and the same grid, WCS and beam, and caches the result as a FITS file (the input's WCS,
the settings in the header, the per-tile stopping iterations in extensions ``ITERS`` and
``STOPPED``) that is reused only when image, method and settings are the same.
:func:`denoise_file` does the same from one FITS file to another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from radioseg_utils.core.noise import estimate_noise
from radioseg_utils.inference.tiling import predict_tiled, tile_starts
from radioseg_utils.io.fits_read import SkyImage, read_image
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header
from radioseg_utils.model.dip import DIPSettings, check_image, fit_dip

__all__ = [
    "DENOISERS",
    "DIP_TILE",
    "DIP_OVERLAP",
    "DenoisedImage",
    "denoise_file",
    "denoise_sky",
    "dip_denoise",
]

logger = logging.getLogger(__name__)

#: Denoising methods of :func:`denoise_sky` (``None`` means no denoising).
DENOISERS: tuple[str, ...] = ("dip",)
#: Default tile side in pixels (a multiple of ``2**depth`` of the default network): a fit's
#: steps grow with the tile (about 50 at 128², 185 at 256² on a B1 1000 h field), so small
#: tiles are cheaper per pixel, down to where the overlaps dominate.
DIP_TILE: int = 128
#: Default pixels shared by neighbouring tiles (6 B1 beams).
DIP_OVERLAP: int = 16
_CACHE_VERSION = 1


@dataclass(frozen=True)
class DenoisedImage:
    """A denoised image and how each tile's fit went.

    Attributes
    ----------
    image : ndarray of float32, shape (ny, nx)
        Denoised image in the input's units; NaN where the input was not finite.
    iterations : ndarray of int, shape (n_rows, n_cols)
        Stopping iteration of each tile (row-major tile grid; 0 for a tile without a
        finite pixel or with only pixels kept as they are).
    stopped : ndarray of bool, shape (n_rows, n_cols)
        True where the stopping rule fired, False where the fit ran into the cap.
    noise : float
        Noise rms that scaled the fits and set the stopping level (input units).
    background : float
        Background level subtracted for the fits and added back (input units).
    runtime_s : float
        Wall-clock seconds of the denoising.
    settings : DIPSettings
        Settings of the fits.
    tile, overlap : int
        Tile side and overlap in pixels.
    """

    image: np.ndarray = field(repr=False)
    iterations: np.ndarray
    stopped: np.ndarray
    noise: float
    background: float
    runtime_s: float
    settings: DIPSettings
    tile: int
    overlap: int

    @property
    def s_per_mpx(self) -> float:
        """Runtime per million image pixels, in seconds."""
        return self.runtime_s / (self.image.size / 1e6)


class _TileFits:
    """The "model" :func:`predict_tiled` calls on each tile: one DIP fit per tile.

    Tiles come one by one in row-major order (``batch_size=1``); the fit reads the tile
    from the image itself, so non-finite pixels (0 in the batch) carry no weight.
    """

    def __init__(self, data: np.ndarray, settings: DIPSettings, *, noise: float,
                 background: float, tile: int, overlap: int) -> None:
        self.data, self.settings, self.noise, self.background = data, settings, noise, background
        self.ys = tile_starts(data.shape[0], tile, overlap)
        self.xs = tile_starts(data.shape[1], tile, overlap)
        self.tile = tile
        self.iterations = np.zeros((len(self.ys), len(self.xs)), np.int64)
        self.stopped = np.zeros((len(self.ys), len(self.xs)), bool)
        self.count = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        iy, ix = divmod(self.count, len(self.xs))
        y0, x0 = self.ys[iy], self.xs[ix]
        cut = self.data[y0:y0 + self.tile, x0:x0 + self.tile]
        if batch.shape[0] != 1 or not np.array_equal(
                np.where(np.isfinite(cut), cut, 0.0).astype(np.float32), batch[0, ..., 0]):
            raise RuntimeError(f"tile {self.count} does not match the image at ({y0}, {x0}): "
                               "tiles must come one at a time in row-major order")
        self.count += 1
        if not np.isfinite(cut).any():  # a blanked tile: nothing to fit
            self.stopped[iy, ix] = True
            return np.zeros_like(batch)
        fit = fit_dip(cut, noise=self.noise, offset=self.background, settings=self.settings)
        self.iterations[iy, ix], self.stopped[iy, ix] = fit.iterations, fit.stopped
        return np.nan_to_num(fit.image, nan=0.0)[None, ..., None]


def dip_denoise(
    image: np.ndarray,
    *,
    settings: DIPSettings = DIPSettings(),
    noise: float | None = None,
    tile: int = DIP_TILE,
    overlap: int = DIP_OVERLAP,
    progress: bool = True,
) -> DenoisedImage:
    """Denoise an image with the deep image prior, tile by tile, blending the seams.

    Parameters
    ----------
    image : array-like, shape (ny, nx)
        Noisy image (e.g. Jy/beam); non-finite pixels are ignored and stay NaN.
    settings : DIPSettings
        Network, optimiser, stopping rule (the discrepancy principle) and seed.
    noise : float, optional
        Noise rms in the image's units; default the robust rms of
        :func:`radioseg_utils.core.noise.estimate_noise` of the whole image (its
        sigma-clipped median is the background either way).
    tile : int
        Tile side in pixels, at most the image's shorter side.
    overlap : int
        Pixels shared by neighbouring tiles, ``0 <= overlap < tile``.
    progress : bool
        Show a progress bar over tiles.

    Returns
    -------
    DenoisedImage

    Raises
    ------
    ValueError
        If the image is not 2-D or has no finite pixel, ``noise`` is not positive, or
        ``tile`` exceeds the image or ``overlap`` is not in ``[0, tile)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> out = dip_denoise(rng.normal(0.0, 1.0, (40, 40)), tile=24, overlap=8, progress=False,
    ...                   settings=DIPSettings(width=4, depth=2, max_iterations=20))
    >>> out.image.shape, out.iterations.shape
    ((40, 40), (2, 2))
    """
    data = check_image(image, noise).astype(np.float32)
    finite = np.isfinite(data)
    if not 1 <= tile <= min(data.shape):
        raise ValueError(f"deep image prior: tile {tile} px must be between 1 and the image's "
                         f"shorter side ({min(data.shape)} px of {data.shape})")
    if not 0 <= overlap < tile:
        raise ValueError(f"deep image prior: overlap must be in [0, tile={tile}), got {overlap}")
    start = time.perf_counter()
    background, rms = estimate_noise(data)
    noise = rms if noise is None else float(noise)
    fitter = _TileFits(data, settings, noise=noise, background=background, tile=tile,
                       overlap=overlap)
    out = predict_tiled(fitter, np.where(finite, data, np.float32(0.0)), tile=tile,
                        overlap=overlap, batch_size=1, progress=progress)
    out[~finite] = np.nan
    capped = int((~fitter.stopped).sum())
    if capped:
        logger.warning("deep image prior: %d of %d tiles reached max_iterations=%d before "
                       "the noise level", capped, fitter.stopped.size, settings.max_iterations)
    return DenoisedImage(out, fitter.iterations, fitter.stopped, noise, background,
                         time.perf_counter() - start, settings, tile, overlap)


def _cache_key(sky: SkyImage, method: str, settings: DIPSettings, tile: int, overlap: int) -> str:
    text = json.dumps({"version": _CACHE_VERSION, "method": method, "tile": tile,
                       "overlap": overlap, "settings": dataclasses.asdict(settings)},
                      sort_keys=True)
    digest = hashlib.sha256(text.encode())
    digest.update(np.ascontiguousarray(sky.data, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _read_cache(path: Path, key: str, settings: DIPSettings) -> DenoisedImage | None:
    if not path.is_file():
        return None
    with fits.open(path) as hdul:
        header = hdul[0].header
        if header.get("DNKEY") != key:
            return None
        return DenoisedImage(
            np.asarray(hdul[0].data, dtype=np.float32).reshape(hdul[0].data.shape[-2:]),
            np.asarray(hdul["ITERS"].data, dtype=np.int64),
            np.asarray(hdul["STOPPED"].data, dtype=bool), float(header["DNNOISE"]),
            float(header["DNBKG"]), float(header["DNTIME"]), settings, int(header["DNTILE"]),
            int(header["DNOVERL"]))


def _write_cache(path: Path, sky: SkyImage, result: DenoisedImage, method: str, key: str) -> None:
    header = sdc1_header(sky.wcs, sky.band, ndim=2, bunit=str(sky.header.get("BUNIT", "JY/BEAM")))
    header["BMAJ"], header["BMIN"] = sky.beam.bmaj / 3600.0, sky.beam.bmin / 3600.0
    header["BPA"] = sky.beam.bpa
    if "TELESCOP" in sky.header:  # a user's own image keeps its telescope, not SDC1's
        header["TELESCOP"] = sky.header["TELESCOP"]
    else:
        del header["TELESCOP"]
    header["DNMETH"] = (method, "denoising method")
    header["DNKEY"] = (key, "hash of input pixels and settings")
    header["DNNOISE"] = (result.noise, "noise rms of the fits")
    header["DNBKG"] = (result.background, "background of the fits")
    header["DNTIME"] = (result.runtime_s, "[s] denoising time")
    header["DNTILE"], header["DNOVERL"] = result.tile, result.overlap
    header["DNSET"] = json.dumps(dataclasses.asdict(result.settings), sort_keys=True)
    header.add_history("denoised with a deep image prior (Ulyanov et al. 2018), stopped at "
                       "the noise level (discrepancy principle)")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    write_image(part, result.image, header, overwrite=True)
    fits.append(part, result.iterations.astype(np.int32), fits.Header({"EXTNAME": "ITERS"}))
    fits.append(part, result.stopped.astype(np.uint8), fits.Header({"EXTNAME": "STOPPED"}))
    part.replace(path)


def denoise_sky(
    sky: SkyImage,
    method: str = "dip",
    *,
    settings: DIPSettings = DIPSettings(),
    tile: int = DIP_TILE,
    overlap: int = DIP_OVERLAP,
    cache: str | Path | None = None,
    progress: bool = True,
) -> tuple[SkyImage, DenoisedImage]:
    """Denoise an image before a finder: the one switch all finders go through.

    Parameters
    ----------
    sky : SkyImage
        The image.
    method : str
        A name in :data:`DENOISERS` (``"dip"``: :func:`dip_denoise`).
    settings : DIPSettings
        Settings of the fits.
    tile, overlap : int
        Tiling of :func:`dip_denoise`; ``tile`` is cut to the image's shorter side.
    cache : path, optional
        FITS file holding the denoised image: read when it was made from the same pixels,
        method and settings, else (re)written.
    progress : bool
        Show a progress bar over tiles.

    Returns
    -------
    (SkyImage, DenoisedImage)
        A copy of ``sky`` with the denoised pixels (same grid, WCS, beam, header and
        path), and the denoising record (its ``runtime_s`` is that of the run that made
        the cache).

    Raises
    ------
    ValueError
        For an unknown method, or from :func:`dip_denoise`.
    """
    if method not in DENOISERS:
        raise ValueError(f"unknown denoising method {method!r}; expected one of {list(DENOISERS)}")
    tile = min(int(tile), *sky.shape)
    overlap = min(int(overlap), tile - 1)
    key = _cache_key(sky, method, settings, tile, overlap)
    result = None if cache is None else _read_cache(Path(cache), key, settings)
    if result is None:
        logger.info("denoising %s (%d x %d) with %s", sky.path, *sky.shape, method)
        result = dip_denoise(sky.data, settings=settings, tile=tile, overlap=overlap,
                             progress=progress)
        if cache is not None:
            _write_cache(Path(cache), sky, result, method, key)
    return dataclasses.replace(sky, data=result.image), result


def denoise_file(
    path: str | Path,
    out: str | Path,
    method: str = "dip",
    *,
    settings: DIPSettings = DIPSettings(),
    tile: int = DIP_TILE,
    overlap: int = DIP_OVERLAP,
    progress: bool = True,
) -> Path:
    """Denoise a FITS image into another FITS file (kept and reused as a cache).

    ``out`` gets the denoised 2-D image with the input's WCS, beam and telescope, the
    settings in its header and the per-tile stopping iterations in extensions ``ITERS`` and
    ``STOPPED``; an ``out`` made from the same image, method and settings is reused.
    Returns ``out``.
    Raises as :func:`denoise_sky` and :func:`radioseg_utils.io.fits_read.read_image`.
    """
    denoise_sky(read_image(path), method, settings=settings, tile=tile, overlap=overlap,
                cache=out, progress=progress)
    return Path(out)
