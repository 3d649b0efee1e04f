"""Effective receptive fields (Luo et al., "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016).

The ERF of a network is the gradient of one central output unit with respect to the input,
``|d out[:, :, h//2, w//2].sum() / d x|`` summed over input channels and averaged over many
inputs. For classification models the output is the feature map before pooling
(``forward_features``); for dense models, their output map. For one block, the block's own
output (without the model's residual) with respect to the map entering it, for the same inputs.

Numbers: the map is normalised to a distribution over pixels (the gradient mass); its centroid
is the centre, and ``r50`` / ``r90`` / ``r99`` are the smallest distances from the centre
(Euclidean, in pixels of the map the gradient is taken on) within which 50 / 90 / 99 % of the
mass lies (r99 shows the faint far tails that multi-level wavelets add).

WTConv against ConvNeXt's 7x7 depthwise convolution (the WTConv paper's Figure 1, Finder et al.,
ECCV 2024) two ways: :func:`wtconv_stack_erf` compares stacks of N depthwise 7x7 convolutions
with stacks of N :class:`~wavevision.layers.WTConv2d` (kernel 5, the levels of WTConvNeXt's
stages 1 and 2) at initialisation, needing no weights; :func:`wtconvnext_erf` compares the
whole WTConvNeXt-T with ConvNeXt-T, with their trained weights when given (the released files)
and at initialisation otherwise. The paper measures the positive part of the gradient of the
ReLU'd central unit and reports areas on a log-rescaled map; here it is the same gradient
measure as every other ERF of this module (absolute values, radii of the gradient mass).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..layers.wtconv import WTConv2d, min_wtconv_size
from ..models import create_model
from ..models._builder import _read_weights, load_state_dict_strict
from ..utils.validate import PathLike, check_choice, check_int
from .report import save_figure

__all__ = ["CONVNEXT_KERNEL", "WTCONVNEXT_STAGE_LEVELS", "ERFResult", "average_erf", "compare_erf", "conv_stack",
           "effective_receptive_field", "erf_radii", "plot_erf", "plot_erf_comparison", "wtconv_stack_erf",
           "wtconvnext_erf"]

#: ConvNeXt's depthwise kernel, and WTConvNeXt-T's WTConv levels of stages 1 and 2 (kernel 5 everywhere).
CONVNEXT_KERNEL = 7
WTCONVNEXT_STAGE_LEVELS = (5, 4)


@dataclass
class ERFResult:
    """An effective receptive field: ``mass`` (H, W) sums to 1; radii in pixels of that map."""

    label: str
    target: str
    mass: np.ndarray
    center: tuple[float, float]
    r50: float
    r90: float
    r99: float
    input_shape: tuple[int, ...]
    samples: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, with_map: bool = False) -> dict[str, Any]:
        d = {
            "label": self.label, "target": self.target, "center": list(self.center), "r50": self.r50, "r90": self.r90, "r99": self.r99,
            "map_size": list(self.mass.shape), "input_shape": list(self.input_shape), "samples": self.samples, **self.meta,
        }
        if with_map:
            d["mass"] = self.mass.tolist()
        return d


def erf_radii(mass: np.ndarray | torch.Tensor, fractions: Sequence[float] = (0.5, 0.9)) -> tuple[tuple[float, float], list[float]]:
    """Centroid of a non-negative (H, W) map and the radii holding ``fractions`` of its mass.

    The radius for fraction q is the smallest pixel distance d from the centroid such that
    the pixels at distance <= d hold at least q of the total.
    """
    m = np.asarray(mass.detach().cpu() if isinstance(mass, torch.Tensor) else mass, dtype=np.float64)
    if m.ndim != 2 or (m < 0).any() or not np.isfinite(m).all():
        raise ValueError(f"an ERF map must be a finite, non-negative 2D array, got shape {m.shape}")
    total = m.sum()
    if total <= 0:
        raise ValueError("the ERF map is all zeros: the output does not depend on the input (no gradient reached it)")
    m = m / total
    ii, jj = np.indices(m.shape)
    center = (float((m * ii).sum()), float((m * jj).sum()))
    dist = np.hypot(ii - center[0], jj - center[1]).ravel()
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(m.ravel()[order])
    radii = []
    for q in fractions:
        k = int(np.searchsorted(cum, q - 1e-9))
        radii.append(float(dist[order][min(k, len(order) - 1)]))
    return center, radii


def _as_map(out: Any, what: str) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the ERF needs a spatial output map (B, C, H, W) from {what}, got {shape}; "
                         "classification models need forward_features (the map before pooling)")
    return out


def _central_sum(y: torch.Tensor) -> torch.Tensor:
    return y[:, :, y.shape[-2] // 2, y.shape[-1] // 2].float().sum()


def effective_receptive_field(
    model: nn.Module,
    *,
    inputs: torch.Tensor | None = None,
    input_shape: Sequence[int] | None = None,
    samples: int = 32,
    batch_size: int = 16,
    block: int | None = None,
    seed: int = 0,
    label: str | None = None,
) -> ERFResult:
    """The ERF of ``model`` (whole stack) or of its ``block``-th block (``model.layers[block]``).

    Args:
        model: a module; ``forward_features`` is used when present, else ``forward``.
        inputs: (N, C, H, W) images to average over (e.g. a dataset's); default: ``samples``
            standard-normal images of ``input_shape`` (C, H, W), seeded by ``seed``.
        samples: inputs drawn when ``inputs`` is None.
        batch_size: inputs per backward pass.
        block: index into ``model.layers`` for one block's ERF on the map entering it.
        label: name shown in plots (default: ``model.model_name`` or the class name).
    """
    if inputs is None:
        if input_shape is None or len(input_shape) != 3:
            raise ValueError("pass inputs=(N, C, H, W) or input_shape=(C, H, W)")
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        g = torch.Generator().manual_seed(seed)
        inputs = torch.randn((samples, *[int(s) for s in input_shape]), generator=g)
    if inputs.dim() != 4 or inputs.shape[0] < 1:
        raise ValueError(f"inputs must be (N, C, H, W) with N >= 1, got shape {tuple(inputs.shape)}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    forward = getattr(model, "forward_features", None) or model.forward
    layers = getattr(model, "layers", None)
    if block is not None:
        if not isinstance(layers, (nn.ModuleList, nn.Sequential)) or not -len(layers) <= block < len(layers):
            n = len(layers) if isinstance(layers, (nn.ModuleList, nn.Sequential)) else 0
            raise ValueError(f"block={block} is not a block of this model ({n} blocks in model.layers)")
    was_training = model.training
    model.eval()
    total: torch.Tensor | None = None
    try:
        for start in range(0, inputs.shape[0], batch_size):
            x = inputs[start:start + batch_size].to(device=device, dtype=dtype)
            if block is None:
                x.requires_grad_(True)
                _central_sum(_as_map(forward(x), "the model")).backward()
                grad = x.grad
            else:
                captured: list[torch.Tensor] = []
                assert layers is not None  # checked above
                hook = layers[block].register_forward_pre_hook(lambda mod, args, captured=captured: captured.append(args[0].detach()))
                try:
                    with torch.no_grad():
                        forward(x)
                finally:
                    hook.remove()
                z = captured[0].clone().requires_grad_(True)
                _central_sum(_as_map(layers[block](z), f"block {block}")).backward()
                grad = z.grad
            assert grad is not None  # the input's gradient of the backward just run
            part = grad.detach().abs().float().sum(1).sum(0).cpu()
            total = part if total is None else total + part
            model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    assert total is not None
    mass = (total / total.sum().clamp_min(1e-30)).numpy().astype(np.float64)
    center, (r50, r90, r99) = erf_radii(mass, (0.5, 0.9, 0.99))
    name = str(label or getattr(model, "model_name", type(model).__name__))
    target = "model" if block is None or layers is None else f"block {block % len(layers)}"
    return ERFResult(name, target, mass, center, r50, r90, r99, tuple(inputs.shape[1:]), int(inputs.shape[0]))


def average_erf(
    label: str,
    build: Callable[[], nn.Module],
    *,
    input_shape: Sequence[int],
    samples: int = 16,
    seeds: int = 3,
    block: int | None = None,
    inputs: torch.Tensor | None = None,
    meta: Mapping[str, Any] | None = None,
) -> ERFResult:
    """The ERF of ``build()`` averaged over ``seeds`` initialisations (``torch.manual_seed(s)``
    before each build), each over ``samples`` noise inputs of ``input_shape`` (C, H, W) seeded
    by ``s``, or over ``inputs``. A ``build`` that loads trained weights needs ``seeds=1``."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    acc = None
    for s in range(seeds):
        torch.manual_seed(s)
        res = effective_receptive_field(build(), inputs=inputs, input_shape=input_shape, samples=samples, block=block,
                                        seed=s)
        acc = res.mass if acc is None else acc + res.mass
    assert acc is not None  # seeds >= 1
    mass = acc / acc.sum()
    center, (r50, r90, r99) = erf_radii(mass, (0.5, 0.9, 0.99))
    return ERFResult(label, res.target, mass, center, r50, r90, r99, res.input_shape, res.samples * seeds,
                     {**dict(meta or {}), "seeds": seeds})


def compare_erf(
    models: Sequence[tuple[str, str, dict[str, Any]]],
    *,
    input_shape: Sequence[int],
    samples: int = 16,
    seeds: int = 3,
    block: int | None = None,
) -> list[ERFResult]:
    """ERFs of freshly initialised models, each averaged over ``seeds`` initialisations.

    Args:
        models: ``(label, registered name, overrides)`` triples.
        input_shape: (C, H, W) of the random inputs.
    """
    return [average_erf(label, partial(create_model, name, **kwargs), input_shape=input_shape,
                        samples=samples, seeds=seeds, block=block, meta={"model": name, "overrides": dict(kwargs)})
            for label, name, kwargs in models]


def conv_stack(kind: str, depth: int, channels: int, *, wt_levels: int = WTCONVNEXT_STAGE_LEVELS[0],
               kernel_size: int | None = None) -> nn.Sequential:
    """``depth`` depthwise spatial layers on ``channels`` channels, nothing between them.

    ``kind="dwconv"``: ConvNeXt's depthwise convolution (``kernel_size`` default 7, bias,
    zero padding keeping the size); ``kind="wtconv"``: :class:`~wavevision.layers.WTConv2d`
    with ``kernel_size`` (default 5) and ``wt_levels`` (Haar). PyTorch's default initialisation.
    """
    check_choice("kind", kind, ("dwconv", "wtconv"))
    n = check_int("depth", depth, min=1)
    c = check_int("channels", channels, min=1)
    if kind == "dwconv":
        k = CONVNEXT_KERNEL if kernel_size is None else check_int("kernel_size", kernel_size, min=1)
        return nn.Sequential(*(nn.Conv2d(c, c, k, padding="same", groups=c) for _ in range(n)))
    k = 5 if kernel_size is None else kernel_size
    return nn.Sequential(*(WTConv2d(c, c, k, wt_levels=wt_levels) for _ in range(n)))


def wtconv_stack_erf(
    *,
    depth: int = 3,
    channels: int = 16,
    levels: Sequence[int] = WTCONVNEXT_STAGE_LEVELS,
    input_size: int = 64,
    samples: int = 8,
    seeds: int = 3,
) -> dict[str, list[ERFResult]]:
    """ConvNeXt's 7x7 depthwise convolution against WTConv (kernel 5, each of ``levels``), at
    initialisation: one layer, and a stack of ``depth`` (ConvNeXt-T's stage 1 has 3 blocks).

    Returns ``{"one layer": [...], "stack of N": [...]}``, each ``[7x7, WTConv L5, WTConv L4]``
    averaged over ``seeds`` initialisations x ``samples`` noise inputs (channels x S x S).
    Needs no weights: what a user can run anywhere. The stacks are the spatial layers alone
    (no norm, MLP or residual), so the maps show what each operator spreads, compounded.
    """
    size = check_int("input_size", input_size, min=1)
    levels = [check_int("levels", lv, min=0) for lv in levels]
    if not levels:
        raise ValueError("levels must name at least one WTConv level count, e.g. (5, 4)")
    if size < min_wtconv_size(max(levels)):
        raise ValueError(f"input_size {size} is too small for {max(levels)} WTConv levels: use at least "
                         f"{min_wtconv_size(max(levels))}")
    shape = (channels, size, size)
    rows: dict[str, list[ERFResult]] = {}
    for n in dict.fromkeys((1, check_int("depth", depth, min=1))):
        title = "one layer" if n == 1 else f"stack of {n}"
        stacks = [(f"{CONVNEXT_KERNEL}x{CONVNEXT_KERNEL} dw (ConvNeXt)", "dwconv", 0)]
        stacks += [(f"WTConv k5 L{lv}", "wtconv", lv) for lv in levels]
        rows[title] = [
            average_erf(label, partial(conv_stack, kind, n, channels, wt_levels=lv),
                        input_shape=shape, samples=samples, seeds=seeds,
                        meta={"layers": n, "kind": kind, "kernel_size": CONVNEXT_KERNEL if kind == "dwconv" else 5,
                              "wt_levels": lv, "channels": channels, "weights": "initialisation"})
            for label, kind, lv in stacks
        ]
    return rows


def _convnext_baseline(model_args: Mapping[str, Any], checkpoint: PathLike | None) -> tuple[nn.Module, str]:
    """ConvNeXt-T and what it is: timm's ``convnext_tiny`` (``checkpoint`` in timm's or the
    original repository's layout) when timm is importable, else ``wtconvnext_tiny`` without wavelet
    levels and with 7x7 kernels (ConvNeXt-T's structure; it cannot take ConvNeXt weights)."""
    try:
        import timm
        from timm.models.convnext import checkpoint_filter_fn
    except ImportError:
        if checkpoint is not None:
            raise ValueError("a ConvNeXt-T checkpoint needs timm (its weights are in timm's layout): "
                             "pip install 'wavevision[vision]'") from None
        model = create_model("wtconvnext_tiny", wt_levels=(0, 0, 0, 0), kernel_sizes=7, **dict(model_args))
        return model, "wavevision wtconvnext_tiny with wt_levels=(0, 0, 0, 0), kernel_sizes=7 (ConvNeXt-T's structure)"
    model = timm.create_model("convnext_tiny", pretrained=False, **dict(model_args))
    if checkpoint is not None:
        state = checkpoint_filter_fn(_read_weights(Path(checkpoint)), model)
        load_state_dict_strict(model, state, source=str(checkpoint))
    return model, f"timm {timm.__version__} convnext_tiny"


def wtconvnext_erf(
    *,
    checkpoint: PathLike | None = None,
    baseline_checkpoint: PathLike | None = None,
    input_size: int = 224,
    samples: int = 4,
    seeds: int = 1,
    inputs: torch.Tensor | None = None,
    model_args: Mapping[str, Any] | None = None,
) -> list[ERFResult]:
    """The whole WTConvNeXt-T against ConvNeXt-T: ERFs of ``forward_features`` (the last stage's map).

    Args:
        checkpoint: WTConvNeXt-T weights (the released ``.pth`` files, see
            :mod:`wavevision.models.wtconvnext`); without it the model is at initialisation.
        baseline_checkpoint: ConvNeXt-T weights (timm's ``convnext_tiny`` layout, or the original
            ConvNeXt repository's; needs timm).
        input_size: side of the noise inputs (the paper: 1024, on ImageNet validation images).
        samples: noise inputs per initialisation; seeds: initialisations averaged for a model
            without weights (a trained one is measured once).
        inputs: images (N, 3, H, W) instead of noise.
        model_args: builder overrides for both models (e.g. smaller ``depths`` / ``dims``).

    ConvNeXt-T is timm's ``convnext_tiny`` when timm is importable, else ``wtconvnext_tiny``
    built with ``wt_levels=(0, 0, 0, 0)`` and ``kernel_sizes=7`` (ConvNeXt-T's structure, with a
    learned per-channel scale after each depthwise convolution). The labels say "trained" or "init".
    """
    args = dict(model_args or {})
    shape = (3, input_size, input_size)
    sources: dict[str, str] = {}

    def ours() -> nn.Module:
        sources["WTConvNeXt-T"] = "wavevision wtconvnext_tiny"
        return create_model("wtconvnext_tiny", checkpoint=checkpoint, **args)

    def baseline() -> nn.Module:
        model, sources["ConvNeXt-T"] = _convnext_baseline(args, baseline_checkpoint)
        return model

    out = []
    for name, ckpt, build in (("WTConvNeXt-T", checkpoint, ours), ("ConvNeXt-T", baseline_checkpoint, baseline)):
        res = average_erf(f"{name} ({'trained' if ckpt is not None else 'init'})", build, input_shape=shape,
                          samples=samples, seeds=1 if ckpt is not None else seeds, inputs=inputs,
                          meta={"weights": str(ckpt) if ckpt is not None else "initialisation", "model_args": args})
        res.meta["model"] = sources[name]
        out.append(res)
    return out


def _draw(ax: Any, res: ERFResult, *, colorbar: bool = True) -> None:
    import matplotlib.pyplot as plt

    # log scale so the tails show (the centre holds most of the mass)
    shown = np.log10(res.mass / res.mass.max() + 1e-6)
    im = ax.imshow(shown, cmap="magma", vmin=-6, vmax=0, interpolation="nearest")
    for r, style in ((res.r50, "-"), (res.r90, "--")):
        ax.add_patch(plt.Circle((res.center[1], res.center[0]), max(r, 0.3), fill=False, color="cyan", ls=style, lw=1))
    ax.set_title(f"{res.label}\nr50 {res.r50:.1f}, r90 {res.r90:.1f}, r99 {res.r99:.1f} px", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="log10 gradient (max = 0)")


def plot_erf(res: ERFResult, path: PathLike) -> Path:
    """One heat map (log scale) with circles at r50 (solid) and r90 (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.4))
    _draw(ax, res)
    fig.suptitle(f"effective receptive field ({res.target}, {res.samples} inputs {'x'.join(map(str, res.input_shape))})",
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_erf_comparison(results: Sequence[ERFResult] | Mapping[str, Sequence[ERFResult]], path: PathLike, *,
                        title: str = "") -> Path:
    """Heat maps side by side plus a bar chart of r50 and r90; one row per entry of a mapping
    ``{row title: results}`` (a plain sequence is one row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = dict(results) if isinstance(results, Mapping) else {"": list(results)}
    n = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(len(rows), n + 1, figsize=(2.6 * n + 4.2, 3.4 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * n + [1.6]})
    for line, (row_title, row) in zip(axes, rows.items()):
        for ax in line[len(row):n]:
            ax.axis("off")
        for ax, res in zip(line, row):
            _draw(ax, res, colorbar=False)
        if row_title:
            line[0].set_ylabel(row_title, fontsize=9)
        bar = line[n]
        xs = np.arange(len(row))
        for k, key in enumerate(("r50", "r90", "r99")):
            bar.bar(xs + (k - 1) * 0.27, [getattr(r, key) for r in row], 0.27, label=key)
        bar.set_xticks(xs)
        bar.set_xticklabels([r.label for r in row], rotation=45, ha="right", fontsize=7)
        bar.set_ylabel("radius (pixels)", fontsize=8)
        bar.legend(fontsize=7)
        bar.grid(axis="y", alpha=0.3)
    title = title or "effective receptive fields (log-scale maps; circles: r50 solid, r90 dashed)"
    fig.suptitle(title, fontsize=9)
    lines = title.count("\n") + 1  # keep the title's lines clear of the top row's titles
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.1 + 0.16 * lines) / fig.get_figheight()))
    return save_figure(fig, path)
