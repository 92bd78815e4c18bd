"""The ``radioseg`` command line.

One subcommand per task. Each subcommand is a pair of private functions:
``_add_<cmd>(subparsers)`` declares its arguments and ``_cmd_<cmd>(args) -> int`` runs it
(thin: it calls the package and logs). To add a subcommand, write the pair and append the
``_add_<cmd>`` function to :data:`_SUBCOMMANDS`; ``_add_<cmd>`` registers its handler with
``parser.set_defaults(handler=_cmd_<cmd>)``.

Errors the user can fix (bad values, missing files, registry and download failures) are
reported as ``radioseg: error: <message>`` on stderr with exit status 2 and no traceback,
unless ``--verbose`` is given.

Examples
--------
>>> from radioseg_utils.cli import main
>>> main(["fetch", "--list"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from radioseg_utils import __version__, registry
from radioseg_utils.book import BookError

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
    KeyError,
    registry.RegistryError,
    BookError,
)

logger = logging.getLogger(__name__)


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
    parser.add_argument("--all", action="store_true", help="every file in the registry")
    parser.add_argument(
        "--small",
        action="store_true",
        help="every file with a known size below 100 MB (the small public files)",
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
        names = registry.list_files()
    elif args.small:
        names = registry.list_files(max_size=registry.SMALL_FILE_BYTES)
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
    parser.set_defaults(handler=_cmd_book)


def _cmd_book(args: argparse.Namespace) -> int:
    from radioseg_utils import book

    if not args.build_only:
        manifest = book.run_notebooks(
            args.profile, run_dir=args.run_dir, start_at=args.start_at, only=args.only
        )
        total = sum(n["seconds"] for n in manifest.notebooks)
        logger.info("executed %d notebooks in %.0f s; manifest in %s",
                    len(manifest.notebooks), total, manifest.run_dir)
    if not args.no_build:
        html = book.build_book()
        book.check_book(html)
        sys.stdout.write(f"{html / 'index.html'}\n")
    return EXIT_OK


# --------------------------------------------------------------------------- registry
#: Functions that each add one subcommand; append yours here.
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_fetch,
    _add_book,
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    try:
        return int(args.handler(args))
    except _USER_ERRORS as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        sys.stderr.write(f"{_PROG}: error: {message}\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
