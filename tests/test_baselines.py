"""Classical baselines (PyBDSF, photutils, local maxima) on a simulated field with known truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.convolution import Gaussian2DKernel, convolve_fft
from astropy.table import Table

from radioseg_utils.baselines import (
    FINDERS,
    FinderResult,
    PeakSettings,
    PyBDSFError,
    PyBDSFSettings,
    ResourceMeter,
    run_peaks,
    run_photutils,
    run_pybdsf,
    srl_to_catalogue,
)
from radioseg_utils.baselines.peaks import find_local_maxima
from radioseg_utils.baselines.pybdsf_srl import read_pybdsf_srl
from radioseg_utils.baselines.result import as_sky_image, noise_map
from radioseg_utils.core.bands import get_band
from radioseg_utils.core.matching import match_positions
from radioseg_utils.io.catalogue import to_scorer_dataframe, wrap_ra
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.postprocess.measure import GAUSS_TO_LAS, ClassRule

BAND = get_band("B1")
SHAPE = (160, 320)  # (ny, nx): two PyBDSF tiles of 192 px along x
N_BRIGHT, N_FAINT = 16, 6
SEED = 7


def _simulated_field(path, seed: int = SEED):
    """B1 field of circular Gaussian sources in beam-correlated noise, and its truth."""
    rng = np.random.default_rng(seed)
    sigma = BAND.noise(1000)
    beam_sigma = BAND.beam_fwhm_pix / np.sqrt(8 * np.log(2))
    white = rng.normal(size=SHAPE)
    noise = convolve_fft(white, Gaussian2DKernel(beam_sigma), boundary="wrap")
    image = noise * sigma / noise.std()
    xy = []
    while len(xy) < N_BRIGHT + N_FAINT:  # at least 12 px (7 beams) apart, 10 px from edges
        cand = rng.uniform((10, 10), (SHAPE[1] - 10, SHAPE[0] - 10))
        if all(np.hypot(*(cand - p)) > 12 for p in xy):
            xy.append(cand)
    xy = np.array(xy)
    snr = np.concatenate([rng.uniform(25, 200, N_BRIGHT), rng.uniform(5, 12, N_FAINT)])
    fwhm_arcsec = rng.uniform(0.0, 1.2, snr.size)  # intrinsic, less than a beam
    obs_pix = np.hypot(fwhm_arcsec, BAND.beam_fwhm_arcsec) / BAND.pixel_arcsec
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for (x0, y0), s, w in zip(xy, snr, obs_pix):
        image += s * sigma * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * (w / 2.3548) ** 2))
    wcs = sdc1_wcs(BAND, SHAPE)
    write_image(path, image, sdc1_header(wcs, BAND))
    ra, dec = wcs.pixel_to_world_values(xy[:, 0], xy[:, 1])
    flux = snr * sigma * (obs_pix * BAND.pixel_arcsec / BAND.beam_fwhm_arcsec) ** 2
    n = snr.size
    truth = Table(
        {
            "id": np.arange(n), "ra_core": wrap_ra(ra), "dec_core": dec, "ra_cent": wrap_ra(ra),
            "dec_cent": dec, "flux": flux, "core_frac": np.zeros(n), "b_maj": fwhm_arcsec,
            "b_min": fwhm_arcsec, "pa": np.zeros(n), "size": np.full(n, 2),
            "class": np.full(n, 3), "x": xy[:, 0], "y": xy[:, 1], "peak_snr": snr,
        }
    )
    return read_image(path), truth


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    return _simulated_field(tmp_path_factory.mktemp("field") / "field.fits")


@pytest.fixture(scope="module")
def pybdsf_result(field, tmp_path_factory):
    return run_pybdsf(field[0], workdir=tmp_path_factory.mktemp("pybdsf"))


def _bright_completeness(result: FinderResult, truth: Table) -> tuple[float, int]:
    """Completeness of S/N > 20 sources and number of unmatched detections."""
    match = match_positions(result.catalogue, truth, radius_arcsec=BAND.beam_fwhm_arcsec)
    bright = truth["peak_snr"] > 20
    return np.isin(np.flatnonzero(bright), match.true).mean(), match.fp.size


@pytest.mark.slow
def test_pybdsf_finds_bright_sources(pybdsf_result, field):
    completeness, n_false = _bright_completeness(pybdsf_result, field[1])
    assert completeness >= 0.9
    assert n_false <= 2
    assert pybdsf_result.finder == "pybdsf" and pybdsf_result.log_path.is_file()
    assert pybdsf_result.runtime_s > 0 and pybdsf_result.peak_rss_mb >= 0


def test_pybdsf_fluxes_and_sizes(pybdsf_result, field):
    cat, truth = pybdsf_result.catalogue, field[1]
    match = match_positions(cat, truth, radius_arcsec=BAND.beam_fwhm_arcsec)
    bright = truth["peak_snr"][match.true] > 20
    ratio = cat["flux"][match.pred][bright] / truth["flux"][match.true][bright]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)
    assert np.all(cat["b_maj"] >= 0) and np.all(np.isin(cat["class"], (1, 3)))
    assert -180 <= cat["ra_core"].min() and cat["ra_core"].max() < 180


def test_pybdsf_islands_align_with_wcs(pybdsf_result, field):
    image, truth = field
    cat, labels = pybdsf_result.catalogue, pybdsf_result.labels
    assert labels.shape == image.shape and labels.dtype == np.int32
    match = match_positions(cat, truth, radius_arcsec=BAND.beam_fwhm_arcsec)
    for pred, true in zip(match.pred, match.true):
        if truth["peak_snr"][true] > 20:
            x, y = np.rint(truth["x"][true]).astype(int), np.rint(truth["y"][true]).astype(int)
            assert labels[y, x] == cat["label"][pred]
            # the catalogue pixel position matches its sky position through the WCS
            ra, dec = image.wcs.pixel_to_world_values(cat["x"][pred], cat["y"][pred])
            assert wrap_ra(ra) == pytest.approx(cat["ra_cent"][pred], abs=1e-7)
    assert labels[:5, :5].max() == 0  # no island in the source-free corner


def test_pybdsf_submission_passes_scorer(pybdsf_result, field):
    from ska_sdc import Sdc1Scorer

    truth = field[1]
    result = Sdc1Scorer(to_scorer_dataframe(pybdsf_result.catalogue), to_scorer_dataframe(truth), 560)
    score = result.run(mode=0, train=False, detail=False)
    assert score.n_match >= 0.9 * N_BRIGHT
    assert score.n_false <= 2
    assert score.value > 0.5 * N_BRIGHT


@pytest.mark.slow
def test_pybdsf_tiled_matches_whole(pybdsf_result, field, tmp_path):
    tiled = run_pybdsf(field[0], workdir=tmp_path, tile=192, overlap=64)
    assert len(list(tmp_path.glob("tile_*"))) == 2
    whole = pybdsf_result.catalogue
    match = match_positions(tiled.catalogue, whole, radius_arcsec=0.1)
    bright = whole["peak_snr"] > 20
    assert np.isin(np.flatnonzero(bright), match.true).all()
    assert abs(len(tiled.catalogue) - len(whole)) <= 1  # no duplicates from the overlap
    x, y = (np.rint(tiled.catalogue[c]).astype(int) for c in ("x", "y"))
    assert np.all(tiled.labels[y, x] == tiled.catalogue["label"])  # labels stitched in place


@pytest.mark.slow
def test_pybdsf_empty_field_gives_empty_catalogue(tmp_path):
    wcs = sdc1_wcs(BAND, (80, 80))
    noise = np.random.default_rng(3).normal(0.0, 1e-6, (80, 80))
    path = write_image(tmp_path / "noise.fits", noise, sdc1_header(wcs, BAND))
    result = run_pybdsf(path, workdir=tmp_path / "run")
    assert len(result.catalogue) == 0
    assert result.labels.shape == (80, 80) and result.labels.max() == 0
    assert "flux" in result.catalogue.colnames


@pytest.mark.slow
def test_pybdsf_failure_is_reported(field, tmp_path):
    with pytest.raises(PyBDSFError, match="PyBDSF failed .* log: .*worker.log"):
        run_pybdsf(field[0], workdir=tmp_path, settings=PyBDSFSettings(thresh="bogus"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"noise": -1.0}, "noise must be a positive number"), ({"tile": 64, "overlap": 64}, "overlap")],
)
def test_pybdsf_bad_options(field, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_pybdsf(field[0], workdir=tmp_path, **kwargs)


@pytest.mark.slow
def test_pybdsf_real_cutout_matches_sdc1_baseline(sdc1_dir, tmp_path):
    reference = read_pybdsf_srl(sdc1_dir / "B1_1000h_0.05tr.pybdsm.srl")
    result = run_pybdsf(sdc1_dir / "B1_1000h_0.05tr.fits", workdir=tmp_path)
    assert len(reference) == 44  # the SDC1 baseline list (PyBDSM 1.9.2)
    assert abs(len(result.catalogue) - len(reference)) <= 0.2 * len(reference)
    match = match_positions(result.catalogue, reference, radius_arcsec=0.5)
    assert match.tp >= 0.85 * len(reference)


def test_srl_to_catalogue_exact(field):
    image = field[0]
    srl = Table(
        {
            "ra_core": [-0.001, 0.0], "dec_core": [-30.0, -30.0], "ra_cent": [-0.001, 0.0],
            "dec_cent": [-30.0, -30.0], "flux": [2e-5, 1e-5], "b_maj": [0.5, 4.0],
            "b_min": [0.2, 1.0], "pa": [10.0, 20.0], "Peak_flux": [1.5e-5, 2e-6],
            "Isl_id": [0, 3], "Isl_rms": [4e-7, 5e-7],
        }
    )
    cat = srl_to_catalogue(srl, image, primary_beam=0.5, rule=ClassRule(extended_beams=2.0))
    assert cat["flux"].tolist() == pytest.approx([4e-5, 2e-5])
    assert cat["class"].tolist() == [3, 1] and cat["size"].tolist() == [2, 1]
    assert cat["core_frac"].tolist() == pytest.approx([0.0, 0.2])
    assert cat["b_maj"][1] == pytest.approx(4.0 * GAUSS_TO_LAS)
    assert cat["label"].tolist() == [1, 4]
    assert cat["peak_snr"].tolist() == pytest.approx([37.5, 4.0])
    # RA 0, Dec -30 lies at the reference pixel, 0-based (nx/2 - 1, ny/2 - 1) as in SDC1
    assert (cat["x"][1], cat["y"][1]) == pytest.approx((SHAPE[1] / 2 - 1, SHAPE[0] / 2 - 1))
    with pytest.raises(ValueError, match="lacks column"):
        srl_to_catalogue(srl[["flux"]], image)


@pytest.mark.parametrize("finder", [run_photutils, run_peaks])
def test_other_finders_on_the_same_field(finder, field):
    image, truth = field
    result = finder(image)
    completeness, n_false = _bright_completeness(result, truth)
    assert completeness >= 0.9
    assert n_false <= 4
    assert result.labels.shape == image.shape
    match = match_positions(result.catalogue, truth, radius_arcsec=BAND.beam_fwhm_arcsec)
    bright = truth["peak_snr"][match.true] > 20
    ratio = result.catalogue["flux"][match.pred][bright] / truth["flux"][match.true][bright]
    assert 0.7 < np.median(ratio) < 1.3
    for pred, true in zip(match.pred, match.true):  # each source sits in its own label
        x, y = np.rint(truth["x"][true]).astype(int), np.rint(truth["y"][true]).astype(int)
        assert result.labels[y, x] == result.catalogue["label"][pred]


def test_peaks_exact_answer():
    data = np.zeros((9, 12))
    data[4, 3], data[4, 4], data[2, 9] = 10.0, 6.0, 7.0
    peaks = find_local_maxima(data, threshold=4.0, min_distance=1)
    assert peaks.tolist() == [[4, 3], [2, 9]]
    data[2, 9] = np.nan
    assert find_local_maxima(data, threshold=4.0, min_distance=1).tolist() == [[4, 3]]


def test_peaks_and_photutils_on_pure_noise_are_nearly_empty(tmp_path):
    wcs = sdc1_wcs(BAND, (128, 128))
    data = np.random.default_rng(5).normal(0.0, 1e-6, (128, 128))
    path = write_image(tmp_path / "noise.fits", data, sdc1_header(wcs, BAND))
    assert len(run_peaks(path).catalogue) <= 2  # P(>4 sigma) * 16384 ~ 0.5
    assert len(run_photutils(path, noise=1e-6).catalogue) <= 2


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: PeakSettings(threshold_snr=1.0, label_snr=2.0), ValueError, "threshold_snr"),
        (lambda: noise_map(np.ones((3, 3)), (4, 4)), ValueError, "shape"),
        (lambda: noise_map(0.0, (4, 4)), ValueError, "positive"),
        (lambda: as_sky_image(42), TypeError, "SkyImage or a FITS path"),
    ],
)
def test_bad_inputs(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_finders_registry_share_a_signature(field):
    assert set(FINDERS) == {"pybdsf", "photutils", "peaks", "unet"}
    result = FINDERS["peaks"](field[0], noise=BAND.noise(1000))
    assert isinstance(result, FinderResult) and result.finder == "peaks"


def test_resource_meter_sees_an_allocation():
    with ResourceMeter() as meter:
        block = np.ones(50_000_000 // 8)
        block += 1.0
    assert meter.runtime_s > 0
    assert 40.0 <= meter.peak_rss_mb < 200.0
