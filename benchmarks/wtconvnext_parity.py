"""WTConvNeXt parity: wavevision's WTConvNeXt-T/S/B against the public model (BGU-CS-VIL/WTConv).

The public ``wtconvnext/wtconvnext.py`` registers ``wtconvnext_tiny/small/base`` in timm's
registry when imported; the script builds each through ``timm.create_model`` and ours through
``wavevision.create_model``, both from the same seed, and

* writes ``benchmarks/results/wtconvnext_parity.json`` (``--out``): per model the parameter
  counts of both sides (all, and trainable: the wavelet filters are stored but not trained),
  whether the state-dict keys (in order) and shapes are equal, whether the seeded
  initialisations are equal bit for bit, the largest absolute difference of the logits and of
  the unpooled features after loading the public state dict into ours (eval mode, float32, two
  224x224 images), and the multiply-accumulates of both at 224 (``FlopCounterMode`` / 2, the
  project's measure; the public code runs its Haar transform as strided convolutions, which the
  counter counts, ours runs the Haar kernels, which it does not);
* writes the test fixture ``tests/data/wtconvnext_public.pt.gz`` (``--fixture``, ``torch.save``
  gzipped): the key names, shapes and parameter counts of the public T/S/B, and a reduced
  configuration of the same public class (depths (1, 1, 1, 1), dims (4, 8, 12, 16), 10 classes):
  its state dict (packed as keys, shapes and flat tensors: the trained weights rounded to float16
  values and stored as float16, the wavelet filters in float32), a 97x101 input (bytes b, the image b / 128 - 1) and the public outputs
  for it in float64 (logits, unpooled features; the four stage maps in float32).
  ``tests/test_wtconvnext.py`` loads it, so CI needs no copy of the public code.

Before the outputs are compared, the public model's trainable parameters are moved away from
their initial values (seeded; layer scales and WTConv scales drawn in [0.5, 1.5)): at
initialisation the layer scale of 1e-6 would hide every block's contribution.

    python benchmarks/wtconvnext_parity.py                  # public code at /work/ext/WTConv
    python benchmarks/wtconvnext_parity.py --public DIR --models wtconvnext_tiny
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

import wavevision
from wavevision.bench.complexity import count_macs, count_parameters
from wavevision.models import load_state_dict_strict

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("wtconvnext_tiny", "wtconvnext_small", "wtconvnext_base")
REDUCED: dict[str, Any] = dict(depths=(1, 1, 1, 1), dims=(4, 8, 12, 16), num_classes=10)
REDUCED_INPUT = (1, 3, 97, 101)  # odd sides: every level of stages 1-2 pads
PUBLIC_FILES = ("wtconvnext/wtconvnext.py", "wtconv/wtconv2d.py", "wtconv/util/wavelet.py")


def import_public(public: Path) -> Any:
    """timm, with the public model registered in its registry (``import wtconvnext``)."""
    if not (public / "wtconvnext" / "wtconvnext.py").is_file():
        raise SystemExit(f"{public} has no wtconvnext/wtconvnext.py; pass --public DIR (a copy of BGU-CS-VIL/WTConv)")
    sys.path.insert(0, str(public))
    import timm
    import wtconvnext  # noqa: F401  (registers wtconvnext_tiny/small/base with timm)

    return timm


def perturb(model: nn.Module, seed: int, half_exact: bool = False) -> None:
    """Move the trainable parameters away from their initial values so every path counts: layer
    scales and WTConv scales in [0.5, 1.5), other vectors (norms, biases) +- 0.1, weights +- 0.02;
    ``half_exact`` rounds them to float16 values (then stored as float16 without loss)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:  # the wavelet filters are fixed
                continue
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if name.endswith("gamma") or "scale" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g, dtype=p.dtype))
            elif p.dim() == 1:
                p.add_(0.1 * noise)
            else:
                p.add_(0.02 * noise)
            if half_exact:
                p.copy_(p.half().float())


