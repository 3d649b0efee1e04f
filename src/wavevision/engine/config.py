"""The training configuration: one dataclass, read from defaults, a dataset recipe, YAML and flags.

Precedence, lowest first: the dataclass defaults, the recipe of an embedded dataset (the
model and schedule that suit it) or the registered recipe ``recipe`` names
(``wavevision.recipes``; :func:`recipe_diff` lists what the later layers changed of it), a YAML
file (``-c run.yaml``), then explicit flags or keyword overrides. ``model_args`` and ``dataset_args`` merge key by key. The recipe's
``model_args`` apply only when the run uses the recipe's model. Unknown keys and bad values
raise a ValueError naming the key and the valid choices.

The command line builds its flags from the fields below (``--batch-size`` for ``batch_size``),
so a field, its help text and its checks live in one place.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..recipes import dataset_recipe, get_recipe, list_recipes
from ..utils.io import read_text
from ..utils.validate import check_bool, check_choice, check_float, check_int, check_nested
from .recipe import engine_values

__all__ = ["DICT_FLAGS", "RECIPES", "RUNTIME_KEYS", "TrainConfig", "config_diff", "load_yaml", "parse_assignments",
           "recipe_diff", "recipe_values", "resolve_config"]


# Settings that may differ when a run is resumed: they change where and how fast it runs,
# not what it computes.
RUNTIME_KEYS = frozenset({
    "device", "num_workers", "threads", "output", "overwrite", "resume", "checkpoint_every",
    "log_every", "progress", "plots", "test", "eval_batch_size", "data_root", "download",
})



def _dataset_recipes() -> dict[str, dict[str, Any]]:
    """The embedded datasets' default recipes as TrainConfig values (a view of the recipe registry)."""
    out = {}
    for name in list_recipes():
        recipe = get_recipe(name)
        if recipe.dataset_default and dataset_recipe(recipe.data.dataset) is recipe:
            values = engine_values(recipe)
            # only what departs from the defaults: the view keeps the keys it always had
            out[recipe.data.dataset] = {k: v for k, v in values.items() if k in ("model", "model_args") or
                                        (k not in ("dataset", "augment") and FIELDS[k].default != v)}
    return out


# Upper bounds of the integer settings: far above any real run, low enough that a typo (an
# extra zero, a pasted timestamp) fails here instead of as an allocation or an overflow later.
_MAX_SEED = 2**32 - 1  # what numpy's legacy seeding takes; torch and random take more
_MAX_EPOCHS = 100_000
_MAX_BATCH = 1 << 20
_MAX_STEPS = 2**31 - 1


def _opt(help: str, **meta: Any) -> dict[str, Any]:
    return {"help": help, **meta}


