"""A user's own image (not SDC1): header beam, SDC1 recognition, resampling to the model's
pixels per beam, background and rms maps, blanked borders, training-domain warnings, the
corrections metadata, and the comparison with Aegean's catalogue of the Parkes image."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.special import expit

from radioseg_utils.baselines.aegean import aegean_to_catalogue
from radioseg_utils.core.bands import get_band
from radioseg_utils.core.noise import box_statistics, noise_mesh
from radioseg_utils.core.resample import Regrid, linear_sample
from radioseg_utils.evaluation.reference import compare_with_reference
from radioseg_utils.inference import predict as pr
from radioseg_utils.inference.conditioning import (
    ImageConditioningError,
    TrainingDomainWarning,
    plan_conditioning,
)
from radioseg_utils.inference.config import PredictConfig
from radioseg_utils.io.catalogue import CatalogueFormatError, read_aegean_components
from radioseg_utils.io.fits_read import SDC1FormatError, header_beam, is_sdc1_image, read_image
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.postprocess.decompose import decompose_sources
from radioseg_utils.simulation.simulate import FLUX_SCALE

PIXEL = 60.0  # arcsec
BEAM = 216.0  # arcsec: 3.6 px, as the Parkes image (14.4' on 4')
SHAPE = (120, 130)
BACKGROUND = -0.4  # Jy/beam: blanked pixels read as 0 would be +8 sigma and more
#: (x, y, flux in Jy) of point sources; one 4 px from the blanked left border (x < 10)
SOURCES = [(14.0, 60.0, 1.2), (40.3, 30.7, 0.9), (70.0, 80.0, 2.0), (100.6, 40.2, 1.5),
           (110.0, 95.0, 3.0), (60.0, 20.0, 0.8)]


def rms_at(x):
    """The injected noise rms, rising from 0.03 to 0.06 Jy/beam left to right."""
    return 0.03 + 0.03 * np.asarray(x) / SHAPE[1]


def own_header(beam_arcsec=BEAM, *, aips=False) -> fits.Header:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crval = [290.0, -65.0]
    wcs.wcs.crpix = [SHAPE[1] / 2, SHAPE[0] / 2]
    wcs.wcs.cdelt = [-PIXEL / 3600, PIXEL / 3600]
    header = wcs.to_header()
    header["BUNIT"] = "JY/BEAM"
    header["RESTFRQ"] = 1.4204e9
    if aips:
        header["HISTORY"] = (f"AIPS   CLEAN BMAJ=  {beam_arcsec / 3600:.4E} BMIN=  "
                             f"{beam_arcsec / 3600:.4E} BPA=   0.00")
    else:
        header["BMAJ"] = header["BMIN"] = beam_arcsec / 3600
        header["BPA"] = 0.0
    return header


def own_scene(path, rng, *, beam_arcsec=BEAM, aips=False):
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(float)
    sigma = beam_arcsec / PIXEL / np.sqrt(8 * np.log(2))
    data = BACKGROUND + rng.normal(0.0, 1.0, SHAPE) * rms_at(x)
    for x0, y0, flux in SOURCES:  # point sources: peak (Jy/beam) = integrated flux (Jy)
        data += flux * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
    data[:, :10] = np.nan
    data[110:, :] = np.nan
    return write_image(path, data.astype(np.float32), own_header(beam_arcsec, aips=aips))


def snr_model(batch):
    """A 'model' for input in units of the local noise: probability = sigmoid(4 (S/N - 5))."""
    return expit(4.0 * (batch - 5.0))


@pytest.fixture
def own_image(tmp_path, rng):
    return own_scene(tmp_path / "own.fits", rng)


def predict(path, out, **kwargs):
    with pytest.warns(TrainingDomainWarning, match=r"beam of 3\.60 px FWHM.*resampled by 0\.69"):
        return pr.predict_image(path, snr_model, out_dir=out, progress=False,
                                config=PredictConfig(tile=64, overlap=16, **kwargs))


# ----------------------------------------------------------------------------- header
def test_beam_from_keywords_or_an_aips_history_card(tmp_path, rng):
    header = own_header(aips=True)
    assert "BMAJ" not in header
    beam = header_beam(header)
    assert (beam.bmaj, beam.bmin, beam.bpa) == pytest.approx((BEAM, BEAM, 0.0))
    beam = read_image(own_scene(tmp_path / "aips.fits", rng, aips=True)).beam
    assert (beam.bmaj, beam.bmin, beam.bpa) == pytest.approx((BEAM, BEAM, 0.0), rel=1e-4)
    del header["HISTORY"]
    header["HISTORY"] = "AIPS   CLEAN NITER=  1000 PRODUCT=1"
    with pytest.raises(SDC1FormatError, match="no restoring beam: header keyword BMAJ is missing"):
        header_beam(header, "x.fits")
    header["BMAJ"], header["BMIN"] = 0.1, -1.0
    with pytest.raises(SDC1FormatError, match="not positive"):
        header_beam(header)


def test_sdc1_images_are_recognised_and_others_not(tmp_path, own_image):
    band = get_band("B1")
    sdc1 = write_image(tmp_path / "s.fits", np.zeros((40, 40), np.float32),
                       sdc1_header(sdc1_wcs(band, (40, 40)), band))
    assert is_sdc1_image(read_image(sdc1))
    own = read_image(own_image)
    assert own.band.name == "B2" and not is_sdc1_image(own)  # 1.42 GHz, but another grid
    b2 = get_band("B2")
    other_pixel = sdc1_wcs(b2, (40, 40), pixel_arcsec=b2.pixel_arcsec * 1.5)
    path = write_image(tmp_path / "b2.fits", np.zeros((40, 40), np.float32), sdc1_header(other_pixel, b2))
    assert not is_sdc1_image(read_image(path))


def test_sdc1_images_keep_their_corrections_and_are_checked_for_depth(tmp_path, rng):
    band = get_band("B1")
    header = sdc1_header(sdc1_wcs(band, (64, 64)), band)
    quiet = write_image(tmp_path / "quiet.fits", rng.normal(0, 1e-6, (64, 64)).astype(np.float32), header)
    config = PredictConfig(tile=64, overlap=16)
    cat = pr.predict_image(quiet, np.zeros_like, out_dir=tmp_path / "a", progress=False,
                           config=config).catalogue
    assert (cat.meta["SDC1"], cat.meta["CORRECT"], cat.meta["NOISEMAP"], cat.meta["ZOOM"]) == (
        True, f"flux_scale={FLUX_SCALE:g}", False, 1.0)
    assert cat.meta["DOMAIN"] == "inside"
    none = pr.predict_image(quiet, np.zeros_like, out_dir=tmp_path / "b", progress=False,
                            config=PredictConfig(tile=64, overlap=16, corrections="none")).catalogue
    assert none.meta["CORRECT"] == "none"
    loud = write_image(tmp_path / "loud.fits", rng.normal(0, 1e-4, (64, 64)).astype(np.float32), header)
    with pytest.warns(TrainingDomainWarning, match=r"noise rms 0\.0001\d* Jy/beam is x3\d\.\d the nearest B1"):
        pr.predict_image(loud, np.zeros_like, out_dir=tmp_path / "c", progress=False, config=config)


# ----------------------------------------------------------------------------- grids and noise
def test_regrid_windows_equal_the_whole_and_blanks_keep_their_extent(rng):
    data = rng.normal(size=(37, 41))
    data[:5] = np.nan
    grid = Regrid.zoom(data.shape, 0.7)
    assert grid.new_shape == (26, 29) and not grid.identity
    whole = grid.apply(data, (0, 0), slice(0, 26), slice(0, 29))
    rows, cols = slice(9, 20), slice(3, 17)
    ys, xs = grid.source_span(rows, cols)
    assert np.array_equal(grid.apply(data[ys, xs], (ys.start, xs.start), rows, cols), whole[rows, cols])
    assert np.isnan(whole[:3]).all() and np.isfinite(whole[4:]).all()
    with pytest.raises(ValueError, match="outside the window"):
        linear_sample(data[10:12], np.array([0.0]), np.array([0.0]), origin=(10, 0))
    back = grid.inverse()
    assert back.new_shape == data.shape and Regrid((5, 5), (5, 5)).identity


def test_noise_mesh_follows_the_noise_ignores_blanks_and_windows_agree(rng):
    x = np.arange(200.0)
    image = 2.0 + rng.normal(size=(160, 200)) * (1.0 + x / 100.0)  # rms 1 -> 3
    image[:, :30] = np.nan
    mesh = noise_mesh(lambda y0, y1: image[y0:y1], image.shape, box=40)
    bkg, rms = mesh.maps(slice(0, 160), slice(0, 200))
    assert np.isfinite(rms).all() and np.isfinite(bkg).all()
    assert rms[80, 60] == pytest.approx(1.6, rel=0.15) and rms[80, 180] == pytest.approx(2.8, rel=0.15)
    assert np.median(bkg) == pytest.approx(2.0, abs=0.1)
    part = mesh.maps(slice(50, 90), slice(120, 170))
    assert np.array_equal(part[1], rms[50:90, 120:170]) and np.array_equal(part[0], bkg[50:90, 120:170])
    empty = box_statistics(np.full((10, 30), np.nan), np.array([0, 10]), 10)
    assert np.isnan(empty[0]).all() and np.isnan(empty[1]).all()
    with pytest.raises(ValueError, match="no box has enough finite pixels"):
        noise_mesh(lambda y0, y1: np.full((y1 - y0, 50), np.nan), (50, 50), box=20)


def test_plan_resamples_to_the_models_pixels_per_beam_and_refuses_undersampled(tmp_path, rng, own_image):
    plan = plan_conditioning(read_image(own_image), SHAPE, snr_model)
    assert not plan.sdc1 and plan.noise_map
    assert plan.beam_pix == pytest.approx(3.6, rel=0.01)
    assert plan.zoom == pytest.approx(get_band("B2").beam_fwhm_pix / 3.6, rel=0.02)
    assert plan.measure_beam_arcsec == pytest.approx(BEAM, rel=1e-4)
    assert not plan_conditioning(read_image(own_image), SHAPE, snr_model, noise_given=True).noise_map
    coarse = own_scene(tmp_path / "coarse.fits", rng, beam_arcsec=1.5 * PIXEL)
    with pytest.raises(ImageConditioningError, match=r"beam of .*coarse.fits is 1.50 px FWHM.*under 2 px"):
        pr.predict_image(coarse, snr_model, out_dir=tmp_path / "c", progress=False)


# ----------------------------------------------------------------------------- predict
def test_own_image_fluxes_from_its_beam_without_sdc1_corrections(own_image, tmp_path):
    result = predict(own_image, tmp_path / "out")
    cat = result.catalogue
    truth = Table({"ra_core": [0.0] * len(SOURCES), "dec_core": [0.0] * len(SOURCES),
                   "flux": [f for _, _, f in SOURCES]})
    wcs = read_image(own_image).wcs
    truth["ra_core"], truth["dec_core"] = wcs.pixel_to_world_values([s[0] for s in SOURCES],
                                                                    [s[1] for s in SOURCES])
    comparison = compare_with_reference(cat, truth, radius_arcsec=BEAM / 2)
    assert comparison.matched_fraction == 1.0 and comparison.extra.size == 0  # none at the border
    assert np.allclose(comparison.flux_ratio, 1.0, atol=0.1)
    expected_snr = np.array([f / rms_at(x) for x, _, f in SOURCES])[comparison.match.true]
    assert np.allclose(np.asarray(cat["peak_snr"])[comparison.match.pred] / expected_snr, 1.0, atol=0.25)
    meta = cat.meta
    assert (meta["SDC1"], meta["CORRECT"], meta["NOISEMAP"]) == (False, "none", True)
    assert meta["BEAMMAJ"] == pytest.approx(BEAM, rel=1e-4) and meta["ZOOM"] == pytest.approx(0.69, abs=0.01)
    assert "beam of 3.60 px" in meta["DOMAIN"] and "CALIB" not in meta
    header = fits.getheader(result.paths["fits"], 1)
    assert (header["CORRECT"], header["SDC1"]) == ("none", False)
    # components listed by default on an image that is not SDC1, one per point source here
    comps = Table.read(result.paths["components_fits"])
    assert len(comps) == len(cat) and comps.meta["CONTENT"].startswith("Gaussian components")
    assert np.array_equal(np.sort(comps["source_id"]), cat["id"]) and comps["flux"].unit == "Jy"
    assert result.paths["components_ecsv"].is_file()
    # background and rms maps on the input grid, blank where the image is
    with fits.open(result.paths["rms"]) as rms, fits.open(result.paths["background"]) as bkg:
        assert rms[0].data.shape == SHAPE
        assert WCS(rms[0].header).to_header() == WCS(own_header()).to_header()
        assert np.isnan(rms[0].data[:, :10]).all() and np.isnan(rms[0].data[110:]).all()
        assert np.nanmedian(bkg[0].data) == pytest.approx(BACKGROUND, abs=0.02)
        assert rms[0].data[60, 30] == pytest.approx(rms_at(30), rel=0.2)
        assert rms[0].data[60, 120] == pytest.approx(rms_at(120), rel=0.2)
    local = np.asarray(cat["noise"])
    assert np.all(local > 0.025) and np.ptp(local) > 0.01  # the local rms, not one number
    with fits.open(result.paths["segmentation"]) as seg:
        assert seg[0].data.shape == SHAPE and not seg[0].data[:, :10].any()


def test_sdc1_corrections_only_when_asked(own_image, tmp_path):
    plain = predict(own_image, tmp_path / "a").catalogue
    asked = predict(own_image, tmp_path / "b", corrections="sdc1").catalogue
    assert np.allclose(asked["flux"], np.asarray(plain["flux"]) / FLUX_SCALE)
    assert asked.meta["CORRECT"] == f"flux_scale={FLUX_SCALE:g}"


def test_streamed_and_in_memory_agree_on_an_own_image(own_image, tmp_path, monkeypatch):
    monkeypatch.setattr(pr, "CATALOGUE_BLOCK", 48)
    monkeypatch.setattr(pr, "BLOCK_MARGIN", 12)
    on_disk = predict(own_image, tmp_path)
    with pytest.warns(TrainingDomainWarning):
        prob, labels, cat, threshold = pr.segment(read_image(own_image), snr_model,
                                                  config=PredictConfig(tile=64, overlap=16))
    with fits.open(on_disk.paths["segmentation"]) as seg, fits.open(on_disk.paths["probability"]) as pm:
        assert np.array_equal(labels, seg[0].data) and np.array_equal(prob, pm[0].data)
    assert threshold == on_disk.threshold and len(cat) == len(SOURCES)
    for name in ("id", "ra_core", "flux", "b_maj", "peak_snr", "noise"):
        assert np.array_equal(cat[name], on_disk.catalogue[name])
    # the components, listed block by block, are those of the whole image
    sky = read_image(own_image)
    with fits.open(on_disk.paths["rms"]) as rms, fits.open(on_disk.paths["background"]) as bkg:
        cat["label"] = cat["id"]
        whole = decompose_sources(sky.data, labels, cat, sky.wcs, noise=rms[0].data,
                                  background=bkg[0].data, beam_fwhm_arcsec=BEAM)
    parts = on_disk.components
    assert parts["component"].tolist() == list(range(1, len(whole) + 1))
    assert np.array_equal(parts["source_id"], whole["label"])
    for name in ("ra", "dec", "peak_flux", "flux"):
        assert np.allclose(parts[name], whole[name], rtol=1e-12, atol=0), name


def test_cli_corrections_option_reaches_the_config(tmp_path, monkeypatch):
    from radioseg_utils.cli import main

    seen = {}

    def fake(path, model, **kwargs):
        seen.update(kwargs)
        return pr.PredictResult(n_sources=0, threshold=0.5, noise=1.0, paths={})

    monkeypatch.setattr(pr, "predict_image", fake)
    image = tmp_path / "img.fits"
    image.write_bytes(b"")
    assert main(["predict", str(image), "--out", str(tmp_path), "--corrections", "none"]) == 0
    assert seen["config"].corrections == "none" and seen["config"].components is None
    assert main(["predict", str(image), "--out", str(tmp_path), "--no-components"]) == 0
    assert seen["config"].components is False
    assert main(["predict", str(image), "--out", str(tmp_path), "--corrections", "x"]) == 2
    with pytest.raises(ValueError, match="corrections must be one of auto, sdc1, none"):
        PredictConfig(corrections="always")


# ----------------------------------------------------------------------------- Aegean
def aegean_table(path, **drop):
    table = Table({"ra": [290.0, 291.0], "dec": [-65.0, -64.0], "peak_flux": [1.0, 0.5],
                   "int_flux": [1.2, 0.5], "a": [1000.0, 864.0], "b": [900.0, 864.0],
                   "pa": [30.0, -60.0], "local_rms": [0.05, 0.1], "background": [0.0, 0.0],
                   "psf_a": [864.0, 864.0], "psf_b": [864.0, 864.0], "island": [1, 2],
                   "flags": [0, 4]})
    table.remove_columns(list(drop))
    table.write(path, format="fits")
    return path


def test_read_aegean_components(tmp_path):
    cat = read_aegean_components(aegean_table(tmp_path / "c.fits"))
    assert cat["ra_core"].tolist() == [-70.0, -69.0] and cat["flux"].unit == "Jy"
    assert cat["b_maj"][0] == pytest.approx(np.sqrt(1000.0**2 - 864.0**2)) and cat["b_min"][1] == 0.0
    assert cat["pa_eon"].tolist() == [30.0, 120.0] and cat["pa"].tolist() == [60.0, 150.0]
    assert cat["peak_snr"].tolist() == [20.0, 5.0] and cat["flags"].tolist() == [0, 4]
    with pytest.raises(CatalogueFormatError, match="column.s. int_flux, psf_b missing"):
        read_aegean_components(aegean_table(tmp_path / "d.fits", int_flux=1, psf_b=1))
    (tmp_path / "e.fits").write_text("not fits")
    with pytest.raises(CatalogueFormatError, match="not a FITS table"):
        read_aegean_components(tmp_path / "e.fits")


@pytest.fixture(scope="module")
def parkes():
    from radioseg_utils.io.registry import DataNotFoundError, fetch

    try:
        return fetch("1904-66_SIN.fits"), fetch("1904_comp.fits")
    except DataNotFoundError as exc:
        pytest.skip(f"the Parkes image and Aegean's catalogue are not in the data folders: {exc}")


@pytest.mark.realdata
def test_parkes_image_against_aegean(parkes, tmp_path):
    """The shipped model on a real 1.4 GHz Parkes map: sources and fluxes against Aegean's."""
    image, components = parkes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingDomainWarning)
        result = pr.predict_image(image, out_dir=tmp_path, progress=False)
    cat = result.catalogue
    assert cat.meta["CORRECT"] == "none" and not cat.meta["SDC1"]
    half_beam = cat.meta["BEAMMAJ"] / 2
    aegean = read_aegean_components(components)
    # component against component (Aegean's table is of Gaussian components): 47 of 51
    # (92 %) in the measurement this was written with; the four misses are a 3.8-sigma
    # component, two extended ones (36' and 54') centred on or beside the blanked edge,
    # and a 40' one 1.2 beams from its island's brighter component
    comparison = compare_with_reference(result.components, aegean, radius_arcsec=half_beam,
                                        columns=("ra", "dec"))
    summary = comparison.summary()
    assert summary["reference"] == 51
    assert summary["matched_fraction"] >= 0.9, summary
    assert abs(summary["median_flux_ratio"] - 1.0) < 0.1, summary
    # by source: one row per source, so the further components of an Aegean island
    # 0.6-1.4 beams from the one we match count as missed (44 of 51 measured)
    by_source = compare_with_reference(cat, aegean, radius_arcsec=half_beam).summary()
    assert by_source["matched"] >= 42, by_source
    assert abs(by_source["median_flux_ratio"] - 1.0) < 0.1, by_source
    # as sources (Aegean's 45 islands, each at its brightest component, fluxes summed):
    # 41 of 45 (91 %) measured
    islands = aegean_to_catalogue(Table.read(components), read_image(image))
    by_island = compare_with_reference(cat, islands, radius_arcsec=half_beam).summary()
    assert by_island["reference"] == 45 and by_island["matched_fraction"] >= 0.9, by_island
    assert abs(by_island["median_flux_ratio"] - 1.0) < 0.1, by_island
