"""The optimizer: parameter groups (no weight decay by kind or name, layer-wise lr decay against
timm's functions), AdamW's betas/eps and SGD's Nesterov flag from the configuration and the recipes."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import wavevision
from wavevision.engine.config import TrainConfig, resolve_config
from wavevision.engine.recipe import engine_values, missing_pieces
from wavevision.engine.schedule import build_optimizer, build_scheduler, param_groups
from wavevision.recipes import get_recipe

from _optional import require
from _small import small_overrides


class _Tiny(nn.Module):
    """A conv with BatchNorm, a linear with LayerNorm, a position table and a class token."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        self.fc, self.ln = nn.Linear(4, 4), nn.LayerNorm(4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.scale = nn.Parameter(torch.ones(()))


def _exempt(model: nn.Module, **cfg) -> set[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, TrainConfig(**cfg).validate())
    return {names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}


def test_no_decay_kinds():
    m = _Tiny()
    # the default ("1d") is the engine's old rule: every tensor of fewer than 2 dimensions
    assert _exempt(m) == {n for n, p in m.named_parameters() if p.ndim < 2}
    # MMCV's norm_decay_mult=0 with custom keys for position tables (UperNet): linear and conv biases decay
    assert _exempt(m, no_decay="norm,pos_embed") == {"bn.weight", "bn.bias", "ln.weight", "ln.bias", "pos_embed",
                                                     "cls_token"}
    assert _exempt(m, no_decay="bias") == {"conv.bias", "bn.bias", "fc.bias", "ln.bias"}
    assert _exempt(m, no_decay="none") == set()  # torch's AdamW(model.parameters(), weight_decay=...)
    with pytest.raises(ValueError, match="no_decay must be 'none' or a comma-separated list of 1d, norm"):
        TrainConfig(no_decay="norms").validate()


def test_1d_matches_timm_and_no_weight_decay_names():
    optim = require("timm.optim")
    m = _Tiny()
    m.no_weight_decay = lambda: {"pos_embed"}  # a model naming its own tables (timm's hook)
    names = {id(p): n for n, p in m.named_parameters()}
    theirs = optim.param_groups_weight_decay(m, 0.05, no_weight_decay_list=m.no_weight_decay())
    assert _exempt(m) == {names[id(p)] for g in theirs if g["weight_decay"] == 0.0 for p in g["params"]}


def test_layer_decay_against_timm():
    optim = require("timm.optim")
    torch.manual_seed(0)
    model = wavevision.create_model("wave_vit_s", num_classes=3, **small_overrides("wave_vit_s"))
    cfg = TrainConfig(layer_decay=0.75, lr=0.01, weight_decay=0.05).validate()
    opt = build_optimizer(model, cfg)
    ref = optim.param_groups_layer_decay(model, 0.05, no_weight_decay_list=(), layer_decay=0.75)

    def key(groups):
        return sorted((round(g.get("lr_scale", 1.0), 12), g["weight_decay"], len(g["params"])) for g in groups)

    assert key(opt.param_groups) == key(ref) and len(ref) > 4
    scales = {g["lr_scale"] for g in ref}
    assert min(scales) < 0.75 ** 3 and max(scales) == 1.0  # the head full, the stem decayed most
    build_scheduler(opt, cfg.replace(warmup_iters=0), 10)  # the schedule multiplies each group's scaled lr
    assert sorted(g["lr"] / 0.01 for g in opt.param_groups) == pytest.approx(sorted(g["lr_scale"] for g in ref))
    with pytest.raises(ValueError, match="add 1d to no_decay"):
        TrainConfig(layer_decay=0.75, no_decay="norm").validate()


