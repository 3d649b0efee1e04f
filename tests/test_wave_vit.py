"""Wave-ViT: exact size and arithmetic, reference layout and checkpoints, token labeling, dense features.

Full-size models are built only where a published number needs them (parameters and MACs on
the meta device, official checkpoints on CPU); behaviour is checked on depth-1 builds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wavevision
from _slow import model_cases
from wavevision import CheckpointMismatchError, convert_official_state_dict, create_model
from wavevision.bench.complexity import count_macs, count_parameters
from wavevision.layers import DropPath, WaveAttention, attention
from wavevision.losses import TokenLabelLoss, dense_token_target, soft_target_cross_entropy
from wavevision.models import TokenLabelOutput, WaveViT
from wavevision.models.wave_vit import sample_mix_box, swap_box

from _small import small_model

VARIANTS = ["wave_vit_s", "wave_vit_b", "wave_vit_l"]
REFERENCE = json.loads((Path(__file__).parent / "data" / "wavevit_official_keys.json").read_text())
FILTER_BUFFERS = (".attn.dwt.w_ll", ".attn.dwt.w_lh", ".attn.dwt.w_hl", ".attn.dwt.w_hh", ".attn.idwt.filters")
# Paper: params (M), FLOPs at 224 (G, multiply-accumulates), top-1 at 224 and 384, FLOPs at 384.
PAPER = {
    "wave_vit_s": (22.7, 4.7, 83.9, 85.0, 15.1),
    "wave_vit_b": (33.5, 7.2, 84.8, 85.6, 23.4),
    "wave_vit_l": (57.5, 14.8, 85.5, 86.3, 47.5),
}
DEPTH1 = dict(depths=(1, 1, 1, 1))


@pytest.fixture(autouse=True)
def _threads():
    # One thread: these models are small, and on a busy 2-core machine OpenMP's spinning
    # threads make each small op ~100x slower than a single thread does.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _ref(name):
    return REFERENCE[name.replace("wave_vit", "wavevit")]


def _meta(name, **kw):
    """The full-size model on the meta device: shapes and counts without memory or init time."""
    with torch.device("meta"):
        return create_model(name, **kw)


def _x(n=2, h=64, w=64, c=3, seed=1):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------
# Exact numbers and the reference layout


@pytest.mark.parametrize("name", VARIANTS)
def test_exact_parameters_and_reference_state_dict_layout(name):
    ref = _ref(name)
    model = _meta(name)
    assert isinstance(model, WaveViT) and model.model_name == name
    assert count_parameters(model) == ref["params"] == wavevision.get_entry(name).params
    want = [(k, tuple(s)) for k, s in ref["state_dict"].items() if not k.endswith(FILTER_BUFFERS)]
    assert len(want) == len(ref["state_dict"]) - 5 * sum(k.endswith(".attn.dwt.w_ll") for k in ref["state_dict"])
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == want  # names, order and shapes

    # Without token labeling only the auxiliary head is gone.
    plain = _meta(name, token_label=False)
    aux = model.num_features * 1000 + 1000
    assert count_parameters(plain) == ref["params"] - aux
    assert [k for k in model.state_dict() if not k.startswith("aux_head.")] == list(plain.state_dict())


@pytest.mark.parametrize("name", VARIANTS)
def test_macs_at_224_within_one_percent_of_reference(name):
    cfg = wavevision.get_entry(name).pretrained_cfg
    macs = count_macs(_meta(name), (224, 224))
    assert macs == cfg["macs"] and cfg["input_size"] == (3, 224, 224)
    assert abs(macs / _ref(name)["macs_224"] - 1) < 0.001, macs  # the reference code's exact count
    # The paper's "FLOPs" are multiply-accumulates, rounded to 0.1 G.
    assert abs(macs / (PAPER[name][1] * 1e9) - 1) < 0.02


def test_macs_counted_on_cpu_equal_meta_count():
    """The CPU forward writes attention out so FlopCounterMode sees it (its fused CPU kernel counts 0)."""
    torch.manual_seed(0)
    cpu = create_model("wave_vit_s", **DEPTH1)
    assert count_macs(cpu, (224, 224)) == count_macs(_meta("wave_vit_s", **DEPTH1), (224, 224))
    q, k, v = torch.rand(2, 3, 50, 8), torch.rand(2, 3, 7, 8), torch.rand(2, 3, 7, 8)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = attention(q, k, v, 8**-0.5)
    assert counter.get_total_flops() // 2 == 2 * 2 * 3 * 50 * 7 * 8  # q k^T and attn v
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_pretrained_cfgs_are_the_papers(name):
    """Two records per model, 224 (the default tag) and 384, with the paper's numbers."""
    params_m, flops, top1, top1_384, flops_384 = PAPER[name]
    at224, at384 = (wavevision.get_pretrained_cfg(t) for t in wavevision.get_entry(name).tags)
    assert round(at224["params"] / 1e6, 1) == params_m and at384["params"] == at224["params"]
    assert (at224["dataset"], at224["metrics"], at384["metrics"]) == ("ImageNet-1k", {"top1": top1}, {"top1": top1_384})
    assert (at224["input_size"], at384["input_size"]) == ((3, 224, 224), (3, 384, 384))
    assert abs(at384["macs"] / (flops_384 * 1e9) - 1) < 0.02 and f"{flops_384} G" in at384["notes"][0]
    assert at224["paper_ids"] == "arXiv:2207.04978" and at224["crop_pct"] == 0.9


