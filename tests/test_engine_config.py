"""Training configuration: defaults, recipes, YAML and flag precedence, clear errors."""
from __future__ import annotations

import pytest

from wavevision.engine.config import RECIPES, TrainConfig, config_diff, parse_assignments, resolve_config


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