@dataclass
class TrainConfig:
    """Everything a training run needs; see ``wavevision train --help`` for each field."""

    # what to train, on what
    model: str | None = field(default=None, metadata=_opt(
        "registered model name (default: the dataset recipe's model, else wavemix_lite / wavemix_seg / "
        "wavemix_paper_sr by task)"))
    model_args: dict[str, Any] = field(default_factory=dict, metadata=_opt(
        "model hyperparameter overrides, e.g. depth=4 final_dim=64 (in_chans, num_classes and scale "
        "follow the dataset)"))
    dataset: str = field(default="digits", metadata=_opt("a registered dataset name (wavevision.data.list_datasets()) or a dataset path"))
    data_root: str | None = field(default=None, metadata=_opt("folder or file holding the dataset"))
    download: bool = field(default=False, metadata=_opt("download the dataset when it has a public URL"))
    dataset_args: dict[str, Any] = field(default_factory=dict, metadata=_opt("dataset options, e.g. image_size=16"))
    augment: bool = field(default=True, metadata=_opt("training-time augmentation of the dataset"))
    init: str | None = field(default=None, metadata=_opt(
        "initial weights loaded before training: a .safetensors/.pth file, hf-hub:ORG/NAME or NAME.TAG; a detector "
        "or UperNet takes a classification checkpoint into its backbone (every backbone weight, shapes checked), "
        "other models the whole checkpoint, strictly"))
    recipe: str | None = field(default=None, metadata=_opt(
        "a registered recipe (wavevision list --recipes): its settings replace the dataset recipe's, under the "
        "YAML file and flags"))
    # optimisation
    epochs: int = field(default=10, metadata=_opt("training epochs", min=1, max=_MAX_EPOCHS))
    iterations: int | None = field(default=None, metadata=_opt(
        "train for this many optimizer steps instead of --epochs (MMSegmentation's iteration-based runs): the epochs "
        "become ceil(iterations / steps per epoch), the last one partial, validated at each epoch's end (or every "
        "eval_every steps); the "
        "schedules run over the iterations", min=1, max=_MAX_STEPS))
    eval_every: int | None = field(default=None, metadata=_opt(
        "with iterations: validate (and keep the best weights) every N optimizer steps instead of once per pass over "
        "the data (MMSegmentation's evaluation interval, 16,000 in its 160k schedule); the data then streams pass "
        "after pass, and each record of the log covers one such interval", min=1, max=_MAX_STEPS))
    sliding_window: list[int] | None = field(default=None, metadata=_opt(
        "segmentation: validate and test by sliding windows of CROP pixels every STRIDE (MMSegmentation's "
        "mode='slide'; 512 341 in its ADE20K configs), the windows' logits averaged where they overlap; unset: whole "
        "images", min=1, max=_MAX_BATCH))
    batch_size: int = field(default=64, metadata=_opt("training batch size per process", min=1, max=_MAX_BATCH))
    accum_steps: int = field(default=1, metadata=_opt(
        "batches whose gradients are summed into each optimizer step (gradient accumulation)", min=1, max=_MAX_BATCH))
    global_batch: int | None = field(default=None, metadata=_opt(
        "images per optimizer step over all processes: accum_steps becomes global_batch / (batch_size x processes), "
        "which must be a whole number", min=1, max=_MAX_BATCH))
    eval_batch_size: int | None = field(default=None, metadata=_opt(
        "evaluation batch size (default: 2 x batch size)", min=1, max=_MAX_BATCH))
    optimizer: str = field(default="adamw", metadata=_opt("optimizer", choices=("adamw", "sgd")))
    lr: float = field(default=1e-3, metadata=_opt("peak learning rate", gt=0.0))
    weight_decay: float = field(default=0.05, metadata=_opt(
        "decoupled weight decay (AdamW) or L2 (SGD); biases and norms are not decayed", min=0.0))
    momentum: float = field(default=0.9, metadata=_opt("SGD momentum (Nesterov when > 0)", min=0.0, max=1.0))
    nesterov: bool | None = field(default=None, metadata=_opt(
        "SGD with Nesterov momentum (default: when momentum > 0)"))
    adam_beta1: float = field(default=0.9, metadata=_opt("AdamW's first-moment decay", min=0.0, lt=1.0))
    adam_beta2: float = field(default=0.999, metadata=_opt("AdamW's second-moment decay", min=0.0, lt=1.0))
    adam_eps: float = field(default=1e-8, metadata=_opt("AdamW's epsilon", gt=0.0))
    no_decay: str = field(default="1d", metadata=_opt(
        "parameters kept out of weight decay, comma-separated: 1d (every 1-D tensor and the model's no_weight_decay() "
        "names, timm's rule), norm (normalisation layers' parameters and names with 'norm', MMCV's norm_decay_mult=0), "
        "bias, pos_embed (position tables and class tokens by name: pos_embed, pos_block, cls_token); none: decay all"))
    layer_decay: float | None = field(default=None, metadata=_opt(
        "layer-wise lr decay: each layer's lr x layer_decay^(layers above it), by the model's group_matcher "
        "(timm's param_groups_layer_decay; needs timm), or by stage with layer_decay_type stage_wise", gt=0.0, max=1.0))
    layer_decay_type: str = field(default="layer_wise", metadata=_opt(
        "how layer_decay groups the parameters: layer_wise (timm's, by the model's group_matcher) or stage_wise "
        "(MMSegmentation's decay_type='stage_wise' for ConvNeXt backbones: stem and downsampling layers id 0, stage i "
        "id i + 1, the rest, decoders included, id layer_decay_layers + 1 at the full lr; each id's lr x "
        "layer_decay^(layer_decay_layers + 1 - id))", choices=("layer_wise", "stage_wise")))
    layer_decay_layers: int | None = field(default=None, metadata=_opt(
        "MMSegmentation's num_layers of stage_wise layer decay (6 for ConvNeXt-T, 12 for -S/B in its configs)",
        min=1, max=1000))
    patience: int | None = field(default=None, metadata=_opt(
        "two-phase training (the WaveMix authors'): the optimizer until this many epochs pass without a better "
        "validation score, then the phase2 optimizer from the best weights (constant lr) until as many epochs pass "
        "without improvement again, which ends the run (epochs stays the upper bound)", min=1, max=_MAX_EPOCHS))
    phase2_optimizer: str = field(default="sgd", metadata=_opt("the second phase's optimizer", choices=("adamw", "sgd")))
    phase2_lr: float = field(default=1e-3, metadata=_opt("the second phase's learning rate", gt=0.0))
    phase2_momentum: float = field(default=0.9, metadata=_opt("the second phase's SGD momentum", min=0.0, max=1.0))
    phase2_nesterov: bool = field(default=False, metadata=_opt("the second phase's SGD uses Nesterov momentum"))
    phase2_weight_decay: float = field(default=0.0, metadata=_opt("the second phase's weight decay", min=0.0))
    scheduler: str = field(default="cosine", metadata=_opt(
        "learning-rate schedule after warm-up: cosine, constant, step (x lr_gamma at the lr_milestones epochs) or "
        "poly (by iteration, to min_lr)", choices=("cosine", "constant", "step", "poly")))
    warmup_epochs: float = field(default=0.0, metadata=_opt("linear warm-up length in epochs", min=0.0,
                                                            max=_MAX_EPOCHS))
    warmup_iters: int = field(default=0, metadata=_opt(
        "linear warm-up length in optimizer steps (instead of warmup_epochs)", min=0, max=_MAX_STEPS))
    warmup_ratio: float | None = field(default=None, metadata=_opt(
        "warm up from this fraction of lr, the schedule's clock running from step 0 (MMDetection's warmup_ratio; "
        "timm's warmup_lr / lr); unset: from lr / (warm-up steps + 1), the schedule starting after warm-up",
        min=0.0, lt=1.0))
    warmup_prefix: bool = field(default=False, metadata=_opt(
        "with warmup_ratio: the warm-up alone, the schedule's clock starting when it ends (MMEngine's LinearLR "
        "followed by a PolyLR with begin at the warm-up's end; timm's warmup_prefix)"))
    min_lr: float = field(default=0.0, metadata=_opt("final learning rate of the cosine and poly schedules", min=0.0))
    cooldown_epochs: int = field(default=0, metadata=_opt(
        "epochs at min_lr after the cosine, counted in epochs (timm's cooldown_epochs)", min=0, max=_MAX_EPOCHS))
    lr_milestones: list[int] = field(default_factory=list, metadata=_opt(
        "epochs at which the step schedule multiplies the learning rate by lr_gamma, e.g. 8 11", min=1,
        max=_MAX_EPOCHS))
    lr_gamma: float = field(default=0.1, metadata=_opt("the step schedule's factor", gt=0.0, max=1.0))
    lr_power: float = field(default=1.0, metadata=_opt("the poly schedule's exponent", gt=0.0))
    label_smoothing: float = field(default=0.0, metadata=_opt(
        "label smoothing of the classification loss", min=0.0, lt=1.0))
    mixup_alpha: float = field(default=0.0, metadata=_opt(
        "Mixup's beta-distribution alpha (0: off); classification with soft targets, timm's Mixup (the vision extra)",
        min=0.0))
    cutmix_alpha: float = field(default=0.0, metadata=_opt("CutMix's beta-distribution alpha (0: off)", min=0.0))
    mix_prob: float = field(default=1.0, metadata=_opt("probability of mixing a batch (Mixup or CutMix)", min=0.0,
                                                       max=1.0))
    mix_switch_prob: float = field(default=0.5, metadata=_opt(
        "probability of CutMix instead of Mixup when both are on", min=0.0, max=1.0))
    mix_mode: str = field(default="batch", metadata=_opt(
        "draw the mixing once per batch, per pair or per sample", choices=("batch", "pair", "elem")))
    repeated_augmentation: int = field(default=1, metadata=_opt(
        "repeated augmentation: each training image this many times per epoch, differently augmented, on different "
        "processes (timm's RepeatAugSampler; DeiT: 3); an epoch keeps the dataset's length", min=1, max=16))
    clip_grad: float | None = field(default=None, metadata=_opt(
        "clip the gradient norm to this value", gt=0.0))
    ema_decay: float | None = field(default=None, metadata=_opt(
        "keep an exponential moving average of the weights with this decay per step, e.g. 0.99996 (timm's "
        "ModelEmaV3 when timm is installed); validation, the test and the saved weights then use the average",
        gt=0.0, lt=1.0))
    amp: str = field(default="none", metadata=_opt(
        "mixed precision autocast: bf16 (accelerators and CPU) or fp16 (accelerators, with loss scaling)",
        choices=("none", "bf16", "fp16")))
    loss_scale: float | None = field(default=None, metadata=_opt(
        "a static fp16 loss scale, e.g. 512 (MMCV's loss_scale): the scaler starts there and never grows (a step "
        "with inf/NaN gradients is still skipped); unset: dynamic scaling; recorded but unused without amp fp16",
        gt=0.0))
    # runtime
    device: str = field(default="auto", metadata=_opt("auto, cpu or an accelerator such as cuda:0"))
    seed: int = field(default=0, metadata=_opt("random seed (weights, data order, augmentation, dropout)",
                                               min=0, max=_MAX_SEED))
    deterministic: bool = field(default=False, metadata=_opt(
        "deterministic algorithms only (bit-identical reruns and resumes on the same machine)"))
    num_workers: int | None = field(default=None, metadata=_opt(
        "data-loading worker processes (default: 0 on CPU; with an accelerator, this process's share of the usable "
        "cores less one, 1 to 8)", min=0, max=1024))
    threads: int | None = field(default=None, metadata=_opt("CPU threads for torch (default: torch's)", min=1,
                                                               max=4096))
    output: str | None = field(default=None, metadata=_opt("run directory (default: runs/DATASET-MODEL)"))
    overwrite: bool = field(default=False, metadata=_opt("replace the files of an existing run directory (kept aside "
                                                         "until the new run saves its first state, put back if it fails)"))
    resume: bool = field(default=False, metadata=_opt("continue the run in the output directory"))
    checkpoint_every: int = field(default=0, metadata=_opt(
        "also save the resumable state every N steps (0: at the end of each epoch only)", min=0, max=_MAX_STEPS))
    log_every: int = field(default=50, metadata=_opt(
        "write a step record to log.jsonl (and TensorBoard) every N optimizer steps (0: epoch records only)",
        min=0, max=_MAX_STEPS))
    max_train_batches: int | None = field(default=None, metadata=_opt(
        "stop each training epoch after N optimizer steps (quick checks)", min=1, max=_MAX_STEPS))
    max_eval_batches: int | None = field(default=None, metadata=_opt(
        "evaluate on the first N batches only (quick checks)", min=1, max=_MAX_STEPS))
    test: bool = field(default=True, metadata=_opt(
        "evaluate the test split once at the end, with the best weights on the validation split"))
    progress: bool = field(default=True, metadata=_opt("progress bars (without them, one plain line per epoch)"))
    plots: bool = field(default=True, metadata=_opt("write PNG plots of the curves (needs matplotlib)"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "configuration",
                  names: Mapping[str, str] | None = None) -> TrainConfig:
        """Build and validate; unknown keys and bad values raise a ValueError naming them.

        Args:
            values: the field values.
            source: where the values came from; errors name a key as ``SOURCE: key``.
            names: how errors name particular keys instead (``{"lr": "--lr"}``); entries of
                ``model_args``/``dataset_args`` as ``"dataset_args.image_size"``.
        """
        check_keys(values, source)
        cfg = cls(**dict(values))
        cfg.validate(source, names)
        return cfg

    def validate(self, source: str = "configuration", names: Mapping[str, str] | None = None) -> TrainConfig:
        """Check every field's type, choices and range (ValueError naming the field and the fix).

        NaN and infinity are refused for every float, also inside ``model_args``/``dataset_args``.
        """
        named = dict(names or {})

        def name(key: str) -> str:
            return named.get(key) or f"{source}: {key}"

        for f in dataclasses.fields(self):
            setattr(self, f.name, _check_value(f, getattr(self, f.name), name))
        self._check_schedule(name)
        self._check_optimizer(name)
        return self

    def _check_optimizer(self, name: Callable[[str], str]) -> None:
        kinds = [k.strip() for k in self.no_decay.split(",")]
        if kinds != ["none"] and not set(kinds) <= set(NO_DECAY_KINDS):
            raise ValueError(f"{name('no_decay')} must be 'none' or a comma-separated list of "
                             f"{', '.join(NO_DECAY_KINDS)}, got {self.no_decay!r}")
        if self.layer_decay is not None and "1d" not in kinds:
            raise ValueError(f"{name('layer_decay')} is set with no_decay {self.no_decay!r}; the layer groups (timm's and "
                             "MMSegmentation's) exempt every 1-D tensor: add 1d to no_decay")
        stage_wise = self.layer_decay_type == "stage_wise"
        if stage_wise and (self.layer_decay is None or self.layer_decay_layers is None):
            raise ValueError(f"{name('layer_decay_type')} stage_wise needs layer_decay and layer_decay_layers (MMSegmentation's "
                             "decay_rate and num_layers, e.g. --layer-decay 0.9 --layer-decay-layers 12)")
        if self.layer_decay_layers is not None and not stage_wise:
            raise ValueError(f"{name('layer_decay_layers')} is only read by stage_wise layer decay: set "
                             "--layer-decay-type stage_wise, or leave it unset")
        if self.patience is not None and (self.scheduler != "constant" or self.warmup_epochs or self.warmup_iters):
            raise ValueError(f"{name('patience')} (two-phase training) runs each phase at a constant lr: set "
                             "--scheduler constant and no warm-up")
        if self.phase2_nesterov and (self.phase2_optimizer != "sgd" or not self.phase2_momentum):
            raise ValueError(f"{name('phase2_nesterov')} needs a phase-2 SGD with momentum > 0")
        if self.nesterov and (self.optimizer != "sgd" or not self.momentum):
            raise ValueError(f"{name('nesterov')} needs SGD with momentum > 0 (--optimizer sgd --momentum 0.9), "
                             f"got {self.optimizer} with momentum {self.momentum:g}")

    def _check_schedule(self, name: Callable[[str], str]) -> None:
        """The settings of the schedule that only make sense together."""
        if self.warmup_epochs and self.warmup_iters:
            raise ValueError(f"{name('warmup_iters')} is set and so is warmup_epochs; give the warm-up in epochs or in "
                             "steps, not both")
        window = self.sliding_window
        if window is not None and (len(window) != 2 or window[1] > window[0]):
            raise ValueError(f"{name('sliding_window')} is CROP STRIDE, the stride at most the crop (MMSegmentation's "
                             f"ADE20K test: 512 341), got {window}")
        if self.warmup_prefix and self.warmup_ratio is None:
            raise ValueError(f"{name('warmup_prefix')} needs warmup_ratio (the engine's own warm-up, without it, already "
                             "starts the schedule when it ends): set --warmup-ratio, or drop warmup_prefix")
        if self.eval_every is not None and self.iterations is None:
            raise ValueError(f"{name('eval_every')} needs a run given in iterations (--iterations N); an epoch-based run "
                             "validates at each epoch's end")
        if self.eval_every is not None and (self.warmup_epochs or self.cooldown_epochs or self.scheduler == "step"):
            raise ValueError(f"{name('eval_every')} makes an interval of {self.eval_every} steps the run's epoch: give the "
                             "warm-up in warmup_iters, no cooldown_epochs and a schedule by iteration (poly, cosine, "
                             "constant), not one in epochs")
        if self.scheduler == "cosine" and self.iterations is None and self.cooldown_epochs >= self.epochs:
            raise ValueError(f"{name('cooldown_epochs')} is {self.cooldown_epochs} but the run has {self.epochs} "
                             "epochs; the cool-down must leave the cosine at least one epoch: lower it")
        if self.scheduler == "step" and not self.lr_milestones:
            raise ValueError(f"{name('scheduler')} step needs the epochs to decay at: set lr_milestones "
                             "(--lr-milestones 8 11)")
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            raise ValueError(f"{name('lr_milestones')} must be increasing epochs without repeats, got "
                             f"{self.lr_milestones}")


# The kinds of parameter the no_decay field may keep out of weight decay.
NO_DECAY_KINDS = ("1d", "norm", "bias", "pos_embed")


def field_kind(f: dataclasses.Field) -> str:
    """A field's annotation in one spelling whichever way it is written (``Optional[int]`` and
    ``int | None`` both read ``int | None``; ``List[int]`` reads ``list[int]``), so rewriting
    annotations in the PEP 604/585 style cannot change what a field accepts."""
    kind = str(f.type).replace(" ", "")
    if kind.startswith("Optional[") and kind.endswith("]"):
        kind = kind[len("Optional["):-1] + "|None"
    return kind.replace("List[", "list[").replace("Dict[", "dict[")


def _type_name(f: dataclasses.Field) -> str:
    return field_kind(f).removesuffix("|None").replace("]", "").replace("dict[str,Any", "mapping")


def _parse_number(value: Any, number: type) -> Any:
    """A number read from a string (flags and YAML strings); other values unchanged."""
    if isinstance(value, str):
        try:
            return number(value.strip())
        except ValueError:
            pass
    return value


def _check_value(f: dataclasses.Field, value: Any, name: Callable[[str], str]) -> Any:
    """``value`` of field ``f``, converted and checked; ``name(key)`` is how errors call a key."""
    meta = f.metadata
    kind = field_kind(f)
    where = name(f.name)
    if value is None:
        if kind.endswith("|None"):
            return None
        raise ValueError(f"{where} must be set (a {_type_name(f)}), got nothing")
    if kind.startswith("list["):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} must be a list of integers, got {value!r}")
        bounds = {k: meta[k] for k in ("min", "max") if k in meta}
        return [check_int(f"{where}[{i}]", _parse_number(v, int), **bounds) for i, v in enumerate(value)]
    if kind.startswith("dict["):
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where} must be a mapping of names to values, got {value!r}")
        for key, item in value.items():
            check_nested(name(f"{f.name}.{key}"), item)
        return dict(value)
    if "bool" in kind:
        return check_bool(where, value)
    bounds = {k: meta[k] for k in ("min", "max", "gt", "lt") if k in meta}
    if "int" in kind:
        return check_int(where, _parse_number(value, int), **bounds)
    if "float" in kind:
        return check_float(where, _parse_number(value, float), **bounds)
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{where} must be a string, got {value!r}")
    value = os.fspath(value)
    if meta.get("choices"):
        check_choice(where, value, meta["choices"])
    return value


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
# The embedded datasets' recipes, keyed by dataset (tuned on this project's 2-core CPU; see README).
RECIPES: dict[str, dict[str, Any]] = _dataset_recipes()


