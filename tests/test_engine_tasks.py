"""Task objects: each task's loss, targets, meter and prediction against independent computations;
the registry; and a new task with list-of-dict targets trained by the unchanged loop."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import wavevision
from wavevision.data import DatasetInfo
from wavevision.engine import Task, evaluate, get_task, list_tasks, register_task, train
from wavevision.engine.metrics import Meter
from wavevision.engine.tasks import PredictItem, unregister_task
from wavevision.models import generate_default_cfgs
from wavevision.models._registry import _REGISTRY, register_model
from wavevision.utils.task_names import task_names

CLS = DatasetInfo(name="toy", task="classification", in_chans=1, num_classes=4, class_names=("a", "b", "c", "d"),
                  image_size=(8, 8), mean=(0.5,), std=(0.25,))
SEG = DatasetInfo(name="toyseg", task="segmentation", in_chans=3, num_classes=3, class_names=None,
                  image_size=(8, 8), mean=(0.5,) * 3, std=(0.25,) * 3, ignore_index=255)
SR = DatasetInfo(name="toysr", task="super_resolution", in_chans=3, num_classes=None, class_names=None,
                 image_size=(16, 16), mean=(), std=(), scale=2)


def test_the_registry_covers_every_task_of_the_models_and_datasets():
    # one list of names: the engine's task objects, the model records and DatasetInfo agree
    assert list_tasks() == list(task_names()) == ["classification", "segmentation", "super_resolution", "detection"]
    assert {wavevision.get_entry(m).task for m in wavevision.list_models()} == set(task_names())
    for name in task_names():
        task = get_task(name)
        assert task.name == name and get_task(task) is task
        assert task.metric in task.metrics and wavevision.get_entry(task.default_model).task == name
    with pytest.raises(ValueError, match="unknown task 'pose'; choose one of classification"):
        get_task("pose")
    with pytest.raises(ValueError, match="registered twice"):
        register_task(type(get_task("segmentation"))())


def test_no_task_name_is_compared_outside_the_task_definitions():
    root = Path(wavevision.__file__).parent
    # The engine, the command line and bench never name a task; nothing else in the package
    # compares one (the model records and dataset descriptions only declare theirs, and the
    # registry's task filter is a lookup).
    named = re.compile(r"task\s*[!=]=|\.task\s+(not\s+)?in\b|[\"'](classification|segmentation|super_resolution)[\"']")
    compared = re.compile(r"\.task\s*[!=]=\s*[\"']|[\"']\s*[!=]=\s*\w*\.?task\b|task\s*[!=]=\s*[\"']")
    hits = []
    for p in root.rglob("*.py"):
        if (root / "engine" / "tasks") in p.parents:
            continue
        pattern = named if p.parent.name in ("engine", "cli", "bench") else compared
        hits += [f"{p.relative_to(root)}:{i}" for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line.split("#")[0])]
    assert hits == []


def test_dataset_fixed_model_arguments():
    assert get_task("classification").model_args(CLS) == {"in_chans": 1, "num_classes": 4}
    assert get_task("segmentation").model_args(SEG) == {"in_chans": 3, "num_classes": 3}
    assert get_task("super_resolution").model_args(SR) == {"in_chans": 3, "scale": 2}
    with pytest.raises(ValueError, match="'wavemix_paper_sr' is a super-resolution model but dataset 'toy' is for classification"):
        get_task("classification").check_model("wavemix_paper_sr", "super_resolution", CLS, ["wavemix_lite"])


def test_losses_equal_the_functional_definitions():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(5, 4, generator=g), torch.tensor([0, 3, 1, 1, 2])
    loss = get_task("classification").loss(CLS, label_smoothing=0.1)
    assert torch.allclose(loss(logits.bfloat16(), labels), F.cross_entropy(logits.bfloat16().float(), labels, label_smoothing=0.1))
    seg_logits, mask = torch.randn(2, 3, 4, 4, generator=g), torch.randint(0, 3, (2, 4, 4), generator=g)
    mask[0, 0] = 255
    keep = mask != 255  # by hand: the mean negative log-probability of the true class over kept pixels
    logp = seg_logits.log_softmax(1).gather(1, mask.clamp(max=2).unsqueeze(1)).squeeze(1)
    assert torch.allclose(get_task("segmentation").loss(SEG)(seg_logits, mask), -logp[keep].mean())
    sr, hr = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    assert torch.allclose(get_task("super_resolution").loss(SR)(sr, hr), (sr - hr).abs().mean())


def test_target_checks_and_training_sums():
    cls = get_task("classification")
    with pytest.raises(ValueError, match="label 4 is out of range for dataset 'toy' with 4 classes"):
        cls.check_target(torch.tensor([0, 4]), CLS)
    get_task("segmentation").check_target(torch.tensor([[0, 255], [2, 1]]), SEG)  # the ignore index is fine
    with pytest.raises(ValueError, match="label -1 is out of range"):
        get_task("segmentation").check_target(torch.tensor([[0, -1]]), SEG)
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    sums = cls.train_sums(logits, torch.tensor([0, 2, 3]))
    assert float(sums["correct"]) == 2.0 and cls.train_metrics({"correct": 2.0}, 3.0) == {"train_top1": pytest.approx(200 / 3)}


def test_synthetic_targets_follow_the_output():
    g = torch.Generator().manual_seed(0)
    t = get_task("classification").synthetic_target(torch.zeros(1, 7), 5, g)
    assert t.shape == (5,) and t.dtype == torch.int64 and 0 <= t.min() and t.max() < 7
    t = get_task("segmentation").synthetic_target(torch.zeros(1, 3, 6, 4), 2, g)
    assert t.shape == (2, 6, 4) and t.max() < 3
    t = get_task("super_resolution").synthetic_target(torch.zeros(1, 3, 6, 4), 2, g)
    assert t.shape == (2, 3, 6, 4) and t.is_floating_point() and 0 <= t.min() and t.max() <= 1


def test_super_resolution_evaluates_bicubic_beside_the_model():
    from wavevision.data import bicubic_upsample
    from wavevision.engine.metrics import psnr

    task, g = get_task("super_resolution"), torch.Generator().manual_seed(0)
    lr, hr = torch.rand(2, 3, 12, 12, generator=g), torch.rand(2, 3, 24, 24, generator=g)
    meter = task.meter(SR)
    task.evaluate_batch(meter, task.loss(SR), hr.clone(), lr, hr, SR)  # a perfect model
    out = meter.compute()
    assert out["loss"] == 0.0 and out["psnr"] == pytest.approx(200.0)  # the 1e-20 floor of the MSE
    assert out["bicubic_psnr"] == pytest.approx(float(psnr(bicubic_upsample(lr, 2), hr, border=2).mean()))


def test_classification_render_is_the_softmax_top_k():
    task = get_task("classification")
    logits = torch.tensor([1.0, 3.0, 0.0, 2.0])
    item = PredictItem(path=Path("x.png"), raw=torch.zeros(1, 8, 8), x=torch.zeros(1, 8, 8), out=logits)
    result = task.render(item, info=CLS, model=nn.Identity(), out_dir=None, topk=2)
    probs = logits.exp() / logits.exp().sum()
    assert [t["name"] for t in result["top"]] == ["b", "d"]
    assert [t["probability"] for t in result["top"]] == pytest.approx([float(probs[1]), float(probs[3])])
    assert "b (" in task.describe(result) and not task.needs_output


# -- a new task, trained by the unchanged loop -------------------------------------------------------


def _count_info() -> DatasetInfo:
    return DatasetInfo(name="blobs", task="counting", in_chans=1, num_classes=None, class_names=None,
                       image_size=(8, 8), mean=(), std=())


class _Blobs(torch.utils.data.Dataset):
    """Images with 0-3 bright pixels; the target is a dict per image, like a detection's."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.counts = torch.randint(0, 4, (n,), generator=g)
        self.images = torch.zeros(n, 1, 8, 8)
        for i, c in enumerate(self.counts):
            self.images[i, 0].view(-1)[torch.randperm(64, generator=g)[: int(c)]] = 1.0

    def __len__(self) -> int:
        return len(self.counts)

    def __getitem__(self, i: int):
        return self.images[i], {"count": self.counts[i].float(), "id": i}


