"""``set_grad_checkpointing``: the same gradients as the plain model, less kept for backward."""
from __future__ import annotations

import itertools

import pytest
import torch

import wavevision
import wavevision.accel.blocks as fast_blocks
import wavevision.layers.grad_checkpoint as gc
from _slow import FEWER_MODELS, small_build_cases
from wavevision.accel import FastWaveMixBlock, accelerate, balanced_segments, head_cost, kept_ratio
from wavevision.accel.lean import lean_enabled
from wavevision.layers import WaveMixBlock
from wavevision.layers.grad_checkpoint import in_checkpoint, inside_checkpoint, segment_bounds

from _small import small_model, takes_depth, timm_models

NAMES = timm_models()


def _step(model, x, seed=3):
    """One forward/backward from a fixed RNG state; returns the loss, the gradients and the BatchNorm buffers."""
    torch.manual_seed(seed)
    out = model(x)
    outs = [out] if isinstance(out, torch.Tensor) else [out.logits, out.aux_logits]
    loss = sum((o * torch.linspace(-1, 1, o.shape[-1], dtype=o.dtype)).sum() for o in outs)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}  # WTConv filters: fixed
    buffers = {k: b.clone() for k, b in model.named_buffers() if "running" in k or "num_batches" in k}
    return loss.detach(), grads, buffers


def _pair(name, **kw):
    """Two identical float64 training models, the second with checkpointing."""
    plain = small_model(name, **kw).double().train()
    ckpt = small_model(name, **kw).double().train()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing()
    return plain, ckpt


@pytest.mark.parametrize("name", small_build_cases(NAMES, fast=FEWER_MODELS))
def test_gradients_equal_the_plain_models(name):
    """float64, random layers on (dropout, drop path, MixToken): the recomputation replays the same
    random numbers, BatchNorm statistics are updated once, and every gradient matches."""
    kw = {"depth": 2} if takes_depth(name) else {"drop_path_rate": 0.2}
    if takes_depth(name) and not name.startswith("mixer"):
        kw.update(dropout=0.3, drop_path_rate=0.3)
    plain, ckpt = _pair(name, **kw)
    g = torch.Generator().manual_seed(0)
    side = getattr(plain, "min_input_size", 0) or 12
    x = torch.rand(4, plain.in_chans, side, side, generator=g, dtype=torch.float64)
    loss_a, grads_a, bufs_a = _step(plain, x)
    loss_b, grads_b, bufs_b = _step(ckpt, x)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-12, atol=1e-12)
    assert grads_a.keys() == grads_b.keys()
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-9, atol=1e-12, msg=k)
    for k in bufs_a:
        torch.testing.assert_close(bufs_b[k], bufs_a[k], rtol=0, atol=0, msg=k)


def test_checkpointing_composes_with_the_lean_path(monkeypatch):
    """Inside a checkpointed block the memory-lean MLP and BatchNorm still run (in forward and in
    the recomputation), and the gradients equal those of the plain modules without either."""
    calls = []
    real = fast_blocks.lean_mlp
    monkeypatch.setattr(fast_blocks, "lean_mlp", lambda *a, **k: calls.append(1) or real(*a, **k))
    plain, ckpt = _pair("wavemix", depth=2, final_dim=16, ff_channel=16, level=2, dropout=0.2)
    for m in plain.modules():
        if hasattr(m, "lean"):
            m.lean = False  # the reference: modules as written (the same dropout), no checkpointing
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    assert lean_enabled(x.requires_grad_(False))
    _, grads_a, _ = _step(plain, x)
    assert calls == []
    _, grads_b, _ = _step(ckpt, x)
    assert len(calls) == 2 * 2 * 2  # 2 blocks x 2 levels, in forward and in the recomputation
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-9, atol=1e-12, msg=k)


def _saved_bytes(model, x):
    """Bytes of the tensors autograd keeps for backward during one forward (distinct storages)."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.sum().backward()
    return sum(seen.values())


@pytest.mark.parametrize("every,factor", [(1, 3), (2, 6), (None, 4)])
def test_checkpointing_keeps_a_fraction_of_the_activations(every, factor):
    """Kept for backward through the forward: the input of each segment of ``every`` blocks (and
    the image) instead of everything the stem and the blocks' layers save (8 level-3 blocks here)."""
    torch.manual_seed(0)
    model = wavevision.create_model("wavemix", depth=8, final_dim=32, ff_channel=32, level=3).train()
    x = torch.rand(2, 3, 64, 64)
    plain = _saved_bytes(model, x)
    model.set_grad_checkpointing(True, every=every)
    ckpt = _saved_bytes(model, x)
    assert ckpt * factor < plain, (plain, ckpt)