# ------------------------------------------------------------------------------------
# Reference checkpoints


def _official_state_dict(name, seed=0):
    """A state dict with the reference's keys and shapes (float16 Haar buffers included), seeded values."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in _ref(name)["state_dict"].items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1000)
        elif k.endswith(FILTER_BUFFERS):
            sd[k] = torch.randn(shape, generator=g).half()
        elif k.endswith("running_var"):
            sd[k] = 1 + torch.rand(shape, generator=g)
        else:
            sd[k] = 0.02 * torch.randn(shape, generator=g)
    return sd


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    root, made = tmp_path_factory.mktemp("official"), {}

    def get(name):
        if name not in made:
            sd = _official_state_dict(name)
            made[name] = (root / f"{name}.pth", sd)
            torch.save({"model": sd}, made[name][0])  # wrapped, as training scripts save them
        return made[name]

    return get


@pytest.mark.parametrize("name", model_cases(VARIANTS))  # full-size loads: wave_vit_s in the fast subset
def test_official_checkpoint_loads_strictly_and_runs_in_float32(name, official_files):
    path, sd = official_files(name)
    model = create_model(name, checkpoint=path).eval()
    own = model.state_dict()
    assert set(sd) - set(own) == {k for k in sd if k.endswith(FILTER_BUFFERS)}
    for k, v in own.items():
        assert torch.equal(v, sd[k].to(v.dtype)), k
    with torch.no_grad():
        out = model(_x(1, 32, 32))  # the reference's float16 buffers would break a float32 forward
    assert out.shape == (1, 1000) and out.dtype == torch.float32 and torch.isfinite(out).all()

    converted = convert_official_state_dict({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, model)
    assert list(converted) == list(own)  # Wave-ViT's registered checkpoint filter drops the Haar buffers


def test_checkpoint_of_another_variant_names_first_mismatch(official_files):
    path, _ = official_files("wave_vit_b")
    with torch.device("meta"), pytest.raises(CheckpointMismatchError) as err:
        create_model("wave_vit_s", checkpoint=path)  # built on meta: the error comes before any copy
    msg = str(err.value)
    assert "'wave_vit_s'" in msg and str(path) in msg
    assert "first 'patch_embed1.conv.0.weight': checkpoint (64, 3, 7, 7) vs model (32, 3, 7, 7)" in msg
    assert "unexpected key(s), e.g. ['block3.6." in msg and "embed_dims, depths" in msg


def test_wavevision_checkpoint_round_trip(tmp_path):
    model = small_model("wave_vit_s", token_label=False, num_classes=5).eval()
    path = wavevision.save_checkpoint(model, tmp_path / "vit")
    again = create_model(checkpoint=path).eval()
    assert again.aux_head is None and again.num_classes == 5
    x = _x(1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
def test_features_only_backbone_loads_a_classification_checkpoint(tmp_path, official_files):
    full = small_model("wave_vit_s", num_classes=5).eval()
    path = wavevision.save_checkpoint(full, tmp_path / "full")
    backbone = create_model(checkpoint=path, features_only=True).eval()
    x = _x(1, 64, 64)
    with torch.no_grad():
        for a, b in zip(backbone(x), full.forward_intermediates(x, intermediates_only=True)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    official, _ = official_files("wave_vit_s")
    with torch.device("meta"):
        create_model("wave_vit_s", features_only=True, checkpoint=official)  # head keys dropped, rest strict
        with pytest.raises(CheckpointMismatchError, match="first 'patch_embed1.conv.0.weight'"):
            create_model("wave_vit_b", features_only=True, checkpoint=official)


# ------------------------------------------------------------------------------------
# Forward, backward, precision


@pytest.mark.parametrize("name", VARIANTS)
def test_full_width_forward_backward_finite(name):
    """Each variant's real widths and heads (one block per stage): train and eval outputs, gradients."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, drop_path_rate=0.1, **DEPTH1).train()
    x = _x(2, 32, 64).requires_grad_()
    out = model(x)
    assert isinstance(out, TokenLabelOutput)
    assert out.logits.shape == (2, 10) and out.aux_logits.shape == (2, 1 * 2, 10) and out.grid_size == (1, 2)
    TokenLabelLoss()(out, torch.tensor([1, 7])).backward()
    assert torch.isfinite(x.grad).all()
    for k, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), k
    with torch.no_grad():
        y = model.eval()(x)
    assert y.shape == (2, 10) and torch.isfinite(y).all()