class _ConvNeXtLike(nn.Module):
    """timm's ConvNeXt names under ``backbone.`` (stem, stages.N.downsample, stages.N.blocks), then a decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.stem = nn.Sequential(nn.Conv2d(3, 4, 4), nn.GroupNorm(1, 4))
        self.backbone.stages = nn.ModuleList()
        for i in range(4):
            stage = nn.Module()
            stage.downsample = nn.Sequential(nn.GroupNorm(1, 4), nn.Conv2d(4, 4, 2)) if i else nn.Identity()
            stage.blocks = nn.Sequential(*(nn.Conv2d(4, 4, 1) for _ in range(2)))
            self.backbone.stages.append(stage)
        self.stage_norms = nn.ModuleList(nn.GroupNorm(1, 4) for _ in range(4))
        self.decode_head = nn.Conv2d(4, 2, 1)


def test_stage_wise_layer_decay_is_mmsegmentations_rule():
    # MMSegmentation's LearningRateDecayOptimizerConstructor, decay_type='stage_wise', num_layers=6 (ConvNeXt-T):
    # ids 0 (stem, downsampling), 1-4 (stages), 7 (the rest); lr scale 0.9 ** (6 + 2 - id - 1); no decay on 1-D
    model = _ConvNeXtLike()
    cfg = TrainConfig(lr=1e-4, weight_decay=0.05, layer_decay=0.9, layer_decay_type="stage_wise",
                      layer_decay_layers=6).validate()
    want = {"backbone.stem.0.weight": (0.9 ** 7, 0.05), "backbone.stem.1.bias": (0.9 ** 7, 0.0),
            "backbone.stages.2.downsample.1.weight": (0.9 ** 7, 0.05),
            "backbone.stages.0.blocks.1.weight": (0.9 ** 6, 0.05), "backbone.stages.1.blocks.0.bias": (0.9 ** 5, 0.0),
            "backbone.stages.2.blocks.0.weight": (0.9 ** 4, 0.05), "backbone.stages.3.blocks.1.weight": (0.9 ** 3, 0.05),
            "stage_norms.3.weight": (1.0, 0.0), "decode_head.weight": (1.0, 0.05), "decode_head.bias": (1.0, 0.0)}
    opt = build_optimizer(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    got = {names[id(p)]: (g["lr"] / 1e-4, g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert len(got) == len(names) and len(opt.param_groups) == 12  # ids 0-4 and 7, each decayed and not
    for name, (scale, wd) in want.items():
        assert got[name] == (pytest.approx(scale), wd), name
    twelve = build_optimizer(model, cfg.replace(layer_decay_layers=12))  # -S/-B: 0.9 ** 13 at the stem, 0.9 ** 9 stage 3
    assert sorted({round(g["lr"] / 1e-4, 12) for g in twelve.param_groups}) == pytest.approx(
        sorted([0.9 ** 13, 0.9 ** 12, 0.9 ** 11, 0.9 ** 10, 0.9 ** 9, 1.0]))
    with pytest.raises(ValueError, match="needs a ConvNeXt-layout model"):
        build_optimizer(_Tiny(), cfg)
    with pytest.raises(ValueError, match="stage_wise needs layer_decay and layer_decay_layers"):
        TrainConfig(layer_decay_type="stage_wise", layer_decay=0.9).validate()
    with pytest.raises(ValueError, match="layer_decay_layers is only read by stage_wise"):
        TrainConfig(layer_decay_layers=6).validate()


def test_layer_decay_without_timm_says_so(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm.optim", None)  # as where timm is not installed
    with pytest.raises(ValueError, match="layer_decay needs timm's param_groups_layer_decay"):
        build_optimizer(_Tiny(), TrainConfig(layer_decay=0.75).validate())


def test_adamw_betas_eps_and_sgd_nesterov():
    m = _Tiny()
    opt = build_optimizer(m, TrainConfig(adam_beta1=0.8, adam_beta2=0.95, adam_eps=1e-6).validate())
    assert opt.defaults["betas"] == (0.8, 0.95) and opt.defaults["eps"] == 1e-6
    assert build_optimizer(m, TrainConfig().validate()).defaults["betas"] == (0.9, 0.999)

    def sgd(**kw):
        return build_optimizer(m, TrainConfig(optimizer="sgd", **kw).validate()).defaults["nesterov"]

    assert sgd() is True and sgd(momentum=0.0) is False  # the old default: Nesterov when momentum > 0
    assert sgd(nesterov=False) is False and sgd(nesterov=True) is True
    with pytest.raises(ValueError, match="nesterov needs SGD with momentum > 0"):
        TrainConfig(nesterov=True).validate()
    assert resolve_config(overrides={"optimizer": "sgd", "nesterov": "false"}).nesterov is False


def test_recipes_apply_their_optimizer_details():
    ade = get_recipe("upernet_wave_vit_s_ade20k_160k")
    v = engine_values(ade)
    assert v["no_decay"] == "norm,pos_embed" and (v["adam_beta1"], v["adam_beta2"], v["adam_eps"]) == (0.9, 0.999, 1e-8)
    wavemix = engine_values(get_recipe("wavemix_lite_144_7_cifar10"))
    assert wavemix["no_decay"] == "none"  # the authors' AdamW(model.parameters(), weight_decay=0.01)
    assert engine_values(get_recipe("mask_rcnn_wave_vit_s_coco_1x"))["no_decay"] == "none"  # MMCV: decay all
    assert engine_values(get_recipe("wave_vit_s_in1k_deit"))["no_decay"] == "1d"
    for name in ("upernet_wave_vit_s_ade20k_160k", "mask_rcnn_wave_vit_s_coco_1x", "wavemix_lite_144_7_cifar10"):
        gaps = " ".join(missing_pieces(get_recipe(name)))
        assert "decay" not in gaps and "betas" not in gaps and "Nesterov" not in gaps
    cfg = resolve_config(overrides={"recipe": "upernet_wave_vit_s_ade20k_160k"})
    assert cfg.no_decay == "norm,pos_embed" and cfg.iterations == 160_000
    # a length given in epochs replaces the recipe's in iterations (as a warm-up in one unit does)
    assert resolve_config(overrides={"recipe": "upernet_wave_vit_s_ade20k_160k", "epochs": 2}).iterations is None


# -- a length in iterations ------------------------------------------------------------------------------------

def _digits(tmp_path, name, **kw):
    cfg = dict(dataset="digits", dataset_args={"image_size": 8}, model_args=dict(final_dim=16, ff_channel=16, depth=1),
               batch_size=32, max_train_batches=3, max_eval_batches=1, output=str(tmp_path / name), threads=1,
               progress=False, plots=False, test=False)
    return {**cfg, **kw}


def test_iterations_end_the_run_mid_epoch_and_drive_the_schedule(tmp_path):
    from wavevision.engine import Callback, train

    steps = []

    class Count(Callback):
        def on_step_end(self, state):
            steps.append((state.epoch, state.step, state.optimizer.param_groups[0]["lr"]))

    result = train(_digits(tmp_path, "it", iterations=7, scheduler="poly", lr=0.01, epochs=50,
                                   warmup_epochs=0.0), callbacks=[Count()])
    # 3 steps per epoch: epochs 3, the last of 1 step; the poly schedule reaches 0 at step 7, not at 50 x 3
    assert [(e, s) for e, s, _ in steps] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1)]
    assert [lr for *_, lr in steps] == pytest.approx([0.01 * (1 - k / 7) for k in range(1, 8)])
    assert len(result.history) == 3 and "val_top1" in result.history[-1]  # validated at each epoch's end
    with pytest.raises(ValueError, match="cooldown_epochs is 3 but iterations 7 make 3 epochs"):
        train(_digits(tmp_path, "cool", iterations=7, cooldown_epochs=3))


def test_iterations_resume_mid_run_equals_uninterrupted(tmp_path):
    import signal

    from wavevision.engine import Callback, TrainingInterrupted, train
    from wavevision.models._builder import load_safetensors

    def cfg(name):
        return _digits(tmp_path, name, iterations=5, deterministic=True)


    class Stop(Callback):
        def on_step_end(self, state):
            if state.global_step == 4:
                signal.raise_signal(signal.SIGTERM)

    train(cfg("ref"))
    with pytest.raises(TrainingInterrupted):
        train(cfg("cut"), callbacks=[Stop()])
    train({**cfg("cut"), "resume": True})
    a, b = (load_safetensors(str(tmp_path / n / "last.safetensors"))[0] for n in ("ref", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_recipe_length_in_iterations():
    ade = get_recipe("upernet_wave_vit_s_ade20k_160k")
    assert engine_values(ade)["iterations"] == 160_000
    assert not any("iterations" in g for g in missing_pieces(ade))


# -- initial weights -------------------------------------------------------------------------------------------

def test_init_loads_a_backbone_or_the_whole_model_strictly(tmp_path):
    from wavevision.engine.init import load_init
    from wavevision.models import CheckpointMismatchError

    vit = small_overrides("upernet_wave_vit_s")["backbone_args"]
    torch.manual_seed(1)
    clf = wavevision.create_model("wave_vit_s", num_classes=4, **vit)
    path = wavevision.save_checkpoint(clf, tmp_path / "vit.safetensors")
    seg = wavevision.create_model("upernet_wave_vit_s", num_classes=3, **small_overrides("upernet_wave_vit_s"))
    assert load_init(seg, str(path)).startswith("backbone from")
    assert all(torch.equal(v, clf.state_dict()[k]) for k, v in seg.backbone.state_dict().items())
    same = wavevision.create_model("wave_vit_s", num_classes=4, **vit)
    assert load_init(same, str(path)).startswith("all weights") and all(
        torch.equal(v, clf.state_dict()[k]) for k, v in same.state_dict().items())
    other = wavevision.create_model("wave_vit_s", num_classes=7, **vit)  # another head: strict, named
    with pytest.raises(CheckpointMismatchError, match=r"^init .*does not fit model.*shape mismatch") as err:
        load_init(other, str(path))
    assert "\n" not in str(err.value)
    wide = wavevision.save_checkpoint(wavevision.create_model("wave_vit_s", num_classes=4, **{**vit, "stem_hidden_dim": 16}),
                                      tmp_path / "wide.safetensors")
    with pytest.raises(CheckpointMismatchError, match="first mismatching key"):
        load_init(seg, str(wide))
    with pytest.raises(ValueError, match="init 'nowhere.bin' is neither a file, hf-hub:ORG/NAME nor"):
        load_init(seg, "nowhere.bin")


def test_init_before_training_and_recipe_gap(tmp_path):
    from wavevision.engine import train
    from wavevision.models._builder import load_safetensors

    first = _digits(tmp_path, "first", epochs=1)
    train(first)
    saved = tmp_path / "first" / "last.safetensors"
    # a step of lr 1e-30 leaves float32 weights as they were: the run starts from the file's parameters
    train(_digits(tmp_path, "second", epochs=1, max_train_batches=1, init=str(saved), lr=1e-30, warmup_epochs=0.0))
    a, b = (load_safetensors(str(p))[0] for p in (saved, tmp_path / "second" / "last.safetensors"))
    params = [k for k in a if "running" not in k and "num_batches" not in k]
    assert params and all(torch.equal(a[k], b[k]) for k in params)
    gaps = missing_pieces(get_recipe("upernet_wave_vit_s_ade20k_160k"))
    assert any("give --init FILE" in g for g in gaps)


# -- a static fp16 loss scale ----------------------------------------------------------------------------------

def test_static_loss_scale_never_grows():
    from wavevision.engine.plan import build_scaler

    dynamic = build_scaler(TrainConfig(amp="fp16").validate(), torch.device("cpu"))
    assert dynamic._init_scale == 2.0**16 and dynamic._growth_interval == 2000  # torch's defaults, as before
    cfg = TrainConfig(amp="fp16", loss_scale=512).validate()
    assert cfg.loss_scale == 512.0
    scaler = build_scaler(cfg, torch.device("cpu"))
    assert scaler._init_scale == 512.0 and scaler._growth_interval == 2**31 - 1
    with pytest.raises(ValueError, match="loss_scale"):
        TrainConfig(loss_scale=0).validate()
    ade = get_recipe("upernet_wave_vit_s_ade20k_160k")
    assert engine_values(ade)["loss_scale"] == 512.0
    assert not any("loss scale" in g for g in missing_pieces(ade))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GradScaler's fp16 scaling runs on CUDA")
def test_static_loss_scale_on_cuda():
    from wavevision.engine.plan import build_scaler

    scaler = build_scaler(TrainConfig(amp="fp16", loss_scale=512).validate(), torch.device("cuda"))
    p = nn.Parameter(torch.ones(2, device="cuda"))
    opt = torch.optim.SGD([p], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        scaler.scale(p.sum()).backward()
        assert torch.equal(p.grad, torch.full_like(p, 512.0))  # the loss times the static scale
        scaler.step(opt)
        scaler.update()
    assert scaler.get_scale() == 512.0


# -- the WaveMix authors' two-phase optimizer ------------------------------------------------------------------

# Validation scores by epoch: phase 1 best at epoch 2, patience 2 spent after epoch 4, phase 2 better at epoch 6,
# its patience spent after epoch 8 (the run stops there, before the epochs bound of 20).
_SCORES = [10.0, 30.0, 20.0, 25.0, 28.0, 40.0, 35.0, 39.0, 50.0, 60.0]


@pytest.fixture
def scripted_scores(monkeypatch):
    """Validation returns the scores of _SCORES by epoch (the switch happens where the test says)."""
    from wavevision.engine import trainer

    seen = []

    def fake_validate(self, record):
        seen.append({k: v.detach().clone() for k, v in self.plan.model.state_dict().items()})
        return {"val_loss": 1.0, "val_top1": _SCORES[self.state.epoch]}

    monkeypatch.setattr(trainer._Run, "_validate", fake_validate)
    return seen


def _two_phase(tmp_path, name):
    return _digits(tmp_path, name, epochs=20, patience=2, scheduler="constant", warmup_epochs=0.0, lr=1e-3,
                   weight_decay=0.01, max_train_batches=2, deterministic=True)


def test_two_phase_switches_from_the_best_weights_and_stops(tmp_path, scripted_scores, monkeypatch):
    from wavevision.engine import Callback, train, trainer

    optimizers, at_switch = [], []

    class Watch(Callback):
        def on_step_end(self, state):
            optimizers.append((state.epoch, type(state.optimizer).__name__, state.optimizer.param_groups[0]["lr"]))

    count = trainer._Run._count_patience

    def watch_switch(self, improved):
        count(self, improved)
        if self.state.phase == 2 and not at_switch:
            at_switch.append({k: v.detach().clone() for k, v in self.plan.model.state_dict().items()})

    monkeypatch.setattr(trainer._Run, "_count_patience", watch_switch)
    result = train(_two_phase(tmp_path, "tp"), callbacks=[Watch()])
    assert [r["phase"] for r in result.history] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert result.epochs == 8 and result.best_epoch == 6
    assert {e: o for e, o, _ in optimizers} == {0: "AdamW", 1: "AdamW", 2: "AdamW", 3: "AdamW", 4: "SGD", 5: "SGD",
                                                6: "SGD", 7: "SGD"}
    assert all(lr == 1e-3 for *_, lr in optimizers)  # each phase at its constant lr
    # phase 2 starts from the weights validated after epoch 2 (the best of phase 1), not those of epoch 4
    best, last = scripted_scores[1], scripted_scores[3]
    assert all(torch.equal(at_switch[0][k], best[k]) for k in best)
    assert not all(torch.equal(at_switch[0][k], last[k]) for k in last)
    engine = engine_values(get_recipe("wavemix_lite_144_7_cifar10"))
    assert (engine["patience"], engine["phase2_optimizer"], engine["phase2_lr"], engine["phase2_momentum"],
            engine["phase2_nesterov"], engine["scheduler"]) == (20, "sgd", 1e-3, 0.9, False, "constant")
    assert not any("two-phase" in g for g in missing_pieces(get_recipe("wavemix_lite_144_7_cifar10")))
    with pytest.raises(ValueError, match="patience .*constant lr"):
        TrainConfig(patience=2).validate()


@pytest.mark.parametrize("stop_at", [5, pytest.param(11, marks=pytest.mark.slow)])  # global steps: inside phase 1 (epoch 3) and phase 2 (epoch 6)
def test_two_phase_resume_mid_phase_equals_uninterrupted(tmp_path, scripted_scores, stop_at):
    import signal

    from wavevision.engine import Callback, TrainingInterrupted, train
    from wavevision.models._builder import load_safetensors

    class Stop(Callback):
        def on_step_end(self, state):
            if state.global_step == stop_at:
                signal.raise_signal(signal.SIGTERM)

    ref = train(_two_phase(tmp_path, "ref"))
    with pytest.raises(TrainingInterrupted):
        train(_two_phase(tmp_path, "cut"), callbacks=[Stop()])
    state = torch.load(tmp_path / "cut" / "last.state.pt", weights_only=True)
    assert state["phase"] == (1 if stop_at < 9 else 2)
    resumed = train({**_two_phase(tmp_path, "cut"), "resume": True})
    a, b = (load_safetensors(str(tmp_path / n / "last.safetensors"))[0] for n in ("ref", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["phase"] for r in resumed.history] == [r["phase"] for r in ref.history]
    assert resumed.epochs == ref.epochs == 8
    again = train({**_two_phase(tmp_path, "cut"), "resume": True})  # complete: patience spent, not the 20 epochs
    assert "already complete (8/8 epochs)" in again.note and again.history == resumed.history