class _AbsErrorMeter(Meter):
    def __init__(self) -> None:
        super().__init__()
        self._zero("loss_sum", "loss_n", "abs_sum", "n")

    def update(self, out: torch.Tensor, targets: list) -> None:
        counts = torch.stack([t["count"] for t in targets])
        self._add("abs_sum", (out.squeeze(1) - counts).abs().sum())
        self._add("n", torch.tensor(float(len(targets))))

    def compute(self) -> dict:
        return {**super().compute(), "neg_mae": -float(self.totals["abs_sum"]) / max(float(self.totals["n"]), 1.0)}


class _Counting(Task):
    name, metric, metrics = "counting", "neg_mae", ("loss", "neg_mae")

    def collate(self, samples):
        return torch.stack([s[0] for s in samples]), [s[1] for s in samples]

    def to_device(self, batch, device):
        x, targets = batch
        return x.to(device), [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]

    def loss(self, info=None, *, label_smoothing=0.0):
        return lambda out, targets: F.mse_loss(out.float().squeeze(1), torch.stack([t["count"] for t in targets]))

    def meter(self, info):
        return _AbsErrorMeter()


def test_a_task_registered_once_is_accepted_by_the_models_and_the_datasets(monkeypatch):
    with pytest.raises(ValueError, match="DatasetInfo 'blobs': unknown task 'counting'; choose one of classification"):
        _count_info()
    module = type(sys)("_counting_models")  # a model family of the new task, registered as a family module would
    module.default_cfgs = generate_default_cfgs({"blob_counter": {"task": "counting", "input_size": (1, 8, 8)}})
    monkeypatch.setitem(sys.modules, module.__name__, module)

    def blob_counter(**kwargs):
        return nn.Linear(1, 1)

    blob_counter.__module__ = module.__name__
    with pytest.raises(ValueError, match="model 'blob_counter': unknown task 'counting'"):
        register_model(blob_counter)
    register_task(_Counting())
    try:
        assert _count_info().task == "counting" and "counting" in task_names()
        register_model(blob_counter)
        assert wavevision.list_models(task="counting") == ["blob_counter"]
        assert wavevision.get_entry("blob_counter").task == "counting"
    finally:
        _REGISTRY.pop("blob_counter", None)
        unregister_task("counting")
    assert "counting" not in task_names()
    with pytest.raises(ValueError, match="list_models: unknown task 'counting'"):
        wavevision.list_models(task="counting")


