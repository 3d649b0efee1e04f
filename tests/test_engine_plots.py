"""Curve plots: a PNG with matplotlib, a note with the install command without it."""
from __future__ import annotations

import sys

from wavevision.engine import plot_history

HISTORY = [{"epoch": 1, "train_loss": 2.0, "val_loss": 2.1, "val_top1": 40.0, "lr": 0.1},
           {"epoch": 2, "train_loss": 1.0, "val_loss": 1.2, "val_top1": 70.0, "lr": 0.05}]


def test_plot_history_writes_a_png(tmp_path):
    path = plot_history(HISTORY, tmp_path / "curves.png", metrics=["top1"], title="t")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_without_matplotlib_it_says_how_to_install_and_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert plot_history(HISTORY, tmp_path / "curves.png", metrics=["top1"]) is None
    assert "pip install matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "curves.png").exists()
