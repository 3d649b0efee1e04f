"""WTConv parity: wavevision's WTConv2d / WTConv1d against the public modules (BGU-CS-VIL/WTConv).

For each case (wavelet, levels, stride, channels, kernel size, input size) the script builds the
public module, gives its trainable parameters random values near their trained range (a
seeded generator), and

* writes the test fixture ``tests/data/wtconv_public.pt`` (``--fixture``): per case the
  constructor arguments, the public parameter counts, its full state dict (float32, the
  wavelet filters included), a float32 input and the public output computed in float64
  (the public module cast with ``.double()``); each state dict is packed as its keys, shapes
  and one flat tensor of values (``pack_state``). ``tests/test_wtconv.py`` loads it, so CI needs
  no copy of the public code;
* writes ``benchmarks/results/wtconv_parity.json`` (``--out``): per case the parameter counts
  of both sides and the largest absolute difference of the outputs, ours against the public
  module, in float32 and in float64, and the largest output magnitude for scale.

    python benchmarks/wtconv_parity.py                   # public code at /work/ext/WTConv
    python benchmarks/wtconv_parity.py --public DIR --fixture tests/data/wtconv_public.pt
"""
from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from wavevision.layers.wtconv import WTConv1d, WTConv2d

ROOT = Path(__file__).resolve().parents[1]

# (wavelet, wt_levels, stride, channels, kernel_size, bias, input (B, C, H, W) spatial size)
CASES_2D: list[tuple[str, int, int, int, int, bool, tuple[int, int]]] = [
    ("db1", 0, 1, 3, 5, True, (9, 11)),
    ("db1", 1, 1, 3, 5, True, (12, 16)),
    ("db1", 1, 2, 4, 3, False, (13, 15)),
    ("db1", 2, 1, 2, 7, True, (11, 14)),
    ("db1", 3, 2, 3, 5, True, (15, 21)),
    ("db1", 4, 1, 2, 4, True, (10, 13)),
    ("db1", 5, 1, 2, 5, True, (17, 19)),
    ("db1", 5, 2, 1, 3, True, (23, 18)),
    ("haar", 2, 1, 2, 5, True, (9, 10)),
    ("db2", 0, 2, 2, 5, True, (9, 8)),
    ("db2", 1, 1, 3, 5, True, (12, 14)),
    ("db2", 1, 2, 2, 3, True, (11, 13)),
    ("db2", 2, 1, 2, 5, False, (13, 10)),
    ("db2", 3, 1, 2, 5, True, (15, 17)),
    ("db2", 4, 2, 2, 3, True, (9, 14)),
    ("db2", 5, 1, 1, 5, True, (17, 20)),
    ("db2", 5, 2, 2, 3, True, (21, 17)),
    ("db3", 2, 1, 2, 5, True, (11, 12)),
    ("db3", 3, 2, 1, 3, True, (13, 9)),
    ("sym4", 2, 1, 2, 5, True, (10, 13)),
    ("sym4", 4, 1, 1, 3, True, (11, 16)),
]
# (wavelet, wt_levels, stride, channels, kernel_size, bias, length)
CASES_1D: list[tuple[str, int, int, int, int, bool, int]] = [
    ("db1", 0, 1, 3, 5, True, 17),
    ("db1", 1, 1, 3, 5, True, 20),
    ("db1", 3, 2, 2, 3, True, 23),
    ("db1", 5, 1, 2, 5, False, 33),
    ("db2", 1, 2, 3, 5, True, 19),
    ("db2", 3, 1, 2, 5, True, 26),
    ("db3", 2, 1, 2, 3, True, 15),
]


def public_modules(public: Path) -> tuple[type[nn.Module], type[nn.Module]]:
    """The public WTConv2d and WTConv1d classes, imported from the ``public`` checkout."""
    if not (public / "wtconv" / "wtconv2d.py").is_file():
        sys.exit(f"no public WTConv code at {public} (expected wtconv/wtconv2d.py there); "
                 "pass --public DIR with a checkout of BGU-CS-VIL/WTConv")
    sys.path.insert(0, str(public))
    return importlib.import_module("wtconv.wtconv2d").WTConv2d, importlib.import_module("wtconv.wtconv1d").WTConv1d


def randomise(module: nn.Module, g: torch.Generator) -> None:
    """Trainable parameters near a trained layer's range: convs around their init, scales around
    theirs with either sign, so that every level contributes visibly to the output."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("base_scale"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.startswith("wavelet_scale"):
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 1.2)
            elif name.endswith("bias"):
                p.copy_(torch.rand(p.shape, generator=g) - 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)


def counts(module: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    return (sum(p.numel() for p in module.parameters()),
            sum(p.numel() for p in module.parameters() if p.requires_grad))


def pack_state(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A state dict as its keys, their shapes and all values in one flat float32 tensor (one record
    in the fixture file instead of one per tensor: a third of the size); ``unpack_state`` inverts it."""
    return {"keys": list(state), "shapes": [list(v.shape) for v in state.values()],
            "values": torch.cat([v.detach().reshape(-1).float() for v in state.values()])}