def check_keys(values: Mapping[str, Any], source: str = "configuration") -> None:
    """Raise a ValueError for keys that are not fields, suggesting the close ones."""
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key).replace("-", "_"), list(FIELDS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{source}: unknown key {key!r}{hint}; valid keys: {', '.join(FIELDS)}"
        )


# A configuration is a few hundred bytes; anything near this is not one.
MAX_CONFIG_BYTES = 1 << 20


class _Refused(ValueError):
    """YAML this package will not read (aliases, nesting past the parser's recursion limit)."""


@functools.lru_cache(maxsize=1)
def _loader() -> type:
    """PyYAML's safe loader without aliases: ``*name`` is refused before anything is expanded, so
    a file of nested aliases (a "billion laughs") cannot build an exponentially large value."""
    import yaml  # a core dependency, imported here to keep ``import wavevision`` light

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                anchor = self.peek_event().anchor
                raise _Refused(f"uses YAML aliases (*{anchor}), which configuration values do not need; "
                               "write the values out")
            return super().compose_node(parent, index)

    return NoAliasLoader


def _parse_yaml(text: str) -> Any:
    """``text`` read with the alias-free safe loader; :class:`_Refused` for aliases and deep nesting."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise _Refused("is nested too deeply to be a configuration") from None


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML mapping from ``path``, with errors naming the file.

    Files over 1 MiB, FIFOs and devices are refused before reading; so are aliases
    (``*name``) and nesting too deep for the parser.
    """
    import yaml

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"configuration file {p} does not exist")
    text = read_text(p, max_bytes=MAX_CONFIG_BYTES, what="configuration file")
    try:
        data = _parse_yaml(text)
    except _Refused as e:
        raise ValueError(f"{p} {e}") from None
    except (yaml.YAMLError, ValueError) as e:  # ValueError: e.g. an integer of more digits than Python converts
        raise ValueError(f"{p} is not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{p} must hold a mapping of keys to values (key: value lines), got {type(data).__name__}")
    return data


