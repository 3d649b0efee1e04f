"""This project's recipes for its embedded datasets (``train --dataset NAME`` uses them by default).

Tuned on this project's 2-core CPU; the costs are the training times measured there (README,
"Default recipes" and the digit-objects table). They have no published reference: the
reference is the project's own README.
"""
from __future__ import annotations

from ._recipe import EMA, Cost, Data, EvalProtocol, Loss, Optimizer, Recipe, Schedule, Source, Step
from ._registry import register_recipe

_README = Source("wavevision", "README.md", note="Default recipes (measured on the project's 2-core CPU)")
_CPU = "2-core CPU"


def _cpu(seconds: float, what: str) -> Cost:
    return Cost(accelerator_hours=round(seconds / 3600, 4), accelerator=_CPU,
                how=f"measured: {what} took at most {seconds:g} s on this project's 2-core CPU (README)")


register_recipe(Recipe(
    name="wavemix_lite_digits", description="WaveMix-Lite on the embedded 8x8 digits (CPU, about a minute)",
    model="wavemix_lite", model_args=dict(final_dim=32, ff_channel=32, depth=4, dropout=0.0),
    data=Data("digits", train=(Step("random_crop", {"padding": "1/8 of the side"}), Step("hflip", {"p": 0.5}),
                               Step("normalize")), eval=(Step("normalize"),)),
    optimizer=Optimizer("adamw", lr=3e-3, weight_decay=0.05, no_decay=("1d",)),
    schedule=Schedule("cosine", warmup_epochs=1.0), epochs=15, global_batch=64,
    loss=Loss("cross_entropy", label_smoothing=0.1), eval=EvalProtocol("full_image", "top1"),
    reference=_README, cost=_cpu(52, "15 epochs"), dataset_default=True,
))

register_recipe(Recipe(
    name="wavemix_seg_digit_scenes", description="WaveMix segmentation on the embedded digit scenes (CPU)",
    model="wavemix_seg", model_args=dict(final_dim=32, ff_channel=32, depth=3, level=2),
    data=Data("digit-scenes", train=(Step("random_crop", {"padding": "1/8 of the side", "mask_fill": 255}),
                                     Step("hflip", {"p": 0.5}), Step("normalize")), eval=(Step("normalize"),)),
    optimizer=Optimizer("adamw", lr=5e-3, weight_decay=0.01, no_decay=("1d",)),
    schedule=Schedule("cosine", warmup_epochs=1.0), epochs=20, global_batch=16,
    loss=Loss("segmentation"), eval=EvalProtocol("full_image", "miou"),
    reference=_README, cost=_cpu(108, "20 epochs"), dataset_default=True,
))

register_recipe(Recipe(
    name="mask_rcnn_digit_objects", description="A small Wave-ViT Mask R-CNN on the embedded digit objects (CPU)",
    model="mask_rcnn_wave_vit_digits",
    data=Data("digit-objects", train=(Step("normalize"),), eval=(Step("normalize"),)),
    optimizer=Optimizer("adamw", lr=2e-3, weight_decay=0.05, no_decay=("1d",)),
    schedule=Schedule("cosine", warmup_epochs=0.5), epochs=5, global_batch=8, clip_grad=10.0,
    loss=Loss("detection"), eval=EvalProtocol("full_image", "box_ap"),
    reference=_README, cost=_cpu(471, "5 epochs"), dataset_default=True,
))

register_recipe(Recipe(
    name="wavemix_sr_photos", description="WaveMixSR x2 on the embedded photos (CPU)",
    model="wavemix_paper_sr", model_args=dict(final_dim=48, ff_channel=48, depth=3),
    data=Data("photos", train=(Step("random_patch"), Step("hflip", {"p": 0.5})), eval=()),
    optimizer=Optimizer("adamw", lr=2e-3, weight_decay=0.0, no_decay=("1d",)),
    schedule=Schedule("cosine", warmup_epochs=1.0), epochs=10, global_batch=16,
    loss=Loss("l1"), eval=EvalProtocol("full_image", "psnr_y"),
    reference=_README, cost=_cpu(209, "10 epochs"), dataset_default=True,
))

register_recipe(Recipe(
    name="wave_vit_digits",
    description="A small Wave-ViT on the embedded digits at 32x32 (the ImageNet recipe's pieces, scaled down; CPU)",
    model="wave_vit_s",
    model_args=dict(in_chans=1, stem_hidden_dim=16, embed_dims=(32, 64, 96, 128), depths=(1, 1, 2, 1),
                    num_heads=(1, 2, 3, 4), mlp_ratios=(4, 4, 4, 4), sr_ratios=(1, 1, 1, 1), drop_path_rate=0.1,
                    token_label=False, mix_token=False, global_pool="avg"),
    data=Data("digits", args={"image_size": 32},
              train=(Step("random_crop", {"padding": "1/8 of the side"}), Step("normalize")),
              eval=(Step("normalize"),)),
    optimizer=Optimizer("adamw", lr=2e-3, weight_decay=0.05, no_decay=("1d",)),
    schedule=Schedule("cosine", warmup_epochs=3.0), epochs=50, global_batch=64,
    loss=Loss("cross_entropy", label_smoothing=0.1), ema=EMA(0.99), eval=EvalProtocol("full_image", "top1"),
    reference=_README, cost=_cpu(226, "50 epochs"),
))
