"""Every registered recipe trains two steps end to end on CPU and resumes, on a tiny dataset written
in the real on-disk format of the recipe's dataset (tests/_recipe_data.py).

Each recipe runs through ``wavevision.engine.train(recipe=NAME, ...)`` with the override layer the
command line uses (the run records the overrides as a diff from the recipe). The overridden fields,
the same for every recipe (:func:`overrides`):

- the run's length: two optimizer steps (``epochs=1, max_train_batches=2``, or ``iterations=2`` for
  the iteration-based recipes), one validation batch, no test pass, no cool-down;
- ``batch_size=2, global_batch=2`` (no accumulation), ``amp=none`` (fp16 needs an accelerator);
- the model: the smallest build of the same family (tests/_small.py: one block per stage, narrow);
- the dataset's sizes (``image_size``, crops, patches) so that each step takes milliseconds;
- ``init=None`` where the recipe starts from released weights (they fit the full-size model only);
- ``deterministic=True``, ``threads=1``, no plots or progress bars.

Each recipe trains two steps uninterrupted, saving its state after every step
(``checkpoint_every=1``); the run directory as it stood during step 2 (the state of step 1 saved:
what a process killed then leaves) is copied aside and resumed, and must end with the uninterrupted
run's weights, optimizer state and log, bit for bit (the engine's promise in deterministic mode:
engine/trainer.py).
"""
from __future__ import annotations

import hashlib
import http.server
import json
import math
import shutil
import threading
from pathlib import Path

import pytest
import torch

from _recipe_data import WRITERS
from wavevision.engine import Callback, train
from wavevision.engine.config import config_diff, recipe_diff, recipe_values, resolve_config
from wavevision.engine.rundir import LOCK_FILE
from wavevision.recipes import get_recipe, list_recipes

from _optional import require
from _small import small_overrides

# The heaviest cases, and the second size of a family whose first size runs in the fast set (each takes 5-16 s on
# the shared 2-core machine; most others 2-8 s).
# The fast subset (pytest -m "not slow") trains three recipes: detection on COCO json, token labels
# on an ImageNet folder, and the two-phase optimizer on CIFAR pickles; the full suite trains all.
FAST = {"mask_rcnn_wave_vit_s_coco_1x", "wave_vit_s_in1k_tl", "wavemix_lite_144_7_cifar10"}

# The dataset sizes of the tiny runs (fields of the recipe's dataset that decide the input size).
DATASET_ARGS = {
    "imagenet": {"image_size": 64},  # token grid 64 / 32 = 2
    "places365": {"image_size": 64},
    "tiny-imagenet": {"image_size": 64},
    "cifar10": {"val_size": 4},  # the default hold-out, 5,000 images, is more than the tiny set holds
    "cifar100": {"val_size": 4},
    "galaxy10": {"image_size": 32},
    "cityscapes": {"image_size": [32, 64]},
    "ade20k": {"scale": [128, 32], "crop_size": [32, 32]},
    "div2k": {"patch_size": 16, "num_patches": 4},
}
# Recipes whose model needs larger inputs than their dataset's tiny sizes give: WTConvNeXt's WTConv levels need
# inputs of at least 96 px (the ADE20K writer's 48x64 images are rescaled up to it, crops padded).
RECIPE_DATASET_ARGS = {n: {"scale": [384, 96], "crop_size": [96, 96]} for n in list_recipes("upernet_wtconvnext_*")}
_VIT = small_overrides("wave_vit_s")