def pack_state(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A float32 state dict as its keys, shapes and two flat tensors of its values: float16 for the
    tensors whose values are all float16 values (``half`` flags them), float32 for the others."""
    half = [bool(torch.equal(v, v.half().float())) for v in state.values()]
    values = [v.detach().flatten() for v in state.values()]
    return {"keys": list(state), "shapes": [list(v.shape) for v in state.values()], "half": half,
            "float16": torch.cat([v.half() for v, h in zip(values, half) if h]),
            "float32": torch.cat([v for v, h in zip(values, half) if not h])}


def _shapes(model: nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def _stage_maps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The public model's logits, unpooled features and each stage's output (forward hooks)."""
    maps: list[torch.Tensor] = []
    hooks = [s.register_forward_hook(lambda _m, _i, out: maps.append(out)) for s in model.stages]
    try:
        with torch.no_grad():
            logits = model(x)
            features = model.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    return logits, features, maps[: len(model.stages)]


def compare(timm: Any, name: str, seed: int) -> tuple[dict[str, Any], list[tuple[str, list[int]]]]:
    torch.manual_seed(seed)
    public = timm.create_model(name).eval()
    torch.manual_seed(seed)
    ours = wavevision.create_model(name).eval()
    pub_sd, our_sd = public.state_dict(), ours.state_dict()
    init_equal = list(pub_sd) == list(our_sd) and all(torch.equal(pub_sd[k], our_sd[k]) for k in pub_sd)
    perturb(public, seed + 1)
    load_state_dict_strict(ours, public.state_dict(), source=f"public {name}")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(seed + 2))
    with torch.no_grad():
        logits_p, logits_o = public(x), ours(x)
        feats_p, feats_o = public.forward_features(x), ours.forward_features(x)
    row = {
        "model": name,
        "params_public": count_parameters(public), "params_ours": count_parameters(ours),
        "trainable_public": count_parameters(public, trainable_only=True),
        "trainable_ours": count_parameters(ours, trainable_only=True),
        "keys_equal": list(pub_sd) == list(our_sd),
        "shapes_equal": _shapes(public) == _shapes(ours),
        "init_equal": init_equal,
        "max_abs_diff_logits": float((logits_p - logits_o).abs().max()),
        "max_abs_diff_features": float((feats_p - feats_o).abs().max()),
        "max_abs_logit": float(logits_p.abs().max()),
        "macs_public": count_macs(public, (3, 224, 224)),
        "macs_ours": count_macs(ours, (3, 224, 224)),
        "macs_registered": wavevision.get_pretrained_cfg(name)["macs"],
        "params_registered": wavevision.get_pretrained_cfg(name)["params"],
    }
    return row, _shapes(public)


def reduced_fixture(timm: Any, seed: int) -> dict[str, Any]:
    """The reduced public model's packed state dict (float16-exact values, stored as float16), an
    input (bytes b, the image b / 128 - 1) and the public outputs for it in float64 (the stage maps
    in float32)."""
    torch.manual_seed(seed)
    public = timm.create_model("wtconvnext_tiny", **REDUCED).eval()
    perturb(public, seed + 1, half_exact=True)
    state = public.state_dict()
    image = torch.randint(0, 256, REDUCED_INPUT, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.uint8)
    logits, features, maps = _stage_maps(public.double(), image.double() / 128 - 1)
    return {"args": dict(REDUCED), "state": pack_state(state), "input": image,
            "logits": logits, "features": features, "stages": [m.float() for m in maps]}


def file_hashes(public: Path) -> dict[str, str]:
    return {f: hashlib.sha256((public / f).read_bytes()).hexdigest() for f in PUBLIC_FILES if (public / f).is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", type=Path, default=Path("/work/ext/WTConv"), help="a copy of BGU-CS-VIL/WTConv")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "wtconvnext_parity.json")
    parser.add_argument("--fixture", type=Path, default=ROOT / "tests" / "data" / "wtconvnext_public.pt.gz")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    timm = import_public(args.public)

    rows, keys = [], {}
    for name in args.models:
        start = time.perf_counter()
        row, shapes = compare(timm, name, args.seed)
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        keys[name] = {"keys": [k for k, _ in shapes], "shapes": [s for _, s in shapes],
                      "params": row["params_public"], "trainable": row["trainable_public"], "macs": row["macs_public"]}
        print(f"{name}: params {row['params_public']:,} / {row['params_ours']:,}, keys {row['keys_equal']}, shapes "
              f"{row['shapes_equal']}, init {row['init_equal']}, max |logits diff| {row['max_abs_diff_logits']:.2e} "
              f"(logits up to {row['max_abs_logit']:.1f}), MACs {row['macs_public']:,} / {row['macs_ours']:,}",
              flush=True)

    fixture = {"models": keys, "reduced": reduced_fixture(timm, args.seed)}
    if set(args.models) == set(MODELS):  # the fixture holds all three: written only from a full run
        args.fixture.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(fixture, buffer)  # gzip: the key names repeat (about 16 KB instead of 110 KB)
        args.fixture.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
        print(f"wrote {args.fixture} ({args.fixture.stat().st_size:,} bytes)")
    record = {
        "what": "WTConvNeXt-T/S/B: wavevision against the public model built through timm, after loading its state dict",
        "input": "2x3x224x224 float32, eval mode; public trainable parameters perturbed (seeded) before loading",
        "public": {"repo": "https://github.com/BGU-CS-VIL/WTConv", "sha256": file_hashes(args.public)},
        "timm": timm.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "seed": args.seed, "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
