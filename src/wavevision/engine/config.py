"""The training configuration: one dataclass, read from defaults, a dataset recipe, YAML and flags.

Precedence, lowest first: the dataclass defaults, the recipe of an embedded dataset (the
model and schedule that suit it), a YAML file (``-c run.yaml``), then explicit flags or
keyword overrides. ``model_args`` and ``dataset_args`` merge key by key. The recipe's
``model_args`` apply only when the run uses the recipe's model. Unknown keys and bad values
raise a ValueError naming the key and the valid choices.

The command line builds its flags from the fields below (``--batch-size`` for ``batch_size``),
so a field, its help text and its checks live in one place.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["RECIPES", "RUNTIME_KEYS", "TrainConfig", "config_diff", "load_yaml", "parse_assignments", "resolve_config"]


# Settings that may differ when a run is resumed: they change where and how fast it runs,
# not what it computes.
RUNTIME_KEYS = frozenset({
    "device", "num_workers", "threads", "output", "overwrite", "resume", "checkpoint_every",
    "progress", "plots", "test", "eval_batch_size", "data_root", "download",
})

# The embedded datasets' recipes (tuned on this project's 2-core CPU; see README).
RECIPES: Dict[str, Dict[str, Any]] = {
    "digits": dict(
        model="wavemix_lite",
        model_args=dict(final_dim=32, ff_channel=32, depth=4, dropout=0.0),
        epochs=15, batch_size=64, lr=3e-3, weight_decay=0.05, warmup_epochs=1.0, label_smoothing=0.1,
    ),
    "digit-scenes": dict(
        model="wavemix_seg",
        model_args=dict(final_dim=32, ff_channel=32, depth=3, level=2),
        epochs=20, batch_size=16, lr=5e-3, weight_decay=0.01, warmup_epochs=1.0,
    ),
    "photos": dict(
        model="wavemix_sr",
        model_args=dict(final_dim=48, ff_channel=48, depth=3),
        epochs=10, batch_size=16, lr=2e-3, weight_decay=0.0, warmup_epochs=1.0,
    ),
}


def _opt(help: str, **meta: Any) -> Dict[str, Any]:
    return {"help": help, **meta}


@dataclass
class TrainConfig:
    """Everything a training run needs; see ``wavevision train --help`` for each field."""

    # what to train, on what
    model: Optional[str] = field(default=None, metadata=_opt(
        "registered model name (default: the dataset recipe's model, else wavemix_lite / wavemix_seg / "
        "wavemix_sr by task)"))
    model_args: Dict[str, Any] = field(default_factory=dict, metadata=_opt(
        "model hyperparameter overrides, e.g. depth=4 final_dim=64 (in_chans, num_classes and scale "
        "follow the dataset)"))
    dataset: str = field(default="digits", metadata=_opt("a registered dataset name (wavevision.data.list_datasets()) or a dataset path"))
    data_root: Optional[str] = field(default=None, metadata=_opt("folder or file holding the dataset"))
    download: bool = field(default=False, metadata=_opt("download the dataset when it has a public URL"))
    dataset_args: Dict[str, Any] = field(default_factory=dict, metadata=_opt("dataset options, e.g. image_size=16"))
    augment: bool = field(default=True, metadata=_opt("training-time augmentation of the dataset"))
    # optimisation
    epochs: int = field(default=10, metadata=_opt("training epochs", min=1))
    batch_size: int = field(default=64, metadata=_opt("training batch size per process", min=1))
    eval_batch_size: Optional[int] = field(default=None, metadata=_opt(
        "evaluation batch size (default: 2 x batch size)", min=1))
    optimizer: str = field(default="adamw", metadata=_opt("optimizer", choices=("adamw", "sgd")))
    lr: float = field(default=1e-3, metadata=_opt("peak learning rate", gt=0.0))
    weight_decay: float = field(default=0.05, metadata=_opt(
        "decoupled weight decay (AdamW) or L2 (SGD); biases and norms are not decayed", min=0.0))
    momentum: float = field(default=0.9, metadata=_opt("SGD momentum (Nesterov when > 0)", min=0.0, max=1.0))
    scheduler: str = field(default="cosine", metadata=_opt(
        "learning-rate schedule after warm-up", choices=("cosine", "constant")))
    warmup_epochs: float = field(default=0.0, metadata=_opt("linear warm-up length in epochs", min=0.0))
    min_lr: float = field(default=0.0, metadata=_opt("final learning rate of the cosine schedule", min=0.0))
    label_smoothing: float = field(default=0.0, metadata=_opt(
        "label smoothing of the classification loss", min=0.0, lt=1.0))
    clip_grad: Optional[float] = field(default=None, metadata=_opt(
        "clip the gradient norm to this value", gt=0.0))
    amp: str = field(default="none", metadata=_opt(
        "mixed precision autocast: bf16 (accelerators and CPU) or fp16 (accelerators, with loss scaling)",
        choices=("none", "bf16", "fp16")))
    # runtime
    device: str = field(default="auto", metadata=_opt("auto, cpu or an accelerator such as cuda:0"))
    seed: int = field(default=0, metadata=_opt("random seed (weights, data order, augmentation, dropout)"))
    deterministic: bool = field(default=False, metadata=_opt(
        "deterministic algorithms only (bit-identical reruns and resumes on the same machine)"))
    num_workers: int = field(default=0, metadata=_opt("data-loading worker processes", min=0))
    threads: Optional[int] = field(default=None, metadata=_opt("CPU threads for torch (default: torch's)", min=1))
    output: Optional[str] = field(default=None, metadata=_opt("run directory (default: runs/DATASET-MODEL)"))
    overwrite: bool = field(default=False, metadata=_opt("replace the files of an existing run directory"))
    resume: bool = field(default=False, metadata=_opt("continue the run in the output directory"))
    checkpoint_every: int = field(default=0, metadata=_opt(
        "also save the resumable state every N steps (0: at the end of each epoch only)", min=0))
    max_train_batches: Optional[int] = field(default=None, metadata=_opt(
        "stop each training epoch after N batches (quick checks)", min=1))
    max_eval_batches: Optional[int] = field(default=None, metadata=_opt(
        "evaluate on the first N batches only (quick checks)", min=1))
    test: bool = field(default=True, metadata=_opt(
        "evaluate the test split once at the end, with the best weights on the validation split"))
    progress: bool = field(default=True, metadata=_opt("progress bars"))
    plots: bool = field(default=True, metadata=_opt("write PNG plots of the curves (needs matplotlib)"))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "configuration") -> "TrainConfig":
        """Build and validate; unknown keys and bad values raise a ValueError naming them."""
        check_keys(values, source)
        cfg = cls(**dict(values))
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "configuration") -> "TrainConfig":
        """Check every field's type, choices and range (ValueError naming the field and the fix)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, _check_value(f, getattr(self, f.name), source))
        return self