def test_checkpointing_applies_only_with_gradients_and_can_be_turned_off():
    model = small_model("wavemix_lite_8_10").train()
    assert model.grad_checkpointing is False
    model.set_grad_checkpointing()
    assert model.grad_checkpointing is True
    calls = []
    real = gc.checkpoint_block
    gc.checkpoint_block = lambda *a: calls.append(1) or real(*a)
    try:
        x = torch.rand(2, 1, 8, 8)
        model(x).sum().backward()
        assert calls == [1, 1]  # the stem, then the one-block segment
        with torch.no_grad():
            model(x)
        assert calls == [1, 1]  # inference: nothing to keep, nothing checkpointed
        model.set_grad_checkpointing(False)
        model(x).sum().backward()
        assert calls == [1, 1]
    finally:
        gc.checkpoint_block = real
    with pytest.raises(ValueError, match="enable must be true or false"):
        model.set_grad_checkpointing("sometimes")
    with pytest.raises(ValueError, match="every must be >= 1"):
        model.set_grad_checkpointing(True, every=0)


@pytest.mark.parametrize("every", [1, 2, 3, None])
def test_segments_of_blocks_give_the_same_gradients(every):
    plain, ckpt = _pair("wavemix", depth=5, dropout=0.2, drop_path_rate=0.2)
    ckpt.set_grad_checkpointing(True, every=every)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    _, grads_a, bufs_a = _step(plain, x)
    _, grads_b, bufs_b = _step(ckpt, x)
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-9, atol=1e-12, msg=k)
    for k in bufs_a:
        assert torch.equal(bufs_a[k], bufs_b[k]), k


def test_block_hooks_still_see_the_block_output_under_checkpointing():
    model = small_model("wavemix", depth=2).train()
    model.set_grad_checkpointing()
    seen = []
    model.layers[0].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model(torch.rand(1, 3, 16, 16)).sum().backward()
    assert seen and all(isinstance(b, FastWaveMixBlock) for b in model.layers)


def _estimate(lengths, ratio, head=0.0):
    """The peak balanced_segments minimises, in block inputs (its docstring), and its block phase."""
    blocks = max(k + 1 + ratio * length for k, length in enumerate(lengths))
    return max(blocks, len(lengths) + head), blocks


def _compositions(n):
    for cuts in itertools.product([False, True], repeat=n - 1):
        lengths, run = [], 1
        for cut in cuts:
            if cut:
                lengths.append(run)
                run = 0
            run += 1
        yield tuple(lengths + [run])


@pytest.mark.parametrize("ratio", [0.5, 1.25, 1.8, 2.46, 4.0])
@pytest.mark.parametrize("head", [0.0, 2.5, 6.0])
def test_balanced_segments_minimise_the_estimated_peak(ratio, head):
    """Against every way of cutting n blocks into segments: the lowest estimate, then the lowest
    block phase, then the fewest segments (fewest inputs kept)."""
    for n in range(1, 10):
        got = balanced_segments(n, ratio, head)
        assert sum(got) == n and min(got) >= 1

        def key(c):
            return round(_estimate(c, ratio, head)[0], 9), round(_estimate(c, ratio, head)[1], 9), len(c)

        best = min(_compositions(n), key=key)
        assert key(got) == key(best), (n, got, best)


