"""A catalogue against a reference catalogue of the same image, when no truth exists.

On a real image that is not SDC1 there is no true catalogue, only another finder's
(e.g. Aegean's, :func:`radioseg_utils.io.catalogue.read_aegean_components`).
:func:`compare_with_reference` matches the two one to one within a radius (half the
restoring beam's FWHM is the usual choice; brightest reference source first,
:func:`radioseg_utils.core.matching.match_positions`) and reports the fraction of the
reference matched, the median ratio of the integrated fluxes of the matched pairs, and
which reference sources are missed and which detections are extra
(:class:`ReferenceComparison`). :func:`plot_reference_overlay` draws both catalogues on
the image, every extra detection and missed reference source marked, and
:func:`plot_flux_comparison` the fluxes of the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table

from radioseg_utils.core.matching import Match, match_positions
from radioseg_utils.io.fits_read import SkyImage
from radioseg_utils.io.regions import plot_catalogue_ellipses

__all__ = ["ReferenceComparison", "compare_with_reference", "plot_reference_overlay",
           "plot_flux_comparison"]


def _jy(column) -> np.ndarray:
    unit = getattr(column, "unit", None)
    values = np.asarray(getattr(column, "value", column), dtype=float)
    return values if unit is None else (values * u.Unit(unit)).to_value(u.Jy)


@dataclass(frozen=True)
class ReferenceComparison:
    """A catalogue matched to a reference catalogue (:func:`compare_with_reference`).

    Attributes
    ----------
    match : Match
        ``pred`` rows of the catalogue, ``true`` rows of the reference, ``distance`` in
        arcsec.
    radius_arcsec : float
        Matching radius.
    flux_ratio : ndarray, shape (n_matched,)
        Catalogue / reference integrated flux of each pair (in ``match`` order).
    columns, reference_columns : (str, str)
        RA and Dec columns the catalogue and the reference were matched on.
    """

    match: Match
    radius_arcsec: float
    flux_ratio: np.ndarray
    columns: tuple[str, str] = ("ra_core", "dec_core")
    reference_columns: tuple[str, str] = ("ra_core", "dec_core")

    @property
    def matched_fraction(self) -> float:
        """Fraction of the reference sources matched (NaN for an empty reference)."""
        return self.match.tp / self.match.n_true if self.match.n_true else float("nan")

    @property
    def median_flux_ratio(self) -> float:
        """Median catalogue / reference flux of the pairs (NaN without pairs)."""
        return float(np.median(self.flux_ratio)) if self.flux_ratio.size else float("nan")

    @property
    def missed(self) -> np.ndarray:
        """Rows of the reference without a match."""
        return self.match.fn

    @property
    def extra(self) -> np.ndarray:
        """Rows of the catalogue without a match."""
        return self.match.fp

    def summary(self) -> dict:
        """The numbers: ``reference``, ``detections``, ``matched``, ``matched_fraction``,
        ``median_flux_ratio``, ``missed``, ``extra``, ``radius_arcsec``."""
        return {"reference": self.match.n_true, "detections": self.match.n_pred,
                "matched": self.match.tp, "matched_fraction": self.matched_fraction,
                "median_flux_ratio": self.median_flux_ratio, "missed": int(self.missed.size),
                "extra": int(self.extra.size), "radius_arcsec": self.radius_arcsec}


def compare_with_reference(catalogue: Table, reference: Table, *, radius_arcsec: float,
                           columns: tuple[str, str] = ("ra_core", "dec_core"),
                           reference_columns: tuple[str, str] = ("ra_core", "dec_core"),
                           ) -> ReferenceComparison:
    """Match a catalogue to a reference catalogue and compare their fluxes.

    Parameters
    ----------
    catalogue, reference : astropy.table.Table
        Catalogues in the project schema (positions in deg, ``flux`` in Jy, or without
        unit read as Jy), e.g. of :func:`radioseg_utils.inference.predict.predict_image`
        and :func:`radioseg_utils.io.catalogue.read_aegean_components`.
    radius_arcsec : float
        Largest separation of a pair, e.g. half the beam FWHM.
    columns, reference_columns : (str, str)
        RA and Dec columns of each.

    Returns
    -------
    ReferenceComparison

    Raises
    ------
    ValueError
        If a column is missing or not finite, or the radius is not positive.

    Examples
    --------
    >>> ref = Table({"ra_core": [0.0, 1.0], "dec_core": [0.0, 0.0], "flux": [2.0, 1.0]})
    >>> cat = Table({"ra_core": [0.0001, 3.0], "dec_core": [0.0, 0.0], "flux": [2.2, 5.0]})
    >>> c = compare_with_reference(cat, ref, radius_arcsec=5.0)
    >>> c.matched_fraction, round(c.median_flux_ratio, 2), c.missed.tolist(), c.extra.tolist()
    (0.5, 1.1, [1], [1])
    """
    for table, name in ((catalogue, "catalogue"), (reference, "reference")):
        if "flux" not in table.colnames:
            raise ValueError(f"{name} lacks the column flux")
    match = match_positions(catalogue, reference, radius_arcsec=radius_arcsec,
                            pred_columns=columns, true_columns=reference_columns,
                            order_by="flux")
    ratio = _jy(catalogue["flux"])[match.pred] / _jy(reference["flux"])[match.true]
    return ReferenceComparison(match, float(radius_arcsec), ratio, tuple(columns),
                               tuple(reference_columns))


def plot_reference_overlay(sky: SkyImage, catalogue: Table, reference: Table,
                           comparison: ReferenceComparison, *, names: tuple[str, str] = ("radioseg", "reference"),
                           ax=None):
    """The image with both catalogues: matched pairs, missed reference sources and extra
    detections each marked.

    Parameters
    ----------
    sky : SkyImage
        The image (shown in units of its sigma-clipped rms, asinh-stretched).
    catalogue, reference : astropy.table.Table
        As given to :func:`compare_with_reference`, which gave ``comparison``.
    names : (str, str)
        Legend names of the catalogue and the reference.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure with the image's WCS).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from radioseg_utils.core.noise import estimate_noise

    if ax is None:
        fig = plt.figure(figsize=(9, 8.5))
        ax = fig.add_subplot(projection=sky.wcs)
    fig = ax.figure
    background, rms = estimate_noise(sky.data)
    ax.imshow(np.arcsinh((sky.data - background) / rms), origin="lower", cmap="gray_r",
              vmin=-2, vmax=6)
    for table, columns, style in ((reference, comparison.reference_columns,
                                   {"edgecolor": "tab:red", "ls": "--"}),
                                  (catalogue, comparison.columns, {"edgecolor": "tab:blue"})):
        centre = ("ra_cent", "dec_cent") if "ra_cent" in table.colnames else columns
        plot_catalogue_ellipses(ax, table, sky.wcs, kind="measured", centre=centre, lw=0.8,
                                **style)

    def marks(table, columns, rows, **style):
        ra = np.asarray(table[columns[0]], dtype=float)[rows] % 360.0
        x, y = sky.wcs.celestial.wcs_world2pix(ra, np.asarray(table[columns[1]], dtype=float)[rows], 0)
        ax.plot(x, y, ls="none", **style)
        return x, y

    m, ours, theirs = comparison.match, comparison.columns, comparison.reference_columns
    marks(catalogue, ours, m.pred, marker="+", color="tab:blue", ms=7,
          label=f"{names[0]}, matched ({m.tp})")
    marks(reference, theirs, comparison.missed, marker="o", mfc="none", color="tab:red", ms=14,
          mew=1.5, label=f"{names[1]} only ({comparison.missed.size})")
    x, y = marks(catalogue, ours, comparison.extra, marker="s", mfc="none", color="tab:orange",
                 ms=12, mew=1.5, label=f"{names[0]} only ({comparison.extra.size})")
    for k, row in enumerate(comparison.extra):
        ax.annotate(f"{float(catalogue['peak_snr'][row]):.1f}" if "peak_snr" in catalogue.colnames
                    else str(row), (x[k], y[k]), xytext=(5, 5), textcoords="offset points",
                    color="tab:orange", fontsize=7)
    if hasattr(ax, "coords"):  # WCSAxes
        ax.coords[0].set_axislabel("Right ascension")
        ax.coords[1].set_axislabel("Declination")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(f"{m.tp} of {m.n_true} {names[1]} entries matched within "
                 f"{comparison.radius_arcsec:.0f}\"\n(extra detections labelled with their S/N)")
    return fig