def small_model_args(recipe) -> dict:
    """The recipe's model arguments with the smallest structure of its family laid over them."""
    args = dict(recipe.model_args)
    if recipe.name in ("wave_vit_digits", "mask_rcnn_digit_objects"):
        return {}  # already small
    if recipe.loss.name == "detection":  # a narrow pyramid and the small RoI heads of mask_rcnn_wave_vit_digits
        small = {"backbone_args": {**args.get("backbone_args", {}), **_VIT}, "min_size": 64, "max_size": 96,
                 "fpn_channels": 32}
        if recipe.model.startswith("mask_rcnn"):
            small.update(box_head_dim=64, mask_head_dim=32, roi_sampling_ratio=1, detector_args={
                "rpn_pre_nms_top_n_train": 200, "rpn_post_nms_top_n_train": 100, "rpn_pre_nms_top_n_test": 100,
                "rpn_post_nms_top_n_test": 50, "rpn_batch_size_per_image": 64, "box_batch_size_per_image": 32,
                "box_detections_per_img": 20})
        return small
    small = small_overrides(recipe.model)
    if "backbone_kwargs" in small:
        return {"backbone_kwargs": {**args.get("backbone_kwargs", {}), **small["backbone_kwargs"]},
                **{k: v for k, v in small.items() if k != "backbone_kwargs"}}
    return small


def overrides(name: str, root: Path | None, out: Path) -> dict:
    """The fields a tiny run sets on top of recipe ``name`` (see the module docstring)."""
    recipe = get_recipe(name)
    length = {"iterations": 2} if recipe.iterations is not None else {"epochs": 1, "max_train_batches": 2}
    values = dict(recipe=name, **length, batch_size=2, global_batch=2, eval_batch_size=2, max_eval_batches=1,
                  test=False, amp="none", cooldown_epochs=0, deterministic=True, threads=1, progress=False,
                  plots=False, log_every=1, output=str(out))
    if root is not None:
        values["data_root"] = str(root)
    if recipe.data.dataset in DATASET_ARGS:
        values["dataset_args"] = RECIPE_DATASET_ARGS.get(name, DATASET_ARGS[recipe.data.dataset])
    if "init" in recipe_values(name):  # released weights of the full-size model: none for the small one
        values["init"] = None
    model_args = small_model_args(recipe)
    if model_args:
        values["model_args"] = model_args
    return values


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """``data_root(dataset)``: the dataset's tiny copy, written once per module (None: embedded)."""
    made: dict[str, Path] = {}

    def get(dataset: str) -> Path | None:
        if dataset not in WRITERS:
            return None
        if dataset not in made:
            made[dataset] = WRITERS[dataset](tmp_path_factory.mktemp(dataset.replace("-", "_")) / "data")
        return made[dataset]

    return get


def test_every_dataset_a_recipe_reads_has_a_writer():
    datasets = {get_recipe(n).data.dataset for n in list_recipes()}
    assert datasets - set(WRITERS) == {"digits", "digit-scenes", "digit-objects", "photos"}


class _CopyAtStep(Callback):
    """At ``step``, copies the run directory as it is then (its state saved at the step before by
    ``checkpoint_every=1``): what a process killed there leaves behind."""

    def __init__(self, step: int, run: Path, copy: Path) -> None:
        self.step, self.run, self.copy = step, run, copy

    def on_step_end(self, state) -> None:
        if state.global_step == self.step:
            shutil.copytree(self.run, self.copy, ignore=shutil.ignore_patterns(LOCK_FILE))


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "last.safetensors"))


def _state(run: Path) -> dict:
    return torch.load(run / "last.state.pt", weights_only=True)


def _optimizer_steps(state: dict) -> set[int]:
    return {int(s["step"]) for s in state["optimizer"]["state"].values() if "step" in s}


def _log(run: Path) -> list[dict]:
    drop = {"train_seconds", "epoch_seconds", "train_images_per_second", "images_per_second", "time", "seconds"}
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in drop} for r in lines]


def _without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if "second" not in k} for r in records]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what}: {k} differs"