def test_balanced_segments_of_the_published_configs():
    # by hand: 4 3 3 2 2 1 1 peaks at 8.6 (segment 4), every=2's 8 pairs at 11.6
    assert balanced_segments(16, 1.8) == (4, 3, 3, 2, 2, 1, 1)
    assert balanced_segments(16, 2.46) == (3, 3, 3, 2, 2, 1, 1, 1)
    assert balanced_segments(4, 1.25) == (2, 1, 1)
    # a large decoder: its backward (m + 14.5) outweighs the blocks', so two segments (16.5)
    assert balanced_segments(16, 1.66, 14.5) == (8, 8)
    assert balanced_segments(4, 1.25, 4.17) == (4,)
    assert balanced_segments(1, 3.0) == (1,)
    with pytest.raises(ValueError, match="n must be >= 1"):
        balanced_segments(0, 2.0)
    with pytest.raises(ValueError, match="kept_ratio"):
        balanced_segments(4, 0.0)
    assert segment_bounds(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert segment_bounds(5, (3, 3)) == [(0, 3), (3, 5)]
    with pytest.raises(ValueError, match="do not cover 5 blocks"):
        segment_bounds(5, (2, 2))


def _kept_per_input(block, x):
    """What a block keeps for backward inside a checkpoint, per byte of its input (the input and weights excluded)."""
    skip = {p.untyped_storage().data_ptr() for p in block.parameters()} | {x.untyped_storage().data_ptr()}
    seen = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in skip:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with in_checkpoint(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block.add_residual(x)
    return sum(seen.values()) / (x.numel() * x.element_size())


@pytest.mark.parametrize("level,dropout,mult", [(1, 0.0, 2), (1, 0.5, 2), (3, 0.5, 2), (2, 0.3, 4), (4, 0.0, 2)])
def test_kept_ratio_is_what_a_block_keeps_inside_a_checkpoint(level, dropout, mult):
    torch.manual_seed(0)
    block = accelerate(WaveMixBlock(dim=32, level=level, mult=mult, dropout=dropout)).train()
    measured = _kept_per_input(block, torch.randn(2, 32, 32, 32))
    assert kept_ratio(block) == pytest.approx(measured, rel=0.01)  # the per-channel statistics aside  # the per-channel statistics aside


def test_default_segments_follow_the_blocks_and_the_head():
    """``set_grad_checkpointing()`` sizes accelerated WaveMix segments from the blocks (width does
    not matter, level and dropout do) and the head; Wave-ViT and the plain models keep two blocks
    per segment."""
    model = wavevision.create_model("wavemix", depth=16, final_dim=16, ff_channel=16, level=3, dropout=0.5)
    model.set_grad_checkpointing()
    assert kept_ratio(model.layers[0]) == pytest.approx(1.8047, abs=1e-4)
    assert head_cost(model) == 0.0  # pooled
    assert model._segment_lengths(16) == (4, 3, 3, 2, 2, 1, 1)
    model.set_grad_checkpointing(True, every=2)
    assert model._segment_lengths(16) == 2
    plain = wavevision.create_model("wavemix", depth=16, final_dim=16, ff_channel=16, level=3, accel=False)
    plain.set_grad_checkpointing()
    assert plain._segment_lengths(16) == 2
    # dense heads, by hand: x2 transposed conv to C/2 (2 units at 4x the area) and a 1x1 conv to 3
    # channels (3 * 4 / C), 1.9 times their sum; Seg: C/2 at 4x, C/4 at 16x, the classes at 16x.
    sr = wavevision.create_model("wavemix_paper_sr", final_dim=16, ff_channel=16)
    assert head_cost(sr) == pytest.approx(1.9 * (2 + 12 / 16))
    seg = wavevision.create_model("wavemix_seg", final_dim=32, ff_channel=32, num_classes=2)
    assert head_cost(seg) == pytest.approx(1.9 * (2 + 4 + 2 * 16 / 32))
    seg.set_grad_checkpointing()
    assert seg._segment_lengths(16) == (8, 8)
    unpooled = wavevision.create_model("wavemix", depth=4, final_dim=16, ff_channel=16, num_classes=8, global_pool="")
    assert head_cost(unpooled) == pytest.approx(1.9 * 8 / 16)  # per-position logits
    vit = small_model("wave_vit_s")
    vit.set_grad_checkpointing()
    assert vit._segment_lengths(5) == 2


def test_inside_a_checkpoint_the_lean_mlp_recomputes_its_hidden_map(monkeypatch):
    """In forward and in the recomputation the lean MLP runs under in_checkpoint (the two must
    keep the same tensors); outside a checkpoint, and after one, it keeps its GELU input again."""
    seen = []
    real = fast_blocks.lean_mlp
    monkeypatch.setattr(fast_blocks, "lean_mlp", lambda *a, **k: seen.append(inside_checkpoint()) or real(*a, **k))
    plain, ckpt = _pair("wavemix", depth=3, final_dim=16, ff_channel=16, level=1, dropout=0.2)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    _step(plain, x)
    assert seen == [False] * 3
    seen.clear()
    _step(ckpt, x)
    assert seen == [True] * 6
    assert inside_checkpoint() is False
