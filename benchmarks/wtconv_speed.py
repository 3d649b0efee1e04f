"""WTConv speed: wavevision's WTConv2d against the public one, forward + backward, side by side.

Both sides get the same weights (ours, as create_model builds it: the accel pass applied, loads
the public module's state dict), the same input and
the same incoming gradient; each round runs every side once, the order rotating from round to
round, so that load from other processes hits both alike. The table shows the medians of the
wall time, the ratio ours / public (below 1: ours is faster) of the wall time and of the process's
CPU time (all threads; less sensitive to other processes on a shared machine), the memory each
side holds for backward and the largest output difference (the two sides compute the same function).

Cases (WTConvNeXt's first and third stage at 224x224, db1 as released): C=96 at 56x56 and C=384
at 14x14, batch 8, kernel 5, levels 1-5 (14x14 takes at most 4: :func:`max_wtconv_levels`).

* ``--device cpu`` (default): the public PyTorch module ``wtconv/wtconv2d.py``; memory is what
  autograd saves for backward (unique storages, counted with saved-tensor hooks);
* ``--device cuda --backend triton``: the public Triton module ``fast_wtconv/wtconv_triton.py``
  (its own parameter names, mapped from ours), db1 only; memory is the CUDA peak of fwd+bwd
  above the inputs. ``--backend pytorch`` on CUDA compares with the plain public module.

A last table times a lone depthwise 5x5 convolution (forward + backward) in NCHW and in
channels-last over channel counts and map sizes: the measurement behind the layer's choice of
memory format (``CHANNELS_LAST_MIN_PIXELS`` in ``wavevision.accel.wtconv``).

The script re-executes itself with ``OMP_WAIT_POLICY=PASSIVE`` unless that is set (idle OpenMP
threads then sleep instead of spinning, which matters on a shared machine).

    python benchmarks/wtconv_speed.py                                  # CPU, db1, all cases
    python benchmarks/wtconv_speed.py --wavelets db1 db2 --repeats 20
    python benchmarks/wtconv_speed.py --device cuda --backend triton   # on a GPU with Triton
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from wavevision.accel import accelerate
from wavevision.layers.wtconv import WTConv2d, max_wtconv_levels

ROOT = Path(__file__).resolve().parents[1]
CASES = [(96, 56, 8), (384, 14, 8)]  # (channels, side, batch)


def _public_class(public: Path, backend: str, device: str) -> type[nn.Module]:
    if not (public / "wtconv" / "wtconv2d.py").is_file():
        sys.exit(f"no public WTConv code at {public} (expected wtconv/wtconv2d.py); pass --public DIR")
    sys.path.insert(0, str(public))
    if backend == "pytorch":
        from wtconv.wtconv2d import WTConv2d as Public

        return Public
    if device != "cuda":
        sys.exit("--backend triton runs on CUDA only: add --device cuda (on a machine with an NVIDIA GPU)")
    try:
        import triton  # noqa: F401
        from fast_wtconv.wtconv_triton import WTConv2d as Triton
    except ImportError as e:
        sys.exit(f"the Triton backend needs triton and the public fast_wtconv package ({e}); pip install triton")
    return Triton


def _build(public_cls: type[nn.Module], backend: str, c: int, levels: int, wavelet: str, device: torch.device,
           g: torch.Generator) -> tuple[nn.Module, nn.Module]:
    """(ours, public) with the same random weights (scales near their init, either sign)."""
    ours = WTConv2d(c, c, 5, wt_levels=levels, wt_type=wavelet)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if p.requires_grad:
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * (0.4 if "scale" in name else 1 / p[0].numel() ** 0.5))
    if backend == "pytorch":
        public = public_cls(c, c, 5, 1, True, levels, wavelet)
        public.load_state_dict(ours.state_dict())
    else:  # fast_wtconv's Triton module: (in, out, kernel_size, stride, wt_levels, bias), its own names
        public = public_cls(c, c, kernel_size=5, stride=1, wt_levels=levels, bias=True)
        state = {"base_weight": ours.base_conv.weight, "base_bias": ours.base_conv.bias,
                 "base_scale": ours.base_scale.weight}
        for i in range(levels):
            state[f"wt_weights.{i}"] = ours.wavelet_convs[i].weight
            state[f"wt_scales.{i}"] = ours.wavelet_scale[i].weight
        public.load_state_dict(state)
    return accelerate(ours).to(device), public.to(device)  # ours as create_model builds it (the accel pass)


def _saved_mb(run: Callable[[], torch.Tensor]) -> float:
    """MB of the unique storages autograd saves for backward during ``run`` (the forward)."""
    seen: dict[Any, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values()) / 2**20


def _cuda_peak_mb(step: Callable[[], None], device: torch.device) -> float:
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def measure(public_cls: type[nn.Module], backend: str, wavelet: str, c: int, side: int, batch: int, levels: int,
            device: torch.device, warmup: int, repeats: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(levels)
    ours, public = _build(public_cls, backend, c, levels, wavelet, device, g)
    x = torch.randn(batch, c, side, side, generator=g).to(device).requires_grad_()
    dy = torch.randn(batch, c, side, side, generator=g).to(device)
    sides = {"ours": ours, "public": public}
    with torch.no_grad():
        diff = float((ours(x) - public(x)).abs().max())

    def step(m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            x.grad = None
            m.zero_grad(set_to_none=True)
            m(x).backward(dy)
        return run

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    for r in range(warmup + repeats):
        for name in names[r % 2:] + names[: r % 2]:  # alternate which side goes first
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            step(sides[name])()
            sync()
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    if device.type == "cuda":
        memory = {k: _cuda_peak_mb(step(m), device) for k, m in sides.items()}
    else:
        memory = {k: _saved_mb(lambda m=m: m(x)) for k, m in sides.items()}
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    cpu_med = {k: statistics.median(v) * 1e3 for k, v in cpu.items()}
    return {"wavelet": wavelet, "channels": c, "side": side, "batch": batch, "levels": levels,
            "ours_ms": med["ours"], "public_ms": med["public"], "ratio": med["ours"] / med["public"],
            "ours_cpu_ms": cpu_med["ours"], "public_cpu_ms": cpu_med["public"],
            "cpu_ratio": cpu_med["ours"] / cpu_med["public"],
            "ours_mb": memory["ours"], "public_mb": memory["public"], "max_abs_diff": diff}


def depthwise_formats(device: torch.device, warmup: int, repeats: int) -> list[dict[str, Any]]:
    """A depthwise 5x5 convolution's forward + backward (weight gradient included) in NCHW and in
    channels-last, over channel counts and map sizes: the measurement behind ``CHANNELS_LAST_MIN_PIXELS``."""
    rows = []
    g = torch.Generator().manual_seed(0)
    # WTConvNeXt-T's maps at 224x224: base convolutions (C = 96 at 56x56 down to 768 at 7x7) and
    # level convolutions (4C channels on half the side and less).
    pairs = [(96, 14), (96, 28), (96, 56), (384, 7), (384, 14), (384, 28), (768, 7), (1536, 4), (1536, 7),
             (3072, 2), (3072, 4)]
    for c, side in pairs:
        w = torch.randn(c, 1, 5, 5, generator=g).to(device).requires_grad_()
        base = torch.randn(8, c, side, side, generator=g).to(device)
        inputs = {"nchw": base.clone().requires_grad_(),
                  "channels_last": base.contiguous(memory_format=torch.channels_last).requires_grad_()}
        times: dict[str, list[float]] = {k: [] for k in inputs}
        for r in range(warmup + repeats):
            for name in list(inputs)[r % 2:] + list(inputs)[: r % 2]:
                t0 = time.perf_counter()
                torch.nn.functional.conv2d(inputs[name], w, None, 1, "same", 1, c).sum().backward()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if r >= warmup:
                    times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        rows.append({"channels": c, "side": side, "batch": 8, "nchw_ms": med["nchw"],
                     "channels_last_ms": med["channels_last"], "ratio": med["channels_last"] / med["nchw"]})
        print(f"depthwise 5x5, C={c:>4}, {side:>2}x{side:<2}, batch 8: NCHW {med['nchw']:7.2f} ms, channels-last "
              f"{med['channels_last']:7.2f} ms, channels-last / NCHW {rows[-1]['ratio']:.2f}", flush=True)
    return rows


def _reexec_passive() -> None:
    if os.environ.get("OMP_WAIT_POLICY"):
        return
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--public", type=Path, default=Path("/work/ext/WTConv"), help="checkout of BGU-CS-VIL/WTConv")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--backend", choices=["pytorch", "triton"], default="pytorch",
                    help="the public side: wtconv/wtconv2d.py, or fast_wtconv's Triton module (CUDA)")
    ap.add_argument("--wavelets", nargs="+", default=["db1"])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--no-depthwise", dest="depthwise", action="store_false",
                    help="skip the NCHW / channels-last table of a lone depthwise convolution")
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON (default benchmarks/results/wtconv_speed.json on CPU, wtconv_speed_cuda.json on CUDA)")
    a = ap.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here (torch.cuda.is_available() is False); run on a GPU machine")
    if a.backend == "triton" and a.wavelets != ["db1"]:
        sys.exit("the Triton backend is Haar only: use --wavelets db1")
    if a.threads:
        torch.set_num_threads(a.threads)
    public_cls = _public_class(a.public.resolve(), a.backend, a.device)
    device = torch.device(a.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    memory = "CUDA peak MB" if a.device == "cuda" else "MB saved for bwd"
    print(f"WTConv2d fwd+bwd, float32, {a.device}, public {a.backend}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"load {load}; medians of {a.repeats} alternating rounds")
    print(f"{'wavelet':7} {'C':>4} {'HxW':>7} {'B':>2} {'lv':>2} {'ours ms':>9} {'public ms':>9} {'ours/pub':>8} "
          f"{'CPU-time ours/pub':>17} {'ours ' + memory:>22} {'public ' + memory:>24} {'max diff':>9}")
    for wavelet in a.wavelets:
        for c, side, batch in CASES:
            for levels in a.levels:
                if levels > max_wtconv_levels(side):
                    continue
                r = measure(public_cls, a.backend, wavelet, c, side, batch, levels, device, a.warmup, a.repeats)
                rows.append(r)
                print(f"{wavelet:7} {c:>4} {f'{side}x{side}':>7} {batch:>2} {levels:>2} {r['ours_ms']:9.1f} "
                      f"{r['public_ms']:9.1f} {r['ratio']:8.2f} {r['cpu_ratio']:17.2f} {r['ours_mb']:22.1f} {r['public_mb']:24.1f} "
                      f"{r['max_abs_diff']:9.1e}", flush=True)
    depthwise = depthwise_formats(device, a.warmup, a.repeats) if a.depthwise else []
    result = {
        "what": "WTConv2d forward+backward, float32: ours against the public module, same weights and input",
        "public": "BGU-CS-VIL/WTConv " + ("wtconv/wtconv2d.py" if a.backend == "pytorch" else "fast_wtconv/wtconv_triton.py"),
        "device": a.device if a.device == "cpu" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_before": load, "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "repeats": a.repeats, "memory": memory, "rows": rows, "depthwise": depthwise,
    }
    out = a.out or ROOT / "benchmarks" / "results" / ("wtconv_speed.json" if a.device == "cpu" else "wtconv_speed_cuda.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    _reexec_passive()
    raise SystemExit(main())
