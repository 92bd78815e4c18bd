"""Is ``p_real`` a probability? The reliability diagram of a catalogue against its truth.

``p_real`` (:mod:`radioseg_utils.postprocess.reliability`) claims that, of the detections
given ``p_real = 0.8``, 80 % are real. :func:`reliability_diagram` checks the claim on a
field with known truth: the detections sorted by ``p_real`` and cut into bins of equal
counts (deciles by default), each bin's mean ``p_real`` against the fraction of its
detections that are real (:func:`radioseg_utils.evaluation.metrics.real_detections`), with
the binomial standard error of that fraction. :func:`plot_reliability_diagram` draws it.
Check it on fields the model was never fitted on: the default model's ``p_real`` is fitted
on validation fields and shown on the held-out test field.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["P_REAL_TOLERANCE", "reliability_diagram", "plot_reliability_diagram"]

#: Largest gap between the mean ``p_real`` and the observed fraction of real detections in
#: any decile for ``p_real`` to count as calibrated (the project's target).
P_REAL_TOLERANCE: float = 0.05


def reliability_diagram(p_real: Sequence[float], real: Sequence[bool], *,
                        n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability against the observed fraction, in bins of equal counts.

    Parameters
    ----------
    p_real : array, shape (n,)
        Predicted probabilities in [0, 1].
    real : array of bool, shape (n,)
        Whether each detection is real.
    n_bins : int
        Number of bins (10: deciles of ``p_real``). Detections are sorted by ``p_real``
        (ties in catalogue order) and split into ``n_bins`` runs of equal count (within
        one), so that every bin holds enough detections even when most ``p_real`` lie
        near 1.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin``, ``n``, ``p_lo``, ``p_hi`` (range of ``p_real``),
        ``mean_p_real``, ``observed`` (fraction real), ``stderr`` (binomial standard
        error of ``observed`` at ``mean_p_real``) and ``gap`` (``observed -
        mean_p_real``).

    Raises
    ------
    ValueError
        If the lengths differ, a probability lies outside [0, 1] or is NaN, or there are
        fewer detections than bins.

    Examples
    --------
    >>> table = reliability_diagram([0.1, 0.2, 0.8, 0.9], [False, False, True, True], n_bins=2)
    >>> table[["n", "mean_p_real", "observed"]].round(2).values.tolist()
    [[2.0, 0.15, 0.0], [2.0, 0.85, 1.0]]
    """
    p = np.asarray(p_real, float)
    real = np.asarray(real, bool)
    if p.shape != real.shape or p.ndim != 1:
        raise ValueError(f"p_real {p.shape} and real {real.shape} must be 1-D of one length")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p_real must lie in [0, 1] (no NaN)")
    if p.size < n_bins or n_bins < 1:
        raise ValueError(f"{p.size} detections cannot fill {n_bins} bins")
    rows = []
    for k, idx in enumerate(np.array_split(np.argsort(p, kind="stable"), n_bins)):
        mean, observed = float(p[idx].mean()), float(real[idx].mean())
        rows.append({"bin": k, "n": int(idx.size), "p_lo": float(p[idx].min()),
                     "p_hi": float(p[idx].max()), "mean_p_real": mean, "observed": observed,
                     "stderr": float(np.sqrt(mean * (1 - mean) / idx.size)),
                     "gap": observed - mean})
    return pd.DataFrame(rows)


def plot_reliability_diagram(table: pd.DataFrame, *, ax=None, label: str = "p_real",
                             tolerance: float = P_REAL_TOLERANCE):
    """Draw a :func:`reliability_diagram`: observed fraction against mean ``p_real``.

    The diagonal is a perfect calibration; the grey band is ``± tolerance`` around it; the
    error bars are twice the binomial standard error; the legend gives the bin counts and
    the largest gap.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 5.0), constrained_layout=True)
    low = float(min(table["mean_p_real"].min(), table["observed"].min()))
    lo = max(0.0, np.floor(low * 10) / 10 - 0.05)
    grid = np.linspace(lo, 1.0, 50)
    ax.fill_between(grid, grid - tolerance, grid + tolerance, color="0.9",
                    label=f"±{100 * tolerance:g} points")
    ax.plot(grid, grid, "k--", lw=0.8)
    worst = float(np.abs(table["gap"]).max())
    ax.errorbar(table["mean_p_real"], table["observed"], yerr=2 * table["stderr"], fmt="o",
                ms=4, capsize=2,
                label=f"{label}: {len(table)} bins of {int(table['n'].min())}-"
                      f"{int(table['n'].max())} detections, largest gap {100 * worst:.1f} points")
    ax.set(xlim=(lo, 1.0), ylim=(lo, 1.0), xlabel="mean p_real in the bin",
           ylabel="fraction of real detections", aspect="equal")
    ax.legend(loc="lower right", fontsize=8)
    return ax
