"""Evaluation metrics, accumulated as sums so that they stay exact across batches and processes.

Every meter keeps integer or float *totals* (correct predictions, samples, a confusion matrix,
sums of per-image PSNR) and divides only at the end, so a metric over unequal batches, or
over processes holding unequal shards, is weighted by samples exactly like one pass over the
whole set. :meth:`Meter.all_reduce` sums the totals over a ``torch.distributed`` group.

Super-resolution metrics follow the usual benchmark protocol: images clamped to [0, 1],
converted to the luma channel Y of ITU-R BT.601 (:func:`wavevision.ops.rgb_to_y`, studio range:
``16 + 65.481 R + 128.553 G + 24.966 B`` on a 0-255 scale; a one-channel image is its own Y),
``border`` pixels cropped from every side,
then PSNR (data range 1) and SSIM (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
statistics without Bessel's correction) per image, averaged over images.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..ops.color import rgb_to_y

__all__ = [
    "ClassificationMeter",
    "Meter",
    "SegmentationMeter",
    "SuperResolutionMeter",
    "confusion_matrix",
    "miou_from_confusion",
    "psnr",
    "ssim",
]


class Meter:
    """Sums of named quantities; subclasses say how the sums become metrics."""

    def __init__(self) -> None:
        self.totals: dict[str, torch.Tensor] = {}
        self._zero("nonfinite")

    def _zero(self, *names: str) -> None:
        # Every process must hold the same keys, even one whose shard was empty, or the
        # all-reduce would wait forever.
        for name in names:
            self.totals[name] = torch.zeros((), dtype=torch.float64)

    def _add(self, name: str, value: torch.Tensor) -> None:
        value = value.detach().to("cpu", torch.float64)
        self.totals[name] = self.totals[name] + value if name in self.totals else value.clone()

    def add_loss(self, loss: torch.Tensor, n: int) -> None:
        """Accumulate a batch-mean loss weighted by the batch's ``n`` samples."""
        self._add("loss_sum", loss.detach().float() * n)
        self._add("loss_n", torch.tensor(float(n)))

    def add_nonfinite(self, count: torch.Tensor) -> None:
        """Count samples whose outputs hold NaN or infinity (the metrics of such a pass mean nothing)."""
        self._add("nonfinite", torch.as_tensor(count))

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Accumulate one evaluated batch (each task's meter says what it takes)."""
        raise NotImplementedError

    @property
    def nonfinite(self) -> int:
        """Samples seen with NaN or infinite outputs."""
        return int(self.totals["nonfinite"])

    def all_reduce(self, device: torch.device | None = None) -> None:
        """Sum the totals over the default process group (no-op without one).

        Args:
            device: where the group's backend reduces (the process's accelerator for NCCL).
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        device = device or torch.device("cpu")
        for name in sorted(self.totals):
            t = self.totals[name].to(device)
            dist.all_reduce(t)
            self.totals[name] = t.cpu()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.totals.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.totals = {k: v.clone().to(torch.float64) for k, v in state.items()}

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        n = float(self.totals.get("loss_n", 0.0))
        if n > 0:
            out["loss"] = float(self.totals["loss_sum"]) / n
        return out


class ClassificationMeter(Meter):
    """Top-1 / top-k accuracy (percent) and loss, weighted by samples.

    Args:
        num_classes: the classifier's outputs (top-k is reported only when k < num_classes).
        topk: the k of the second accuracy.
    """

    def __init__(self, num_classes: int, topk: int = 5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.topk = topk
        self._zero("loss_sum", "loss_n", "correct1", f"correct{topk}", "n")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        logits = logits.detach()
        top = logits.topk(min(self.topk, logits.shape[1]), dim=1).indices
        hits = top.eq(target.view(-1, 1).to(top.device))
        self._add("correct1", hits[:, :1].sum())
        self._add(f"correct{self.topk}", hits.sum())
        self._add("n", torch.tensor(float(target.numel())))

    def compute(self) -> dict[str, float]:
        out = super().compute()
        n = float(self.totals["n"])
        if n > 0:
            out["top1"] = 100.0 * float(self.totals["correct1"]) / n
            if self.num_classes > self.topk:
                out[f"top{self.topk}"] = 100.0 * float(self.totals[f"correct{self.topk}"]) / n
        return out


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int | None = None) -> torch.Tensor:
    """``(num_classes, num_classes)`` int64 counts, rows = true class, columns = predicted.

    Pixels whose target is ``ignore_index`` are skipped. Targets outside ``[0, num_classes)``
    that are not ignored raise a ValueError naming the value.
    """
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if target.numel():
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= num_classes:
            bad = hi if hi >= num_classes else lo
            raise ValueError(
                f"segmentation label {bad} is out of range for {num_classes} classes "
                f"(valid 0..{num_classes - 1}, ignore index {ignore_index})"
            )
    idx = target * num_classes + pred
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def miou_from_confusion(cm: torch.Tensor) -> dict[str, Any]:
    """mIoU (percent, over classes that occur in the target or the prediction), pixel accuracy
    and per-class IoU (NaN where a class never occurs) from a confusion matrix."""
    cm = cm.to(torch.float64)
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    present = union > 0
    total = cm.sum()
    return {
        "miou": 100.0 * float(iou[present].mean()) if present.any() else float("nan"),
        "pixel_acc": 100.0 * float(tp.sum() / total) if total > 0 else float("nan"),
        "iou": [100.0 * float(v) for v in iou],
    }


class SegmentationMeter(Meter):
    """mIoU and pixel accuracy from an accumulated confusion matrix (ignore index skipped)."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._zero("loss_sum", "loss_n")
        self.totals["confusion"] = torch.zeros(num_classes, num_classes, dtype=torch.float64)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        pred = logits.detach().argmax(1)
        self._add("confusion", confusion_matrix(pred.cpu(), target.cpu(), self.num_classes, self.ignore_index))

    def compute(self) -> dict[str, float]:
        out = super().compute()
        if float(self.totals["confusion"].sum()) > 0:
            res = miou_from_confusion(self.totals["confusion"])
            out["miou"], out["pixel_acc"] = res["miou"], res["pixel_acc"]
        return out

    def per_class_iou(self) -> list[float]:
        """IoU of each class in percent (NaN for classes absent from targets and predictions)."""
        return miou_from_confusion(self.totals["confusion"])["iou"]


SSIM_WINDOW = 11  # the Gaussian window of SSIM (Wang et al. 2004), as every SR paper measures it


def _prepare(img: torch.Tensor, border: int) -> torch.Tensor:
    """Y (float64, clamped to [0, 1]) of (B, 1 or 3, H, W) images, ``border`` pixels cropped. A
    one-channel image is compared as it is (the benchmarks' protocol for grey images)."""
    if img.dim() != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 1 or 3, H, W) images, got shape {tuple(img.shape)}")
    y = img.detach().to(torch.float64).clamp(0, 1)
    if y.shape[1] == 3:
        y = rgb_to_y(y)
    if border > 0:
        if min(y.shape[-2:]) <= 2 * border:
            raise ValueError(f"images of size {tuple(y.shape[-2:])} are too small for a border crop of {border}")
        y = y[..., border:-border, border:-border]
    return y