def plot_flux_comparison(catalogue: Table, reference: Table, comparison: ReferenceComparison, *,
                         names: tuple[str, str] = ("radioseg", "reference")):
    """Integrated fluxes of the matched pairs: catalogue against reference, and their ratio.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    m = comparison.match
    ref, ours = _jy(reference["flux"])[m.true], _jy(catalogue["flux"])[m.pred]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    lo, hi = 0.5 * min(ref.min(initial=1.0), ours.min(initial=1.0)), 2 * max(ref.max(initial=1.0),
                                                                             ours.max(initial=1.0))
    left.loglog(ref, ours, "o", ms=4)
    left.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    left.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"{names[1]} integrated flux (Jy)",
             ylabel=f"{names[0]} integrated flux (Jy)", title=f"{m.tp} matched sources")
    right.semilogx(ref, comparison.flux_ratio, "o", ms=4)
    right.axhline(1.0, color="k", ls="--", lw=0.8)
    right.axhline(comparison.median_flux_ratio, color="tab:blue", lw=1,
                  label=f"median {comparison.median_flux_ratio:.3f}")
    right.set(xlabel=f"{names[1]} integrated flux (Jy)", ylabel=f"{names[0]} / {names[1]}",
              ylim=(0, 2.5), title="flux ratio")
    right.legend()
    return fig