def test_autocast_bfloat16_and_float16_close_to_float32():
    if not torch.amp.autocast_mode.is_autocast_available("cpu"):
        pytest.skip("no CPU autocast")
    model = small_model("wave_vit_s").eval()
    x = _x(2, 64, 64)
    dtypes = (torch.bfloat16, torch.float16)
    with torch.no_grad():
        ref = model(x)
        for dtype in dtypes:
            with torch.autocast("cpu", dtype=dtype):
                out = model(x)
            assert out.dtype == dtype and torch.isfinite(out).all()
            assert (out.float() - ref).abs().max() <= 0.05 * ref.abs().max()
    model.train()  # training (token labeling, MixToken) under autocast: finite loss and gradients
    for dtype in dtypes:
        with torch.autocast("cpu", dtype=dtype):
            loss = TokenLabelLoss()(model(x), torch.tensor([0, 3]))
        loss.backward()
        assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
        model.zero_grad()


def test_sizes_multiple_of_32_unpadded_others_padded():
    model = small_model("wave_vit_s").eval()
    x = _x(1, 50, 70)
    padded = F.pad(x, (0, 96 - 70, 0, 64 - 50))
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(padded), atol=0, rtol=0)
        assert model.forward_features(_x(1, 64, 96)).shape == (1, 1 + 2 * 3, 64)
        maps = model.forward_intermediates(x, intermediates_only=True)
        full = model.forward_intermediates(padded, intermediates_only=True)
    for m, f, s in zip(maps, full, (4, 8, 16, 32)):
        assert m.shape[-2:] == (-(-50 // s), -(-70 // s))
        torch.testing.assert_close(m, f[..., : m.shape[-2], : m.shape[-1]], atol=0, rtol=0)


# ------------------------------------------------------------------------------------
# The blocks against hand-written computations


def _haar_filters(dtype):
    """REFERENCE.md section 1: LL, LH, HL, HH on a 2x2 patch [[a, b], [c, d]]."""
    return 0.5 * torch.tensor(
        [[[1, 1], [1, 1]], [[1, 1], [-1, -1]], [[1, -1], [1, -1]], [[1, -1], [-1, 1]]], dtype=dtype
    )


def _dwt_by_conv(x):
    f, c = _haar_filters(x.dtype), x.shape[1]
    return torch.cat([F.conv2d(x, f[j].expand(c, 1, 2, 2), stride=2, groups=c) for j in range(4)], dim=1)


def _idwt_by_conv(y):
    f, c = _haar_filters(y.dtype), y.shape[1] // 4
    per_channel = y.unflatten(1, (4, c)).transpose(1, 2).flatten(1, 2)  # band-major -> 4 bands per channel
    return F.conv_transpose2d(per_channel, f.unsqueeze(1).repeat(c, 1, 1, 1), stride=2, groups=c)


def test_wave_attention_matches_band_major_haar_by_convolution():
    torch.manual_seed(0)
    attn = WaveAttention(16, 2, sr_ratio=2).eval()
    for bn in (attn.reduce[1], attn.filter[1]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
    b, h, w, c = 2, 8, 12, 16
    x = torch.randn(b, h * w, c)
    with torch.no_grad():
        out = attn(x, (h, w))
        q = attn.q(x).reshape(b, h * w, 2, 8).transpose(1, 2)
        bands = attn.filter(_dwt_by_conv(attn.reduce(x.transpose(1, 2).reshape(b, c, h, w))))
        local = _idwt_by_conv(bands).flatten(2).transpose(1, 2)
        kv = attn.kv(attn.kv_embed(bands).flatten(2).transpose(1, 2)).reshape(b, -1, 2, 2, 8).permute(2, 0, 3, 1, 4)
        weights = ((q @ kv[0].transpose(-2, -1)) * 8**-0.5).softmax(-1)
        mixed = (weights @ kv[1]).transpose(1, 2).reshape(b, h * w, c)
        want = attn.proj(torch.cat([mixed, local], dim=-1))
    assert kv.shape[3] == (h // 4) * (w // 4)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)


def _logits_by_hand(model, x):
    """The reference forward written out: stages, class token = mean, class block, norm, the inference rule."""
    feat, b = x, x.shape[0]
    for i in range(1, 5):
        tokens, (h, w) = getattr(model, f"patch_embed{i}")(feat)
        for blk in getattr(model, f"block{i}"):
            tokens = blk(tokens, (h, w))
        if i < 4:
            feat = getattr(model, f"norm{i}")(tokens).reshape(b, h, w, -1).permute(0, 3, 1, 2)
    z = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
    cls = z[:, :1] + model.post_network[0].attn(model.post_network[0].norm1(z))
    cls = cls + model.post_network[0].mlp(model.post_network[0].norm2(cls))
    z = model.norm4(torch.cat([cls, z[:, 1:]], dim=1))
    return model.head(z[:, 0]), model.aux_head(z[:, 1:])


def test_inference_rule_computed_by_hand():
    model = small_model("wave_vit_b", depths=(2, 1, 1, 1)).eval()
    x = _x(3, 64, 96)
    with torch.no_grad():
        cls, aux = _logits_by_hand(model, x)
        torch.testing.assert_close(model(x), cls + 0.5 * aux.max(dim=1).values, atol=1e-5, rtol=1e-5)
        feats = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats[:, 0], atol=0, rtol=0)
        plain = small_model("wave_vit_b", depths=(2, 1, 1, 1), token_label=False).eval()
        plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("aux_head")})
        torch.testing.assert_close(plain(x), cls, atol=1e-5, rtol=1e-5)
        assert isinstance(plain.train()(x), torch.Tensor)  # no aux head: plain logits in training too


# ------------------------------------------------------------------------------------
# Token labeling: MixToken, its box, the loss


def test_mixtoken_mixes_stage1_boxes_and_undoes_them_on_aux_logits():
    model = small_model("wave_vit_s").train()
    seen = {}
    model.patch_embed1.register_forward_hook(lambda m, a, out: seen.__setitem__("stem", out[0]))
    model.block1[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("mixed", a[0]))
    model.aux_head.register_forward_hook(lambda m, a, out: seen.__setitem__("aux", out))
    x = _x(4, 128, 96)
    torch.manual_seed(11)
    np.random.seed(0)
    out = model(x)
    box, (gh, gw) = out.box, out.grid_size
    top, left, bottom, right = box
    assert (gh, gw) == (4, 3) and 0 <= top <= bottom <= gh and 0 <= left <= right <= gw
    area = (bottom - top) * (right - left)
    assert area > 0, "seed 11 draws a non-empty box"

    stem, mixed = seen["stem"].unflatten(1, (32, 24)), seen["mixed"].unflatten(1, (32, 24))
    inside = torch.zeros(32, 24, dtype=torch.bool)
    inside[8 * top : 8 * bottom, 8 * left : 8 * right] = True
    torch.testing.assert_close(mixed[:, inside], stem.flip(0)[:, inside], atol=0, rtol=0)
    torch.testing.assert_close(mixed[:, ~inside], stem[:, ~inside], atol=0, rtol=0)
    # The share of swapped stage-1 tokens is exactly what the loss mixes the class target by.
    assert inside.float().mean().item() == pytest.approx(area / (gh * gw))
    torch.testing.assert_close(out.aux_logits, swap_box(seen["aux"], (gh, gw), box), atol=0, rtol=0)
    assert not torch.equal(out.aux_logits, seen["aux"])

    # Torch's RNG alone decides the box; NumPy's global RNG plays no part.
    torch.manual_seed(11)
    np.random.seed(123)
    assert model(x).box == box
    model.mix_token = False
    assert (lambda b: (b[2] - b[0]) * (b[3] - b[1]))(model(x).box) == 0


def test_sample_mix_box_follows_the_reference_rule():
    torch.manual_seed(0)
    boxes = [sample_mix_box((7, 7)) for _ in range(300)]
    for top, left, bottom, right in boxes:
        assert 0 <= top <= bottom <= 7 and 0 <= left <= right <= 7
        assert bottom - top <= 6 and right - left <= 6  # sides int(7 * sqrt(1 - lam)) rounded to even halves
    areas = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]) / 49
    assert 0.1 < areas.mean() < 0.5 and (areas == 0).any() and (areas > 0.3).any()
    x = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)
    swapped = swap_box(x, (2, 3), (0, 1, 2, 3))
    assert torch.equal(swap_box(swapped, (2, 3), (0, 1, 2, 3)), x)
    assert torch.equal(swapped[0].reshape(2, 3, 3)[:, 1:], x[1].reshape(2, 3, 3)[:, 1:])