@pytest.mark.filterwarnings("ignore::wavevision.engine.recipe.RecipeGapWarning")
@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in list_recipes()])
def test_recipe_trains_two_steps_and_resumes_bit_exactly(name, data_root, tmp_path):
    recipe = get_recipe(name)
    if recipe.loss.name == "detection" or recipe.data.dataset in ("coco", "ade20k"):
        require("torchvision")  # the detectors and MMSegmentation's pipeline are torchvision's
    if recipe.data.dataset == "coco":
        require("pycocotools")
    if recipe.data.dataset == "galaxy10":
        require("h5py")
    root = data_root(recipe.data.dataset)
    ref_cfg = {**overrides(name, root, tmp_path / "ref"), "checkpoint_every": 1}
    ref = train(ref_cfg, callbacks=[_CopyAtStep(2, tmp_path / "ref", tmp_path / "killed")])
    diff = {k: list(v) for k, v in recipe_diff(resolve_config(overrides=ref_cfg)).items() if k != "output"}
    assert ref.recipe["name"] == name and ref.recipe["overrides"] == diff and diff
    assert all(math.isfinite(r["train_loss"]) for r in ref.history)
    ref_state = _state(tmp_path / "ref")
    assert (ref_state["epoch"], ref_state["global_step"]) == (1, 2) and _optimizer_steps(ref_state) <= {2}

    killed = _state(tmp_path / "killed")  # what the run had saved when it was "killed" during step 2
    assert (killed["epoch"], killed["step"], killed["global_step"]) == (0, 1, 1)
    assert _optimizer_steps(killed) <= {1}  # one optimizer step taken (empty: a momentum-free SGD keeps none)
    assert not (tmp_path / "killed" / "log.jsonl").read_text().count('"kind": "epoch"')

    resumed = train({**ref_cfg, "output": str(tmp_path / "killed"), "resume": True})
    state = _state(tmp_path / "killed")
    assert (state["epoch"], state["global_step"]) == (1, 2) and _optimizer_steps(state) == _optimizer_steps(ref_state)
    _assert_same(_weights(tmp_path / "killed"), _weights(tmp_path / "ref"), f"{name}: resumed weights")
    for (k, a), b in zip(state["optimizer"]["state"].items(), ref_state["optimizer"]["state"].values()):
        _assert_same({n: t for n, t in a.items() if torch.is_tensor(t)},
                     {n: t for n, t in b.items() if torch.is_tensor(t)}, f"{name}: optimizer state of {k}")
    assert _log(tmp_path / "killed") == _log(tmp_path / "ref")
    assert resumed.recipe == ref.recipe and _without_times(resumed.history) == _without_times(ref.history)


def test_a_python_run_with_tuples_resumes():
    """model_args=(1, 2) from Python is saved as [1, 2]: the same configuration, not another."""
    assert config_diff({"model_args": {"depths": [1, 1]}}, {"model_args": {"depths": (1, 1)}}) == {}
    assert config_diff({"model_args": {"depths": [1, 1]}}, {"model_args": {"depths": (1, 2)}}) != {}


# -- data loading that keeps an accelerator busy ---------------------------------------------------------------


class _PidLog(torch.utils.data.Dataset):
    """A dataset that appends the reading process's id to ``log`` for every sample."""

    def __init__(self, data, log: Path) -> None:
        self.data, self.log = data, log

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        import os

        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return self.data[index]


def test_loader_settings_persistent_workers_pinned_memory_and_worker_count(monkeypatch):
    from wavevision.engine.sampling import default_workers, loader_settings

    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert loader_settings(2, cpu, persistent=True) == {"num_workers": 2, "pin_memory": False, "prefetch_factor": 4,
                                                        "persistent_workers": True}
    assert loader_settings(0, cpu, persistent=True) == {"num_workers": 0, "pin_memory": False}  # nothing to keep
    assert loader_settings(0, cuda)["pin_memory"] is True
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_workers(cuda) == 3 and default_workers(cpu) == 0  # 16 cores / 4 processes, less the loop's own


