"""PNG plots of training curves (matplotlib with the Agg backend, imported only when plotting)."""
from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..utils.io import atomic_write_bytes

__all__ = ["MATPLOTLIB_HINT", "plot_history"]

MATPLOTLIB_HINT = "matplotlib is not installed, so no plots were written; pip install matplotlib (or 'wavevision[plot]')"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Sequence[Dict[str, Any]], path: "str | Path", *, metrics: Sequence[str] = (),
                 title: str = "") -> Optional[Path]:
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
    epochs = [r["epoch"] for r in history]
    panels: List[tuple] = [("loss", [k for k in ("train_loss", "val_loss") if any(k in r for r in history)])]
    for m in metrics:
        keys = [k for k in (f"train_{m}", f"val_{m}", f"val_bicubic_{m}") if any(k in r for r in history)]
        if keys:
            panels.append((m, keys))
    panels.append(("learning rate", ["lr"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels):
        for k in keys:
            pts = [(e, r[k]) for e, r in zip(epochs, history) if r.get(k) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3,
                        label=k.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