_MERGED = ("model_args", "dataset_args")
# The command line's repeatable flags that fill the merged mappings.
DICT_FLAGS = {"model_args": "--model-arg", "dataset_args": "--dataset-arg"}


def _namer(source: str, flags: bool) -> Callable[[str], str]:
    """How errors call a key one layer set: ``--lr`` and ``--model-arg depth`` for flags,
    ``SOURCE: lr`` for a file, the bare key for keyword overrides."""

    def name(key: str) -> str:
        if flags:
            field_name, _, sub = key.partition(".")
            return f"{DICT_FLAGS[field_name]} {sub}" if sub else "--" + key.replace("_", "-")
        return f"{source}: {key}" if source else key

    return name


def _merge_layers(layers: list) -> tuple[dict[str, Any], dict[str, str]]:
    """The layers' values, later ones winning (the mappings merged key by key), and each key's name."""
    user: dict[str, Any] = {}
    names: dict[str, str] = {}
    for layer, name in layers:
        for k, v in layer.items():
            if k in _MERGED and isinstance(v, Mapping) and isinstance(user.get(k), Mapping):
                user[k] = {**user[k], **v}
            else:
                user[k] = v
                names = {n: s for n, s in names.items() if not n.startswith(f"{k}.")}
            names[k] = name(k)
            if k in _MERGED and isinstance(v, Mapping):
                names.update({f"{k}.{sub}": name(f"{k}.{sub}") for sub in v})
    return user, names


