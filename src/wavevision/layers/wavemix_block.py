"""The WaveMix token-mixing block, one class for every level.

A level-L block (WaveMix, arXiv 2205.14375) reduces the map to C/4 channels with a 1x1
conv, takes a Haar pyramid of levels 1..L (each level computed once, from the previous
level's LL band), and mixes it coarse to fine: the coarsest level goes through its MLP,
whose upsampled C/2-channel output is concatenated to the next finer level's C channels,
and so on down to level 1, whose MLP returns C channels at the block's input size. The
model adds the residual around the block.

Module names match the public ``wavemix`` package (``reduction``, ``feedforward`` for
level 1 or ``feedforward1..L``, Sequential indices 0/3/4/5), so its state dicts load as-is.

Two drop-in module subclasses (same parameters, same state dict) make the CPU step cheaper:

* :class:`PointwiseConv2d`, the 1x1 convolutions: on NCHW inputs they run as one batched
  matrix product, about twice as fast as oneDNN's 1x1 convolution forward and backward there;
* :class:`FastDropout`: ``nn.Dropout`` draws one random number per element (``bernoulli_``,
  8-16 % of a training step in profiles of the public package); this draws 16 random bits
  per element from 64-bit words and keeps a 1-byte mask for backward instead of a 4-byte one.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.padding import check_pad, crop_to, pad_to_multiple
from ..ops.transform import DEFAULT_MODE, check_wavelet, wavelet_bank, wavelet_pyramid
from .layout import add_residual, in_format_of, inference_layout
from .lean import _keep_mask, _pointwise, lean_enabled, lean_mlp

__all__ = ["UPSAMPLE_MODES", "FastConvTranspose2d", "FastDropout", "PointwiseConv2d", "WaveMixBlock", "wavemix_mlp"]

UPSAMPLE_MODES = ("convtranspose", "bilinear", "nearest")
# A level-L pyramid and its MLPs need about this many bytes per byte of the padded reduced map.
_PYRAMID_EXPANSION = 8.0


def _check_upsample(upsample: str) -> None:
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"unknown upsample {upsample!r}; choose one of {UPSAMPLE_MODES}")


class PointwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(in_channels, out_channels, 1)``; runs as a batched matrix product on CPU NCHW inputs.

    Other inputs (channels_last, CUDA) and traced graphs (TorchScript, ONNX) use the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pointwise_conv2d(x, self.weight, self.bias)


def _pointwise_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """PointwiseConv2d's forward: the matrix product on contiguous CPU NCHW inputs, else the conv."""
    if x.dim() != 4 or x.device.type != "cpu" or not x.is_contiguous() or torch.jit.is_tracing():
        return F.conv2d(x, weight, bias)
    return _pointwise(x, weight, bias)