def run_case(public_cls: type[nn.Module], ours_cls: type[nn.Module], args: dict[str, Any], shape: tuple[int, ...],
             g: torch.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fixture entry, results row) of one case."""
    pub = public_cls(**args)
    randomise(pub, g)
    ours = ours_cls(**args)
    ours.load_state_dict(pub.state_dict(), strict=True)
    x = torch.randn(shape, generator=g)
    with torch.no_grad():
        want64 = pub.double()(x.double())
        got64 = ours.double()(x.double())
        want32 = pub.float()(x)
        got32 = ours.float()(x)
    state = pub.float().state_dict()
    n_all, n_train = counts(pub)
    ours_all, ours_train = counts(ours)
    entry = {"args": dict(args), "params": n_all, "trainable": n_train, **pack_state(state), "input": x.clone(),
             "output": want64.clone()}
    row = {**args, "input": list(shape), "params_public": n_all, "params_ours": ours_all,
           "trainable_public": n_train, "trainable_ours": ours_train,
           "max_abs_diff_float32": float((got32 - want32).abs().max()),
           "max_abs_diff_float64": float((got64 - want64).abs().max()),
           "max_abs_output": float(want64.abs().max())}
    return entry, row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--public", type=Path, default=Path("/work/ext/WTConv"), help="checkout of BGU-CS-VIL/WTConv")
    ap.add_argument("--fixture", type=Path, default=ROOT / "tests" / "data" / "wtconv_public.pt")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "wtconv_parity.json")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    public_2d, public_1d = public_modules(a.public.resolve())
    torch.set_num_threads(1)  # the results must not depend on the machine's thread count
    g = torch.Generator().manual_seed(a.seed)
    entries: dict[str, list[dict[str, Any]]] = {"2d": [], "1d": []}
    rows: list[dict[str, Any]] = []
    for wt, levels, stride, c, k, bias, (h, w) in CASES_2D:
        args = dict(in_channels=c, out_channels=c, kernel_size=k, stride=stride, bias=bias, wt_levels=levels, wt_type=wt)
        entry, row = run_case(public_2d, WTConv2d, args, (1, c, h, w), g)
        entries["2d"].append(entry)
        rows.append({"layer": "WTConv2d", **row})
    for wt, levels, stride, c, k, bias, n in CASES_1D:
        args = dict(in_channels=c, out_channels=c, kernel_size=k, stride=stride, bias=bias, wt_levels=levels, wt_type=wt)
        entry, row = run_case(public_1d, WTConv1d, args, (2, c, n), g)
        entries["1d"].append(entry)
        rows.append({"layer": "WTConv1d", **row})
    a.fixture.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.fixture.with_suffix(".tmp")
    torch.save({"source": "BGU-CS-VIL/WTConv (wtconv/wtconv2d.py, wtconv/wtconv1d.py)", "seed": a.seed, **entries}, tmp)
    tmp.replace(a.fixture)
    worst32 = max(r["max_abs_diff_float32"] for r in rows)
    worst64 = max(r["max_abs_diff_float64"] for r in rows)
    result = {
        "what": "WTConv2d / WTConv1d: ours against the public modules after loading their state dicts",
        "public": "BGU-CS-VIL/WTConv wtconv/wtconv2d.py, wtconv/wtconv1d.py",
        "torch": torch.__version__, "python": platform.python_version(), "seed": a.seed,
        "params_equal": all(r["params_public"] == r["params_ours"] and r["trainable_public"] == r["trainable_ours"]
                            for r in rows),
        "worst_float32": worst32, "worst_float64": worst64, "cases": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'layer':9} {'wavelet':7} {'lv':>2} {'s':>1} {'C':>2} {'k':>1} {'input':>9} {'params':>7} "
          f"{'fp32 diff':>9} {'fp64 diff':>9}")
    for r in rows:
        size = "x".join(str(n) for n in r["input"][2:])
        print(f"{r['layer']:9} {r['wt_type']:7} {r['wt_levels']:>2} {r['stride']:>1} {r['in_channels']:>2} "
              f"{r['kernel_size']:>1} {size:>9} {r['params_ours']:>7} {r['max_abs_diff_float32']:9.1e} "
              f"{r['max_abs_diff_float64']:9.1e}")
    print(f"parameter counts equal: {result['params_equal']}; worst |diff| float32 {worst32:.1e}, float64 {worst64:.1e}")
    print(f"wrote {a.fixture} ({a.fixture.stat().st_size / 1024:.0f} KB) and {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