def test_a_new_task_with_per_image_dict_targets_trains_without_loop_changes(tmp_path):
    register_task(_Counting())
    try:
        info = _count_info()
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(4, 1))
        splits = {name: (_Blobs(n, seed), info) for name, n, seed in (("train", 64, 0), ("val", 16, 1), ("test", 16, 2))}
        result = train(dict(epochs=3, batch_size=16, lr=0.05, output=str(tmp_path / "run"), threads=1, progress=False,
                            plots=False), model=model, datasets=splits)
        assert result.task == "counting" and result.metric == "neg_mae"
        val = [r["val_neg_mae"] for r in result.history]
        assert result.best_epoch == 1 + val.index(max(val)) and result.val["neg_mae"] == max(val)
        data = splits["test"][0]  # the test metric by hand, with the best weights
        with torch.no_grad():
            mae = (result.model(data.images).squeeze(1) - data.counts.float()).abs().mean()
        assert result.test["neg_mae"] == pytest.approx(-float(mae), rel=1e-5)
        assert evaluate(result.model, data, info, batch_size=5, device="cpu")["neg_mae"] == pytest.approx(-float(mae), rel=1e-5)
    finally:
        unregister_task("counting")


def test_memory_estimates_by_hand():
    from wavevision.engine.sizing import activation_bytes, check_fits_memory, meta_model, parameter_bytes

    model = meta_model(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1)))
    assert all(p.is_meta for p in model.parameters())
    assert parameter_bytes(model) == 4 * (3 * 8 * 9 + 8 + 8 * 2 + 2)
    x, conv1, conv2 = 4 * 2 * 3 * 5 * 5, 4 * 2 * 8 * 5 * 5, 4 * 2 * 2 * 5 * 5
    # kept for backward: x + conv1 + conv2 (the ReLU's output is not counted); but alive at once at the ReLU:
    # x, conv1's output and the ReLU's (not in place), which is more
    assert x + conv1 + conv2 < x + 2 * conv1
    assert activation_bytes(model, (2, 3, 5, 5), train=True) == x + 2 * conv1
    assert activation_bytes(model, (2, 3, 5, 5), train=False) == x + 2 * conv1
    need = check_fits_memory(model, input_shape=(2, 3, 5, 5), train=True, optimizer_slots=2, what="w", fix="f")
    assert need == parameter_bytes(model) * 4 + x + 2 * conv1  # weights, gradients, two AdamW moments
    with pytest.raises(MemoryError, match=r"^w would need about .* of memory available; f$"):
        check_fits_memory(model, input_shape=(2**20, 3, 2**10, 2**10), what="w", fix="f")