def test_token_label_loss_by_hand_with_mixed_box():
    torch.manual_seed(0)
    b, k, grid = 4, 5, (2, 3)
    logits, aux = torch.randn(b, k), torch.randn(b, 6, k)
    labels = torch.tensor([0, 3, 4, 1])
    out = TokenLabelOutput(logits, aux, (0, 1, 2, 3), grid)  # 4 of 6 tokens mixed: lam = 1/3
    y = F.one_hot(labels, k).float()
    lam = 1 - 4 / 6
    cls_target = lam * y + (1 - lam) * y.flip(0)
    want = -(cls_target * logits.log_softmax(-1)).sum(-1).mean() + 0.5 * -(
        y[:, None] * aux.log_softmax(-1)
    ).sum(-1).mean()
    loss = TokenLabelLoss()(out, labels)
    torch.testing.assert_close(loss, want)
    # Hard labels degrade gracefully: the same as dense labels that repeat the class label.
    maps = y[:, :, None, None].expand(b, k, 2, 3)
    for dense in (maps, maps.flatten(2).transpose(1, 2), labels[:, None, None].expand(b, 4, 6), y[:, :, None, None].expand(b, k, 8, 12)):
        torch.testing.assert_close(TokenLabelLoss()(out, labels, dense), want)
    torch.testing.assert_close(TokenLabelLoss()(out[:3], labels), want)  # the reference's triple
    # No box: the class target is the label itself; weights apply.
    plain = TokenLabelOutput(logits, aux, (1, 1, 1, 2), grid)
    w = TokenLabelLoss(cls_weight=2.0, dense_weight=0.0)(plain, labels)
    torch.testing.assert_close(w, 2 * F.cross_entropy(logits, labels))
    torch.testing.assert_close(TokenLabelLoss()(logits, labels), F.cross_entropy(logits, labels))
    smooth = TokenLabelLoss(label_smoothing=0.1)(logits, labels)
    torch.testing.assert_close(smooth, F.cross_entropy(logits, labels, label_smoothing=0.1))


