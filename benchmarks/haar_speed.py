"""Haar DWT speed: wavevision against pytorch_wavelets and the memory-bandwidth floor.

Forward + backward, float32, default shape (32, 48, 56, 56), for one level, three levels and
the inverse. Sides: ``pytorch_wavelets.DWTForward(J, wave='haar', mode='zero')`` (and
``DWTInverse``) in eager mode, wavevision eager, wavevision under ``torch.compile``, and the
floor: the time to copy the input once and the incoming gradients once (``clone()``).
Timings are interleaved (every side once per round, rotating the order) so that load from
other processes hits all sides alike; the table shows medians and the ratios

* ``pw / eager``: how many times faster wavevision's eager transform is (target >= 4 for one level);
* ``compiled / floor``: the compiled transform's distance to the copy floor (target <= 3).

Each result here is a fresh 77 MB tensor; glibc serves allocations that large with ``mmap`` and
returns them on free, so every call would also pay for page faults on fresh zero pages, which
swamps a memory-bound kernel and varies from run to run. Unless ``--system-malloc`` is given,
the script re-executes itself with ``GLIBC_TUNABLES`` raising glibc's mmap and trim thresholds,
so every side reuses its memory (as PyTorch's caching allocator does on GPUs).

    python benchmarks/haar_speed.py                     # CPU, all cases
    python benchmarks/haar_speed.py --no-compile --repeats 30
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from wavevision.ops import haar_dwt2, haar_idwt2, haar_wavedec2


def _pytorch_wavelets():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its pkg_resources import warns
        try:
            from pytorch_wavelets import DWTForward, DWTInverse
        except ImportError as e:
            sys.exit(f"pytorch_wavelets is needed for the comparison ({e}); pip install pytorch-wavelets 'setuptools<81'")
    return DWTForward, DWTInverse


def _cases(shape, device, compile_: bool) -> dict[str, dict[str, Callable[[], None]]]:
    """case -> side -> a function running forward + backward once."""
    DWTForward, DWTInverse = _pytorch_wavelets()
    n, c, h, w = shape
    g = torch.Generator().manual_seed(0)

    def rand(*s):
        return torch.randn(*s, generator=g).to(device)

    x = rand(n, c, h, w).requires_grad_()
    cases: dict[str, dict[str, Callable[[], None]]] = {}

    def fwd_bwd(fn, inputs, grads):
        def run():
            for t in inputs:
                t.grad = None
            outs = fn()
            torch.autograd.backward(outs, grads)
        return run

    def floor(tensors):
        return lambda: [t.detach().clone() for t in tensors]

    def compiled(f):
        return torch.compile(f, dynamic=False) if compile_ else None

    # One level.
    pw1 = DWTForward(J=1, wave="haar", mode="zero").to(device)
    gy = rand(n, 4 * c, h // 2, w // 2)
    g_lo, g_hi = gy[:, :c].contiguous(), gy[:, c:].reshape(n, c, 3, h // 2, w // 2).contiguous()
    one = lambda t: haar_dwt2(t)  # noqa: E731
    one_c = compiled(one)
    cases["1 level"] = {
        "pytorch_wavelets": fwd_bwd(lambda: (lambda r: [r[0], r[1][0]])(pw1(x)), [x], [g_lo, g_hi]),
        "wavevision": fwd_bwd(lambda: one(x), [x], [gy]),
        "floor": floor([x, gy]),
    }
    if one_c:
        cases["1 level"]["compiled"] = fwd_bwd(lambda: one_c(x), [x], [gy])

    # Three levels.
    pw3 = DWTForward(J=3, wave="haar", mode="zero").to(device)
    sizes = [(h >> j, w >> j) for j in range(1, 4)]
    g3 = [rand(n, 4 * c, *s) for s in sizes]
    g3_pw = [g3[-1][:, :c].contiguous()] + [t[:, c:].reshape(n, c, 3, *t.shape[-2:]).contiguous() for t in g3]
    # Our levels hold LL too (only the last one's is the output); zero its gradient on the finer levels.
    for t in g3[:-1]:
        t[:, :c] = 0
    three = lambda t: haar_wavedec2(t, 3)  # noqa: E731
    three_c = compiled(three)
    cases["3 levels"] = {
        "pytorch_wavelets": fwd_bwd(lambda: (lambda r: [r[0], *r[1]])(pw3(x)), [x], g3_pw),
        "wavevision": fwd_bwd(lambda: three(x), [x], g3),
        "floor": floor([x, *g3_pw]),
    }
    if three_c:
        cases["3 levels"]["compiled"] = fwd_bwd(lambda: three_c(x), [x], g3)

    # Inverse of one level.
    pwi = DWTInverse(wave="haar", mode="zero").to(device)
    y = rand(n, 4 * c, h // 2, w // 2).requires_grad_()
    lo = y.detach()[:, :c].contiguous().requires_grad_()
    hi = y.detach()[:, c:].reshape(n, c, 3, h // 2, w // 2).contiguous().requires_grad_()
    gx = rand(n, c, h, w)
    inv = lambda t: haar_idwt2(t)  # noqa: E731
    inv_c = compiled(inv)
    cases["inverse"] = {
        "pytorch_wavelets": fwd_bwd(lambda: pwi((lo, [hi])), [lo, hi], [gx]),
        "wavevision": fwd_bwd(lambda: inv(y), [y], [gx]),
        "floor": floor([y, gx]),
    }
    if inv_c:
        cases["inverse"]["compiled"] = fwd_bwd(lambda: inv_c(y), [y], [gx])
    return cases


def _time(cases, device, warmup: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times: dict[str, dict[str, list[float]]] = {case: {side: [] for side in sides} for case, sides in cases.items()}
    for case, sides in cases.items():
        names = list(sides)
        for name in names:  # warm-up (and, for compiled sides, the compile itself)
            for _ in range(warmup):
                sides[name]()
        for r in range(repeats):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                sync()
                t = time.perf_counter()
                sides[name]()
                sync()
                times[case][name].append(time.perf_counter() - t)
    return times


_TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def _reuse_memory(args) -> None:
    """Re-execute with glibc keeping large blocks for reuse (module docstring), once."""
    import os

    if args.system_malloc or args.device != "cpu" or os.environ.get("GLIBC_TUNABLES") or not sys.platform.startswith("linux"):
        return
    env = dict(os.environ, GLIBC_TUNABLES=_TUNABLES)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", type=int, nargs=4, default=[32, 48, 56, 56], metavar=("N", "C", "H", "W"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile side")
    p.add_argument("--json", default="haar_speed.json")
    p.add_argument("--system-malloc", action="store_true", help="keep glibc's default mmap behaviour (see above)")
    args = p.parse_args(argv)
    _reuse_memory(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda requested but CUDA is not available here; devices: cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.compile and device.type == "cpu":
        import os
        import shutil

        if not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++", "c++")):
            print("no C++ compiler: skipping the torch.compile side (install g++ to measure it)")
            args.compile = False
    cases = _cases(tuple(args.shape), device, args.compile)
    times = _time(cases, device, args.warmup, args.repeats)

    import os

    malloc = "glibc, large blocks reused" if os.environ.get("GLIBC_TUNABLES") == _TUNABLES else "default"
    print(f"Haar DWT forward+backward, float32, {'x'.join(map(str, args.shape))}, {args.device}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, malloc {malloc}; "
          f"medians of {args.repeats} interleaved rounds")
    cols = ["pytorch_wavelets", "wavevision", "compiled", "floor"]
    print(f"{'case':<10}" + "".join(f"{c + ' ms':>20}" for c in cols) + f"{'pw / eager':>12}{'compiled / floor':>18}")
    rows = []
    for case, sides in times.items():
        med = {k: statistics.median(v) for k, v in sides.items()}
        row = {"case": case, **{f"{k}_ms": v * 1e3 for k, v in med.items()}}
        row["pw_over_eager"] = med["pytorch_wavelets"] / med["wavevision"]
        if "compiled" in med:
            row["compiled_over_floor"] = med["compiled"] / med["floor"]
        rows.append(row)
        cells = "".join(f"{med[c] * 1e3:>20.2f}" if c in med else f"{'-':>20}" for c in cols)
        comp = f"{row['compiled_over_floor']:>18.2f}" if "compiled" in med else f"{'-':>18}"
        print(f"{case:<10}{cells}{row['pw_over_eager']:>12.2f}{comp}")
    record = {"args": vars(args), "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows,
              "raw_s": times}
    Path(args.json).write_text(json.dumps(record, indent=2))
    print(f"record: {args.json}")


if __name__ == "__main__":
    main()