def _mask_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout keeping an element when 16 fresh random bits clear a threshold.

    The keep probability is ``1 - round(p * 2**16) / 2**16`` (``p`` rounded to 1/65536) and the
    kept values are scaled by its inverse, so the output's expectation is exactly the input.
    Autograd saves only the 1-byte mask.
    """
    levels = round(p * 65536)
    if levels <= 0:
        return x
    if levels >= 65536:
        return x * 0.0
    if torch.compiler.is_compiling():
        return _dropout_op(x, levels)[0]
    return (x * _keep_mask(x, levels)).mul_(65536.0 / (65536 - levels))


# Under torch.compile the dropout is an opaque custom op with its own backward: Inductor's
# per-element random numbers cost more than this whole dropout on CPU. The tag marks it as
# random for graph passes, and every call site has its own input, so none is merged.
if hasattr(torch.library, "custom_op"):

    @torch.library.custom_op("wavevision::mask_dropout", mutates_args=(), tags=(torch.Tag.nondeterministic_seeded,))
    def _dropout_op(x: torch.Tensor, levels: int) -> Tuple[torch.Tensor, torch.Tensor]:
        keep = _keep_mask(x, levels)
        return (x * keep).mul_(65536.0 / (65536 - levels)), keep

    @_dropout_op.register_fake
    def _(x: torch.Tensor, levels: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return torch.empty_like(x), torch.empty_like(x, dtype=torch.uint8)

    def _dropout_setup(ctx, inputs, output) -> None:
        ctx.scale = 65536.0 / (65536 - inputs[1])
        ctx.save_for_backward(output[1])

    def _dropout_backward(ctx, grad: torch.Tensor, _grad_keep: Optional[torch.Tensor]):
        (keep,) = ctx.saved_tensors
        return (grad * keep).mul_(ctx.scale), None

    _dropout_op.register_autograd(_dropout_backward, setup_context=_dropout_setup)

else:  # pragma: no cover - torch < 2.4
    _dropout_op = None


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU (module docstring); same interface and state.

    CUDA, in-place use and traced graphs use ``F.dropout`` (fused kernels there).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return _fast_dropout(x, self.p, self.inplace)


def _fast_dropout(x: torch.Tensor, p: float, inplace: bool) -> torch.Tensor:
    """FastDropout's training forward: the 16-bit mask on CPU, ``F.dropout`` elsewhere."""
    fallback = inplace or x.device.type != "cpu" or not x.is_floating_point() or torch.jit.is_tracing()
    if fallback or (torch.compiler.is_compiling() and _dropout_op is None):
        return F.dropout(x, p, True, inplace)
    return _mask_dropout(x, p)


class FastConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d``; in CPU float32 inference it runs on a channels-last copy of its input.

    oneDNN computes the transposed convolution in channels-last either way; from an NCHW
    input it also reorders the input and copies the output back to NCHW, which makes it about
    twice as slow as from a channels-last input (measured for the WaveMix MLP's 4x4 / stride 2
    upsample). The output is then channels-last; the block's residual add and concatenation
    write NCHW results from it. With gradients enabled, on other devices and dtypes, or when
    traced or compiled, it is the plain module.
    """

    def forward(self, x: torch.Tensor, output_size: Optional[List[int]] = None) -> torch.Tensor:
        if output_size is not None or self.padding_mode != "zeros":
            return super().forward(x, output_size)
        return _conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )


def _conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: Tuple[int, ...],
                      padding: Tuple[int, ...], output_padding: Tuple[int, ...], groups: int,
                      dilation: Tuple[int, ...]) -> torch.Tensor:
    """FastConvTranspose2d's forward: from a channels-last copy in CPU float32 inference."""
    return F.conv_transpose2d(inference_layout(x), weight, bias, stride, padding, output_padding, groups, dilation)


def wavemix_mlp(
    in_channels: int,
    hidden: int,
    ff_channel: int,
    out_channels: int,
    *,
    dropout: float = 0.0,
    upsample: str = "convtranspose",
) -> nn.Sequential:
    """One level's MLP: 1x1 conv, GELU, Dropout, 1x1 conv, x2 upsample, BatchNorm.

    With ``upsample="convtranspose"`` the second conv gives ``ff_channel`` channels and a
    ConvTranspose2d(4, stride 2, padding 1) maps them to ``out_channels`` (the reference).
    With a parameter-free upsample (WaveMix-Lite) the second conv gives ``out_channels``
    directly and index 4 is an ``nn.Upsample`` holding no parameters.
    """
    _check_upsample(upsample)
    if upsample == "convtranspose":
        second: nn.Module = PointwiseConv2d(hidden, ff_channel)
        up: nn.Module = FastConvTranspose2d(ff_channel, out_channels, 4, stride=2, padding=1)
    else:
        second = PointwiseConv2d(hidden, out_channels)
        up = nn.Upsample(scale_factor=2, mode=upsample, **({"align_corners": False} if upsample == "bilinear" else {}))
    return nn.Sequential(
        PointwiseConv2d(in_channels, hidden),
        nn.GELU(),
        FastDropout(dropout),
        second,
        up,
        nn.BatchNorm2d(out_channels),
    )