def test_dense_targets_are_area_averaged_onto_the_token_grid():
    maps = torch.rand(2, 3, 4, 6)
    maps = maps / maps.sum(1, keepdim=True)
    tokens = dense_token_target(maps, (2, 3), 3)
    assert tokens.shape == (2, 6, 3)
    torch.testing.assert_close(tokens[:, 0], maps[:, :, :2, :2].mean((2, 3)))
    torch.testing.assert_close(tokens.sum(-1), torch.ones(2, 6))
    logits = torch.randn(2, 6, 3)
    torch.testing.assert_close(
        soft_target_cross_entropy(logits, tokens), -(tokens * logits.log_softmax(-1)).sum(-1).mean()
    )


def test_token_label_loss_errors():
    out = TokenLabelOutput(torch.randn(2, 5), torch.randn(2, 6, 5), (0, 0, 0, 0), (2, 3))
    loss = TokenLabelLoss()
    with pytest.raises(ValueError, match=r"lie in \[0, 4\]"):
        loss(out, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"N = 2x3 = 6 tokens"):
        loss(out, torch.tensor([0, 1]), torch.rand(2, 7, 5))
    with pytest.raises(ValueError, match=r"soft labels must have shape \(batch, 5\)"):
        loss(out, torch.rand(2, 4))
    with pytest.raises(ValueError, match="3 samples"):
        loss(out, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="TokenLabelOutput"):
        loss({"logits": 1}, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="weights"):
        TokenLabelLoss(cls_weight=0, dense_weight=0)


# ------------------------------------------------------------------------------------
# Dense features


