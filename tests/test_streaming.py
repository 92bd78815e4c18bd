"""Tests of the streamed, resumable prediction: run folder, FITS streams, row store,
interrupted runs, sources across tile and block borders, multi-channel models."""

from __future__ import annotations

from dataclasses import replace

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage
from scipy.special import expit

from radioseg_utils.core.bands import get_band
from radioseg_utils.inference import predict as pr
from radioseg_utils.inference.config import PredictConfig
from radioseg_utils.inference.streaming import FOLDER_LAYOUT, RunFolder, StripStore, run_key
from radioseg_utils.inference.tiling import TileGrid, predict_row, predict_tiled
from radioseg_utils.io.fits_read import read_image
from radioseg_utils.io.fits_write import FitsStream, write_image
from radioseg_utils.io.wcs import sdc1_header, sdc1_wcs
from radioseg_utils.postprocess import blocks as bl

BAND = get_band("B1")
NOISE = 1e-6
SHAPE = (512, 512)
CONFIG = PredictConfig(tile=64, overlap=16, batch_size=4)
#: small catalogue blocks so that a 512² image has 16 of them
BLOCK, MARGIN = 128, 24
#: (x, y, flux Jy, sigma_x px, sigma_y px): on tile seams (starts every 48 px), on block
#: borders (127.5, 255.5, 383.5), on a block corner, and elongated across a border
SOURCES = [
    (127.5, 60.0, 2e-4, 1.1, 1.1),
    (200.0, 255.5, 1e-4, 1.1, 1.1),
    (383.5, 383.5, 3e-4, 1.1, 1.1),
    (255.0, 400.0, 2e-4, 9.0, 1.5),
    (64.0, 304.0, 5e-5, 1.1, 1.1),
    (450.0, 127.8, 1e-4, 1.5, 6.0),
    (300.0, 150.0, 8e-5, 1.1, 1.1),
]


def snr_model(batch: np.ndarray) -> np.ndarray:
    """A 'model' for raw Jy/beam input: probability = sigmoid(4 (S/N - 5))."""
    return expit(4.0 * (batch / NOISE - 5.0))


def two_channel_model(batch: np.ndarray) -> np.ndarray:
    """Probability and a centre map: 1 at the brightest pixel of each 11 x 11 neighbourhood
    above S/N 5 (one per source of the scene), like a trained centre head."""
    peak = ndimage.maximum_filter(batch, size=(1, 11, 11, 1))
    return np.concatenate([snr_model(batch), ((batch == peak) & (batch > 5 * NOISE)).astype(float)],
                          axis=-1)


class FailingModel:
    """:func:`snr_model` that raises after ``fail_after`` calls (an interrupted run)."""

    def __init__(self, fail_after: int | None) -> None:
        self.fail_after, self.calls = fail_after, 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("interrupted")
        return snr_model(batch)


