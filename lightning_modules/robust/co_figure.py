"""The catastrophic-overfitting figure: the monitor's FGSM and PGD accuracy over training steps, with its events.

Drawn by :class:`~callbacks.catastrophic_overfitting.CatastrophicOverfittingMonitor` at the end of
training (``co_monitor.png`` in the run's log folder). A plain component: it takes the checks and events
as plain values, so any record of them can be drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from neuroalign.core.figures import save_figure

__all__ = ["plot_co_history"]

#: line colour of each monitor action
_ACTION_COLOURS = {"warn": "tab:red", "stop": "black", "rollback": "tab:orange", "rollback_stop": "black"}


def plot_co_history(
    history: Sequence[Mapping[str, float]],
    events: Sequence[tuple[int, str]],
    path: str | Path,
    title: str = "catastrophic-overfitting monitor",
    chance: float | None = None,
) -> Path:
    """Draw FGSM and PGD accuracy (and their gap) against the optimiser step, one dashed line per event.

    Args:
        history: the checks, each with ``step``, ``fgsm_acc`` and ``pgd_acc``.
        events: ``(step, action)`` of every detection (``warn``, ``stop``, ``rollback``, ``rollback_stop``).
        path: the PNG to write.
        title: the figure title (e.g. with eps, alpha and the subset size).
        chance: the chance accuracy (1 / classes), drawn as a dotted line; ``None``: none.

    Returns:
        ``path``.

    Raises:
        ValueError: ``history`` is empty.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        raise ValueError("plot_co_history: no check to draw")
    steps = [h["step"] for h in history]
    fgsm = [h["fgsm_acc"] for h in history]
    pgd = [h["pgd_acc"] for h in history]
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    ax.fill_between(steps, pgd, fgsm, color="tab:blue", alpha=0.12, label="gap (FGSM - PGD)")
    ax.plot(steps, fgsm, "o-", color="tab:blue", markersize=3, label="FGSM-RS accuracy (the training attack)")
    ax.plot(steps, pgd, "o-", color="tab:green", markersize=3, label="PGD accuracy")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance ({chance:.2g})")
    labelled: set[str] = set()
    for step, action in events:
        ax.axvline(step, color=_ACTION_COLOURS.get(action, "tab:red"), linestyle="--", linewidth=1,
                   label=None if action in labelled else f"detected: {action}")
        labelled.add(action)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("accuracy on the monitor's subset")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, path)
