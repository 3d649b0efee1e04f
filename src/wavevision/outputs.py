"""What models return to the tasks besides plain logits: the tasks' output types.

The tasks (:mod:`wavevision.engine.tasks`) and the losses own these types: a task reads them,
and any model family that gives a task more than a logits tensor returns one of them. They live
in this dependency-free module (not in a model file, nor under ``engine``, whose package import
loads the trainer) so that models, tasks and losses all import them without depending on each other.

* :class:`TokenLabelOutput` (classification with token labeling: Wave-ViT, LV-ViT, VOLO) and the
  geometry of its MixToken :data:`Box`;
* :class:`SegmentationOutput` (segmentation with an auxiliary head: UperNet).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["Box", "SegmentationOutput", "TokenLabelOutput", "box_area"]

Box = tuple[int, int, int, int]
"""``(top, left, bottom, right)`` on a token grid; rows ``top:bottom``, columns ``left:right``."""


def box_area(box: Box) -> int:
    """Tokens inside ``box`` (0 for an empty box)."""
    top, left, bottom, right = box
    return max(bottom - top, 0) * max(right - left, 0)


class TokenLabelOutput(NamedTuple):
    """What a token-labeling model returns in training mode (read by the classification task and
    :class:`wavevision.losses.TokenLabelLoss`).

    Attributes:
        logits: (B, num_classes) class-token logits.
        aux_logits: (B, N, num_classes) logits of the N = h * w final tokens (row-major),
            with MixToken undone: entry (i, j) always predicts sample i's own content at
            token j, so dense targets need no mixing.
        box: ``(top, left, bottom, right)`` of the MixToken box on the final (h, w) grid:
            rows ``top:bottom`` and columns ``left:right`` of sample i came from sample
            ``B-1-i``. Zero area when nothing was mixed. The class target must be mixed
            with weight ``1 - area / N`` (``TokenLabelLoss`` does it).
        grid_size: (h, w) of the final token grid.
    """

    logits: torch.Tensor
    aux_logits: torch.Tensor
    box: Box
    grid_size: tuple[int, int]


class SegmentationOutput(NamedTuple):
    """What a segmentation model with an auxiliary head returns in training mode (read by the
    segmentation task).

    Attributes:
        logits: (B, num_classes, H, W) logits of the decode head, at the input's size.
        aux_logits: (B, num_classes, H, W) logits of the auxiliary head, at the input's size.
        aux_weight: the auxiliary loss's weight (MMSegmentation's 0.4 for UperNet).
    """

    logits: torch.Tensor
    aux_logits: torch.Tensor
    aux_weight: float