def psnr(pred: torch.Tensor, target: torch.Tensor, *, border: int = 0, y_channel: bool = True) -> torch.Tensor:
    """Per-image PSNR (dB, data range 1) of (B, C, H, W) images in [0, 1], on Y unless ``y_channel=False``."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if y_channel:
        p, t = _prepare(pred, border), _prepare(target, border)
    else:
        p, t = (x.detach().to(torch.float64).clamp(0, 1) for x in (pred, target))
        if border > 0:
            p, t = (x[..., border:-border, border:-border] for x in (p, t))
    mse = (p - t).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-20))


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim(pred: torch.Tensor, target: torch.Tensor, *, border: int = 0, window: int = SSIM_WINDOW,
         sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM on the Y channel of (B, C, H, W) images in [0, 1] (statistics over the
    window positions that fit inside the cropped image)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    x, y = _prepare(pred, border), _prepare(target, border)
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} after the border crop, got {tuple(x.shape[-2:])}")
    w = _gaussian_window(window, sigma, x.dtype, x.device)
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x**2
    syy = F.conv2d(y * y, w) - mu_y**2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(1)


class SuperResolutionMeter(Meter):
    """Mean per-image PSNR / SSIM on Y with a border crop, for the model and (optionally) a baseline.

    Args:
        border: pixels cropped from each side before measuring (usually the scale factor).
    """

    def __init__(self, border: int = 0) -> None:
        super().__init__()
        self.border = border
        self._zero("loss_sum", "loss_n", *(f"{p}{k}" for p in ("", "bicubic_") for k in ("psnr_sum", "ssim_sum", "n")))

    def min_size(self) -> int:
        """The smallest image side measured: SSIM's window inside the border crop."""
        return SSIM_WINDOW + 2 * self.border

    def update(self, pred: torch.Tensor, target: torch.Tensor, prefix: str = "") -> None:
        h, w = target.shape[-2:]
        if min(h, w) < self.min_size():
            m = self.min_size()
            raise ValueError(f"an evaluation image of {w}x{h} pixels is too small to measure: PSNR and SSIM need "
                             f"at least {m}x{m} (SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window inside a border crop of "
                             f"{self.border}); remove the smaller images from the evaluation set")
        self._add(f"{prefix}psnr_sum", psnr(pred, target, border=self.border).sum())
        self._add(f"{prefix}ssim_sum", ssim(pred, target, border=self.border).sum())
        self._add(f"{prefix}n", torch.tensor(float(pred.shape[0])))

    def compute(self) -> dict[str, float]:
        out = super().compute()
        for prefix in ("", "bicubic_"):
            n = float(self.totals[f"{prefix}n"])
            if n > 0:
                out[f"{prefix}psnr"] = float(self.totals[f"{prefix}psnr_sum"]) / n
                out[f"{prefix}ssim"] = float(self.totals[f"{prefix}ssim_sum"]) / n
        return out

