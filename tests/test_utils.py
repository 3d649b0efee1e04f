"""Shared helpers: atomic files, CSV/JSON records, tables, device and dtype parsing, the CLI frame."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch

from wavevision.bench import count_macs, count_parameters
from wavevision.cli import main
from wavevision.utils import (
    append_jsonl,
    atomic_write_text,
    available_devices,
    format_table,
    parse_dtype,
    resolve_device,
    write_csv,
    write_json,
)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.txt"]


def test_json_csv_jsonl_records(tmp_path):
    write_json(tmp_path / "r.json", {"x": torch.tensor(1.5), "p": tmp_path})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1.5, "p": str(tmp_path)}
    write_csv(tmp_path / "r.csv", [{"a": 1, "b": None}, {"a": 2, "c": "z"}])
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert rows == [{"a": "1", "b": "", "c": ""}, {"a": "2", "b": "", "c": "z"}]
    append_jsonl(tmp_path / "log.jsonl", {"epoch": 1})
    append_jsonl(tmp_path / "log.jsonl", {"epoch": 2})
    assert [json.loads(line)["epoch"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_format_table_aligns_numbers():
    text = format_table([{"name": "a", "n": 1234567}, {"name": "bbb", "n": 5}], headers={"n": "params"})
    lines = text.splitlines()
    assert lines[0].split() == ["name", "params"]
    assert lines[2].endswith("1,234,567") and lines[3].endswith("5")
    assert len(lines[2]) == len(lines[3])


def test_devices_and_dtypes():
    assert available_devices()[0] == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {n.split(":")[0] for n in available_devices()}
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match="not available on this machine; available here: cpu"):
        resolve_device(f"cuda:{n}")
    with pytest.raises(ValueError, match="invalid device"):
        resolve_device("gpu0")
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype("float16") is torch.float16
    with pytest.raises(ValueError, match="unknown dtype 'int3'; choose one of"):
        parse_dtype("int3")


def test_count_macs_by_hand():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    lin = torch.nn.Linear(8, 5)
    model = torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), lin)
    assert count_macs(model, (3, 10, 12)) == 8 * 3 * 9 * 10 * 12 + 8 * 5
    assert count_macs(model, torch.zeros(2, 3, 10, 12)) == 2 * (8 * 3 * 9 * 10 * 12 + 8 * 5)
    assert count_parameters(model) == 8 * 3 * 9 + 8 * 5 + 5
    model.train()
    count_macs(model, (3, 4, 4))
    assert model.training
    with pytest.raises(ValueError, match="input size must be"):
        count_macs(model, (0, 3))


def test_cli_without_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_entry_points():
    out = subprocess.run([sys.executable, "-m", "wavevision", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("wavevision ")


def test_atomic_write_honours_the_umask(tmp_path):
    import os
    import stat as st

    from wavevision.utils.io import write_json

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        write_json(tmp_path / "b.json", {})
        append_jsonl(tmp_path / "c.jsonl", {})
        modes = {p.name: st.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    finally:
        os.umask(old)
    assert modes == {"a.txt": 0o644, "b.json": 0o644, "c.jsonl": 0o644}


def test_read_bytes_refuses_special_files_and_oversized_ones(tmp_path):
    import os

    from wavevision.utils.io import read_bytes, read_text

    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is a FIFO, not a regular file"):
        read_text(fifo, max_bytes=1000, what="run config")  # returns at once, no writer needed
    link = tmp_path / "state.pt"
    link.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="state.pt is a device"):
        read_bytes(link, max_bytes=1000)
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(ValueError, match="2,000 bytes, more than the 1,000"):
        read_bytes(big, max_bytes=1000)
    assert read_bytes(big, max_bytes=2000) == b"x" * 2000
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        read_bytes(tmp_path / "missing.json", max_bytes=10)
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not UTF-8 text"):
        read_text(tmp_path / "bin", max_bytes=10)


def test_check_memory_names_the_estimate_and_the_fix():
    from wavevision.utils.memory import available_memory, check_memory, format_bytes

    assert format_bytes(1536 * 1024**2) == "1.5 GiB"
    check_memory(10, "a tiny tensor", "nothing", available=100)
    with pytest.raises(MemoryError, match=r"resizing 10 images would need about 2.0 GiB, more than the 1.0 GiB .*smaller"):
        check_memory(2 * 1024**3, "resizing 10 images", "use a smaller image_size", available=1024**3)
    avail = available_memory()
    assert avail is None or avail > 0
