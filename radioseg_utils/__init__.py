"""radioseg: deep segmentation of radio sources in SKA SDC1-like continuum images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("radioseg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
