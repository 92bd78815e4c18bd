"""How an image is shown to a model, and which SDC1 corrections its catalogue gets.

The models of radioseg are trained on SDC1-like fields: a circular beam of about 2.5
pixels FWHM (every SDC1 band has 2.48, :attr:`radioseg_utils.core.bands.Band.beam_fwhm_pix`),
uniform noise, input scaled by the noise rms. An image from elsewhere (a user's own map)
differs in all of these, and the SDC1-specific corrections of the fluxes (the SDC1 primary
beam, the flux scale :data:`~radioseg_utils.simulation.simulate.FLUX_SCALE`, the
calibration trees fitted on SDC1 sources) do not describe it. :func:`plan_conditioning`
decides, from the image header and the model, how the prediction runs
(:class:`Conditioning`):

* SDC1 images (:func:`radioseg_utils.io.fits_read.is_sdc1_image`) run as they always did:
  the image as it is, scaled by one noise rms, SDC1 corrections applied;
* any other image is resampled (:class:`radioseg_utils.core.resample.Regrid`, bilinear) to
  the pixels per beam the model was trained on, and shown to it in units of the local
  noise, ``(image - background) / rms`` with the maps of
  :func:`radioseg_utils.core.noise.noise_mesh` (boxes of :data:`NOISE_BOX_BEAMS` beams); the
  model outputs are resampled back to the image grid, where sources are found and
  measured with the header beam, the local noise and the local pixel scale, and no SDC1
  correction is applied unless asked (``PredictConfig.corrections = "sdc1"``);
* an image that cannot be shown to the model is refused (:class:`ImageConditioningError`):
  a beam under :data:`MIN_BEAM_PIX` pixels, which no resampling can make well sampled
  (an image without any beam in its header is refused when read:
  :func:`radioseg_utils.io.fits_read.header_beam`);
* an image outside the model's training domain (:func:`domain_problems`: beam in pixels,
  beam shape, dynamic range, noise level or its variation) raises a
  :class:`TrainingDomainWarning` saying what and by how much, also kept in the catalogue
  metadata (``DOMAIN``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from radioseg_utils.core.bands import get_band
from radioseg_utils.core.noise import NoiseMesh
from radioseg_utils.core.resample import Regrid
from radioseg_utils.io.fits_read import SkyImage, is_sdc1_image
from radioseg_utils.model.files import read_sidecar
from radioseg_utils.postprocess.measure import pixel_scale_at

__all__ = [
    "MIN_BEAM_PIX",
    "RESAMPLE_TOLERANCE",
    "NOISE_BOX_BEAMS",
    "DOMAIN_BEAM_RATIO",
    "DOMAIN_AXIS_RATIO",
    "DOMAIN_MAX_PEAK_SNR",
    "DOMAIN_NOISE_RATIO",
    "CORRECTIONS",
    "TrainingDomainWarning",
    "ImageConditioningError",
    "Conditioning",
    "model_beam_pix",
    "plan_conditioning",
    "domain_problems",
]

#: Smallest beam FWHM (pixels, minor axis) of an image the model can be run on.
MIN_BEAM_PIX: float = 2.0
#: An image whose beam is within this fraction of the model's (in pixels) is not resampled.
RESAMPLE_TOLERANCE: float = 0.05
#: Side of the noise boxes, in beam FWHMs (50 px in SDC1 B1, photutils' and BANE's scale).
NOISE_BOX_BEAMS: float = 20.0
#: Image beam (pixels) over the model's, or its inverse, beyond which an image is outside
#: the training domain (it is resampled, which the model never saw).
DOMAIN_BEAM_RATIO: float = 1.25
#: Beam axis ratio beyond which an image is outside the domain (training beams are round).
DOMAIN_AXIS_RATIO: float = 1.3
#: Brightest pixel over the median rms beyond which an image is outside the domain: the
#: simulated training fields reach ~1.4e4 (B1 1000 h, 2048² px).
DOMAIN_MAX_PEAK_SNR: float = 3.0e4
#: Noise rms over the band's nearest nominal rms (SDC1 images), or largest over smallest
#: rms of the noise map (other images), beyond which an image is outside the domain.
DOMAIN_NOISE_RATIO: float = 3.0
#: Values of ``PredictConfig.corrections``: ``auto`` applies the SDC1 corrections to SDC1
#: images only, ``sdc1`` to every image, ``none`` to none.
CORRECTIONS: tuple[str, ...] = ("auto", "sdc1", "none")


class TrainingDomainWarning(UserWarning):
    """An image lies outside the domain the model was trained on (results less certain)."""


class ImageConditioningError(ValueError):
    """An image cannot be shown to the model (e.g. a beam under two pixels)."""


def model_beam_pix(model, band) -> float:
    """Beam FWHM in pixels of the training data of a model: the mean over the bands of its
    sidecar (``bands``, else ``band``); for a callable, that of ``band``."""
    sidecar = read_sidecar(model)
    names = sidecar.get("bands") or ([sidecar["band"]] if "band" in sidecar else [band])
    return float(np.mean([get_band(b).beam_fwhm_pix for b in names]))


@dataclass(frozen=True)
class Conditioning:
    """How one image is predicted (:func:`plan_conditioning`).

    Attributes
    ----------
    sdc1 : bool
        The image is an SDC1 image (:func:`~radioseg_utils.io.fits_read.is_sdc1_image`);
        where the SDC1 corrections apply follows from it
        (:func:`radioseg_utils.inference.config.resolve_config`).
    regrid : Regrid
        Image grid -> model grid (the identity for SDC1 images).
    noise_map : bool
        The model sees ``(image - background) / rms`` with local maps, and sources are
        measured with them; else the image as it is, scaled by one rms.
    beam_pix : float
        Image beam FWHM in pixels (geometric mean of the axes, local pixel scale at the
        image centre), before resampling.
    model_beam_pix : float
        Beam FWHM in pixels of the model's training data.
    beam_arcsec : (float, float, float)
        Header beam: major and minor FWHM (arcsec) and position angle (deg).
    pixel_arcsec : float
        Pixel size at the image centre (square root of the pixel's solid angle), arcsec.
    """

    sdc1: bool
    regrid: Regrid
    noise_map: bool
    beam_pix: float
    model_beam_pix: float
    beam_arcsec: tuple[float, float, float]
    pixel_arcsec: float

    @property
    def zoom(self) -> float:
        """Model pixels per image pixel (mean of the two axes)."""
        return float(np.mean(self.regrid.scale))

    @property
    def noise_box(self) -> int:
        """Side of the noise boxes in image pixels (:data:`NOISE_BOX_BEAMS` beams)."""
        return max(int(round(NOISE_BOX_BEAMS * self.beam_pix)), 8)

    @property
    def measure_beam_arcsec(self) -> float | None:
        """Beam FWHM sources are measured with: None (the band's) for SDC1 images, else the
        geometric mean of the header beam's axes (which gives its area)."""
        return None if self.sdc1 else math.sqrt(self.beam_arcsec[0] * self.beam_arcsec[1])

    def model_input(self, read: Callable[[slice, slice], np.ndarray], mesh: NoiseMesh | None,
                    rows: slice) -> np.ndarray:
        """Rows ``rows`` of the model grid (whole width) of what the model sees.

        ``read(ys, xs)`` returns a window of the image; ``mesh`` gives the background and
        rms maps when :attr:`noise_map`. A window equals the same rows of the whole
        image's input, bit for bit.
        """
        cols = slice(0, self.regrid.new_shape[1])
        if self.regrid.identity and not self.noise_map:
            return np.asarray(read(rows, cols), dtype=np.float32)
        ys, xs = self.regrid.source_span(rows, cols)
        data = np.asarray(read(ys, xs), dtype=np.float32)
        if self.noise_map:
            background, rms = mesh.maps(ys, xs)
            data = (data - background) / rms
        if self.regrid.identity:
            return data
        return self.regrid.apply(data, (ys.start, xs.start), rows, cols)

    def image_window(self, fetch: Callable[[slice, slice], np.ndarray], rows: slice,
                     cols: slice) -> np.ndarray:
        """A window ``(rows, cols)`` of the image grid of model outputs, ``fetch(ys, xs)``
        giving windows ``(h, w, C)`` of the model grid (resampled back when needed)."""
        if self.regrid.identity:
            return fetch(rows, cols)
        back = self.regrid.inverse()
        ys, xs = back.source_span(rows, cols)
        return back.apply(fetch(ys, xs), (ys.start, xs.start), rows, cols)

    def image_config(self, config):
        """``config`` with its pixel lengths (``grow``, ``min_area``, ``min_distance``,
        ``centre_distance``, given on the model grid) in image pixels."""
        if self.regrid.identity:
            return config
        zoom = self.zoom
        return replace(config, grow=config.grow / zoom,
                       min_area=max(1, int(round(config.min_area / zoom**2))),
                       min_distance=max(1, int(round(config.min_distance / zoom))),
                       centre_distance=max(1, int(round(config.centre_distance / zoom))))

    def meta(self, config, *, primary_beam: bool = False) -> dict:
        """Catalogue metadata (FITS-card keys) saying how the image was seen and corrected:
        ``SDC1``, ``CORRECT`` (the corrections applied: ``primary_beam``,
        ``flux_scale=<value>``, ``calibration=<file>``, or ``none``), ``BEAMMAJ``,
        ``BEAMMIN`` (arcsec), ``BEAMPA`` (deg), ``PIXSCALE`` (arcsec), ``BEAMPIX`` (image
        beam in pixels), ``ZOOM`` (model pixels per image pixel), ``NOISEMAP``.

        ``config`` is the resolved one (:func:`radioseg_utils.inference.config.resolve_config`);
        ``primary_beam`` says whether fluxes were divided by a primary beam."""
        applied = ["primary_beam"] if primary_beam else []
        if config.flux_scale not in (None, 1.0):
            applied.append(f"flux_scale={config.flux_scale:g}")
        if config.calibration not in (None, "model"):
            applied.append(f"calibration={Path(config.calibration).name}")
        return {"SDC1": self.sdc1, "CORRECT": ",".join(applied) or "none",
                "BEAMMAJ": self.beam_arcsec[0], "BEAMMIN": self.beam_arcsec[1],
                "BEAMPA": self.beam_arcsec[2], "PIXSCALE": self.pixel_arcsec,
                "BEAMPIX": self.beam_pix, "ZOOM": self.zoom, "NOISEMAP": self.noise_map}


def plan_conditioning(sky: SkyImage, shape: tuple[int, int], model, *,
                      noise_given: bool = False) -> Conditioning:
    """How to predict an image: grid, noise scaling, measurement beam.

    Parameters
    ----------
    sky : SkyImage
        The image or a section of it (its band, beam and WCS are read; the pixel scale is
        taken at the centre of the whole image).
    shape : (ny, nx)
        Shape of the whole image.
    model : path or callable
        The model (its sidecar gives the bands it was trained on).
    noise_given : bool
        The caller gives one noise rms for the image: no noise maps are used.

    Returns
    -------
    Conditioning

    Raises
    ------
    ImageConditioningError
        If the beam is under :data:`MIN_BEAM_PIX` pixels.
    """
    sdc1 = is_sdc1_image(sky)
    beam = (sky.beam.bmaj, sky.beam.bmin, sky.beam.bpa)
    target = model_beam_pix(model, sky.band)
    pixel = sky.pixel_arcsec
    if not sdc1:  # the pixel at the image centre: far from a projection's reference, not CDELT
        (ny, nx), (y0, x0) = shape, sky.origin
        local = pixel_scale_at(sky.wcs, [(nx - 1) / 2 - x0], [(ny - 1) / 2 - y0])[0]
        pixel = math.sqrt(abs(np.linalg.det(local))) * 3600.0
    beam_pix = math.sqrt(beam[0] * beam[1]) / pixel
    if beam[1] / pixel < MIN_BEAM_PIX:
        where = f" of {sky.path}" if sky.path else ""
        raise ImageConditioningError(
            f"the beam{where} is {beam[1] / pixel:.2f} px FWHM (minor axis, {beam[1]:.3g}\" on "
            f"{pixel:.3g}\" pixels): under {MIN_BEAM_PIX:g} px an image is under-sampled and "
            "cannot be resampled for the model")
    zoom = target / beam_pix
    regrid = (Regrid(tuple(shape), tuple(shape)) if sdc1 or abs(zoom - 1) <= RESAMPLE_TOLERANCE
              else Regrid.zoom(shape, zoom))
    return Conditioning(sdc1=sdc1, regrid=regrid, noise_map=not sdc1 and not noise_given, beam_pix=beam_pix,
                        model_beam_pix=target, beam_arcsec=beam, pixel_arcsec=pixel)


def domain_problems(conditioning: Conditioning, *, peak: float, noise: float,
                    rms_range: tuple[float, float], band) -> list[str]:
    """Ways in which an image lies outside the model's training domain, each saying by how much.

    An SDC1 image (any field of the SDC1 sky, however bright its sources) is checked for
    its depth only: its rms against the band's training levels. Any other image for its
    beam in pixels and shape, its dynamic range and how much its noise varies.

    Parameters
    ----------
    conditioning : Conditioning
        The plan of the image.
    peak : float
        Brightest finite pixel of the image (image units).
    noise : float
        Its rms (median of the noise map, or the one rms used).
    rms_range : (float, float)
        Smallest and largest rms of the noise map (both ``noise`` without one).
    band : str or Band
        Band of the image.

    Returns
    -------
    list of str
        Empty when the image is inside the domain.

    Examples
    --------
    >>> from radioseg_utils.core.resample import Regrid
    >>> c = Conditioning(False, Regrid((10, 10), (7, 7)), True, 3.6, 2.48,
    ...                  (864.0, 864.0, 0.0), 240.0)
    >>> domain_problems(c, peak=13.5, noise=0.05, rms_range=(0.04, 0.07), band="B2")
    ['beam of 3.60 px FWHM, the model was trained on 2.48 px (x1.45): the image was resampled by 0.70']
    """
    problems: list[str] = []
    if conditioning.sdc1:
        band = get_band(band)
        nominal = min(band.noise_jy.values(), key=lambda n: abs(math.log(noise / n)))
        if max(noise / nominal, nominal / noise) > DOMAIN_NOISE_RATIO:
            problems.append(f"noise rms {noise:.3g} Jy/beam is x{noise / nominal:.3g} the nearest "
                            f"{band.name} training level ({nominal:.3g})")
        return problems
    ratio = conditioning.beam_pix / conditioning.model_beam_pix
    if max(ratio, 1 / ratio) > DOMAIN_BEAM_RATIO:
        problems.append(f"beam of {conditioning.beam_pix:.2f} px FWHM, the model was trained on "
                        f"{conditioning.model_beam_pix:.2f} px (x{ratio:.2f}): the image was "
                        f"resampled by {conditioning.zoom:.2f}")
    bmaj, bmin, _ = conditioning.beam_arcsec
    if bmaj / bmin > DOMAIN_AXIS_RATIO:
        problems.append(f"elongated beam (axis ratio {bmaj / bmin:.2f}), the model was trained "
                        "on round beams")
    if noise > 0 and peak / noise > DOMAIN_MAX_PEAK_SNR:
        problems.append(f"dynamic range {peak / noise:.3g} (brightest pixel / rms), above the "
                        f"{DOMAIN_MAX_PEAK_SNR:.2g} of the training fields")
    if rms_range[0] > 0 and rms_range[1] / rms_range[0] > DOMAIN_NOISE_RATIO:
        problems.append(f"noise rms varies x{rms_range[1] / rms_range[0]:.3g} across the image "
                        "(training noise is uniform; the input is scaled by the local rms)")
    return problems