def resolve_config(file: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None,
                   *, base: Mapping[str, Any] | None = None, from_flags: bool = False) -> TrainConfig:
    """The configuration from defaults, the dataset recipe, a YAML ``file`` and ``overrides``.

    Args:
        file: a YAML file of :class:`TrainConfig` keys.
        overrides: keys that win over the file (the command line's explicit flags).
        base: starting values instead of the defaults and recipe (a resumed run's saved config).
        from_flags: ``overrides`` came from command-line flags: errors name them as spelled
            there (``--lr``, ``--dataset-arg image_size``); a file's keys are named ``FILE: key``.
    """
    layers = []
    if file is not None:
        from_file = load_yaml(file)
        check_keys(from_file, str(file))
        layers.append((from_file, _namer(str(file), False)))
    if overrides:
        check_keys(overrides, "options")
        layers.append((dict(overrides), _namer("", from_flags)))
    user, names = _merge_layers(layers)
    if base is not None:
        values = dict(base)
        for k, v in user.items():
            values[k] = {**values.get(k, {}), **v} if k in _MERGED and isinstance(v, Mapping) else v
        return TrainConfig.from_dict(values, source="saved configuration", names=names)
    recipe = recipe_values(user.get("recipe"), names.get("recipe", "recipe"))
    dataset = user.get("dataset", recipe.get("dataset", FIELDS["dataset"].default))
    if not recipe:
        recipe = RECIPES.get(dataset, {}) if isinstance(dataset, str) else {}
    values = {k: v for k, v in recipe.items() if k != "model_args"}
    for unit, other in (("warmup_epochs", "warmup_iters"), ("warmup_iters", "warmup_epochs"), ("epochs", "iterations")):
        if unit in user and other not in user:  # a warm-up (a length) given in one unit replaces the recipe's in the other
            values.pop(other, None)
    if "epochs" in user and "iterations" not in user and "eval_every" not in user:
        values.pop("eval_every", None)  # an epoch-based run validates at each epoch's end
    values.update({k: v for k, v in user.items() if k not in _MERGED})
    model = values.get("model")
    model_args = dict(recipe.get("model_args", {})) if recipe and model == recipe.get("model") else {}
    user_model_args = user.get("model_args", {})
    if not isinstance(user_model_args, Mapping):
        raise ValueError(f"{names['model_args']} must be a mapping of hyperparameter names to values, "
                         f"got {user_model_args!r}")
    values["model_args"] = {**model_args, **user_model_args}
    user_dataset_args = user.get("dataset_args", {})
    if not isinstance(user_dataset_args, Mapping):
        raise ValueError(f"{names['dataset_args']} must be a mapping of dataset options to values, "
                         f"got {user_dataset_args!r}")
    # the recipe's dataset options apply to the recipe's dataset only
    recipe_args = recipe.get("dataset_args", {}) if values.get("dataset") == recipe.get("dataset") else {}
    values["dataset_args"] = {**recipe_args, **user_dataset_args}
    return TrainConfig.from_dict(values, names=names)


