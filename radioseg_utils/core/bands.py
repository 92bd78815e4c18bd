"""Registry of the SKA SDC1 observing bands.

Everything the package knows about a band (frequency, pixel scale, restoring beam and
noise per integration) lives in :data:`BANDS`, so no other module hard-codes these numbers.

The 1000 h noise levels are the rms measured on the SDC1 images (they include residual
sidelobe confusion); the 8 h values are one third of the SDC1 "cleaning" thresholds
(8.6, 2.1, 1.3 µJy/beam = 3 × rms(8 h), SDC1 data description §6.4), and the 100 h values
are the 8 h values scaled by sqrt(8 / 100) (thermal noise).

Pixel sizes are those of the SDC1 headers (field of view / 32768, e.g. CDELT = 1.67847e-4 deg
= 0.604249 arcsec in B1); the training catalogues' x, y columns follow them to 0.001 px.

References
----------
Bonaldi, A. et al. 2021, MNRAS 500, 3821, "Square Kilometre Array Science Data Challenge 1:
analysis and results", doi:10.1093/mnras/staa3023
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from radioseg_utils.core.gaussian import gaussian_area

__all__ = ["Band", "BANDS", "INTEGRATIONS", "get_band", "UnknownBandError"]

#: Integration times of the SDC1 images, in hours.
INTEGRATIONS: tuple[int, ...] = (8, 100, 1000)


class UnknownBandError(ValueError):
    """Raised when a band name or frequency is not one of the SDC1 bands."""


@dataclass(frozen=True)
class Band:
    """Properties of one SDC1 band.

    Attributes
    ----------
    name : str
        Short name, ``"B1"``, ``"B2"`` or ``"B5"``.
    freq_mhz : float
        Observing frequency in MHz.
    pixel_arcsec : float
        Pixel size in arcsec (square pixels).
    beam_fwhm_arcsec : float
        FWHM of the circular restoring beam in arcsec.
    noise_jy : dict
        Image rms in Jy/beam for each integration time in hours (8, 100, 1000).
    train_ra : tuple of float
        RA range (deg, -180..180 convention) of the SDC1 training area.
    train_dec : tuple of float
        Dec range (deg) of the SDC1 training area.
    fov_deg : float
        Side of the SDC1 image in degrees.
    """

    name: str
    freq_mhz: float
    pixel_arcsec: float
    beam_fwhm_arcsec: float
    noise_jy: dict[int, float] = field(default_factory=dict)
    train_ra: tuple[float, float] = (0.0, 0.0)
    train_dec: tuple[float, float] = (0.0, 0.0)
    fov_deg: float = 0.0

    @property
    def freq_hz(self) -> float:
        """Observing frequency in Hz."""
        return self.freq_mhz * 1e6

    @property
    def pixel_deg(self) -> float:
        """Pixel size in degrees."""
        return self.pixel_arcsec / 3600.0

    @property
    def beam_fwhm_pix(self) -> float:
        """Restoring-beam FWHM in pixels."""
        return self.beam_fwhm_arcsec / self.pixel_arcsec

    @property
    def beam_area_pix(self) -> float:
        """Area of the Gaussian restoring beam in pixels, ``pi FWHM^2 / (4 ln 2)``."""
        return float(gaussian_area(self.beam_fwhm_pix))

    def noise(self, integration_h: int) -> float:
        """Image rms in Jy/beam for an integration time in hours.

        Raises
        ------
        ValueError
            If ``integration_h`` is not one of :data:`INTEGRATIONS`.
        """
        try:
            return self.noise_jy[int(integration_h)]
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"unknown integration {integration_h!r} h for band {self.name}; "
                f"expected one of {sorted(self.noise_jy)}"
            ) from None


def _thermal(rms_8h: float) -> dict[int, float]:
    return {8: rms_8h, 100: rms_8h * math.sqrt(8.0 / 100.0)}


#: The three SDC1 bands, by name.
BANDS: dict[str, Band] = {
    "B1": Band(
        name="B1",
        freq_mhz=560.0,
        pixel_arcsec=0.604249,
        beam_fwhm_arcsec=1.5,
        noise_jy={**_thermal(8.6e-6 / 3), 1000: 3.58e-7},
        train_ra=(-0.6723, 0.0),
        train_dec=(-29.94, -29.4061),
        fov_deg=5.5,
    ),
    "B2": Band(
        name="B2",
        freq_mhz=1400.0,
        pixel_arcsec=0.241699,
        beam_fwhm_arcsec=0.60,
        noise_jy={**_thermal(2.1e-6 / 3), 1000: 6.80e-8},
        train_ra=(-0.2688, 0.0),
        train_dec=(-29.94, -29.7265),
        fov_deg=2.2,
    ),
    "B5": Band(
        name="B5",
        freq_mhz=9200.0,
        pixel_arcsec=0.0367803,
        beam_fwhm_arcsec=0.0913,
        noise_jy={**_thermal(1.3e-6 / 3), 1000: 3.85e-8},
        train_ra=(-0.04092, 0.0),
        train_dec=(-29.94, -29.9074),
        fov_deg=0.33,
    ),
}

_ALIASES = {"560": "B1", "1400": "B2", "9200": "B5"}


def get_band(band: str | int | float | Band) -> Band:
    """Return the :class:`Band` for a name (``"B1"``), or a frequency in MHz or Hz.

    Parameters
    ----------
    band : str, int, float or Band
        ``"B1"``/``"b1"``, ``560`` (MHz), ``5.6e8`` (Hz) or ``"560"``.

    Raises
    ------
    UnknownBandError
        If the value matches none of the SDC1 bands.

    Examples
    --------
    >>> get_band("B1").freq_mhz
    560.0
    >>> get_band(1.4e9).name
    'B2'
    """
    if isinstance(band, Band):
        return band
    if isinstance(band, str):
        key = band.strip().upper()
        key = _ALIASES.get(key.removesuffix("MHZ").strip(), key)
        if key in BANDS:
            return BANDS[key]
    else:
        try:
            value = float(band)
        except (TypeError, ValueError):
            value = math.nan
        for b in BANDS.values():
            for scale in (1.0, 1e6):
                if math.isclose(value, b.freq_mhz * scale, rel_tol=0.02):
                    return b
    raise UnknownBandError(
        f"unknown band {band!r}: expected one of {', '.join(BANDS)} "
        "or a frequency of 560, 1400 or 9200 MHz"
    )
