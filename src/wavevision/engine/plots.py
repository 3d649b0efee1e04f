"""PNG plots of training curves (matplotlib with the Agg backend, imported only when plotting)."""
from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_bytes

__all__ = ["MATPLOTLIB_HINT", "history_figure", "history_panels", "panel_grid", "plot_history"]

MATPLOTLIB_HINT = "matplotlib is not installed, so no plots were written; pip install matplotlib (or 'wavevision[plot]')"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def history_panels(history: Sequence[dict[str, Any]], metrics: Sequence[str] = ()) -> list[tuple[str, list[str]]]:
    """The panels of :func:`plot_history`: ``(title, history keys)``, loss first and learning rate last.

    A metric's panel holds its train and val curves and, for super-resolution, bicubic's beside
    them; the ``bicubic_*`` metrics therefore get no panel of their own.
    """
    panels: list[tuple[str, list[str]]] = [("loss", [k for k in ("train_loss", "val_loss") if any(k in r for r in history)])]
    for m in metrics:
        if m.startswith("bicubic_") and m[len("bicubic_"):] in metrics:
            continue
        keys = [k for k in (f"train_{m}", f"val_{m}", f"val_bicubic_{m}") if any(k in r for r in history)]
        if keys:
            panels.append((m, keys))
    panels.append(("learning rate", ["lr"]))
    return panels


def panel_grid(n: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels: at most 3 a row, 4 as 2x2 (no long strips)."""
    cols = 2 if n in (2, 4) else min(3, n)
    return -(-n // cols), cols


def history_figure(plt: Any, history: Sequence[dict[str, Any]], *, metrics: Sequence[str] = (), title: str = "") -> Any:
    """The matplotlib figure :func:`plot_history` saves: one panel per :func:`history_panels`
    entry on a :func:`panel_grid`, every panel with a legend naming its curves."""
    from matplotlib.ticker import MaxNLocator

    panels = history_panels(history, metrics)
    rows, cols = panel_grid(len(panels))
    fig = plt.figure(figsize=(4.2 * cols, 3.2 * rows + 0.4))
    epochs = [r["epoch"] for r in history]
    for i, (name, keys) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for k in keys:
            pts = [(e, r[k]) for e, r in zip(epochs, history) if r.get(k) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3,
                        label=k.replace("_", " "), linestyle="--" if "bicubic" in k else "-")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)  # also for one curve: which split it is
    if title:
        fig.suptitle(title)
    return fig


def plot_history(history: Sequence[dict[str, Any]], path: str | Path, *, metrics: Sequence[str] = (),
                 title: str = "") -> Path | None:
    """Write loss, metric and learning-rate curves per epoch to ``path`` (PNG).

    Args:
        history: one dict per epoch with ``epoch`` and keys such as ``train_loss``,
            ``val_loss``, ``val_top1``, ``lr``.
        metrics: the metric names to plot beside the loss (``top1``, ``miou``, ``psnr`` ...).
        title: figure title.

    Returns:
        The path, or ``None`` (with a note on stderr) when matplotlib is missing.
    """
    plt = _pyplot()
    if plt is None:
        print(f"note: {MATPLOTLIB_HINT}", file=sys.stderr)
        return None
    fig = history_figure(plt, history, metrics=metrics, title=title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
