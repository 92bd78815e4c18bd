"""The ``radioseg`` command line.

One subcommand per task. Each subcommand is a pair of private functions:
``_add_<cmd>(subparsers)`` declares its arguments and ``_cmd_<cmd>(args) -> int`` runs it
(thin: it calls the package and logs). To add a subcommand, write the pair and append the
``_add_<cmd>`` function to :data:`_SUBCOMMANDS`; ``_add_<cmd>`` registers its handler with
``parser.set_defaults(handler=_cmd_<cmd>)``.

Errors the user can fix (bad values, missing, empty, truncated or non-FITS files, an
output that exists without ``--overwrite``, an output folder that is a file, registry and
download failures) are reported as ``radioseg: error: <message>`` on stderr with exit
status 2 and no traceback, unless ``--verbose`` is given. TensorFlow's C++ start-up lines
are silenced before any command runs (:func:`radioseg_utils.core.runtime.quiet_tensorflow`).

Examples
--------
>>> from radioseg_utils.cli import main
>>> main(["fetch", "--list"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from radioseg_utils.core.paths import OutputExistsError, check_output_dir
from radioseg_utils.core.provenance import PACKAGE_VERSION
from radioseg_utils.core.runtime import quiet_tensorflow
from radioseg_utils.io import registry
from radioseg_utils.workflows.book import BookError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_USAGE"]

#: Exit status of a successful command.
EXIT_OK = 0
#: Exit status of a command that failed on bad input or missing/unreachable data.
EXIT_USAGE = 2

_PROG = "radioseg"
#: Exceptions reported as a one-line error instead of a traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    registry.RegistryError,
    BookError,
)

#: Options naming a folder the command writes into, checked before it runs.
_OUTPUT_FOLDERS: tuple[str, ...] = ("out", "run_dir", "work_dir", "dest")
#: How the command line says to replace existing outputs.
_OVERWRITE_REMEDY = "to replace, add --overwrite"

logger = logging.getLogger(__name__)


def _image_path(image: str) -> Path:
    """A FITS path given on the command line, or a data-registry name resolved to its file
    (an image, or a primary beam such as ``PrimaryBeam_B1.fits``)."""
    path = Path(image)
    if not path.is_file() and image in registry.list_files():
        return registry.fetch(image)
    return path


# --------------------------------------------------------------------------- fetch
def _add_fetch(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fetch",
        help="download real SDC1 files listed in the data registry",
        description=(
            "Download SDC1 files into the data folder ($RADIOSEG_DATA, default data/cache), "
            "verifying their size and sha256. Files already present are only verified."
        ),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="registry file name(s)")
    parser.add_argument(
        "--all", action="store_true", help="every downloadable file (~13 GB with the images)"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="every downloadable file with a known size below 100 MB (~5 MB in all)",
    )
    parser.add_argument(
        "--dest", type=Path, default=None, help="folder to download into (default: data folder)"
    )
    parser.add_argument(
        "--list", action="store_true", help="list the registry and whether each file is present"
    )
    parser.set_defaults(handler=_cmd_fetch)


def _cmd_fetch(args: argparse.Namespace) -> int:
    if args.list:
        sys.stdout.write(registry.format_listing(dest=args.dest) + "\n")
        return EXIT_OK
    if args.all:
        names = registry.list_files(downloadable=True)
    elif args.small:
        names = registry.list_files(max_size=registry.SMALL_FILE_BYTES, downloadable=True)
    else:
        names = list(args.names)
    if not names:
        raise ValueError("fetch: name at least one file, or use --all, --small or --list")
    for name in names:
        path = registry.fetch(name, download=True, dest=args.dest, verify=True)
        sys.stdout.write(f"{path}\n")
    return EXIT_OK


# --------------------------------------------------------------------------- book
def _add_book(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "book",
        help="execute the numbered notebooks with papermill and build the HTML book",
        description=(
            "Execute notebooks/NN_*.ipynb in order under a profile (quick: CPU minutes; "
            "full: GPU batch), write a run manifest, then build the Jupyter Book."
        ),
    )
    parser.add_argument("--profile", default="quick", help="parameter profile: quick or full")
    parser.add_argument("--run-dir", type=Path, default=None, help="folder the notebooks share")
    parser.add_argument("--from", dest="start_at", default=None, metavar="NN",
                        help="resume from this notebook (e.g. 05)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NN", help="run just these")
    parser.add_argument("--no-build", action="store_true", help="execute only, no HTML")
    parser.add_argument("--build-only", action="store_true",
                        help="build the HTML from the notebooks executed last time")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="do not download missing real data files: the sections that "
                             "need them are skipped")
    parser.set_defaults(handler=_cmd_book)


def _cmd_book(args: argparse.Namespace) -> int:
    from radioseg_utils.workflows import book
    from radioseg_utils.workflows.realdata import format_skipped

    manifest = None
    if not args.build_only:
        manifest = book.run_notebooks(args.profile, run_dir=args.run_dir,
                                      start_at=args.start_at, only=args.only,
                                      download=args.download)
        total = sum(n["seconds"] for n in manifest.notebooks)
        logger.info("executed %d notebooks in %.0f s; manifest in %s",
                    len(manifest.notebooks), total, manifest.run_dir)
    if not args.no_build:
        html = book.build_book()
        book.check_book(html)
        sys.stdout.write(f"{html / 'index.html'}\n")
    if manifest is not None and manifest.skipped:
        sys.stdout.write(format_skipped(manifest.skipped) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------- info
def _add_info(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="summarise an SDC1 image: shape, band, beam, noise, footprint, bad pixels",
        description=(
            "Print a JSON summary of a FITS image (a path, or a registry file name found in "
            "the data folder). Only a central box is read for the noise estimate."
        ),
    )
    parser.add_argument("image", help="FITS file path or registry name")
    parser.add_argument(
        "--noise-box", type=int, default=None, metavar="PX",
        help="side of the central box used for the noise estimate (default 1024)",
    )
    parser.set_defaults(handler=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from radioseg_utils.io.fits_read import image_info

    path = _image_path(args.image)
    options = {} if args.noise_box is None else {"noise_box": args.noise_box}
    sys.stdout.write(json.dumps(image_info(path, **options), indent=2) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------- train
def _add_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a U-Net / autoencoder on dataset shards, resuming an interrupted run",
        description=(
            "Train on the train/val splits of shards written by the dataset step, under a "
            "profile (quick: CPU minutes; full: GPU). Checkpoints every epoch into --out; "
            "running again resumes. Writes model.keras and its model.json sidecar."
        ),
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset shard folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <runs>/default/train)")
    parser.add_argument("--profile", default="quick", help="training profile: quick or full")
    parser.add_argument("--model", default=None, help="unet, cae or vae")
    parser.add_argument("--loss", default=None, help="bce, dice, focal or bce_dice")
    parser.add_argument("--normalisation", default=None, help="input normalisation name")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--no-resume", action="store_true", help="start again from scratch")
    parser.set_defaults(handler=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from radioseg_utils.core.paths import runs_dir
    from radioseg_utils.model.config import get_profile
    from radioseg_utils.model.train import train_from_shards

    overrides = {k: getattr(args, k) for k in ("model", "loss", "normalisation", "epochs",
                                               "seed") if getattr(args, k) is not None}
    config = get_profile(args.profile, **overrides)
    out = args.out or runs_dir() / "default" / "train"
    result = train_from_shards(config, args.data, out_dir=out, resume=not args.no_resume)
    logger.info("trained %d epochs (best %d) on %s in %.0f s: %s", result.epochs_done,
                result.best_epoch, result.device, result.seconds, result.scores)
    sys.stdout.write(f"{result.model_path}\n")
    return EXIT_OK


# --------------------------------------------------------------------------- dataset
def _add_dataset(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="segmentation masks, spatially disjoint cutouts and shards of an image + truth",
        description=(
            "Build binary/label masks of the truth sources above an S/N cut, cut the image "
            "and masks into cutouts split 80:10:10 into disjoint train/val/test regions, and "
            "write compressed .npz shards with metadata.json into --out."
        ),
    )
    parser.add_argument("image", help="FITS image path or registry name")
    parser.add_argument("truth", type=Path, help="truth catalogue (SDC1 training or scorer format)")
    parser.add_argument("--out", type=Path, required=True, help="shard folder")
    parser.add_argument("--size", type=int, default=256, help="cutout side in pixels")
    parser.add_argument("--stride", type=int, default=None, help="sliding step (default size/2)")
    parser.add_argument("--random", type=int, default=None, metavar="N", dest="n_random",
                        help="draw N random cutouts instead of a sliding grid")
    parser.add_argument("--snr-min", type=float, default=5.0, help="peak S/N cut of the masks")
    parser.add_argument("--k-sigma", type=float, default=1.0, help="footprint level in sigmas")
    parser.add_argument("--footprint", default="model", help="model or ellipse")
    parser.add_argument("--normalisation", default="minmax", help="default input normalisation")
    parser.add_argument("--integration", type=int, default=None,
                        help="integration in hours (sets the noise; default: measured)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split assignment")
    parser.add_argument("--overwrite", action="store_true", help="replace existing shards")
    parser.set_defaults(handler=_cmd_dataset)


def _cmd_dataset(args: argparse.Namespace) -> int:
    from radioseg_utils.data.shards import build_dataset
    from radioseg_utils.io.catalogue import read_truth_catalogue
    from radioseg_utils.io.fits_read import read_image

    path = _image_path(args.image)
    image = read_image(path)
    meta = build_dataset(
        image.data, read_truth_catalogue(args.truth), image.wcs, image.band, out_dir=args.out,
        size=args.size, stride=args.stride, n_random=args.n_random, snr_min=args.snr_min,
        k_sigma=args.k_sigma, footprint=args.footprint, normalisation=args.normalisation,
        integration=args.integration, seed=args.seed, overwrite=args.overwrite,
        provenance={"image": str(path), "truth": str(args.truth)})
    sys.stdout.write(json.dumps({"out": str(args.out), "masks": meta["masks"],
                                 "splits": meta["splits"]}, indent=2) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------- predict
def _add_predict(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="segment an image with a model: segmentation FITS, catalogue, SDC1 submission",
        description=(
            "Run a trained model over a FITS image in overlapping tiles with blended seams, "
            "threshold the probabilities, measure the sources on the image and write "
            "<stem>_seg.fits, <stem>_prob.fits, <stem>_cat.ecsv/.fits, <stem>_submission.txt "
            "and <stem>.reg into --out."
        ),
    )
    parser.add_argument("image", help="FITS image path or registry name")
    parser.add_argument("--model", type=Path, default=None,
                        help="model .keras file with its .json sidecar "
                             "(default: radioseg_utils.model.files.DEFAULT_MODEL, the pretrained one)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <runs>/default/predict)")
    parser.add_argument("--threshold", default=None,
                        help="fixed (default, p > 0.5 or --value), yen, otsu, triangle, li or hysteresis")
    parser.add_argument("--value", type=float, default=None,
                        help="threshold value of --threshold fixed")
    parser.add_argument("--min-area", type=int, default=None, help="smallest source in pixels")
    parser.add_argument("--split-blends", action="store_true",
                        help="split blended sources by watershed on the image")
    parser.add_argument("--primary-beam", default=None,
                        help="primary-beam FITS file or registry name (PrimaryBeam_B1.fits): "
                             "fluxes are corrected by it")
    parser.add_argument("--centre-threshold", type=float, default=None,
                        help="centre-map level of a detection for models with a centre head "
                             "(default: the value tuned for the model, in its sidecar)")
    parser.add_argument("--flux-scale", type=float, default=None,
                        help="apparent / intrinsic flux beyond the primary beam (default: the "
                             "SDC1 value 0.918 where the SDC1 corrections apply, else 1; 1 "
                             "leaves fluxes as measured)")
    parser.add_argument("--corrections", choices=("auto", "sdc1", "none"), default="auto",
                        help="where the SDC1 flux scale and the model's calibration apply: auto "
                             "(default) to SDC1 images only, sdc1 to every image, none to none; "
                             "the catalogue metadata (CORRECT) say which were applied")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average over 8 flips/rotations (8x slower)")
    parser.add_argument("--no-calibration", dest="calibration", action="store_const",
                        const=None, default="model",
                        help="report sizes and fluxes as measured in the segments, without "
                             "the model's learned calibration")
    parser.add_argument("--no-reliability", dest="reliability", action="store_const",
                        const=None, default="model",
                        help="no p_real column (by default the catalogue gets the calibrated "
                             "probability that each detection is real, when the model has a "
                             "reliability file)")
    parser.add_argument("--min-p-real", type=float, default=None, metavar="Q",
                        help="keep only the sources whose p_real is at least Q (0..1) in every "
                             "output (catalogue metadata PREALMIN)")
    parser.add_argument("--selection", choices=("reliability", "score"), default="reliability",
                        help="reliability (default): the model's tuned centre threshold, 96%% "
                             "strict reliability on its validation fields; score: the centre "
                             "threshold and p_real cut that gave the highest SDC1 score there "
                             "(more faint sources, more false ones)")
    parser.add_argument("--components", action=argparse.BooleanOptionalAction, default=None,
                        help="also list the sources' Gaussian components (Aegean's and "
                             "PyBDSF's unit) in <stem>_comp.ecsv/.fits (default: for images "
                             "that are not SDC1)")
    parser.add_argument("--tile", type=int, default=None, help="tile side in pixels")
    parser.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels")
    parser.add_argument("--batch-size", type=int, default=None, help="tiles per model call")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="start afresh instead of resuming an interrupted run from "
                             "<out>/<stem>.partial/")
    parser.add_argument("--scheduler", default=None,
                        help="dask scheduler address (tcp://host:8786); its workers must "
                             "share this file system")
    parser.add_argument("--workers", type=int, default=None,
                        help="run on a local dask cluster of this many worker processes")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--denoise", choices=("dip",), default=None,
                        help="denoise the image first with a deep image prior (written to, "
                             "and reused from, <out>/<stem>_dip.fits)")
    parser.set_defaults(handler=_cmd_predict)


def _cmd_predict(args: argparse.Namespace) -> int:
    from radioseg_utils.core.paths import runs_dir
    from radioseg_utils.inference.config import PredictConfig
    from radioseg_utils.inference.predict import predict_image
    from radioseg_utils.model.files import DEFAULT_MODEL
    from radioseg_utils.simulation.sources import PrimaryBeam

    path = _image_path(args.image)
    beam = None
    if args.primary_beam is not None:
        beam = _image_path(args.primary_beam)
        PrimaryBeam.from_fits(beam)  # a bad file stops here, before any work
    out_dir = args.out or runs_dir() / "default" / "predict"
    if args.denoise:
        from radioseg_utils.inference.denoise import denoise_file

        path = denoise_file(path, out_dir / f"{path.stem}_{args.denoise}.fits", args.denoise)
    options = {k: getattr(args, k) for k in ("threshold", "min_area", "tile", "overlap", "batch_size",
                                             "centre_threshold", "flux_scale", "min_p_real")
               if getattr(args, k) is not None}
    if args.value is not None:
        options["threshold_kwargs"] = {"value": args.value}
    config = PredictConfig(split_blends=args.split_blends, tta=args.tta,
                           calibration=args.calibration, corrections=args.corrections,
                           reliability=args.reliability, components=args.components,
                           selection=args.selection, **options)
    result = predict_image(path, args.model or DEFAULT_MODEL, out_dir=out_dir,
                           config=config, primary_beam=beam,
                           overwrite=args.overwrite, resume=args.resume,
                           scheduler=args.scheduler, n_workers=args.workers)
    logger.info("%d sources, threshold %s", result.n_sources, result.threshold)
    sys.stdout.write("".join(f"{p}\n" for p in result.paths.values()))
    return EXIT_OK


# --------------------------------------------------------------------------- simulate
def _add_simulate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="render an SDC1-like field (FITS + truth ECSV) from the synthetic population",
        description=(
            "Render a simulated SDC1-like image: synthetic T-RECS-like sources (or a truth "
            "catalogue), beam-convolved, plus correlated noise, streamed tile by tile into "
            "<out>/sim_<band>_<t>h_<size>_seed<seed>.fits with its .truth.ecsv."
        ),
    )
    parser.add_argument("--band", default="B1", help="SDC1 band: B1, B2 or B5")
    parser.add_argument("--integration", type=int, default=1000, help="8, 100 or 1000 hours")
    parser.add_argument("--size", type=int, default=2048, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <generated>/simulations)")
    parser.add_argument("--catalogue", type=Path, default=None,
                        help="SDC1 truth catalogue to render instead of the synthetic population")
    parser.add_argument("--primary-beam", action="store_true",
                        help="attenuate by the band's SDC1 primary beam (registry file)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--tile", type=int, default=2048, help="tile side in pixels")
    parser.add_argument("--ndim", type=int, default=4, choices=(2, 4), help="FITS axes")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.set_defaults(handler=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from radioseg_utils.core.paths import generated_dir
    from radioseg_utils.io.catalogue import read_truth_catalogue
    from radioseg_utils.simulation.simulate import simulate_field

    out = args.out or generated_dir() / "simulations"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sim_{args.band}_{args.integration}h_{args.size}_seed{args.seed}.fits"
    catalogue = read_truth_catalogue(args.catalogue) if args.catalogue else None
    field = simulate_field(args.band, args.integration, shape=(args.size, args.size),
                           seed=args.seed, catalogue=catalogue, primary_beam=args.primary_beam,
                           tile=args.tile, n_workers=args.workers, output=path, ndim=args.ndim,
                           overwrite=args.overwrite)
    logger.info("wrote %s and %s", field.path, field.truth_path)
    sys.stdout.write(f"{field.path}\n{field.truth_path}\n")
    return EXIT_OK


# --------------------------------------------------------------------------- pretrain
def _add_pretrain(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="reproduce the shipped model (simulate, train, tune, evaluate on held-out data)",
        description=(
            "Simulate the training fields (B1 at 8/100/1000 h, B2, B5), a validation field "
            "per band and integration and a held-out test field, train the U-Net of the "
            "recipe (--profile default: 3 levels, on CPU; full: the shipped 4-level model, "
            "for a GPU) with its centre head, tune the centre threshold of each band and "
            "integration on its validation field, fit the size and flux calibration and "
            "p_real and write the model with its sidecar, calibration and MANIFEST.json "
            "(data, seeds, versions, where it was trained, held-out scores). Interrupted "
            "runs resume; --until train and --trained split the work between machines; "
            "--tune MODEL does the tuning and fitting for a model made elsewhere."
        ),
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the package's pretrained/ folder)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for fields, dataset and checkpoints")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default 2026)")
    parser.add_argument("--train-seed", type=int, default=None,
                        help="seed of the training only: initial weights, cutout order, "
                             "dropout (default: --seed); another random start on the same "
                             "fields; give each start its own --work-dir")
    parser.add_argument("--profile", default="default",
                        choices=("default", "full", "full-continued", "full-pairs",
                                 "full-blends", "full-deep-blends", "full-bright-blends",
                                 "full-wide-blends", "full-scratch", "full-scratch-blends"),
                        help="recipe: default (3 levels, CPU), full (the shipped 4-level "
                             "model, 3.6x the data, for a GPU), full-continued (full's "
                             "training continued from the shipped weights, sized for a CPU), "
                             "full-pairs (the same, the centre loss sharper at close pairs), "
                             "full-blends (the same, on training fields with more close "
                             "pairs), full-deep-blends (pairs in the 100 h and 1000 h "
                             "fields only), full-bright-blends (of those, only sources "
                             "above 6 rms moved), full-wide-blends (the same with B2 8 h "
                             "and more B5 training fields), full-scratch (full from "
                             "scratch for the shipped run's 20 epochs at batch 32, on a "
                             "CPU) or full-scratch-blends (the same on full-bright-blends' "
                             "fields)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for simulating and cutting the fields")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="wall-clock seconds the training may take")
    parser.add_argument("--until", choices=("all", "train"), default="all",
                        help="stop after training (train): writes the model and "
                             "TRAINED.json into --out, to be finished with --trained")
    parser.add_argument("--trained", type=Path, default=None,
                        help="folder written by --until train (e.g. on a GPU machine): "
                             "tune, calibrate and evaluate its model instead of training")
    parser.add_argument("--reliability-only", action="store_true",
                        help="no training: fit the per-source reliability (p_real) of the "
                             "model unet_<band>.keras already in --out on the validation "
                             "fields (simulated into --work-dir unless there), check it on "
                             "the test field, name it in the sidecar and the manifest, and "
                             "choose the score selection (predict --selection score) with it")
    parser.add_argument("--tune", type=Path, default=None, metavar="MODEL",
                        help="no training: tune the centre thresholds and fit the size and "
                             "flux calibration and p_real of MODEL (an ensemble, a model "
                             "trained elsewhere) on the recipe's validation fields, written "
                             "beside MODEL; then `radioseg predict --model MODEL` uses them")
    parser.add_argument("--compare", type=Path, default=None, metavar="MODEL",
                        help="no training: MODEL against the model in --out (default the "
                             "shipped one), each at its own tuned threshold on every "
                             "validation field of the recipe; prints the table and whether "
                             "MODEL finds more (the test field is not used)")
    parser.add_argument("--compare-tta", action="store_true",
                        help="with --compare: run MODEL with test-time augmentation (the "
                             "mean over the eight flips and rotations of each tile); give the "
                             "shipped model as MODEL to measure what the augmentation buys")
    parser.add_argument("--against", type=Path, default=None, metavar="MODEL",
                        help="with --compare: the model file to compare with instead of the "
                             "model in --out (e.g. a control trained without one change)")
    parser.set_defaults(handler=_cmd_pretrain)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    import dataclasses

    from radioseg_utils.workflows.pretrain import (
        PRETRAIN_PROFILES,
        PRETRAINED_DIR,
        add_reliability,
        train_default_model,
    )

    settings, config = PRETRAIN_PROFILES[args.profile]
    if args.seed is not None:
        settings = dataclasses.replace(settings, seed=args.seed)
    for flag, given in (("--compare-tta", args.compare_tta), ("--against", args.against)):
        if given and args.compare is None:
            raise ValueError(f"{flag} needs --compare MODEL")
    tasks = [flag for flag, given in (("--compare", args.compare is not None),
                                      ("--tune", args.tune is not None),
                                      ("--reliability-only", args.reliability_only)) if given]
    if len(tasks) > 1:
        raise ValueError(f"{' and '.join(tasks)} are separate tasks: give one of them")
    if tasks and (args.until != "all" or args.trained is not None
                  or args.train_seed is not None):
        raise ValueError(f"{tasks[0]} trains nothing: drop --until, --trained and "
                         "--train-seed")
    if args.tune is not None:
        from radioseg_utils.workflows.pretrain import tune_model

        info = tune_model(args.tune, settings=settings, work_dir=args.work_dir,
                          n_workers=args.workers)
        sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
        return EXIT_OK
    if args.compare is not None:
        from radioseg_utils.workflows.selection import compare_models, verdict_line

        incumbent = args.against or (args.out or PRETRAINED_DIR) / f"unet_{settings.band}.keras"
        info = compare_models(args.compare, incumbent, candidate_tta=args.compare_tta,
                              settings=settings, work_dir=args.work_dir,
                              n_workers=args.workers)
        sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
        sys.stderr.write(verdict_line(info) + "\n")
        return EXIT_OK
    if args.reliability_only:
        model = (args.out or PRETRAINED_DIR) / f"unet_{settings.band}.keras"
        info = add_reliability(model, settings=settings, work_dir=args.work_dir,
                               n_workers=args.workers)
        sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
        return EXIT_OK
    if args.until == "train" and args.out is None:
        raise ValueError("--until train needs --out (the folder to carry back)")
    result = train_default_model(settings=settings, config=config, work_dir=args.work_dir,
                                 out_dir=args.out or PRETRAINED_DIR, n_workers=args.workers,
                                 time_budget=args.time_budget, until=args.until,
                                 trained=args.trained, train_seed=args.train_seed)
    shown = result if args.until == "train" else result.get("held_out_scores", {})
    sys.stdout.write(json.dumps(shown, indent=2, default=str) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------- ensemble
def _add_ensemble(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ensemble",
        help="average two or more trained models into one model file",
        description=(
            "Read two or more .keras models trained for the same data (band, "
            "normalisation, outputs) and save one model whose maps are the mean of "
            "theirs, with a sidecar listing the members. `radioseg pretrain --tune FILE` "
            "tunes its centre thresholds and fits its size and flux calibration and p_real "
            "on the validation fields (until then `radioseg predict --model FILE` runs it "
            "at the default centre threshold without them); `radioseg pretrain --compare "
            "FILE` says whether it finds more sources than the shipped model."
        ),
    )
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL",
                        help="the member .keras files (each with its .json sidecar)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help="the ensemble's .keras file (its sidecar is written beside it)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    parser.set_defaults(handler=_cmd_ensemble)


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from radioseg_utils.model.ensemble import save_ensemble

    path = save_ensemble(args.models, args.output, overwrite=args.overwrite)
    logger.info("ensemble of %d models written to %s; it has no tuned centre threshold, "
                "calibration or p_real yet: `radioseg pretrain --tune %s` fits them",
                len(args.models), path, path)
    return EXIT_OK


# --------------------------------------------------------------------------- ablation
def _add_ablation(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ablation",
        help="train the ablation models (one lever changed at a time) for the book",
        description=(
            "Train one small U-Net per input normalisation, loss and head on the default "
            "model's main training set (same seed, same cutouts, same epochs), tune the "
            "centre threshold on the validation field and save the models with a "
            "MANIFEST.json. Interrupted runs resume."
        ),
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: data/ablation of the project)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for fields, dataset and checkpoints (default: the "
                             "pretrain work folder, shared with `radioseg pretrain`)")
    parser.set_defaults(handler=_cmd_ablation)


def _cmd_ablation(args: argparse.Namespace) -> int:
    from radioseg_utils.workflows.ablation import ABLATION_DIR, train_ablation

    manifest = train_ablation(work_dir=args.work_dir, out_dir=args.out or ABLATION_DIR)
    sys.stdout.write(json.dumps({k: v.get("centre_threshold") for k, v in
                                 manifest["models"].items()}, indent=2) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------- evaluate
def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score every finder on held-out simulated fields per band and integration",
        description=(
            "Simulate one held-out field per band and integration (seeds disjoint from "
            "training), run the finders, score them (completeness per S/N bin and neighbour "
            "class, strict reliability, flux ratio, SDC1 score next to the field's ceiling: "
            "the score of a perfect catalogue above apparent S/N 3, 4, 5, runtime) and write "
            "grid.csv/.ecsv/.md into the run's results folder. Fields and finder outputs are "
            "cached in the run."
        ),
    )
    parser.add_argument("--bands", nargs="+", default=["B1", "B2", "B5"], help="SDC1 bands")
    parser.add_argument("--integrations", nargs="+", type=int, default=[8, 100, 1000],
                        help="integration times in hours")
    parser.add_argument("--finders", nargs="+", default=None,
                        help="finders to compare (default: all, in the order of "
                        "radioseg_utils.evaluation.evaluate.DEFAULT_FINDERS)")
    parser.add_argument("--size", type=int, default=1024, help="field side in pixels")
    parser.add_argument("--seed", type=int, default=1, help="base seed (0 <= seed < 2**32)")
    parser.add_argument("--run-dir", type=Path, default=None, help="run folder (cache, results)")
    parser.add_argument("--model", type=Path, default=None,
                        help="U-Net .keras model (default: the shipped pretrained one)")
    parser.add_argument("--real", action="store_true",
                        help="also score the real SDC1 B1 1000 h cutout")
    parser.add_argument("--denoise", choices=("dip",), default=None,
                        help="denoise every image first with a deep image prior (cached)")
    parser.set_defaults(handler=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import pandas as pd

    from radioseg_utils.evaluation.evaluate import DEFAULT_FINDERS
    from radioseg_utils.workflows import grid
    from radioseg_utils.workflows.pipeline import RunLayout

    layout = RunLayout.from_parameter(args.run_dir)
    finders = args.finders or list(DEFAULT_FINDERS)
    options = {"unet": {"model": args.model}} if args.model and "unet" in finders else None
    table = grid.evaluate_grid(args.bands, args.integrations, finders, size=args.size,
                               seed=args.seed, run_dir=layout.root, finder_options=options,
                               denoise=args.denoise)
    if args.real:
        table = pd.concat([table, grid.evaluate_real_cutout(
            finders, finder_options=options, run_dir=layout.root, denoise=args.denoise)],
            ignore_index=True)
    paths = grid.write_grid_tables(table, layout.results)
    sys.stdout.write(paths["markdown"].read_text())
    logger.info("tables written to %s", ", ".join(str(p) for p in paths.values()))
    return EXIT_OK


# --------------------------------------------------------------------------- registry
#: Functions that each add one subcommand; append yours here.
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_fetch,
    _add_book,
    _add_pretrain,
    _add_ensemble,
    _add_ablation,
    _add_info,
    _add_train,
    _add_dataset,
    _add_predict,
    _add_simulate,
    _add_evaluate,
]


def build_parser() -> argparse.ArgumentParser:
    """Build the ``radioseg`` argument parser with every registered subcommand.

    Returns
    -------
    argparse.ArgumentParser
        Parser whose namespace has ``command`` (the subcommand name), ``verbose`` and
        ``handler`` (the function running the subcommand).
    """
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Segment radio sources in SKA SDC1-like images and compare with PyBDSF.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {PACKAGE_VERSION}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and full tracebacks"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``radioseg`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: :data:`EXIT_OK` on success, :data:`EXIT_USAGE` (2) on a user error
        (also what argparse uses for bad arguments).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # argparse exits on --help, --version and bad arguments
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet_tensorflow()
    try:
        for name in _OUTPUT_FOLDERS:
            if getattr(args, name, None) is not None:
                check_output_dir(getattr(args, name), what=f"--{name.replace('_', '-')}")
        return int(args.handler(args))
    except _USER_ERRORS as exc:
        if args.verbose:
            raise
        message = exc.with_remedy(_OVERWRITE_REMEDY) if isinstance(exc, OutputExistsError) else exc
        sys.stderr.write(f"{_PROG}: error: {message}\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
