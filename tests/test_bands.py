import math

import pytest

from radioseg_utils.core.bands import BANDS, UnknownBandError, get_band


@pytest.mark.parametrize("value", ["B1", "b1", "560", "560MHz", 560, 5.6e8, 560.0])
def test_get_band_by_name_or_frequency(value):
    assert get_band(value).name == "B1"


@pytest.mark.parametrize("value", ["B3", "", 700, None, "banana", math.nan])
def test_unknown_band_is_a_clear_error(value):
    with pytest.raises(UnknownBandError, match="unknown band"):
        get_band(value)


def test_beam_in_pixels_matches_sdc1():
    # SDC1: about 2.5 pixels per beam FWHM in every band
    for band in BANDS.values():
        assert 2.4 < band.beam_fwhm_pix < 2.6


def test_noise_scales_with_integration():
    b1 = get_band("B1")
    assert b1.noise(8) == pytest.approx(8.6e-6 / 3)
    assert b1.noise(100) == pytest.approx(b1.noise(8) * math.sqrt(8 / 100))
    assert b1.noise(1000) == pytest.approx(3.58e-7)
    with pytest.raises(ValueError, match="unknown integration 50 h"):
        b1.noise(50)