@pytest.mark.slow
def test_training_workers_persist_across_epochs_and_change_nothing(tmp_path):
    from wavevision.data import build_dataset

    def run(workers: int, name: str) -> tuple[dict, list[str]]:
        log = tmp_path / f"{name}.pids"
        log.touch()
        splits = {s: build_dataset("digits", s, augment=s == "train") for s in ("train", "val")}
        train_ds, info = splits["train"]
        result = train(dict(model="wavemix_lite", model_args={"depth": 1, "final_dim": 16, "ff_channel": 16},
                            epochs=3, max_train_batches=2, batch_size=8, max_eval_batches=1, test=False,
                            num_workers=workers, deterministic=True, threads=1, progress=False, plots=False,
                            output=str(tmp_path / name)),
                       datasets={"train": (_PidLog(train_ds, log), info), "val": splits["val"]})
        assert len(result.history) == 3
        return _weights(tmp_path / name), log.read_text().split()

    import os

    me = str(os.getpid())
    alone, pids = run(0, "alone")
    assert set(pids) == {me}
    with_workers, pids = run(2, "workers")
    in_workers = [p for p in pids if p != me]  # the plan reads a sample itself (its shapes)
    assert len(in_workers) == 3 * 2 * 8 and len(set(in_workers)) == 2  # the same 2 workers served all 3 epochs
    _assert_same(with_workers, alone, "weights trained with persistent workers")


# -- validation every N iterations (iteration-based recipes) --------------------------------------------------


def test_stream_indices_run_pass_after_pass():
    from wavevision.engine.distributed import DistContext
    from wavevision.engine.sampling import epoch_indices, stream_indices

    ctx = DistContext()
    first, second = epoch_indices(5, ctx, 3, 0), epoch_indices(5, ctx, 3, 1)
    assert stream_indices(5, ctx, 3, start=3, count=6) == [(0, i) for i in first[3:]] + [(1, i) for i in second[:4]]
    assert stream_indices(5, ctx, 3, start=10, count=2) == [(2, i) for i in epoch_indices(5, ctx, 3, 2)[:2]]


def test_eval_every_validates_at_each_interval_and_resumes(tmp_path):
    from wavevision.data import build_dataset

    train_ds, info = build_dataset("digits", "train", augment=True)
    data = {"train": (torch.utils.data.Subset(train_ds, range(12)), info), "val": build_dataset("digits", "val")}
    cfg = dict(model="wavemix_lite", model_args={"depth": 1, "final_dim": 16, "ff_channel": 16}, iterations=7,
               eval_every=3, batch_size=4, scheduler="poly", warmup_iters=2, max_eval_batches=1, test=False,
               deterministic=True, threads=1, progress=False, plots=False, checkpoint_every=1,
               output=str(tmp_path / "ref"))
    ref = train(cfg, datasets=data, callbacks=[_CopyAtStep(5, tmp_path / "ref", tmp_path / "killed")])
    # 12 images make 3 steps a pass: the intervals (3, 3, 1 steps) cross the passes
    assert [r["step"] for r in ref.history] == [3, 6, 7] and all("val_top1" in r for r in ref.history)
    assert ref.config["eval_every"] == 3 and ref.epochs == 3
    assert (_state(tmp_path / "killed")["epoch"], _state(tmp_path / "killed")["step"]) == (1, 1)
    train({**cfg, "output": str(tmp_path / "killed"), "resume": True}, datasets=data)
    _assert_same(_weights(tmp_path / "killed"), _weights(tmp_path / "ref"), "resumed inside an interval")
    assert _log(tmp_path / "killed") == _log(tmp_path / "ref")


