"""Provenance: the package version, the versions of the libraries a result depends on and
the git commit of the checkout, recorded in model sidecars, dataset metadata and run
manifests.

Examples
--------
>>> sorted(versions("numpy"))
['numpy', 'python', 'radioseg']
"""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

from radioseg_utils.core.paths import PROJECT_ROOT

__all__ = ["PACKAGE_VERSION", "BOOK_PACKAGES", "versions", "provenance", "git_commit"]

try:
    #: Version of the installed ``radioseg`` distribution.
    PACKAGE_VERSION: str = version("radioseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    PACKAGE_VERSION = "0.0.0+unknown"

#: Distributions whose versions the book's run manifest records.
BOOK_PACKAGES: tuple[str, ...] = ("numpy", "astropy", "tensorflow-cpu", "tensorflow", "keras",
                                  "scikit-image", "opencv-python-headless", "bdsf", "AegeanTools",
                                  "papermill", "jupyter-book")


def versions(*packages: str) -> dict[str, str]:
    """``{"python": ..., "radioseg": ..., package: version}`` for the installed ``packages``
    (distribution names; those not installed are left out)."""
    found = {"python": platform.python_version(), "radioseg": PACKAGE_VERSION}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def provenance(*packages: str) -> dict[str, object]:
    """:func:`versions` of ``packages`` with the git commit and the UTC time of creation."""
    return {"versions": versions(*packages), "git_commit": git_commit(),
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}



def git_commit() -> str | None:
    """Commit of the source checkout (recorded in run manifests and model sidecars).

    ``None`` outside a git work tree or without git.
    """
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
