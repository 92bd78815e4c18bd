"""A catalogue's sources as ellipses: DS9 region files (one ellipse per source, FK5, sizes
in arcsec), which DS9 and CARTA overlay on the image, and matplotlib patches on an image's
axes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table
from astropy.wcs import WCS

from radioseg_utils.core.paths import check_writable
from radioseg_utils.io.catalogue import sdc1_pa

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.patches import Ellipse

logger = logging.getLogger(__name__)

__all__ = [
    "ELLIPSE_COLUMNS",
    "write_ds9_regions",
    "ds9_header",
    "ds9_lines",
    "plot_catalogue_ellipses",
]

#: Ellipse kinds of :func:`plot_catalogue_ellipses` -> catalogue columns of the major and
#: minor axis (arcsec) and of the position angle (deg): ``"sdc1"`` the SDC1 parameters
#: (intrinsic, before the beam; ``pa`` in the SDC1 convention), ``"measured"`` the FWHMs
#: measured on the image, beam included (``pa_eon`` east of north), as DS9 regions draw.
ELLIPSE_COLUMNS: dict[str, tuple[str, str, str]] = {
    "sdc1": ("b_maj", "b_min", "pa"),
    "measured": ("fwhm_maj", "fwhm_min", "pa_eon"),
}
#: Offset (arcsec) towards north used to find the local pixel scale and direction of north.
_NORTH_STEP_ARCSEC: float = 1.0


def write_ds9_regions(catalogue: Table, path: str | Path, *, overwrite: bool = False,
                      color: str = "green") -> Path:
    """Write the sources as DS9 fk5 ellipses (measured FWHM / 2 semi-axes, with ids).

    The DS9 angle is counter-clockwise from the RA axis (west on the sky as displayed),
    i.e. ``pa_eon + 90`` for a position angle east of north.

    Parameters
    ----------
    catalogue : astropy.table.Table
        Catalogue of :func:`radioseg_utils.postprocess.measure.measure_sources` (uses ``ra_cent``,
        ``dec_cent``, ``fwhm_maj``, ``fwhm_min``, ``pa_eon``, ``id``).
    path : str or Path
        Output ``.reg`` file; replaced only when ``overwrite`` is True.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = check_writable(path, overwrite=overwrite)
    path.write_text("".join(ds9_header(color) + ds9_lines(catalogue)))
    return path


def ds9_header(color: str = "green") -> list[str]:
    """The first lines of a DS9 region file of fk5 shapes, each ending in a newline."""
    return ["# Region file format: DS9 version 4.1\n", f"global color={color} width=1\n",
            "fk5\n"]


def ds9_lines(catalogue: Table) -> list[str]:
    r"""One DS9 fk5 ellipse line per source (see :func:`write_ds9_regions`).

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"id": [3], "ra_cent": [-0.5], "dec_cent": [-30.0], "fwhm_maj": [2.0],
    ...            "fwhm_min": [1.0], "pa_eon": [100.0]})
    >>> ds9_lines(t)
    ['ellipse(359.5000000,-30.0000000,1.000",0.500",10.00) # text={3}\n']
    """
    def values(name: str) -> list[float]:  # float64, as Python floats: formatted as such
        return np.asarray(catalogue[name], dtype=float).tolist()

    ids = np.asarray(catalogue["id"]).astype(np.int64).tolist()
    rows = zip(values("ra_cent"), values("dec_cent"), values("fwhm_maj"), values("fwhm_min"),
               values("pa_eon"), ids, strict=True)
    return [f"ellipse({ra % 360.0:.7f},{dec:.7f},{major / 2:.3f}\",{minor / 2:.3f}\","
            f"{(pa + 90.0) % 180.0:.2f}) # text={{{i}}}\n"
            for ra, dec, major, minor, pa, i in rows]


def plot_catalogue_ellipses(ax: Axes, catalogue: Table, wcs: WCS, *, kind: str = "sdc1",
                            min_width: float = 1.0,
                            centre: tuple[str, str] = ("ra_cent", "dec_cent"),
                            **style: Any) -> list[Ellipse]:
    """Draw each source of a catalogue as an ellipse on an image's axes.

    The ellipse is centred on the source centroid (``ra_cent``, ``dec_cent``), its axes are
    the catalogue's full widths (FWHM, or the largest angular size for SDC1 ``size`` 1) and
    its major axis lies at the position angle east of north, with the local pixel scale
    and direction of north of ``wcs`` (so rotated or non-square grids are drawn right;
    east is taken counter-clockwise from north, as in every image with RA increasing to
    the left).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes showing the image in pixel coordinates (``imshow(..., origin="lower")``): plain
        axes or :class:`astropy.visualization.wcsaxes.WCSAxes`.
    catalogue : astropy.table.Table
        Sources with ``ra_cent``, ``dec_cent`` (deg) and the columns of ``kind`` in the
        schema units (:data:`~radioseg_utils.io.catalogue.CATALOGUE_COLUMNS`: arcsec, deg).
    wcs : astropy.wcs.WCS
        WCS of the image on the axes (its celestial part is used); for a section
        ``image[ys, xs]`` pass ``wcs.celestial[ys, xs]``.
    kind : str
        Which ellipse, a key of :data:`ELLIPSE_COLUMNS`: ``"sdc1"`` (``b_maj``, ``b_min``,
        ``pa`` in the SDC1 convention) or ``"measured"`` (``fwhm_maj``, ``fwhm_min``,
        ``pa_eon``).
    min_width : float
        Smallest width drawn along either axis, in pixels (unresolved sources have 0).
    centre : (str, str)
        RA and Dec columns of the ellipse centres (``("ra", "dec")`` for a component
        table, :mod:`radioseg_utils.postprocess.decompose`).
    **style
        Passed to :class:`matplotlib.patches.Ellipse` (default ``fill=False``).

    Returns
    -------
    list of matplotlib.patches.Ellipse
        One patch per source, in catalogue order, added to ``ax``.

    Raises
    ------
    ValueError
        If ``kind`` is unknown.
    KeyError
        If a column is missing.
    """
    from matplotlib.patches import Ellipse

    if kind not in ELLIPSE_COLUMNS:
        raise ValueError(f"unknown ellipse kind {kind!r}: expected one of "
                         f"{', '.join(ELLIPSE_COLUMNS)}")
    major, minor, angle = (np.asarray(catalogue[name], dtype=float)
                           for name in ELLIPSE_COLUMNS[kind])
    pa_eon = sdc1_pa(angle) if kind == "sdc1" else angle
    celestial = wcs.celestial
    ra = np.asarray(catalogue[centre[0]], dtype=float) % 360.0
    dec = np.asarray(catalogue[centre[1]], dtype=float)
    x, y = celestial.wcs_world2pix(ra, dec, 0)
    x_north, y_north = celestial.wcs_world2pix(ra, dec + _NORTH_STEP_ARCSEC / 3600.0, 0)
    pixels_per_arcsec = np.hypot(x_north - x, y_north - y) / _NORTH_STEP_ARCSEC
    north = np.degrees(np.arctan2(y_north - y, x_north - x))
    width = np.maximum(major * pixels_per_arcsec, min_width)
    height = np.maximum(minor * pixels_per_arcsec, min_width)
    style = {"fill": False, **style}
    patches = [Ellipse((float(x[i]), float(y[i])), float(width[i]), float(height[i]),
                       angle=float(north[i] + pa_eon[i]), **style)
               for i in range(len(catalogue))]
    for patch in patches:
        ax.add_patch(patch)
    return patches
