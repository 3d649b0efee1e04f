"""``set_grad_checkpointing``: the same gradients as the plain model, less kept for backward."""
from __future__ import annotations

import pytest
import torch

import wavevision
from wavevision.layers import WaveMixBlock
from wavevision.layers.lean import lean_enabled

from _small import small_model

NAMES = wavevision.list_models()


def _step(model, x, seed=3):
    """One forward/backward from a fixed RNG state; returns the loss, the gradients and the BatchNorm buffers."""
    torch.manual_seed(seed)
    out = model(x)
    outs = [out] if isinstance(out, torch.Tensor) else [out.logits, out.aux_logits]
    loss = sum((o * torch.linspace(-1, 1, o.shape[-1], dtype=o.dtype)).sum() for o in outs)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    buffers = {k: b.clone() for k, b in model.named_buffers() if "running" in k or "num_batches" in k}
    return loss.detach(), grads, buffers


def _pair(name, **kw):
    """Two identical float64 training models, the second with checkpointing."""
    plain = small_model(name, **kw).double().train()
    ckpt = small_model(name, **kw).double().train()
    ckpt.load_state_dict(plain.state_dict())
    ckpt.set_grad_checkpointing()
    return plain, ckpt


@pytest.mark.parametrize("name", NAMES)
def test_gradients_equal_the_plain_models(name):
    """float64, random layers on (dropout, drop path, MixToken): the recomputation replays the same
    random numbers, BatchNorm statistics are updated once, and every gradient matches."""
    kw = {"depth": 2} if not name.startswith("wave_vit") else {"drop_path_rate": 0.2}
    if not name.startswith("wave_vit") and not name.startswith("mixer"):
        kw.update(dropout=0.3, drop_path_rate=0.3)
    plain, ckpt = _pair(name, **kw)
    g = torch.Generator().manual_seed(0)
    side = 32 if name.startswith("wave_vit") else 12
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
    import wavevision.layers.wavemix_block as wb

    real = wb.lean_mlp
    monkeypatch.setattr(wb, "lean_mlp", lambda *a, **k: calls.append(1) or real(*a, **k))
    plain, ckpt = _pair("wavemix", depth=2, final_dim=16, ff_channel=16, level=2, dropout=0.2)
    for block in plain.layers:
        block.lean = False  # the reference: modules as written, no checkpointing
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


@pytest.mark.parametrize("every,factor", [(1, 3), (2, 6)])
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
    import wavevision.models.wavemix as wm

    real = wm.checkpoint_block
    wm.checkpoint_block = lambda *a: calls.append(1) or real(*a)
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
        wm.checkpoint_block = real
    with pytest.raises(ValueError, match="enable must be true or false"):
        model.set_grad_checkpointing("sometimes")
    with pytest.raises(ValueError, match="every must be >= 1"):
        model.set_grad_checkpointing(True, every=0)


@pytest.mark.parametrize("every", [1, 2, 3])
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
    assert seen and all(isinstance(b, WaveMixBlock) for b in model.layers)