def _run_mlp(mlp: nn.Module, x: torch.Tensor, lean: bool, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``mlp(x)`` (plus ``residual``); on the lean path the MLP and its final BatchNorm with
    the residual save fewer activations (:mod:`wavevision.layers.lean`)."""
    if not (lean and isinstance(mlp, nn.Sequential) and len(mlp) == 6 and not (mlp._forward_hooks or mlp._forward_pre_hooks)):
        y = mlp(x)
        return y if residual is None else residual + y  # the residual's memory format (the upsample's may differ)
    if residual is not None:  # the MLP, its BatchNorm and the sum in one lean step
        return lean_mlp(x, mlp, residual=residual)
    return mlp[5](lean_mlp(x, mlp))


class WaveMixBlock(nn.Module):
    """WaveMix token mixer at any level (1, 2, 3, 4, ...).

    Args:
        dim: channels C of the block's input and output; must be divisible by 4.
        level: number of Haar levels, >= 1.
        mult: hidden expansion of every MLP (hidden = C * mult).
        ff_channel: channels before the transposed-conv upsample.
        dropout: dropout inside the MLPs.
        upsample: ``"convtranspose"`` (reference) or ``"bilinear"`` / ``"nearest"``
            (parameter-free, WaveMix-Lite); parameter-free needs ``ff_channel == dim``.
        wavelet: ``"haar"`` (the reference, fast path, no PyWavelets) or any discrete
            PyWavelets name (``"db2"``, ``"sym4"``, ``"bior2.2"``, ...); no parameters change.
        mode: padding mode of longer filters (:mod:`wavevision.ops.transform`; default
            ``"periodization"``, whose levels halve exactly as the MLPs' x2 upsample needs).

    Inputs of any size work: the reduced map is zero-padded at the bottom/right to a
    multiple of 2^level and the output is cropped back (``wavevision.ops.padding``).
    """

    def __init__(
        self,
        *,
        dim: int,
        level: int = 1,
        mult: int = 2,
        ff_channel: int | None = None,
        dropout: float = 0.0,
        upsample: str = "convtranspose",
        wavelet: str = "haar",
        mode: str = DEFAULT_MODE,
    ) -> None:
        super().__init__()
        if not isinstance(level, int) or isinstance(level, bool) or level < 1:
            raise ValueError(f"level must be an integer >= 1, got {level!r}")
        if dim % 4 or dim < 4:
            raise ValueError(
                f"final_dim must be a positive multiple of 4 (the block reduces to final_dim/4 channels "
                f"before the 4-band Haar transform), got {dim}; try {max(4, dim - dim % 4)} or {dim - dim % 4 + 4}"
            )
        if not isinstance(mult, int) or mult < 1:
            raise ValueError(f"mult must be an integer >= 1, got {mult!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        _check_upsample(upsample)
        ff_channel = dim if ff_channel is None else ff_channel
        if ff_channel < 1:
            raise ValueError(f"ff_channel must be >= 1, got {ff_channel}")
        if upsample != "convtranspose" and ff_channel != dim:
            raise ValueError(
                f"a parameter-free upsample ({upsample!r}) needs ff_channel == final_dim ({dim}), got {ff_channel}: "
                "the MLP's second conv feeds the upsample directly; use upsample='convtranspose' for other ff_channel"
            )
        self.dim = dim
        self.level = level
        self.wavelet, self.mode = check_wavelet(wavelet, mode)
        # None for Haar (the fast path); else the filters, moved with the block, in no state dict.
        self.register_buffer("wavelet_bank", wavelet_bank(self.wavelet, self.mode), persistent=False)
        for j in range(1, level + 1):
            in_ch = dim if j == level else dim + dim // 2
            out_ch = dim if j == 1 else dim // 2
            mlp = wavemix_mlp(in_ch, dim * mult, ff_channel, out_ch, dropout=dropout, upsample=upsample)
            self.add_module("feedforward" if level == 1 else f"feedforward{j}", mlp)
        # Registered after the MLPs so state-dict key order equals the public package's.
        self.reduction = PointwiseConv2d(dim, dim // 4)

    #: Use the memory-lean training path (:mod:`wavevision.layers.lean`) where it applies;
    #: set ``False`` on an instance to run the modules as written.
    lean: bool = True

    def mlps(self) -> List[nn.Module]:
        """The per-level MLPs, finest (level 1) first."""
        if self.level == 1:
            return [self.feedforward]
        return [getattr(self, f"feedforward{j}") for j in range(1, self.level + 1)]

    def kept_ratio(self) -> float:
        """Activations this block keeps for backward inside a checkpointed segment (lean path, in a
        model that passes the residual), in units of the block's input: an estimate from the layer
        shapes that sizes the segments (:func:`~wavevision.layers.grad_checkpoint.balanced_segments`).

        Per level j (at 1/4^j of the input's area) the lean MLP keeps its input and the 1-byte
        dropout mask (not its GELU input: :func:`~wavevision.layers.lean.in_checkpoint`);
        levels above 1 keep their BatchNorm's input (at 1/4^(j-1)); the output (the residual
        sum, the next block's input) counts once.
        """
        ratio = 1.0
        for j, mlp in enumerate(self.mlps(), 1):
            mask = mlp[0].out_channels / 4 if mlp[2].p > 0 else 0.0
            ratio += (mlp[0].in_channels + mask) / (self.dim * 4**j)
            if j > 1:
                ratio += mlp[5].num_features / (self.dim * 4 ** (j - 1))
        return ratio

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The mixed map; with ``residual``, the block's residual sum ``block(x) + residual``.

        The models pass ``residual=x``: in a CPU training step the sum then comes from the
        lean level-1 MLP (:func:`~wavevision.layers.lean.lean_mlp` with ``residual``), which
        does not keep the last BatchNorm's input for backward (the next block keeps the sum
        anyway). Results equal ``block(x) + x``.
        """
        if residual is not None:
            _check_residual(x, residual)
        lean = self.lean and lean_enabled(x)
        r = self.reduction(x)
        check_pad(r, self.level, expansion=_PYRAMID_EXPANSION)
        padded = pad_to_multiple(r, 2**self.level)
        r, size = padded[0], padded[1]
        coeffs = wavelet_pyramid(r, self.level, self.wavelet_bank, self.mode, layout="wavemix")
        mlps = self.mlps()
        fused_sum = residual is not None and lean and tuple(r.shape[-2:]) == tuple(size)
        y = coeffs[-1]
        for j in range(self.level - 1, -1, -1):
            if j < self.level - 1:
                y = torch.cat([coeffs[j], y], dim=1)
            y = _run_mlp(mlps[j], y, lean, residual if fused_sum and j == 0 else None)
        if fused_sum:
            return y
        y = crop_to(y, size)
        if residual is None:  # the input's memory format, as from every module
            return in_format_of(y, x)
        return add_residual(y, residual)

    def extra_repr(self) -> str:
        wave = "" if self.wavelet_bank is None else f", wavelet={self.wavelet!r}, mode={self.mode!r}"
        return f"dim={self.dim}, level={self.level}{wave}"


def _check_residual(x: torch.Tensor, residual: torch.Tensor) -> None:
    if residual.shape != x.shape:
        raise ValueError(
            f"residual must have the block input's shape {tuple(x.shape)} (the block returns block(x) + residual), "
            f"got {tuple(residual.shape)}"
        )


# torch.fx: run-time choices and size checks are single graph nodes (wavevision.ops._fx).
for _leaf in ("_pointwise_conv2d", "_fast_dropout", "_conv_transpose2d", "_check_residual", "check_pad",
              "pad_to_multiple", "crop_to", "wavelet_pyramid", "in_format_of", "add_residual"):
    torch.fx.wrap(_leaf)