def _type_name(f: dataclasses.Field) -> str:
    return str(f.type).replace("Optional[", "").replace("]", "").replace("Dict[str, Any", "mapping")


def _check_value(f: dataclasses.Field, value: Any, source: str) -> Any:
    meta = f.metadata
    kind = str(f.type)
    where = f"{source}: {f.name}"
    if value is None:
        if kind.startswith("Optional"):
            return None
        raise ValueError(f"{where} must be set (a {_type_name(f)}), got nothing")
    if "Dict" in kind:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where} must be a mapping of names to values, got {value!r}")
        return dict(value)
    if "bool" in kind:
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if "int" in kind or "float" in kind:
        number = int if "int" in kind else float
        if isinstance(value, str):
            try:
                value = number(value)
            except ValueError:
                pass
        if number is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        accepted = (int,) if number is int else (int, float)
        if not isinstance(value, accepted) or isinstance(value, bool):
            raise ValueError(f"{where} must be {'an integer' if number is int else 'a number'}, got {value!r}")
        value = number(value)
    elif "str" in kind:
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{where} must be a string, got {value!r}")
        value = os.fspath(value)
    choices: Tuple[str, ...] = meta.get("choices", ())
    if choices and value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{where}: {value!r} is not a valid choice{hint}; choose one of {', '.join(choices)}")
    for key, bad, word in (("min", value.__lt__, ">="), ("gt", value.__le__, ">"),
                           ("max", value.__gt__, "<="), ("lt", value.__ge__, "<")):
        if key in meta and bad(meta[key]):
            raise ValueError(f"{where} must be {word} {meta[key]}, got {value!r}")
    return value


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


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


