"""Pretrained configurations: one structured record per registered model (and per weight tag).

:class:`PretrainedCfg` has timm's ``PretrainedCfg`` field names (weights source, input and
normalisation, head layout, provenance), so ``model.pretrained_cfg`` is what timm's data
helpers (``timm.data.resolve_data_config``) read, plus wavevision's facts: the ``task``, the
``dataset`` a result was measured on, the published ``metrics`` (percent, or mIoU / dB), and the
exact ``params`` and ``macs`` of the registered build (``tests/test_pretrained_cfg.py``
recomputes them).

A family module lists its records in ``default_cfgs = generate_default_cfgs({...})`` keyed by
``name`` or ``name.tag``; one model may carry several tagged records (one per released
checkpoint), the first being its default, as in timm.
"""
from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..data.constants import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["DefaultCfg", "PretrainedCfg", "generate_default_cfgs", "resolve_pretrained_cfg", "split_model_name_tag"]

# Keys timm keeps in a cfg dict even when None (its filter_pretrained_cfg).
_KEEP_NONE = {"pool_size", "first_conv", "classifier"}
_HEAD_KEYS = ("num_classes", "classifier", "global_pool")


@dataclass(frozen=True)
class PretrainedCfg:
    """One registered configuration: timm's fields, then wavevision's (``task`` ... ``macs``).

    Attributes (beyond timm's):
        task: one of :func:`wavevision.utils.task_names.task_names`.
        dataset: what ``metrics`` were measured on (``"ImageNet-1k"``, ``"MNIST"``, ...).
        metrics: published results, e.g. ``{"top1": 75.06}`` (percent), ``{"miou": 82.70}``,
            ``{"psnr": 33.08}``; empty when none is published.
        params: exact parameter count of the registered build.
        macs: multiply-accumulates per image at ``input_size`` (``FlopCounterMode`` FLOPs / 2),
            where stored.
        metrics_source: where ``metrics`` come from (paper, README, measured).
        scale: a super-resolution model's upscaling factor, where stored.
        color_space: what a super-resolution network sees of its RGB input, where stored.
        file_size: the released weights file's size in bytes, where known: a download must have
            exactly that many (otherwise a bound from the model's own size caps it).
        file_sha256: the released weights file's SHA-256, where known: a download must match it.
    """

    # weights
    url: str | None = None
    file: str | None = None
    hf_hub_id: str | None = None
    hf_hub_filename: str | None = None
    source: str | None = None
    architecture: str | None = None
    tag: str | None = None
    custom_load: bool = False
    # input and normalisation
    input_size: tuple[int, int, int] = (3, 224, 224)
    test_input_size: tuple[int, int, int] | None = None
    min_input_size: tuple[int, int, int] | None = None
    fixed_input_size: bool = False
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    test_crop_pct: float | None = None
    crop_mode: str = "center"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    # head
    num_classes: int = 1000
    label_offset: int | None = None
    label_names: tuple[str, ...] | None = None
    label_descriptions: dict[str, str] | None = None
    pool_size: tuple[int, ...] | None = None
    test_pool_size: tuple[int, ...] | None = None
    first_conv: str | tuple[str, ...] | None = None
    classifier: str | tuple[str, ...] | None = None
    # provenance
    license: str | None = None
    description: str | None = None
    origin_url: str | None = None
    paper_name: str | None = None
    paper_ids: str | tuple[str, ...] | None = None
    notes: tuple[str, ...] | None = None
    # wavevision
    task: str = "classification"
    dataset: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_source: str | None = None
    params: int | None = None
    macs: int | None = None
    scale: int | None = None
    color_space: str | None = None
    file_size: int | None = None
    file_sha256: str | None = None

    @property
    def has_weights(self) -> bool:
        return bool(self.url or self.file or self.hf_hub_id)

    @property
    def fetchable(self) -> bool:
        """Weights wavevision loads by itself: a local ``file`` or a Hub file (a ``url`` alone is a page,
        such as Google Drive's, that it does not download)."""
        return bool(self.file or self.hf_hub_id)

    def to_dict(self, remove_source: bool = False, remove_null: bool = True) -> dict[str, Any]:
        """A plain dict (timm's ``model.pretrained_cfg`` form): None values dropped except timm's three."""
        out = {}
        for k, v in asdict(self).items():
            if remove_source and k in ("url", "file", "hf_hub_id", "hf_hub_filename", "source", "file_size",
                                       "file_sha256"):
                continue
            if remove_null and v is None and k not in _KEEP_NONE:
                continue
            out[k] = copy.deepcopy(v)
        return out

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> PretrainedCfg:
        """Build from a dict, refusing unknown keys (a typo would otherwise be silently ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"unknown pretrained_cfg key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**dict(cfg))


@dataclass
class DefaultCfg:
    """The tagged records of one model name; ``tags[0]`` is the default."""

    tags: deque[str] = field(default_factory=deque)
    cfgs: dict[str, PretrainedCfg] = field(default_factory=dict)

    @property
    def default(self) -> PretrainedCfg:
        return self.cfgs[self.tags[0]]

    @property
    def is_pretrained(self) -> bool:
        return any(c.has_weights for c in self.cfgs.values())


def split_model_name_tag(name: str, no_tag: str = "") -> tuple[str, str]:
    """``"wavemix_192_16_l3.in1k"`` -> ``("wavemix_192_16_l3", "in1k")``; no tag -> ``no_tag``."""
    arch, _, tag = name.partition(".")
    return arch, tag or no_tag


def generate_default_cfgs(cfgs: Mapping[str, PretrainedCfg | Mapping[str, Any]]) -> dict[str, DefaultCfg]:
    """Group ``name`` / ``name.tag`` records by model name.

    The first tag with weights becomes the default (a tag ending in ``*`` or an untagged
    record with weights wins), otherwise the first one listed, as in timm.
    """
    out: dict[str, DefaultCfg] = {}
    for key, cfg in cfgs.items():
        if not isinstance(cfg, PretrainedCfg):
            cfg = PretrainedCfg.from_dict(cfg)
        arch, tag = split_model_name_tag(key)
        entry = out.setdefault(arch, DefaultCfg())
        priority = (cfg.has_weights and not tag) or tag.endswith("*")
        tag = tag.rstrip("*")
        if tag in entry.cfgs:
            raise ValueError(f"pretrained cfg {arch}.{tag} is listed twice")
        first_weights = cfg.has_weights and not any(c.has_weights for c in entry.cfgs.values())
        if priority or first_weights:
            entry.tags.appendleft(tag)
        else:
            entry.tags.append(tag)
        entry.cfgs[tag] = replace(cfg, architecture=arch, tag=tag or None)
    return out


def resolve_pretrained_cfg(
    name: str,
    default: DefaultCfg,
    pretrained_cfg: str | Mapping[str, Any] | PretrainedCfg | None = None,
    overlay: Mapping[str, Any] | None = None,
) -> PretrainedCfg:
    """The record a build uses: the default tag, another ``pretrained_cfg`` tag or a whole record,
    then ``overlay`` (timm's ``pretrained_cfg_overlay``) replacing some fields.

    Raises:
        ValueError: an unknown tag (naming the known ones) or unknown keys.
    """
    arch, tag = split_model_name_tag(name)
    if isinstance(pretrained_cfg, PretrainedCfg):
        cfg = pretrained_cfg
    elif isinstance(pretrained_cfg, Mapping):
        cfg = PretrainedCfg.from_dict({**default.default.to_dict(), **dict(pretrained_cfg)})
    else:
        if pretrained_cfg is not None and not isinstance(pretrained_cfg, str):
            raise TypeError(f"pretrained_cfg must be a tag (str), a dict or a PretrainedCfg, got {type(pretrained_cfg).__name__}")
        tag = pretrained_cfg or tag or default.tags[0]
        if tag not in default.cfgs:
            known = ", ".join(repr(f"{arch}.{t}" if t else arch) for t in default.tags)
            raise ValueError(f"{arch} has no pretrained tag {tag!r}; known: {known}")
        cfg = default.cfgs[tag]
    if overlay:
        keys = {f.name for f in fields(PretrainedCfg)}
        unknown = sorted(set(overlay) - keys)
        if unknown:
            raise ValueError(f"unknown pretrained_cfg_overlay key(s) {unknown}; known keys: {sorted(keys)}")
        cfg = replace(cfg, **dict(overlay))
    return cfg


def cfg_for_features(cfg: dict[str, Any]) -> dict[str, Any]:
    """A backbone's cfg: the head fields removed (timm's ``pretrained_cfg_for_features``)."""
    return {k: v for k, v in cfg.items() if k not in _HEAD_KEYS}