def make_scene(path, rng, shape=SHAPE, sources=SOURCES):
    """Noise plus Gaussian sources ``(x, y, peak flux, sigma_x, sigma_y)``; a FITS file."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(float)
    data = rng.normal(0, NOISE, shape)
    for x0, y0, flux, sx, sy in sources:
        data += flux * np.exp(-((x - x0) ** 2 / (2 * sx**2) + (y - y0) ** 2 / (2 * sy**2)))
    data[0:8, 0:30] = np.nan
    header = sdc1_header(sdc1_wcs(BAND, shape), BAND)
    return write_image(path, data.astype(np.float32), header)


@pytest.fixture
def scene(tmp_path, rng):
    return make_scene(tmp_path / "scene.fits", rng)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(pr, "CATALOGUE_BLOCK", BLOCK)
    monkeypatch.setattr(pr, "BLOCK_MARGIN", MARGIN)


def read_outputs(result):
    with fits.open(result.paths["segmentation"]) as seg, fits.open(result.paths["probability"]) as prob:
        return seg[0].data[0, 0].copy(), prob[0].data[0, 0].copy()


def test_run_key_and_folder_reuse(tmp_path):
    key = run_key(image="a.fits", size=10)
    # the layout of the pieces is part of every key: a folder of an older layout is not resumed
    assert key == run_key(image="a.fits", size=10, layout=FOLDER_LAYOUT)
    assert key != run_key(image="a.fits", size=10, layout=FOLDER_LAYOUT - 1)
    folder = RunFolder.open(tmp_path / "run", key)
    folder.save_array("rows/r.npy", np.arange(3))
    folder.save_array("b.npz", np.ones((2, 2), np.int32), compress=True)
    again = RunFolder.open(tmp_path / "run", key)
    assert again.has("rows/r.npy") and again.load_array("rows/r.npy").tolist() == [0, 1, 2]
    assert again.load_array("b.npz").sum() == 4
    table = Table({"flux": np.array([1e-6, 2.5e-7]) * u.Jy, "id": np.array([3, 4], np.int32)},
                  meta={"CALIB": "trees"})
    table["flux"].description = "integrated flux"
    folder.save_table("blocks/b.parquet", table)
    back = again.load_table("blocks/b.parquet")
    assert back["flux"].unit == u.Jy and back["flux"].description == "integrated flux"
    assert back["id"].dtype == np.int32 and back.meta["CALIB"] == "trees"
    np.testing.assert_array_equal(back["flux"].value, table["flux"].value)  # exact
    assert sorted(p.name for p in (tmp_path / "run").rglob("*") if p.is_file()) == [
        "b.npz", "b.parquet", "r.npy", "state.json"]  # no temporary left
    other = RunFolder.open(tmp_path / "run", run_key(image="a.fits", size=11))
    assert not other.has("rows/r.npy")  # another run: emptied
    other.save_array("x.npy", np.zeros(1))
    assert not RunFolder.open(tmp_path / "run", run_key(image="a.fits", size=11),
                              resume=False).has("x.npy")


def test_fits_stream_writes_blocks(tmp_path, rng):
    header = sdc1_header(sdc1_wcs(BAND, (30, 40)), BAND)
    data = rng.normal(size=(30, 40)).astype(np.float32)
    with FitsStream(tmp_path / "s.fits", header, (30, 40)) as out:
        for y0, x0 in [(0, 0), (0, 25), (16, 0), (16, 25)]:
            out.write(y0, x0, data[y0 : y0 + 16, x0 : x0 + 25])
        with pytest.raises(ValueError, match="does not fit"):
            out.write(20, 0, data)
    back = read_image(tmp_path / "s.fits")
    assert np.array_equal(back.data, data)
    assert np.array_equal(back.wcs.wcs.crpix, sdc1_wcs(BAND, (30, 40)).wcs.crpix)


def test_strip_store_equals_tiled_in_memory(tmp_path, rng):
    image = rng.normal(0, 5 * NOISE, (150, 130)).astype(np.float32)
    grid = TileGrid(image.shape, 64, 16)
    store = StripStore(RunFolder.open(tmp_path / "run", "k"), grid)
    assert store.missing() == list(range(grid.n_rows))
    for iy in range(grid.n_rows):
        y0, y1 = grid.row_span(iy)
        store.save(iy, predict_row(two_channel_model, image[y0:y1], grid, iy))
    full = predict_tiled(two_channel_model, image, tile=64, overlap=16, progress=False)
    assert full.shape == (150, 130, 2) and store.missing() == []
    assert np.array_equal(store.window(slice(0, 150), slice(0, 130)), full)  # bit for bit
    assert np.array_equal(store.window(slice(40, 101), slice(7, 90)), full[40:101, 7:90])


def test_interrupted_run_resumes_to_the_same_result(scene, tmp_path, small_blocks, monkeypatch):
    config = replace(CONFIG, components=True)  # every streamed writer
    fresh = pr.predict_image(scene, snr_model, out_dir=tmp_path / "fresh", noise=NOISE,
                             config=config, progress=False)
    out = tmp_path / "out"
    model = FailingModel(fail_after=9)  # 3 rows of 11 (3 batches each), then interrupted
    with pytest.raises(KeyboardInterrupt):
        pr.predict_image(scene, model, out_dir=out, noise=NOISE, config=config, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["scene.partial"]  # no output looks complete
    assert len(list((out / "scene.partial" / "rows").glob("*.npy"))) == 3  # 3 batches per row

    # second interruption, in the catalogue stage after 5 blocks
    calls, segment_block = [], bl.segment_block

    def failing_block(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt("interrupted")
        return segment_block(*args, **kwargs)

    monkeypatch.setattr(bl, "segment_block", failing_block)
    model.fail_after, model.calls = None, 0
    with pytest.raises(KeyboardInterrupt):
        pr.predict_image(scene, model, out_dir=out, noise=NOISE, config=config, progress=False)
    grid = TileGrid(SHAPE, CONFIG.tile, CONFIG.overlap)
    assert model.calls == (grid.n_rows - 3) * 3  # only the missing rows were run
    assert len(list((out / "scene.partial" / "blocks").glob("*.npz"))) == 5
    monkeypatch.setattr(bl, "segment_block", segment_block)

    model.calls = 0
    resumed = pr.predict_image(scene, model, out_dir=out, noise=NOISE, config=config, progress=False)
    assert model.calls == 0  # everything came from the run folder
    assert not (out / "scene.partial").exists()
    for a, b in zip(read_outputs(fresh), read_outputs(resumed)):
        assert np.array_equal(a, b)
    assert fresh.paths.keys() == resumed.paths.keys() and "components_fits" in fresh.paths
    for kind, path in fresh.paths.items():  # every output, byte for byte
        assert path.read_bytes() == resumed.paths[kind].read_bytes(), kind
    for name in ("id", "x", "y", "flux", "ra_core", "b_maj"):
        assert np.array_equal(fresh.catalogue[name], resumed.catalogue[name])
    assert resumed.threshold == fresh.threshold


def test_sources_across_tile_and_block_borders_are_listed_once(scene, tmp_path, small_blocks):
    result = pr.predict_image(scene, snr_model, out_dir=tmp_path / "out", noise=NOISE,
                              config=CONFIG, progress=False)
    cat = result.catalogue
    assert len(cat) == len(SOURCES)
    seg, _ = read_outputs(result)
    for x0, y0, *_ in SOURCES:
        d = np.hypot(np.asarray(cat["x"]) - x0, np.asarray(cat["y"]) - y0)
        assert np.sum(d < 1.5) == 1  # exactly one entry, at the right place
        # the source's pixels carry one id only: not split at the borders
        box = seg[int(y0) - 2 : int(y0) + 3, int(x0) - 2 : int(x0) + 3]
        assert np.unique(box[box > 0]).tolist() == [int(cat["id"][np.argmin(d)])]
    # the elongated source across the block border at x = 255.5 is whole
    row = cat[np.argmin(np.hypot(np.asarray(cat["x"]) - 255.0, np.asarray(cat["y"]) - 400.0))]
    assert row["flux"] == pytest.approx(2e-4 * 2 * np.pi * 9.0 * 1.5 / (BAND.beam_fwhm_pix**2 * np.pi / (4 * np.log(2))), rel=0.1)
    # with blocks too small for their sources (no margin), a border splits them: the test can fail
    broken = pr.segment(read_image(scene), snr_model, noise=NOISE, config=CONFIG)
    assert len(broken.catalogue) == len(SOURCES)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pr, "BLOCK_MARGIN", 0)
        assert len(pr.segment(read_image(scene), snr_model, noise=NOISE, config=CONFIG).catalogue) > len(SOURCES)


def test_streamed_catalogue_files_agree_and_match_the_in_memory_chain(scene, tmp_path,
                                                                      small_blocks):
    result = pr.predict_image(scene, snr_model, out_dir=tmp_path / "out", noise=NOISE,
                              config=CONFIG, progress=False)
    assert result.n_sources == len(SOURCES) and "catalogue" not in vars(result)  # not read yet
    tables = {kind: Table.read(result.paths[kind], format=fmt) for kind, fmt in
              (("ecsv", "ascii.ecsv"), ("fits", "fits"), ("parquet", "parquet"))}
    memory = pr.segment(read_image(scene), snr_model, noise=NOISE, config=CONFIG).catalogue
    for kind, table in tables.items():
        assert table.colnames == memory.colnames, kind
        assert table["id"].tolist() == list(range(1, len(SOURCES) + 1)), kind
        assert table.meta["THRESH"] == CONFIG.threshold and table.meta["IMAGE"] == scene.name
        assert table["flux"].unit == memory["flux"].unit, kind
        order = np.lexsort((np.asarray(table["y"]), np.asarray(table["x"])))
        expected = np.lexsort((np.asarray(memory["y"]), np.asarray(memory["x"])))
        np.testing.assert_allclose(np.asarray(table["flux"])[order],
                                   np.asarray(memory["flux"])[expected], rtol=1e-12)
    lines = result.paths["submission"].read_text().splitlines()
    assert len(lines) == 1 + len(SOURCES)
    assert result.paths["regions"].read_text().count("ellipse(") == len(SOURCES)


def test_multichannel_model(scene, tmp_path, small_blocks):
    one = pr.predict_image(scene, snr_model, out_dir=tmp_path / "one", noise=NOISE, config=CONFIG,
                           progress=False)
    two = pr.predict_image(scene, two_channel_model, out_dir=tmp_path / "two", noise=NOISE,
                           config=CONFIG, progress=False)
    seg1, prob1 = read_outputs(one)
    seg2, prob2 = read_outputs(two)
    assert np.array_equal(prob1, prob2)  # channel 0 is the probability either way
    with fits.open(two.paths["probability1"]) as hdul:
        centre = hdul[0].data[0, 0]
    # the sources are the centre peaks: one catalogue row per true source, where it is
    assert len(two.catalogue) == len(SOURCES)
    for x0, y0, *_ in SOURCES:
        d = np.hypot(np.asarray(two.catalogue["x"]) - x0, np.asarray(two.catalogue["y"]) - y0)
        assert d.min() < 1.5
    assert centre.max() == pytest.approx(1.0)
    # each centre owns a share of the mask plus at most its 3 x 3 disc, nothing else
    assert set(np.unique(seg2[seg2 > 0])) == set(two.catalogue["id"])
    assert np.count_nonzero(seg2[prob2 <= two.threshold]) <= 9 * len(SOURCES)
    assert np.count_nonzero(seg2) >= np.count_nonzero(seg1)
    mem = pr.segment(read_image(scene), two_channel_model, noise=NOISE, config=CONFIG)
    assert mem.prob.shape == SHAPE + (2,) and np.array_equal(mem.prob[..., 0], prob2)
    assert np.array_equal(mem.labels, seg2)


def test_cli_predict_streams_a_keras_model_and_resumes(tmp_path, rng):
    keras = pytest.importorskip("keras")
    from radioseg_utils.cli import main
    from radioseg_utils.model.architectures import build_unet
    from radioseg_utils.model.files import save_model

    keras.utils.set_random_seed(3)
    model_path = save_model(build_unet(depth=2, base_filters=4, batch_norm=False, dropout=0.0),
                            tmp_path / "m" / "tiny", metadata={"band": "B1", "normalisation": "minmax"})
    image = make_scene(tmp_path / "small.fits", rng, shape=(96, 128), sources=SOURCES[:1])
    out = tmp_path / "out"
    args = ["predict", str(image), "--model", str(model_path), "--out", str(out), "--tile", "64",
            "--overlap", "16", "--batch-size", "2"]
    # a stale run folder of another run is emptied, not mixed in
    (out / "small.partial" / "rows").mkdir(parents=True)
    (out / "small.partial" / "state.json").write_text('{"key": "other"}')
    np.save(out / "small.partial" / "rows" / "row00000.npy", np.ones((64, 128, 1), np.float32))
    assert main(args) == 0
    with fits.open(out / "small_prob.fits") as hdul:
        prob = hdul[0].data[0, 0]
    assert prob.shape == (96, 128) and prob.max() < 1  # the stale ones were not used
    assert not (out / "small.partial").exists()
    assert main([*args, "--overwrite", "--no-resume", "--workers", "0"]) == 2  # a user error
    expected = pr.segment(read_image(image), model_path,
                          config=PredictConfig(tile=64, overlap=16, batch_size=2))
    assert np.array_equal(expected.prob, prob)


def test_band_sample_is_a_compact_copy_on_the_image_grid():
    image = np.arange(100 * 7, dtype=np.float32).reshape(100, 7)
    parts = [bl.band_sample(image[r0:r0 + 16], r0, 3) for r0 in range(0, 100, 16)]
    # each part owns its data, so the band it came from is freed: a view would keep every
    # band of the probability map alive until the threshold is computed
    assert all(part.base is None for part in parts)
    np.testing.assert_array_equal(np.concatenate(parts), image[::3, ::3])
