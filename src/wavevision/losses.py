"""Training losses: soft-target cross entropy and the token-labeling loss (Wave-ViT, LV-ViT, VOLO).

Token labeling trains the class head on the image label and an auxiliary head on every
final token against a dense label (a per-token class distribution, e.g. from a
pretrained annotator). A Wave-ViT with token labeling returns, in training mode, a
:class:`wavevision.models.TokenLabelOutput`: class logits, per-token logits (with MixToken
already undone, so they line up with each image's own dense labels) and the MixToken box.
:class:`TokenLabelLoss` turns that and the labels into one scalar::

    criterion = TokenLabelLoss()
    out = model(images)                       # TokenLabelOutput in model.train()
    loss = criterion(out, labels)             # hard labels: every token gets the image label
    loss = criterion(out, labels, token_maps) # dense labels (B, N, K), (B, K, H, W) or (B, H, W)

The class target is mixed like the input: ``lam * y + (1 - lam) * y.flip(0)`` with
``lam = 1 - box area / N``. A plain logits tensor (eval mode, or ``token_label=False``)
gets the soft-target cross entropy alone, so one criterion serves both.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .outputs import TokenLabelOutput, box_area

__all__ = ["TokenLabelLoss", "class_probabilities", "dense_token_target", "soft_target_cross_entropy"]


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all leading dims of ``-sum_k target_k * log_softmax(logits)_k`` (computed in float32)."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must have the same shape")
    return torch.sum(-target.float() * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def _one_hot(labels: torch.Tensor, num_classes: int, label_smoothing: float) -> torch.Tensor:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"class labels must lie in [0, {num_classes - 1}], got values from {int(labels.min())} to {int(labels.max())}"
        )
    probs = F.one_hot(labels.long(), num_classes).float()
    if label_smoothing:
        probs = probs * (1.0 - label_smoothing) + label_smoothing / num_classes
    return probs


def class_probabilities(target: torch.Tensor, num_classes: int, label_smoothing: float = 0.0) -> torch.Tensor:
    """(B, K) class distributions from hard labels (B,) or soft labels (B, K) (returned as given)."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a tensor of class indices (B,) or probabilities (B, K), got {type(target).__name__}")
    if not target.is_floating_point():
        if target.dim() != 1:
            raise ValueError(f"hard labels must have shape (batch,), got {tuple(target.shape)}")
        return _one_hot(target, num_classes, label_smoothing)
    if target.dim() != 2 or target.shape[1] != num_classes:
        raise ValueError(f"soft labels must have shape (batch, {num_classes}), got {tuple(target.shape)}")
    return target.float()


def dense_token_target(
    token_target: torch.Tensor,
    grid_size: tuple[int, int],
    num_classes: int,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """(B, N, K) per-token distributions for an (h, w) token grid, N = h * w.

    Accepts (B, N, K) token labels as they are, (B, K, H, W) score maps (averaged over each
    token's area when H, W differ from the grid: ``F.interpolate(mode="area")``), or
    (B, H, W) integer label maps (one-hot, then averaged the same way).
    """
    h, w = grid_size
    if not token_target.is_floating_point():
        if token_target.dim() != 3:
            raise ValueError(f"integer token labels must be a (B, H, W) map, got shape {tuple(token_target.shape)}")
        token_target = _one_hot(token_target, num_classes, label_smoothing).permute(0, 3, 1, 2)
    if token_target.dim() == 3:
        if token_target.shape[1:] != (h * w, num_classes):
            raise ValueError(
                f"token labels (B, N, K) must have N = {h}x{w} = {h * w} tokens and K = {num_classes} classes, "
                f"got {tuple(token_target.shape)}; pass (B, K, H, W) maps to have them resized to the token grid"
            )
        return token_target.float()
    if token_target.dim() != 4 or token_target.shape[1] != num_classes:
        raise ValueError(
            f"dense labels must be (B, N, {num_classes}) tokens, (B, {num_classes}, H, W) maps or (B, H, W) "
            f"integer maps, got shape {tuple(token_target.shape)}"
        )
    maps = token_target.float()
    if maps.shape[-2:] != (h, w):
        maps = F.interpolate(maps, size=(h, w), mode="area")
    return maps.flatten(2).transpose(1, 2)


def _grid_of(n: int) -> tuple[int, int]:
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"cannot tell the token grid of {n} tokens; pass a TokenLabelOutput (it carries grid_size)")
    return side, side


class TokenLabelLoss(nn.Module):
    """``cls_weight * CE(class head) + dense_weight * CE(aux head, per token)``, MixToken-aware.

    Args:
        cls_weight: weight of the class-token loss.
        dense_weight: weight of the per-token loss (0.5 in LV-ViT/VOLO token labeling).
        label_smoothing: smoothing applied to hard labels (class and dense).

    ``forward(output, target, token_target=None)``:
        output: a :class:`~wavevision.models.TokenLabelOutput` (or the reference's
            ``(logits, aux_logits, box)`` triple), or a plain (B, K) logits tensor.
        target: class labels (B,) or class distributions (B, K) of the unmixed images.
        token_target: dense labels of the unmixed images (see :func:`dense_token_target`);
            without them every token is trained on its image's class label.
    """

    def __init__(self, *, cls_weight: float = 1.0, dense_weight: float = 0.5, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if cls_weight < 0 or dense_weight < 0 or cls_weight + dense_weight <= 0:
            raise ValueError(f"weights must be >= 0 and not both 0, got cls_weight={cls_weight}, dense_weight={dense_weight}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.cls_weight = float(cls_weight)
        self.dense_weight = float(dense_weight)
        self.label_smoothing = float(label_smoothing)

    def forward(
        self,
        output: torch.Tensor | TokenLabelOutput | Sequence,
        target: torch.Tensor,
        token_target: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            return soft_target_cross_entropy(output, class_probabilities(target, output.shape[-1], self.label_smoothing))
        if not isinstance(output, (tuple, list)) or len(output) not in (3, 4):
            raise TypeError(
                "output must be a logits tensor or a TokenLabelOutput (logits, aux_logits, box, grid_size) "
                f"from a token-labeling model in training mode, got {type(output).__name__}"
            )
        logits, aux = output[0], output[1]
        top, left, bottom, right = (int(v) for v in output[2])
        box = (top, left, bottom, right)
        if aux.dim() != 3 or aux.shape[0] != logits.shape[0] or aux.shape[-1] != logits.shape[-1]:
            raise ValueError(f"aux_logits must be (B, N, K) matching logits {tuple(logits.shape)}, got {tuple(aux.shape)}")
        b, n, k = aux.shape
        probs = class_probabilities(target, k, self.label_smoothing)
        if probs.shape[0] != b:
            raise ValueError(f"target has {probs.shape[0]} samples but the output has {b}")
        if token_target is None:
            dense = probs[:, None].expand(b, n, k)
        else:
            grid = tuple(output[3]) if len(output) == 4 else _grid_of(n)
            dense = dense_token_target(token_target, grid, k, self.label_smoothing)
            if dense.shape[0] != b:
                raise ValueError(f"token_target has {dense.shape[0]} samples but the output has {b}")
        lam = 1.0 - box_area(box) / n  # the share of each image its class token still sees
        cls_target = probs if lam >= 1.0 else lam * probs + (1.0 - lam) * probs.flip(0)
        loss = self.cls_weight * soft_target_cross_entropy(logits, cls_target)
        return loss + self.dense_weight * soft_target_cross_entropy(aux, dense)
