"""Pictures: curve plots (a PNG with matplotlib, a note with the install command without it),
bench plots, and the drawings of predictions (issue 22: pictures that explain themselves)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from wavevision.engine import plot_history
from wavevision.engine.plots import history_figure, history_panels

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


# -- issue 22: pictures that explain themselves ------------------------------------------------

SR_HISTORY = [{"epoch": e, "train_loss": 0.1 / e, "val_loss": 0.12 / e, "val_psnr": 30.0 + e, "val_ssim": 0.8 + e / 100,
               "val_bicubic_psnr": 30.5, "val_bicubic_ssim": 0.85, "lr": 1e-3 / e} for e in (1, 2, 3)]
CLS_HISTORY = [{**r, "val_top5": 90.0 + r["epoch"]} for r in HISTORY]


@pytest.fixture
def plt():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_sr_curves_show_bicubic_beside_the_model_once_in_a_compact_grid(tmp_path):
    pytest.importorskip("matplotlib")
    metrics = ["psnr", "ssim", "bicubic_psnr", "bicubic_ssim"]       # SuperResolution.metrics minus loss
    panels = history_panels(SR_HISTORY, metrics)
    assert [name for name, _ in panels] == ["loss", "psnr", "ssim", "learning rate"]   # no flat duplicate panels
    assert dict(panels)["psnr"] == ["val_psnr", "val_bicubic_psnr"]
    from PIL import Image

    with Image.open(plot_history(SR_HISTORY, tmp_path / "sr.png", metrics=metrics)) as img:
        width, height = img.size
    assert width / height <= 2.0, img.size                            # was a 2772x374 strip


def test_every_curve_panel_has_a_legend_also_with_one_curve(plt):
    fig = history_figure(plt, CLS_HISTORY, metrics=["top1", "top5"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "top1", "top5", "learning rate"]
    top5 = fig.axes[2]
    assert top5.get_legend() is not None and [t.get_text() for t in top5.get_legend().get_texts()] == ["val top5"]
    assert all(ax.get_legend() is not None for ax in fig.axes)


def _bench_rows(accuracies):
    from wavevision.bench import BenchResult

    return [BenchResult(model=f"m{i}", params=1000 * (i + 1), latency_ms=1.0 + i, train_peak_mb=20.0 + i,
                        train_baseline_mb=10.0, accuracy=acc, accuracy_source="reference" if acc is not None else "")
            for i, acc in enumerate(accuracies)]


def test_bench_plot_has_no_single_point_accuracy_panels(plt):
    from wavevision.bench.report import bench_figure

    fig = bench_figure(_bench_rows([None, None, 99.0]))          # `bench mixer_dwt mixer_pool wavemix_lite_8_10`
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_ylabel() for ax in shown] == ["inference latency, batch 1 (ms)",
                                                 "training step: peak RSS - baseline (MiB)"]
    foot = " ".join(t.get_text() for t in fig.texts)
    assert "only m2 has an accuracy (99 %" in foot and "left out" in foot


def test_bench_plot_without_memory_shows_no_empty_panels(plt):
    from wavevision.bench.report import bench_figure

    rows = _bench_rows([99.0, 90.0, None])
    for r in rows:
        r.train_peak_mb = None                                      # --no-memory
    fig = bench_figure(rows)
    shown = [ax for ax in fig.axes if ax.axison]
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in shown] == [
        ("parameters", "inference latency, batch 1 (ms)"), ("inference latency, batch 1 (ms)", "accuracy (%)")]
    assert all(len(ax.collections) >= 2 for ax in shown)            # every panel compares at least two models


def test_bench_accuracy_axis_stays_within_100_percent(plt):
    from wavevision.bench.report import bench_figure

    fig = bench_figure(_bench_rows([97.0, 99.0, 99.9]))
    acc_axes = [ax for ax in fig.axes if ax.get_ylabel() == "accuracy (%)"]
    assert len(acc_axes) == 2
    for ax in acc_axes:
        low, high = ax.get_ylim()
        assert high <= 100.0 and low <= 97.0 and high >= 99.9      # was 104 %


def test_palette_background_is_neutral():
    from wavevision.engine.tasks._images import palette

    colours = palette(11)
    r, g, b = colours[0]
    assert r == g == b                                             # was bright red (255, 38, 38)
    assert len(set(colours)) == 11


def test_detections_on_a_small_image_are_drawn_at_a_readable_size():
    from wavevision.engine.tasks._images import palette
    from wavevision.engine.tasks.detection import draw_detections

    image = torch.zeros(1, 96, 96)
    det = {"boxes": torch.tensor([[2.0, 1.0, 30.0, 30.0], [60.0, 50.0, 95.0, 95.0]]), "labels": torch.tensor([6, 3]),
           "scores": torch.tensor([0.9, 0.8]), "masks": torch.zeros(2, 1, 96, 96)}
    names = tuple(f"digit {i}" for i in range(10))
    drawing = draw_detections(image, det, names)
    assert drawing.size == (384, 384)                              # was drawn at 96x96
    pixels = torch.from_numpy(np.asarray(drawing).copy())
    tag = torch.tensor(palette(11)[6], dtype=torch.uint8)
    hits = (pixels == tag).all(-1).nonzero()
    assert len(hits) > 100                                          # the box at the top edge keeps its tag inside
    assert int(hits[:, 0].min()) >= 0 and int(hits[:, 1].max()) < 384


def test_segmentation_overlay_has_a_legend_and_a_readable_size(tmp_path):
    from PIL import Image

    from wavevision.data import DatasetInfo
    from wavevision.engine import get_task
    from wavevision.engine.tasks import PredictItem
    from wavevision.engine.tasks._images import palette

    names = ("background", *(f"digit {i}" for i in range(10)))
    info = DatasetInfo(name="digit-scenes", task="segmentation", in_chans=1, num_classes=11, class_names=names,
                       image_size=(64, 64), mean=(), std=())
    logits = torch.zeros(11, 64, 64)
    logits[0] = 1.0
    logits[4, 10:30, 10:30] = 2.0                                   # "digit 3" on 400 of 4,096 pixels
    item = PredictItem(path=tmp_path / "scene.png", raw=torch.rand(1, 64, 64), x=torch.rand(1, 64, 64), out=logits)
    result = get_task("segmentation").render(item, info=info, model=torch.nn.Identity(), out_dir=tmp_path, topk=1)
    mask, overlay = Image.open(result["mask"]), Image.open(result["overlay"])
    assert mask.size == (64, 64) and mask.getpalette()[:3] == [0, 0, 0]   # class ids; neutral background
    assert overlay.height == 384 and overlay.width > 384           # enlarged, with a legend column on the right
    legend = torch.from_numpy(np.asarray(overlay.convert("RGB"))[:, 384:].copy())
    for colour in (palette(11)[0], palette(11)[4]):                # a swatch per class present
        assert (legend == torch.tensor(colour, dtype=torch.uint8)).all(-1).sum() >= 100
    assert result["classes"]["digit 3"] == pytest.approx(100 * 400 / 4096)


def test_epochs_are_whole_numbers_on_the_axis(plt):
    fig = history_figure(plt, SR_HISTORY, metrics=["psnr"])
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)   # was 1.0, 1.5, 2.0, 2.5, 3.0


def test_detection_tags_of_overlapping_boxes_do_not_cover_each_other():
    from PIL import Image, ImageDraw

    from wavevision.engine.tasks._images import draw_label, font

    img = Image.new("RGB", (384, 384))
    draw, face, taken = ImageDraw.Draw(img), font(16), []
    a = draw_label(draw, (40, 60, 120, 200), "digit 6 60%", (255, 0, 0), img.size, face, taken)
    b = draw_label(draw, (44, 62, 124, 190), "digit 5 55%", (0, 255, 0), img.size, face, taken)
    assert a[3] <= b[1] or b[3] <= a[1]                               # stacked, not on top of each other
    c = draw_label(draw, (300, 2, 383, 40), "digit 1 90%", (0, 0, 255), img.size, face, taken)
    assert 0 <= c[0] and c[2] <= 384 and c[1] >= 0                  # at the edge: inside the picture