# Model arguments the dataset decides (wavevision.engine.tasks: Task.model_args).
_DATASET_FIXED = frozenset({"in_chans", "num_classes", "scale"})


def recipe_values(name: Any, where: str = "recipe") -> dict[str, Any]:
    """The TrainConfig values of the registered recipe ``name`` (empty for None); an unknown name
    raises a one-line ValueError with close names."""
    if name is None:
        return {}
    if not isinstance(name, str):
        raise ValueError(f"{where} must be a recipe name, got {name!r}")

    values = dict(engine_values(get_recipe(name)))
    values["recipe"] = name
    return values


def recipe_diff(cfg: TrainConfig | Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings of a configuration that differ from its named recipe's: ``{key: (recipe, config)}``
    (empty without a recipe). ``model_args`` and ``dataset_args`` compare key by key
    (``"model_args.depth"``); the model arguments the dataset fixes (``in_chans``, ``num_classes``,
    ``scale``) count only where the recipe sets them."""
    values = cfg.to_dict() if isinstance(cfg, TrainConfig) else dict(cfg)
    recipe = recipe_values(values.get("recipe"))
    if not recipe:
        return {}
    out: dict[str, tuple[Any, Any]] = {}
    for key, value in recipe.items():
        if key in _MERGED:
            current = values.get(key) or {}
            for sub in sorted(set(value) | set(current)):
                if sub not in value and key == "model_args" and sub in _DATASET_FIXED:
                    continue
                if value.get(sub) != current.get(sub):
                    out[f"{key}.{sub}"] = (value.get(sub), current.get(sub))
        elif values.get(key) != value:
            out[key] = (value, values.get(key))
    return out


def _default(key: str) -> Any:
    """The default of field ``key`` (None for keys that are not fields)."""
    f = FIELDS.get(key)
    if f is None:
        return None
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _as_lists(value: Any) -> Any:
    """``value`` with every tuple, nested ones too, turned into a list."""
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _as_lists(v) for k, v in value.items()}
    return value


def config_diff(saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore=RUNTIME_KEYS) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two configurations: ``{key: (saved, current)}``; a field one of
    them lacks (a run saved before the field existed) counts at its default."""
    keys = (set(saved) | set(current)) - set(ignore)
    # tuples compare as the lists a saved (JSON) configuration holds: model_args=(1, 2) from Python is [1, 2] on disk
    values = [{k: _as_lists(c[k] if k in c else _default(k)) for k in keys} for c in (saved, current)]
    return {k: (values[0][k], values[1][k]) for k in sorted(keys) if values[0][k] != values[1][k]}


def parse_assignments(items: Any | None, what: str = "argument") -> dict[str, Any]:
    """``["depth=4", "name=x", "sizes=[2, 4]"]`` -> ``{"depth": 4, "name": "x", "sizes": [2, 4]}``
    (values read as YAML scalars or lists); a malformed item raises a ValueError naming it."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} must look like KEY=VALUE, e.g. depth=4")
        try:
            value = _parse_yaml(text) if text.strip() else ""
        except _Refused as e:
            raise ValueError(f"{what} {item!r} {e}") from None
        except (yaml.YAMLError, ValueError):
            value = text
        out[key.strip().replace("-", "_")] = value
    return out