@pytest.mark.parametrize("changes, message", [
    (dict(epochs=2), "eval_every needs a run given in iterations"),
    (dict(iterations=10, warmup_epochs=1.0), "give the warm-up in warmup_iters"),
    (dict(iterations=10, scheduler="step", lr_milestones=[1]), "a schedule by iteration"),
])
def test_eval_every_refuses_settings_in_epochs(changes, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(overrides=dict(eval_every=5, **changes))


def test_upernet_recipes_validate_every_16k_iterations():
    from wavevision.engine.recipe import engine_values

    for size in "sb":
        recipe = get_recipe(f"upernet_wave_vit_{size}_ade20k_160k")
        assert recipe.eval.interval == 16_000 and engine_values(recipe)["eval_every"] == 16_000
        assert resolve_config(overrides=dict(recipe=recipe.name)).eval_every == 16_000
    assert all("eval_every" not in engine_values(get_recipe(n)) for n in list_recipes() if "upernet" not in n)


# -- the sliding-window test (MMSegmentation's mode='slide') -------------------------------------------------


def test_sliding_window_validates_and_tests_by_windows(tmp_path, monkeypatch):
    """With sliding_window, validation and the final test run the model on CROP windows every STRIDE pixels
    (engine/tasks/segmentation.py's slide_inference), and report what evaluate(..., sliding_window) reports."""
    import wavevision.engine.tasks.segmentation as seg
    from wavevision.engine.evaluate import evaluate

    calls = []
    slide = seg.slide_inference
    monkeypatch.setattr(seg, "slide_inference", lambda model, x, crop, stride: calls.append((crop, stride)) or
                        slide(model, x, crop, stride))
    cfg = dict(dataset="digit-scenes", dataset_args=dict(num_scenes=6), epochs=1, max_train_batches=1, batch_size=3,
               max_eval_batches=1, sliding_window=[24, 16], deterministic=True, threads=1, progress=False, plots=False,
               output=str(tmp_path / "run"))
    result = train(cfg)
    assert calls and set(calls) == {((24, 24), (16, 16))} and result.config["sliding_window"] == [24, 16]
    from wavevision.data import build_dataset

    val = build_dataset("digit-scenes", "val", num_scenes=6)
    again = evaluate(result.model, *val, batch_size=6, max_batches=1, sliding_window=(24, 16))
    assert again["miou"] == pytest.approx(result.history[0]["val_miou"])
    with pytest.raises(ValueError, match="sliding_window is a segmentation test, but digits is a classification "
                                         "dataset; drop --sliding-window"):
        train({**cfg, "dataset": "digits", "dataset_args": {}, "output": str(tmp_path / "cls")})
    with pytest.raises(ValueError, match=r"sliding_window is CROP STRIDE, the stride at most the crop .* got \[16, 24\]"):
        resolve_config(overrides=dict(sliding_window=[16, 24]))


# -- a recipe's initial weights, downloaded -------------------------------------------------------------------


class _Hub(http.server.ThreadingHTTPServer):
    """A local Hub: HEAD with ETag, X-Repo-Commit and Content-Length, GET with the body (enough for
    hf_hub_download); ``files`` maps ``org/name/path`` to bytes, ``gets`` lists what was downloaded."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.files: dict[str, bytes] = {}
        self.gets: list[str] = []


class _HubHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> bytes | None:
        parts = self.path.split("?")[0].strip("/").split("/")  # org/name/resolve/revision/path
        key = "/".join(parts[:2] + parts[4:]) if len(parts) >= 5 and parts[2] == "resolve" else ""
        body = self.server.files.get(key)
        self.send_response(200 if body is not None else 404)
        if body is None:
            self.send_header("X-Error-Code", "EntryNotFound")
        else:
            self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
            self.send_header("X-Repo-Commit", "0" * 40)
        self.send_header("Content-Length", "0" if body is None else str(len(body)))
        self.end_headers()
        if self.command == "GET" and body is not None:
            self.server.gets.append(key)
        return body

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer()

    def do_GET(self) -> None:  # noqa: N802
        body = self._answer()
        if body is not None:
            self.wfile.write(body)


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    require("huggingface_hub")
    server = _Hub()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.filterwarnings("ignore::wavevision.engine.recipe.RecipeGapWarning")
@pytest.mark.slow
def test_a_recipe_downloads_its_tagged_init_weights(local_hub, data_root, tmp_path, monkeypatch):
    import dataclasses

    from safetensors.torch import save, save_file

    import wavevision
    from wavevision.engine.recipe import init_spec, missing_pieces

    name = "upernet_wave_vit_s_ade20k_160k"
    recipe, root = get_recipe(name), data_root("ade20k")
    # the registry names no Hub file for Wave-ViT's ImageNet weights (the authors publish them outside the Hub):
    # the engine cannot fetch them and says so, and the run refuses the tag in one line
    assert init_spec(recipe) is None and any("initial weights" in g for g in missing_pieces(recipe))
    with pytest.raises(ValueError, match=r"^init 'wave_vit_s.in1k': wave_vit_s.in1k has no released file wavevision "
                                         r"can download \(the authors publish them at https://github.com/YehLi/"
                                         r"ImageNetModel\); download the weights and give --init FILE"):
        train({**overrides(name, root, tmp_path / "refused"), "init": "wave_vit_s.in1k"})
    # once the tag names a Hub file, the recipe fetches it into the Hub cache and loads it into the backbone
    entry = wavevision.get_entry("wave_vit_s")
    monkeypatch.setitem(entry.cfgs.cfgs, "in1k", dataclasses.replace(
        entry.cfgs.cfgs["in1k"], hf_hub_id="wavevision-test/wave_vit_s", hf_hub_filename="model.safetensors"))
    assert init_spec(recipe) == "wave_vit_s.in1k" and not any("initial weights" in g for g in missing_pieces(recipe))
    torch.manual_seed(5)
    weights = {k: v.contiguous() for k, v in wavevision.create_model("wave_vit_s", **_VIT).state_dict().items()}
    local_hub.files["wavevision-test/wave_vit_s/model.safetensors"] = save(weights)
    cfg = overrides(name, root, tmp_path / "auto")
    del cfg["init"]  # the recipe's own
    auto = train(cfg)
    assert local_hub.gets == ["wavevision-test/wave_vit_s/model.safetensors"]
    assert auto.config["init"] == "wave_vit_s.in1k" and "init" not in auto.recipe["overrides"]
    save_file(weights, str(tmp_path / "vit.safetensors"))
    given = train({**cfg, "output": str(tmp_path / "given"), "init": str(tmp_path / "vit.safetensors")})
    assert given.recipe["overrides"]["init"] == ["wave_vit_s.in1k", str(tmp_path / "vit.safetensors")]
    _assert_same(_weights(tmp_path / "auto"), _weights(tmp_path / "given"), "downloaded and given init")
    train({**cfg, "output": str(tmp_path / "fresh"), "init": None})
    assert not torch.equal(_weights(tmp_path / "fresh")["backbone.patch_embed1.conv.0.weight"],
                           _weights(tmp_path / "auto")["backbone.patch_embed1.conv.0.weight"])


def test_a_tag_of_the_model_s_own_architecture_loads_with_a_fresh_head(local_hub, tmp_path):
    """The Tiny-ImageNet recipes start from WaveMix-192/16's ImageNet weights, the classifier replaced: the run
    fetches the tag's Hub file and loads it as pretrained=True does."""
    import io

    import wavevision
    from wavevision.engine.init import load_init
    from wavevision.engine.recipe import engine_values, missing_pieces

    recipe = get_recipe("wavemix_192_16_l3_tiny_imagenet")
    assert engine_values(recipe)["init"] == "wavemix_192_16_l3" and not any("initial" in g for g in missing_pieces(recipe))
    torch.manual_seed(2)
    imagenet = wavevision.create_model("wavemix_192_16_l3", depth=1)  # 1000 classes, as the released file
    buf = io.BytesIO()
    torch.save(imagenet.state_dict(), buf)
    cfg = wavevision.get_pretrained_cfg("wavemix_192_16_l3")
    local_hub.files[f"{cfg['hf_hub_id']}/{cfg['hf_hub_filename']}"] = buf.getvalue()
    torch.manual_seed(3)
    tiny = wavevision.create_model("wavemix_192_16_l3", depth=1, num_classes=200)
    fresh_head = {k: v.clone() for k, v in tiny.state_dict().items() if k.startswith("pool.2.")}
    with pytest.warns(UserWarning, match="1000-class head and the model 200 classes"):
        assert load_init(tiny, "wavemix_192_16_l3").startswith("all weights from")
    state, source = tiny.state_dict(), imagenet.state_dict()
    assert all(torch.equal(state[k], fresh_head[k]) for k in fresh_head)
    assert all(torch.equal(state[k], v) for k, v in source.items() if not k.startswith("pool.2."))
