"""Tests of radioseg_utils.inference.predict: image file -> segmentation, probabilities, catalogue."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from radioseg_utils.core.bands import get_band
from radioseg_utils.inference import predict as pr
from radioseg_utils.inference.config import PredictConfig
from radioseg_utils.io.catalogue import read_submission
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.io.fits_write import write_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.model.files import DEFAULT_MODEL
from radioseg_utils.simulation.simulate import FLUX_SCALE

BAND = get_band("B1")
NOISE = 1e-6
SHAPE = (150, 170)
#: (x, y, flux Jy) of point sources; S/N of the peaks 30..200
SOURCES = [(30.2, 40.7, 3e-5), (100.0, 30.0, 1e-4), (140.6, 120.3, 2e-4), (60.0, 110.0, 5e-5)]


def snr_model(batch: np.ndarray) -> np.ndarray:
    """A 'model' for raw Jy/beam input: probability = sigmoid(4 (S/N - 5))."""
    return 1.0 / (1.0 + np.exp(-4.0 * (batch / NOISE - 5.0)))


@pytest.fixture
def image_path(tmp_path, rng):
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]].astype(float)
    sigma = BAND.beam_fwhm_pix / np.sqrt(8 * np.log(2))
    data = rng.normal(0, NOISE, SHAPE)
    for x0, y0, flux in SOURCES:  # apparent flux, as in SDC1 images: FLUX_SCALE x intrinsic
        data += FLUX_SCALE * flux * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
    data[0:10, 0:20] = np.nan  # a blanked corner
    header = sdc1_header(sdc1_wcs(BAND, SHAPE, centre=(-0.3, -29.7)), BAND)
    return write_image(tmp_path / "scene.fits", data, header)


def _check(result, image_path):
    cat = result.catalogue
    assert len(cat) == len(SOURCES)
    order = np.argsort(cat["flux"])
    expected = np.sort([f for _, _, f in SOURCES])
    assert np.allclose(np.asarray(cat["flux"])[order], expected, rtol=0.1)
    assert cat["id"].tolist() == list(range(1, len(SOURCES) + 1))
    return cat


def test_predict_image_outputs(image_path, tmp_path):
    out = tmp_path / "out"
    result = pr.predict_image(image_path, snr_model, out_dir=out, noise=NOISE,
                              config=PredictConfig(tile=64, overlap=16), progress=False)
    cat = _check(result, image_path)
    assert result.noise == NOISE and 0 < result.threshold < 1
    # segmentation: same WCS as the input, values are the catalogue ids
    with fits.open(result.paths["segmentation"]) as hdul, fits.open(image_path) as ref:
        seg = hdul[0].data[0, 0]
        assert WCS(hdul[0].header).celestial.to_header() == WCS(ref[0].header).celestial.to_header()
    for row in cat:
        assert seg[int(round(row["y"])), int(round(row["x"]))] == row["id"]
    assert set(np.unique(seg)) == {0, *cat["id"]}
    assert np.all(seg[0:10, 0:20] == 0)
    with fits.open(result.paths["probability"]) as hdul:
        prob = hdul[0].data[0, 0]
        assert np.all(prob[0:10, 0:20] == 0) and prob.max() > 0.99
    # catalogue files keep units; the submission reads back
    ecsv = Table.read(result.paths["ecsv"], format="ascii.ecsv")
    assert ecsv["flux"].unit == "Jy" and len(ecsv) == len(cat)
    assert Table.read(result.paths["fits"])["b_maj"].unit == "arcsec"
    sub = read_submission(result.paths["submission"])
    assert np.allclose(sub["ra_core"], cat["ra_core"]) and np.all(sub["ra_core"] < 0)
    # region file: header, frame and one ellipse per source with its id
    lines = result.paths["regions"].read_text().splitlines()
    assert lines[:3] == ["# Region file format: DS9 version 4.1", "global color=green width=1", "fk5"]
    assert len(lines) == 3 + len(cat)
    first = lines[3]
    assert first.startswith(f"ellipse({float(cat['ra_cent'][0]) % 360:.7f},")
    assert first.endswith("# text={1}")
    r1 = float(first.split(",")[2].rstrip('"'))
    assert r1 == pytest.approx(BAND.beam_fwhm_arcsec / 2, rel=0.15)  # point source: beam
    with pytest.raises(FileExistsError, match="output"):
        pr.predict_image(image_path, snr_model, out_dir=out, noise=NOISE, progress=False)


def test_blocks_give_the_same_catalogue(image_path, tmp_path, monkeypatch):
    config = PredictConfig(tile=64, overlap=16)
    whole = pr.predict_image(image_path, snr_model, out_dir=tmp_path / "a", noise=NOISE,
                             config=config, progress=False).catalogue
    monkeypatch.setattr(pr, "CATALOGUE_BLOCK", 50)
    monkeypatch.setattr(pr, "BLOCK_MARGIN", 12)
    blocks = pr.predict_image(image_path, snr_model, out_dir=tmp_path / "b", noise=NOISE,
                              config=config, progress=False).catalogue
    order_w, order_b = np.argsort(whole["flux"]), np.argsort(blocks["flux"])
    for name in ("ra_core", "dec_core", "flux", "b_maj", "x", "y"):
        assert np.allclose(np.asarray(whole[name])[order_w], np.asarray(blocks[name])[order_b])
    assert not list((tmp_path / "b").glob("*.partial"))  # run folder removed


def test_segment_in_memory_equals_predict_image(image_path, tmp_path, monkeypatch):
    config = PredictConfig(tile=64, overlap=16)
    monkeypatch.setattr(pr, "CATALOGUE_BLOCK", 50)  # blocks read from memory too
    monkeypatch.setattr(pr, "BLOCK_MARGIN", 12)
    on_disk = pr.predict_image(image_path, snr_model, out_dir=tmp_path, noise=NOISE,
                               config=config, progress=False)
    prob, labels, cat, threshold = pr.segment(read_image(image_path), snr_model, noise=NOISE,
                                              config=config)
    assert threshold == on_disk.threshold and labels.dtype == np.int32
    with fits.open(on_disk.paths["segmentation"]) as seg, fits.open(on_disk.paths["probability"]) as pm:
        assert np.array_equal(labels, seg[0].data[0, 0]) and np.array_equal(prob, pm[0].data[0, 0])
    assert cat.colnames == on_disk.catalogue.colnames
    for name in ("id", "ra_core", "dec_cent", "flux", "b_maj", "pa", "peak_snr"):
        assert np.array_equal(cat[name], on_disk.catalogue[name])
    assert cat.meta["NOISE"] == NOISE and "IMAGE" not in cat.meta


def test_missing_model_and_image(image_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="model file .*nope.keras not found"):
        pr.predict_image(image_path, tmp_path / "nope.keras", out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="image .* not found"):
        pr.predict_image(tmp_path / "nope.fits", snr_model, out_dir=tmp_path)


def test_cli_predict_with_saved_model_on_real_cutout(sdc1_dir, tmp_path):
    keras = pytest.importorskip("keras")
    from radioseg_utils.cli import main
    from radioseg_utils.model.architectures import build_unet
    from radioseg_utils.model.files import save_model

    keras.utils.set_random_seed(3)
    net = build_unet(depth=2, base_filters=4, batch_norm=False, dropout=0.0)
    model_path = save_model(net, tmp_path / "m" / "tiny", metadata={"band": "B1", "normalisation": "minmax"})
    out = tmp_path / "out"
    args = ["predict", str(sdc1_dir / "B1_1000h_0.05tr.fits"), "--model", str(model_path),
            "--out", str(out), "--tile", "64", "--overlap", "16", "--threshold", "fixed",
            "--value", "0.5"]
    assert main(args) == 0
    with fits.open(out / "B1_1000h_0.05tr_seg.fits") as hdul:
        assert hdul[0].data.shape[-2:] == (160, 174)
    assert Table.read(out / "B1_1000h_0.05tr_cat.ecsv").meta["NORM"] == "minmax"
    assert main(args) == 2  # outputs exist: a one-line user error
    bad = ["predict", str(sdc1_dir / "B1_1000h_0.05tr.fits"), "--model", str(tmp_path / "x.keras")]
    assert main(bad) == 2


@pytest.mark.realdata
def test_default_pretrained_model_works_out_of_the_box(sdc1_dir, tmp_path):
    """`radioseg predict IMAGE.fits` with no model: the shipped one, on the real cutout."""
    from radioseg_utils.cli import main

    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.with_suffix(".json").is_file()
    assert main(["predict", str(sdc1_dir / "B1_1000h_0.05tr.fits"), "--out", str(tmp_path)]) == 0
    cat = Table.read(tmp_path / "B1_1000h_0.05tr_cat.ecsv", format="ascii.ecsv")
    # the cutout holds a few dozen sources above 5 sigma (PyBDSF lists 44)
    assert 20 < len(cat) < 150
    assert np.all(cat["peak_snr"] > 3)


def test_p_real_column_in_every_catalogue_output(image_path, tmp_path, rng):
    from radioseg_utils.postprocess.reliability import RELIABILITY_FEATURES, fit_reliability

    x = rng.normal(size=(3000, len(RELIABILITY_FEATURES)))
    real = rng.random(3000) < 1 / (1 + np.exp(-2 * x[:, 0]))
    path = fit_reliability([x], [real], ["val"], meta={"name": "r.npz"}).save(tmp_path / "r.npz")
    config = PredictConfig(tile=64, overlap=16, reliability=str(path))
    result = pr.predict_image(image_path, snr_model, out_dir=tmp_path / "out", noise=NOISE,
                              config=config, progress=False)
    tables = {"parquet": result.catalogue,
              "ecsv": Table.read(result.paths["ecsv"], format="ascii.ecsv"),
              "fits": Table.read(result.paths["fits"])}
    for kind, table in tables.items():
        assert len(table) == len(SOURCES), kind
        p = np.asarray(table["p_real"])
        assert p.dtype.kind == "f" and p.dtype.itemsize == 4, kind  # float32 (FITS: big-endian)
        assert np.all((p >= 0) & (p <= 1)), kind
        assert table.meta["PREAL"] == "r.npz", kind
        # the model's confidence is measured for every row (no centre head here)
        centre = np.ma.filled(table["centre_peak"], np.nan)  # ECSV reads NaN as masked
        assert table["prob_peak"].min() > 0.5 and np.isnan(centre).all()
    in_memory = pr.segment(read_image(image_path), snr_model, noise=NOISE, config=config).catalogue
    np.testing.assert_array_equal(in_memory["p_real"], tables["parquet"]["p_real"])
    assert in_memory.meta["PREAL"] == "r.npz"
    # without a reliability file: no column, and the metadata say so
    plain = pr.segment(read_image(image_path), snr_model, noise=NOISE,
                       config=PredictConfig(tile=64, overlap=16)).catalogue
    assert "p_real" not in plain.colnames and plain.meta["PREAL"] == "none"
    # a bad file stops the run before any work, in one line
    (tmp_path / "bad.npz").write_text("junk")
    bad = PredictConfig(tile=64, overlap=16, reliability=str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="not a readable radioseg reliability file"):
        pr.predict_image(image_path, snr_model, out_dir=tmp_path / "bad", noise=NOISE,
                         config=bad, progress=False)
    assert not (tmp_path / "bad").exists()


def test_a_p_real_cut_drops_sources_from_every_output_and_keeps_the_rest_whole(image_path,
                                                                               tmp_path, rng):
    from radioseg_utils.postprocess.reliability import RELIABILITY_FEATURES, fit_reliability

    x = rng.normal(size=(3000, len(RELIABILITY_FEATURES)))
    real = rng.random(3000) < 1 / (1 + np.exp(-2 * x[:, 0]))
    path = fit_reliability([x], [real], ["val"], meta={"name": "r.npz"}).save(tmp_path / "r.npz")
    config = PredictConfig(tile=64, overlap=16, reliability=str(path), components=True)
    full = pr.predict_image(image_path, snr_model, out_dir=tmp_path / "all", noise=NOISE,
                            config=config, progress=False)
    p = np.asarray(full.catalogue["p_real"])
    assert len(np.unique(p)) == len(SOURCES)
    cut = float(np.sort(p)[1])  # keeps all but the least likely source
    kept = dataclasses.replace(config, min_p_real=cut)
    result = pr.predict_image(image_path, snr_model, out_dir=tmp_path / "cut", noise=NOISE,
                              config=kept, progress=False)
    cat = result.catalogue
    assert len(cat) == len(SOURCES) - 1 and cat["id"].tolist() == [1, 2, 3]
    assert np.all(np.asarray(cat["p_real"]) >= cut)
    before = full.catalogue[p >= cut]
    np.testing.assert_allclose(cat["flux"], before["flux"])
    # the segmentation map: each kept source keeps its pixels under its new id
    seg_all = np.squeeze(fits.getdata(full.paths["segmentation"])).astype(int)
    seg_cut = np.squeeze(fits.getdata(result.paths["segmentation"])).astype(int)
    for new, old in zip(cat["id"], before["id"]):
        np.testing.assert_array_equal(seg_cut == new, seg_all == old)
    assert set(np.unique(seg_cut)) == {0, 1, 2, 3}
    # every other output holds the same sources, and says what was cut
    ecsv = Table.read(result.paths["ecsv"], format="ascii.ecsv")
    assert len(ecsv) == 3 and ecsv.meta["PREALMIN"] == pytest.approx(cut)
    assert Table.read(result.paths["fits"]).meta["PREALMIN"] == pytest.approx(cut)
    assert len(read_submission(result.paths["submission"])) == 3
    assert result.paths["regions"].read_text().count("ellipse(") == 3
    comps = Table.read(result.paths["components_ecsv"], format="ascii.ecsv")
    comps_all = Table.read(full.paths["components_ecsv"], format="ascii.ecsv")
    assert set(comps["source_id"]) == {1, 2, 3}
    assert len(comps) == np.isin(comps_all["source_id"], before["id"]).sum()
    assert comps["component"].tolist() == list(range(1, len(comps) + 1))
    # in memory: the same sources and labels
    memory = pr.segment(read_image(image_path), snr_model, noise=NOISE, config=kept)
    np.testing.assert_allclose(memory.catalogue["flux"], cat["flux"])
    np.testing.assert_array_equal(memory.labels, seg_cut)
    assert memory.catalogue.meta["PREALMIN"] == pytest.approx(cut)
    # a cut without p_real is refused before any work, in one line
    with pytest.raises(ValueError, match="a p_real cut .* needs p_real"):
        pr.predict_image(image_path, snr_model, out_dir=tmp_path / "none", noise=NOISE,
                         config=PredictConfig(tile=64, overlap=16, min_p_real=0.5),
                         progress=False)
    assert not (tmp_path / "none").exists()


def test_keep_sources_renumbers_labels_rows_and_components():
    from radioseg_utils.postprocess import blocks as bl

    core = np.array([[1, 1, 0, 2], [3, 0, 2, 2]])
    cat = Table({"id": [1, 2, 3], "flux": [1.0, 2.0, 3.0]})
    comps = Table({"source_id": [1, 2, 2, 3], "flux": [1.0, 1.5, 0.5, 3.0]})
    labels, kept, parts = bl.keep_sources(core, cat, np.array([False, True, True]), comps)
    np.testing.assert_array_equal(labels, [[0, 0, 0, 1], [2, 0, 1, 1]])
    assert kept["id"].tolist() == [1, 2] and kept["flux"].tolist() == [2.0, 3.0]
    assert parts["source_id"].tolist() == [1, 1, 2] and parts["flux"].tolist() == [1.5, 0.5, 3.0]
    assert bl.keep_sources(core, cat, np.ones(3, bool))[2] is None
    with pytest.raises(ValueError, match=r"keep has shape \(2,\); the catalogue has 3 rows"):
        bl.keep_sources(core, cat, np.ones(2, bool))