def test_features_only_returns_the_four_stage_maps():
    full = small_model("wave_vit_l").eval()
    feats = create_model("wave_vit_l", features_only=True, **{k: v for k, v in full.model_kwargs.items()}).eval()
    assert not any(k.startswith(("head", "aux_head", "post_network")) for k in feats.state_dict())
    feats.load_state_dict({k: v for k, v in full.state_dict().items() if k in feats.state_dict()})
    assert feats.feature_info.channels() == [16, 32, 48, 64] and feats.feature_info.reduction() == [4, 8, 16, 32]
    assert [f["module"] for f in feats.feature_info] == ["norm1", "norm2", "norm3", "norm4"]
    x = _x(2, 70, 100)
    with torch.no_grad():
        maps = feats(x)
        ref = full.forward_intermediates(x, intermediates_only=True)
    assert [tuple(m.shape) for m in maps] == [(2, 16, 18, 25), (2, 32, 9, 13), (2, 48, 5, 7), (2, 64, 3, 4)]
    for a, b in zip(maps, ref):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="features_only=True"):
        feats.forward_features(x)
    with pytest.raises(RuntimeError, match="features_only=True"):
        feats.reset_classifier(3)
    full_size = _meta("wave_vit_s", features_only=True)
    assert full_size.feature_info.channels() == [64, 128, 320, 448]
    assert count_parameters(full_size) < count_parameters(_meta("wave_vit_s"))


def test_drop_path_rate_rises_linearly_and_drops_samples():
    model = small_model("wave_vit_s", depths=(1, 2, 1, 1), drop_path_rate=0.4)
    rates = [blk.drop_path.p if isinstance(blk.drop_path, DropPath) else 0.0 for i in range(1, 5) for blk in getattr(model, f"block{i}")]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    torch.manual_seed(0)
    dp = DropPath(0.5).train()
    y = dp(torch.ones(1000, 3))
    kept = y[:, 0] > 0
    assert torch.equal(y[kept], torch.full_like(y[kept], 2.0)) and 400 < int(kept.sum()) < 600
    assert torch.equal(dp.eval()(torch.ones(4, 3)), torch.ones(4, 3))


# ------------------------------------------------------------------------------------
# Bad input


def test_bad_input_errors():
    model = small_model("wave_vit_s").eval()
    with pytest.raises(ValueError, match=r"built for 3 input channel\(s\) but the input has 1.*in_chans=1"):
        model(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"too small for WaveViT: the minimum is 32x32 \(one token at stride 32"):
        model(torch.rand(1, 3, 31, 64))
    with pytest.raises(ValueError, match=r"embed_dims\[2\]=320 is not divisible by num_heads\[2\]=12"):
        create_model("wave_vit_s", num_heads=(2, 4, 12, 14))
    with pytest.raises(ValueError, match=r"embed_dims\[0\]=66 must be a multiple of 4"):
        create_model("wave_vit_s", embed_dims=(66, 128, 320, 448), num_heads=(2, 4, 10, 14))
    with pytest.raises(ValueError, match=r"embed dim 30 is not divisible by num_heads=4; .*\(1, 2, 3, 5, 6, 10, 15, 30\)"):
        WaveAttention(30, 4)
    with pytest.raises(ValueError, match=r"depths must list one value per stage \(4\)"):
        create_model("wave_vit_s", depths=(3, 4, 6))
    with pytest.raises(ValueError, match="sr_ratios of stages 3-4 must be 1"):
        create_model("wave_vit_s", sr_ratios=(4, 2, 2, 1))
    with pytest.raises(ValueError, match=r"drop_path_rate must be in \[0, 1\)"):
        create_model("wave_vit_s", drop_path_rate=1.5)
    with pytest.raises(TypeError, match="unknown argument"):
        create_model("wave_vit_s", depth=3)


def test_in_chans_and_reset_classifier():
    model = small_model("wave_vit_s", in_chans=1, num_classes=10).eval()
    x = _x(2, 32, 48, c=1)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        model.reset_classifier(0)
        assert model.aux_head is None and model(x).shape == (2, 64)
        model.reset_classifier(4)
        assert model.aux_head.out_features == 4 and model(x).shape == (2, 4)
    assert isinstance(model.train()(x), TokenLabelOutput)


@pytest.mark.slow
def test_readme_wave_vit_example_runs():
    text = (Path(__file__).parent.parent / "docs" / "models.md").read_text()
    block = text.split("## Wave-ViT", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "docs/models.md Wave-ViT example", "exec"), namespace)
    assert namespace["logits"].shape == (4, 10)
    assert [tuple(m.shape) for m in namespace["maps"]] == [(1, 64, 56, 56), (1, 128, 28, 28), (1, 320, 14, 14), (1, 448, 7, 7)]
