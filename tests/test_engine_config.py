"""Training configuration: defaults, recipes, YAML and flag precedence, clear errors."""
from __future__ import annotations

import math
import os
import re

import pytest

from wavevision.engine.config import (
    FIELDS,
    RECIPES,
    TrainConfig,
    config_diff,
    load_yaml,
    parse_assignments,
    resolve_config,
)

from _deadline import finishes, in_subprocess


def test_defaults_are_the_digits_recipe():
    cfg = resolve_config()
    assert cfg.dataset == "digits" and cfg.model == RECIPES["digits"]["model"]
    assert cfg.model_args == RECIPES["digits"]["model_args"]
    assert cfg.epochs == RECIPES["digits"]["epochs"]


def test_yaml_then_flags_precedence_and_model_args_merge(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("lr: 0.01\nepochs: 3\noptimizer: sgd\nmodel_args:\n  depth: 2\n  final_dim: 16\n")
    cfg = resolve_config(path, {"lr": 0.02, "model_args": {"depth": 3}})
    assert cfg.lr == 0.02  # flag wins over the file
    assert cfg.epochs == 3 and cfg.optimizer == "sgd"  # file wins over the recipe
    assert cfg.model_args["depth"] == 3 and cfg.model_args["final_dim"] == 16  # merged key by key
    assert cfg.model_args["ff_channel"] == RECIPES["digits"]["model_args"]["ff_channel"]  # recipe underneath


def test_recipe_model_args_apply_only_to_the_recipe_model():
    cfg = resolve_config(overrides={"model": "wavemix_lite_8_10"})
    assert cfg.model_args == {}
    assert cfg.epochs == RECIPES["digits"]["epochs"]


@pytest.mark.parametrize("values, message", [
    ({"optimizer": "adam"}, "optimizer: 'adam' is not a valid choice .*adamw.*choose one of adamw, sgd"),
    ({"amp": "fp8"}, "choose one of none, bf16, fp16"),
    ({"lr": 0}, "lr must be > 0"),
    ({"epochs": "many"}, "epochs must be an integer"),
    ({"label_smoothing": 1.0}, "label_smoothing must be < 1"),
    ({"learnig_rate": 0.1}, "unknown key 'learnig_rate'.*valid keys: model, "),
    ({"batch_sise": 3}, "did you mean 'batch_size'"),
    ({"deterministic": "maybe"}, "deterministic must be true or false"),
    ({"model_args": [1, 2]}, "model_args must be a mapping"),
])
def test_bad_values_name_the_key_and_the_choices(values, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(overrides=values)


def test_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1, 2\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        resolve_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        resolve_config(listed)
    typo = tmp_path / "typo.yaml"
    typo.write_text("epoch: 3\n")
    with pytest.raises(ValueError, match=r"typo.yaml: unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        resolve_config(typo)


def test_strings_from_files_are_read_as_numbers_and_booleans():
    cfg = TrainConfig.from_dict({"lr": "0.5", "epochs": "4", "deterministic": "yes", "model": "wavemix"})
    assert (cfg.lr, cfg.epochs, cfg.deterministic) == (0.5, 4, True)


def test_resume_diff_ignores_runtime_keys():
    a = resolve_config().to_dict()
    b = resolve_config(overrides={"device": "cpu", "num_workers": 2, "progress": False}).to_dict()
    assert config_diff(a, b) == {}
    c = resolve_config(overrides={"lr": 0.5}).to_dict()
    assert config_diff(a, c) == {"lr": (a["lr"], 0.5)}


def test_parse_assignments():
    assert parse_assignments(["depth=4", "name=x", "sizes=[2, 4]", "drop-out=0.1"]) == {
        "depth": 4, "name": "x", "sizes": [2, 4], "drop_out": 0.1}
    with pytest.raises(ValueError, match="must look like KEY=VALUE"):
        parse_assignments(["depth"], "--model-arg")


# ------------------------------------------------------------------------------------
# Numbers: NaN and infinity are never valid; integers have bounds

FLOAT_KEYS = [name for name, f in FIELDS.items() if "float" in str(f.type)]
INT_KEYS = [name for name, f in FIELDS.items() if "int" in str(f.type)]


def test_every_float_and_int_setting_is_covered():
    assert {"lr", "min_lr", "momentum", "weight_decay", "warmup_epochs", "clip_grad", "label_smoothing"} <= set(FLOAT_KEYS)
    assert {"seed", "epochs", "batch_size", "eval_batch_size", "num_workers", "threads"} <= set(INT_KEYS)


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "nan", "inf", "-inf", "1e999"])
def test_nan_and_infinity_are_refused_for_every_float_setting(key, bad):
    with pytest.raises(ValueError, match=rf"^{key} must be a finite number, got"):
        resolve_config(overrides={key: bad})


@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_flags_are_named_as_spelled_on_the_command_line(key):
    flag = "--" + key.replace("_", "-")
    with pytest.raises(ValueError, match=rf"^{flag} must be a finite number, got nan$"):
        resolve_config(overrides={key: "nan"}, from_flags=True)


def test_yaml_values_are_named_by_file_and_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 2\nlr: .nan\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: lr must be a finite number, got nan$"):
        resolve_config(path)
    path.write_text("min_lr: -.inf\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: min_lr must be a finite number, got -inf$"):
        resolve_config(path, {"lr": 0.1}, from_flags=True)
    # a flag that replaces the file's bad value wins, and its own bad value is named as a flag
    path.write_text("seed: -3\n")
    assert resolve_config(path, {"seed": "5"}, from_flags=True).seed == 5
    with pytest.raises(ValueError, match=r"^--seed must be >= 0, got -1$"):
        resolve_config(path, {"seed": "-1"}, from_flags=True)


@pytest.mark.parametrize("key, value, message", [
    ("seed", -1, "seed must be >= 0, got -1"),
    ("seed", 2**32, "seed must be <= 4294967295, got 4294967296"),
    ("epochs", 0, "epochs must be >= 1, got 0"),
    ("epochs", 10**9, "epochs must be <= 100000, got 1000000000"),
    ("batch_size", 2**40, "batch_size must be <= 1048576"),
    ("eval_batch_size", 2**40, "eval_batch_size must be <= 1048576"),
    ("num_workers", 10**6, "num_workers must be <= 1024"),
    ("threads", 10**6, "threads must be <= 4096"),
    ("checkpoint_every", 2**63, "checkpoint_every must be <= 2147483647"),
    ("max_train_batches", 2**63, "max_train_batches must be <= 2147483647"),
    ("warmup_epochs", 1e9, r"warmup_epochs must be <= 100000"),
    ("epochs", 2.5, "epochs must be an integer, got 2.5"),
    ("seed", True, "seed must be an integer, got True"),
])
def test_integers_have_bounds(key, value, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        resolve_config(overrides={key: value})


def test_seed_bounds_fit_every_generator_the_engine_seeds():
    import random

    import numpy as np
    import torch

    top = resolve_config(overrides={"seed": 2**32 - 1}).seed
    random.seed(top)
    np.random.seed(top)
    torch.manual_seed(top)
    torch.Generator().manual_seed(top + 10_000)  # the sampler seeds from seed + epoch


@pytest.mark.parametrize("key, value, name", [
    ("dataset_args", {"crop_pct": math.nan}, "dataset_args.crop_pct"),
    ("model_args", {"dropout": math.inf}, "model_args.dropout"),
    ("model_args", {"sizes": [1.0, -math.inf]}, "model_args.sizes"),
])
def test_nan_and_infinity_are_refused_inside_model_and_dataset_args(key, value, name):
    with pytest.raises(ValueError, match=rf"^{re.escape(name)} must be a finite number"):
        resolve_config(overrides={key: value})
    flag = {"dataset_args": "--dataset-arg", "model_args": "--model-arg"}[key]
    sub = name.split(".")[1]
    with pytest.raises(ValueError, match=rf"^{flag} {sub} must be a finite number"):
        resolve_config(overrides={key: value}, from_flags=True)


def test_cli_refuses_nan_in_one_line(capsys, tmp_path):
    from wavevision.cli import main

    for argv, message in ((["--lr", "nan"], "lr must be a finite number, got nan"),
                          (["--seed", "-1"], "seed must be >= 0, got -1"),
                          (["--dataset-arg", "image_size=.nan"], "must be a finite number")):
        code = main(["train", *argv, "--epochs", "1", "--max-train-batches", "1", "--no-test", "--no-progress",
                     "--no-plots", "--threads", "1", "-o", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------------------------
# Hostile YAML files


def billion_laughs(levels: int = 9) -> str:
    lines = ["model_args:", '  x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"  x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_yaml_alias_expansion_is_refused_quickly(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    # on a library that accepts it, to_dict() (dataclasses.asdict) expands 9**9 strings: run it apart
    code = ("from wavevision.engine.config import resolve_config\n"
            "try:\n"
            f"    resolve_config({str(path)!r}).to_dict()\n"
            "except ValueError as e:\n"
            "    print('refused:', e)\n")
    done = in_subprocess(code, 60, "refusing a YAML file of nested aliases")
    out = done.stdout.strip()
    assert out.startswith("refused:") and str(path) in out and "alias" in out and "\n" not in out, done


def test_yaml_anchors_and_merge_keys_are_refused(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("base: &base {lr: 0.1}\nother:\n  <<: *base\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} uses YAML aliases \(\*base\)"):
        load_yaml(path)
    path.write_text("lr: &rate 0.1\nmin_lr: *rate\n")
    with pytest.raises(ValueError, match=r"uses YAML aliases \(\*rate\).*write the values out"):
        load_yaml(path)
    with pytest.raises(ValueError, match=r"aliases"):
        parse_assignments(["x=[&a [1, 2], *a]"], "--model-arg")


def test_yaml_file_size_is_limited(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (2 << 20) + b"\nlr: 0.1\n")
    with pytest.raises(ValueError, match=r"big.yaml is 2,097,\d+ bytes, more than the 1,048,576"):
        load_yaml(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_yaml_from_a_fifo_or_device_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"pipe.yaml is a FIFO, not a regular file"):
        finishes(lambda: load_yaml(fifo), 30, "reading a FIFO as a configuration file")
    with pytest.raises(ValueError, match=r"/dev/zero is a device, not a regular file"):
        finishes(lambda: load_yaml("/dev/zero"), 30, "reading /dev/zero as a configuration file")


@pytest.mark.slow
def test_yaml_nested_too_deeply_is_a_one_line_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("model_args: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} is nested too deeply"):
        load_yaml(path)
    path.write_text("model_args: {a: " + "[" * 30 + "]" * 30 + "}\n")
    with pytest.raises(ValueError, match=r"model_args.a is nested more than 16 levels deep"):
        resolve_config(path)


def test_field_kinds_read_the_same_in_both_annotation_spellings():
    """The PEP 604/585 rewrite of annotations (ruff UP006/UP045) must not change what a field accepts."""
    import dataclasses
    from typing import Any, Dict, List, Optional  # noqa: UP035 - the old spelling on purpose

    from wavevision.engine.config import _check_value, field_kind

    @dataclasses.dataclass
    class Old:  # the old spelling on purpose
        a: Optional[int] = None  # noqa: UP045
        b: List[int] = dataclasses.field(default_factory=list)  # noqa: UP006
        c: Dict[str, Any] = dataclasses.field(default_factory=dict)  # noqa: UP006

    @dataclasses.dataclass
    class New:
        a: int | None = None
        b: list[int] = dataclasses.field(default_factory=list)
        c: dict[str, Any] = dataclasses.field(default_factory=dict)

    old, new = dataclasses.fields(Old), dataclasses.fields(New)
    assert [field_kind(f) for f in old] == [field_kind(f) for f in new] == ["int|None", "list[int]", "dict[str,Any]"]
    for o, n in zip(old, new, strict=True):
        for value in (None, ["3"], {"k": 1}, "7"):
            outcome = []
            for f in (o, n):
                try:
                    outcome.append(_check_value(f, value, str))
                except ValueError as e:
                    outcome.append(str(e))
            assert outcome[0] == outcome[1], (f.name, value, outcome)
    assert _check_value(new[0], "7", str) == 7 and _check_value(new[1], ["3"], str) == [3]
