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
from pathlib import Path

from radioseg_utils.core.paths import PROJECT_ROOT

__all__ = ["PACKAGE_VERSION", "BOOK_PACKAGES", "CPU_FEATURES", "cpu_description", "versions",
           "provenance", "git_commit"]

#: CPU flags that decide how fast a network runs here: wide vectors, bf16 and matrix units
#: (TensorFlow turns oneDNN on by default with AVX-512; ``mixed_bfloat16`` needs the bf16
#: ones to be faster than float32).
CPU_FEATURES: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")

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


def cpu_description(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, object]:
    """The processor's model name and which of :data:`CPU_FEATURES` it has.

    Parameters
    ----------
    cpuinfo : path
        Linux's processor description; elsewhere (no such file) the model name is
        ``platform.processor()`` and the features are empty.

    Returns
    -------
    dict
        ``model`` (str) and ``features`` (list of str, in the order of :data:`CPU_FEATURES`).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {"model": platform.processor(), "features": []}
    first = text.split("\n\n", 1)[0]  # the first processor's block
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", platform.processor()),
            "features": [f for f in CPU_FEATURES if f in flags]}