def load_yaml(path: "str | os.PathLike[str]") -> Dict[str, Any]:
    """A YAML mapping from ``path``, with errors naming the file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"configuration file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{p} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{p} must hold a mapping of keys to values (key: value lines), got {type(data).__name__}")
    return data


_MERGED = ("model_args", "dataset_args")


def resolve_config(file: "str | os.PathLike[str] | None" = None, overrides: Optional[Mapping[str, Any]] = None,
                   *, base: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    """The configuration from defaults, the dataset recipe, a YAML ``file`` and ``overrides``.

    Args:
        file: a YAML file of :class:`TrainConfig` keys.
        overrides: keys that win over the file (the command line's explicit flags).
        base: starting values instead of the defaults and recipe (a resumed run's saved config).
    """
    layers = []
    if file is not None:
        from_file = load_yaml(file)
        check_keys(from_file, str(file))
        layers.append(from_file)
    if overrides:
        check_keys(overrides, "options")
        layers.append(dict(overrides))
    user: Dict[str, Any] = {}
    for layer in layers:
        for k, v in layer.items():
            if k in _MERGED and isinstance(v, Mapping) and isinstance(user.get(k), Mapping):
                user[k] = {**user[k], **v}
            else:
                user[k] = v
    if base is not None:
        values = dict(base)
        for k, v in user.items():
            values[k] = {**values.get(k, {}), **v} if k in _MERGED and isinstance(v, Mapping) else v
        return TrainConfig.from_dict(values)
    dataset = user.get("dataset", FIELDS["dataset"].default)
    recipe = RECIPES.get(dataset, {}) if isinstance(dataset, str) else {}
    values = {k: v for k, v in recipe.items() if k != "model_args"}
    values.update({k: v for k, v in user.items() if k not in _MERGED})
    model = values.get("model")
    model_args = dict(recipe.get("model_args", {})) if recipe and model == recipe.get("model") else {}
    user_model_args = user.get("model_args", {})
    if not isinstance(user_model_args, Mapping):
        raise ValueError(f"model_args must be a mapping of hyperparameter names to values, got {user_model_args!r}")
    values["model_args"] = {**model_args, **user_model_args}
    values["dataset_args"] = user.get("dataset_args", {})
    return TrainConfig.from_dict(values)


def config_diff(saved: Mapping[str, Any], current: Mapping[str, Any], *, ignore=RUNTIME_KEYS) -> Dict[str, Tuple[Any, Any]]:
    """Keys whose values differ between two configurations: ``{key: (saved, current)}``."""
    keys = (set(saved) | set(current)) - set(ignore)
    return {k: (saved.get(k), current.get(k)) for k in sorted(keys) if saved.get(k) != current.get(k)}


def parse_assignments(items: Optional[Any], what: str = "argument") -> Dict[str, Any]:
    """``["depth=4", "name=x", "sizes=[2, 4]"]`` -> ``{"depth": 4, "name": "x", "sizes": [2, 4]}``
    (values read as YAML scalars or lists); a malformed item raises a ValueError naming it."""
    import yaml

    out: Dict[str, Any] = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} must look like KEY=VALUE, e.g. depth=4")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        out[key.strip().replace("-", "_")] = value
    return out
