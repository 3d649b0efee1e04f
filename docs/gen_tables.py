"""Write the generated tables of README.md and docs/*.md from their records.

Every table (and the main command's output) in the documentation that holds a number is
generated here, from one of two sources:

* the model and recipe records: ``wavevision.list_models`` / ``wavevision.get_entry`` /
  ``wavevision.get_pretrained_cfg`` (parameters, MACs, input sizes, published results, released
  weights) and ``wavevision.recipes`` (recipes, expected results, cost estimates, differences);
* the measurements in ``benchmarks/results/*.json``, written by the scripts in ``benchmarks/``.

A table sits between two markers in the Markdown source::

    <!-- table:NAME ARGS -->
    ...generated, do not edit...
    <!-- /table -->

``python docs/gen_tables.py`` rewrites every marked region; ``--check`` only reports the files
that differ (``tests/test_docs.py`` does the same), so a number in the docs cannot drift from its
record. Needs the core install only (no torchvision, timm or mkdocs).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = re.compile(r"(<!-- table:(?P<name>[\w-]+)(?P<args>[^>]*?) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)
TASK_NAMES = {"classification": "classification", "segmentation": "segmentation",
              "super_resolution": "super-resolution", "detection": "detection"}


def documents() -> list[Path]:
    """The Markdown files that may hold generated tables: README.md and docs/**/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


# ---------------------------------------------------------------- formatting


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _macs(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _metric(key: str, value: float) -> str:
    text = {"top1": "top-1 {} %", "top5": "top-5 {} %", "miou": "mIoU {}", "psnr": "PSNR (Y) {} dB",
            "psnr_y": "PSNR (Y) {} dB", "box_ap": "box AP {}", "mask_ap": "mask AP {}"}.get(key, key + " {}")
    return text.format(value)


def _result(cfg: dict[str, Any]) -> str:
    metrics = cfg.get("metrics") or {}
    if not metrics:
        return "-"
    return f"{cfg.get('dataset') or ''} " + ", ".join(_metric(k, v) for k, v in metrics.items())


def _size(cfg: dict[str, Any]) -> str:
    return "x".join(map(str, cfg["input_size"]))


def _load(name: str) -> dict[str, Any]:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8"))


def _source(name: str) -> str:
    return f"Source: `benchmarks/results/{name}`."


# ---------------------------------------------------------------- tables from the records


def models(task: str = "") -> str:
    """Every registered model (of ``task``): each tag's input size, parameters, MACs and published result."""
    import wavevision

    rows = []
    for name in wavevision.list_models(task=task or None):
        entry = wavevision.get_entry(name)
        for tagged in entry.tags:
            cfg = wavevision.get_pretrained_cfg(tagged)
            weights = "yes" if any(cfg.get(k) for k in ("url", "file", "hf_hub_id")) else ""
            row = [f"`{tagged}`", _size(cfg), _count(cfg.get("params")), _macs(cfg.get("macs")), _result(cfg),
                   weights]
            if not task:
                row.insert(1, TASK_NAMES[cfg["task"]])
            rows.append(row)
    headers = ["name (.tag)", "input", "params", "MACs", "published result", "released weights"]
    if not task:
        headers.insert(1, "task")
    return _table(headers, rows)


def pretrained() -> str:
    """Every tag with released weights: result, input, classes and the file it loads."""
    import wavevision

    rows = []
    for tagged in wavevision.list_pretrained():
        cfg = wavevision.get_pretrained_cfg(tagged)
        where = cfg.get("hf_hub_id") or cfg.get("url") or cfg.get("file") or ""
        if cfg.get("hf_hub_filename"):
            where += f": `{cfg['hf_hub_filename']}`"
        rows.append([f"`{tagged}`", _result(cfg), _size(cfg), cfg.get("num_classes", "-"), where])
    return _table(["name.tag", "result of the weights", "input", "classes", "weights file"], rows)


def recipes() -> str:
    """Every recipe: model, dataset, length, expected result, estimated cost."""
    from wavevision.recipes import get_recipe, list_recipes

    rows = []
    for name in list_recipes():
        r = get_recipe(name)
        expected = "-"
        if r.expected is not None:
            expected = f"{r.expected.split}: " + ", ".join(_metric(k, v) for k, v in r.expected.metrics.items())
        length = f"{r.epochs} epochs" if r.epochs else f"{r.iterations:,} iterations" if r.iterations else "patience"
        default = " (default)" if r.dataset_default else ""
        rows.append([f"`{name}`", f"`{r.model}`", f"`{r.data.dataset}`{default}", length, r.global_batch, expected,
                     f"{r.cost.accelerator_hours:g}", r.cost.accelerator])
    return _table(["recipe", "model", "dataset", "length", "global batch", "expected result", "est. hours", "on"],
                  rows)


def recipe_differences() -> str:
    """Where each recipe departs from its reference, and why (the records' ``differences``)."""
    from wavevision.recipes import get_recipe, list_recipes

    rows = []
    for name in list_recipes():
        r = get_recipe(name)
        for d in r.differences:
            rows.append([f"`{name}`", f"`{d.field}`", d.reason.replace("|", "/").replace("\n", " ")])
    return _table(["recipe", "field", "departs from the reference because"], rows)


def wtconv_segmentation() -> str:
    """UperNet on WTConvNeXt: each model's backbone, size at 512x512, recipe and its cost (the records)."""
    import wavevision
    from wavevision.recipes import get_recipe, list_recipes

    rows = []
    for name in wavevision.list_models("upernet_wtconvnext_*"):
        cfg, recipe = wavevision.get_pretrained_cfg(name), get_recipe(f"{name}_ade20k_160k")
        rows.append([f"`{name}`", f"`{name.removeprefix('upernet_')}`", _size(cfg), _count(cfg.get("params")),
                     _macs(cfg.get("macs")), f"`{recipe.name}`", f"{recipe.cost.accelerator_hours:g}",
                     recipe.cost.accelerator, _result(cfg) if cfg.get("metrics") else "none published"])
    assert len(rows) == len(list_recipes("upernet_wtconvnext_*"))
    return _table(["model", "backbone", "input", "params", "MACs", "recipe", "est. hours", "on", "ADE20K result"],
                  rows)


# ---------------------------------------------------------------- tables from benchmarks/results


def main_output() -> str:
    """The main command's printed summary, as measured by benchmarks/readme_digits.py (seed 0)."""
    data = _load("readme_digits.json")
    r = data["rows"][0]
    return ("```text\n" + r["summary"] + "\n```\n\n"
            f"Seed {r['seed']}, {data['threads']} threads on {data.get('cpu_count', '?')} CPUs at a load average of "
            f"{r['load_before']:.1f} -> {r['load_after']:.1f} (other processes sharing the cores slow the timings), "
            f"torch {data.get('torch', '?')}, {data['time']}. " + _source("readme_digits.json"))


def readme_digits() -> str:
    data = _load("readme_digits.json")
    rows = [[r["seed"], f"{r['test_top1']:.2f}", f"{r['best_epoch']}/{r['epochs']}", f"{r['train_seconds']:.1f}",
             f"{r['cpu_seconds']:.1f}", f"{r['train_images_per_second']:,.0f}",
             f"{r['inference_images_per_second']:,.0f}", f"{r['load_before']:.1f} -> {r['load_after']:.1f}"]
            for r in data["rows"]]
    table = _table(["seed", "test top-1 %", "best epoch", "training s", "process CPU s", "train img/s",
                    "infer img/s", "load average"], rows)
    return (table + f"\n\n{data['threads']} threads, `OMP_WAIT_POLICY={data.get('omp_wait_policy', '?')}`, "
            f"{data.get('cpu_count', '?')} CPUs, torch {data.get('torch', '?')}, {data['time']}; targets: "
            f"test top-1 >= {data.get('target_top1', 99.0):g} %, training <= "
            f"{data.get('target_train_seconds', 60.0):g} s. " + _source("readme_digits.json"))


def wave_vit_digits() -> str:
    d = _load("wave_vit_digits.json")
    table = _table(["recipe", "params", "epochs (best)", "test top-1 %", "target", "training s", "wall s", "threads"],
                   [[f"`{d['recipe']}`", _count(d["params"]), f"{d['epochs']} ({d['best_epoch']})",
                     f"{d['test_top1']:.2f}", f">= {d['target_top1']:g}", f"{d['train_seconds']:.0f}",
                     f"{d['wall_seconds']:.0f}", d["threads"]]])
    return (table + f"\n\n`OMP_WAIT_POLICY={d['omp_wait_policy']}`, {d['cpu_count']} CPUs ({d['machine']}). "
            + _source("wave_vit_digits.json"))


def recipe_costs() -> str:
    """How each recipe's accelerator-hours were estimated, and what the engine still lacks for it
    (benchmarks/recipes_table.py)."""
    d = _load("recipes.json")
    rows = [[f"`{r['name']}`", f"{r['hours']:g}", r["accelerator"], r["how"].replace("|", "/"),
             "; ".join(m.replace("|", "/") for m in r["engine_missing"]) or "-"] for r in d["recipes"]]
    return (_table(["recipe", "est. hours", "on", "how estimated", "the engine still lacks"], rows)
            + "\n\n" + _source("recipes.json"))


_ACCEL_RUNS = {"before": "main a45c37d", "before2": "main a45c37d", "before3": "main a45c37d (quieter)",
               "after": "accel d5eaf81", "after2": "accel d5eaf81", "final": "accel 28699fc (quieter)"}


def accel_runs(kind: str) -> str:
    """The speed-ups before and after they moved into ``wavevision.accel`` (issue 21): every run of
    ``benchmarks/compare_public.py --patch N`` (``kind`` ``p1``/``p4``) or ``benchmarks/haar_speed.py``
    (``haar``) kept in ``benchmarks/results/accel_*``."""
    rows = []
    for label, code in _ACCEL_RUNS.items():
        name = f"accel_{label}_{kind}.json"
        if not (RESULTS / name).exists():
            continue
        d = _load(name)
        if kind == "haar":
            cells = [f"{r['pw_over_eager']:.2f}" for r in d["rows"]]
        else:
            by = {r["metric"]: r.get("ratio") for r in d["rows"]}
            cells = [f"{by[m]:.2f}" for m in ("train step, eager", "train peak MiB", "inference batch 1 (fused)",
                                              "inference batch 32 (fused)")]
        rows.append([f"`benchmarks/results/{name}`", code, d["threads"], *cells])
    if kind == "haar":
        head = ["record", "code", "threads", *(r["case"] + " (pytorch_wavelets / ours)" for r in d["rows"])]
    else:
        head = ["record", "code", "threads", "train step (public / ours)", "train peak memory (ours / public)",
                "inference batch 1 (public / ours)", "inference batch 32 (public / ours)"]
    return _table(head, rows) + "\n\nCPU float32, eager, `OMP_WAIT_POLICY=PASSIVE`, on a 2-core machine shared with other work " \
        "(load 2-10), so single runs are noisy. Source: the files named in the table."


def imagenet_pipeline() -> str:
    d = _load("imagenet_pipeline.json")
    env = d["environment"]
    table = _table(["loader workers", "images/s", "images/s per worker"],
                   [[r["workers"], f"{r['images_per_second']:g}", f"{r['images_per_second_per_worker']:g}"]
                    for r in d["rows"]])
    return (table + f"\n\n{d['images']} generated {d['image_size'][0]}x{d['image_size'][1]} JPEGs, batch "
            f"{d['batch']}; {env['cpus_usable']} usable CPUs, {env['torch_threads_per_worker']} torch thread per "
            f"worker, `OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}`, torch {env['torch']}, timm {env['timm']}. "
            + _source("imagenet_pipeline.json"))


def wtconv_parity() -> str:
    """WTConv2d / WTConv1d against the public modules (benchmarks/wtconv_parity.py)."""
    d = _load("wtconv_parity.json")
    rows = [[f"`{r['layer']}`", f"`{r['wt_type']}`", r["wt_levels"], r["stride"], r["in_channels"], r["kernel_size"],
             "x".join(map(str, r["input"])), _count(r["params_ours"]),
             "yes" if (r["params_ours"], r["trainable_ours"]) == (r["params_public"], r["trainable_public"]) else "**no**",
             f"{r['max_abs_diff_float32']:.1e}", f"{r['max_abs_diff_float64']:.1e}"] for r in d["cases"]]
    table = _table(["layer", "wavelet", "levels", "stride", "C", "kernel", "input", "params", "= public",
                    "max abs diff float32", "max abs diff float64"], rows)
    largest = max(r["max_abs_output"] for r in d["cases"])
    haar = [r for r in d["cases"] if r["layer"] == "WTConv2d" and r["wt_type"] in ("db1", "haar") and r["wt_levels"]]
    other = [r["max_abs_diff_float64"] for r in d["cases"] if r not in haar]
    return (table + f"\n\nParameter counts equal the public ones in every case: {'yes' if d['params_equal'] else 'no'}. "
            f"Outputs reach {largest:.1f} in magnitude; the largest difference is {d['worst_float32']:.1e} in float32 "
            f"and {d['worst_float64']:.1e} in float64. In float64 the Haar cases differ by at most "
            f"{max(r['max_abs_diff_float64'] for r in haar):.1e} (the fast Haar kernels use the exact 1/2 where the "
            f"public filters hold sqrt(1/2) rounded to float32) and the others by at most {max(other):.1e}. "
            f"Torch {d['torch']}. " + _source("wtconv_parity.json"))


def wtconv_speed(name: str = "wtconv_speed.json") -> str:
    """WTConv2d forward+backward against the public module (benchmarks/wtconv_speed.py)."""
    d = _load(name)
    rows = [[f"`{r['wavelet']}`", r["channels"], f"{r['side']}x{r['side']}", r["batch"], r["levels"],
             f"{r['ours_ms']:.1f}", f"{r['public_ms']:.1f}", f"{r['ratio']:.2f}",
             f"{r['cpu_ratio']:.2f}" if "cpu_ratio" in r else "-", f"{r['ours_mb']:.1f}", f"{r['public_mb']:.1f}"]
            for r in d["rows"]]
    table = _table(["wavelet", "C", "map", "batch", "levels", "ours ms", "public ms", "ours / public",
                    "CPU time ours / public", f"ours {d['memory']}", f"public {d['memory']}"], rows)
    load = (f"load average {d['load_before']:.1f} before and {d['load_after']:.1f} after"
            if d.get("load_before") is not None else "load not recorded")
    return (table + f"\n\nForward + backward, float32, {d['device']} ({d['cpu']}), torch {d['torch']}, "
            f"{d['threads']} threads, `OMP_WAIT_POLICY={d['omp_wait_policy']}`, {load}; medians of {d['repeats']} "
            f"alternating rounds; public side: {d['public']}. " + _source(name))
def _mb(peak: float | None, base: float | None) -> str:
    return "-" if peak is None or base is None else f"{peak - base:,.0f}"


def wtconv_ablation() -> str:
    """The token-mixer ablation with the WTConv mixer (benchmarks/wtconv_ablation.py)."""
    d = _load("wtconv_ablation.json")
    b, c = d["budget"], d["conditions"]
    rows = [[r["rank"], f"**{r['mixer']}**" if r["mixer"] == "wtconv" else r["mixer"], f"`{r['model']}`",
             f"{r['test_acc_mean']:.2f} ± {r['test_acc_std']:.2f}", f"{r['test_acc_min']:.2f}-{r['test_acc_max']:.2f}",
             _count(r["params"]), _macs(r["macs"]), f"{r['train_seconds_mean']:.1f}",
             "-" if r.get("train_memory_mb") is None else f"{r['train_memory_mb']:.0f}"] for r in d["rows"]]
    table = _table(["rank", "mixer", "model", "test top-1 % (mean ± std)", "min-max", "params", "MACs/img",
                    "train s/run", "train-step MiB"], rows)
    return (table + f"\n\n`{c['command']}`: {b['dataset']} {'x'.join(map(str, b['input_shape']))}, {b['epochs']} epochs, "
            f"seeds {', '.join(map(str, b['seeds']))}, batch {b['batch_size']}, {b['optimizer']} lr {b['lr']:g}; "
            f"parameters within {b['params_spread_pct']:.1f} % of each other; accuracy: {b['metric']}. "
            f"{c['jobs']} runs side by side, {c['threads_per_run']} torch thread each, `OMP_WAIT_POLICY="
            f"{c['omp_wait_policy']}`, {c['cpu_count']} CPUs shared with other work (load average {c['load_average_before'][0]:.1f} "
            f"-> {c['load_average_after'][0]:.1f}), torch {c['torch']}, {c['time']}. " + _source("wtconv_ablation.json"))


def wtconv_erf() -> str:
    """ERF radii of ConvNeXt's 7x7 depthwise convolution and WTConv (benchmarks/wtconv_erf.py)."""
    d = _load("wtconv_erf.json")
    c = d["conditions"]
    rows = [[r["view"], r["label"], f"{r['r50']:.2f}", f"{r['r90']:.2f}", f"{r['r99']:.2f}",
             "x".join(map(str, r["map_size"])), r["samples"],
             r.get("model") or f"{r['layers']} x {r['kind']} (k {r['kernel_size']}, levels {r['wt_levels']})"]
            for r in d["records"]]
    table = _table(["view", "model", "r50 px", "r90 px", "r99 px", "map", "inputs averaged", "built as"], rows)
    return (table + f"\n\nRadii from the centroid holding 50 / 90 / 99 % of the gradient mass. {c['threads']} torch "
            f"threads, `OMP_WAIT_POLICY={c['omp_wait_policy']}`, torch {c['torch']}, {c['time']}; figure "
            f"`{c['figure']}`. " + _source("wtconv_erf.json"))


def wtconv_bench() -> str:
    """WTConvNeXt-T and ConvNeXt-T from ``wavevision bench --suite imagenet`` (its suite JSON)."""
    d = _load("wtconv_bench.json")
    c, st = d["conditions"], d["settings"]
    rows = [[r["label"], r["status"], _count(r["params"]), _macs(r["macs"]),
             "-" if r["latency_ms"] is None else f"{r['latency_ms']:.0f}",
             "-" if r["throughput"] is None else f"{r['throughput']:.1f}",
             "-" if r["train_step_ms"] is None else f"{r['train_step_ms']:,.0f}",
             _mb(r["train_peak_mb"], r["train_baseline_mb"]),
             "-" if r["accuracy"] is None else f"{r['accuracy']:g}", r["accuracy_source"].replace("|", "/") or "-"]
            for r in d["results"]]
    table = _table(["model", "status", "params", "MACs/img", "latency ms (b=1)", "img/s (b=N)", "train step ms (b=N)",
                    "train MiB (b=N)", "top-1 %", "top-1 from"], rows)
    return (table + f"\n\nInput {st['input_size']}x{st['input_size']}, N={st['batch_size']}, {st['warmup']} warm-up + "
            f"{st['repeats']} timed runs, {st['device']} {st['dtype']}; {c['cpu']} ({c['cpu_count']} CPUs, shared), torch "
            f"{c['torch']} with {c['torch_threads']} thread(s), `OMP_WAIT_POLICY={c['OMP_WAIT_POLICY']}`, timm {c['timm']}, "
            f"load average {c['load_average_before'][0]:.1f} -> {c['load_average_after'][0]:.1f}; memory: "
            f"{d['memory']}. " + _source("wtconv_bench.json"))


def wtconvnext_parity() -> str:
    """WTConvNeXt-T/S/B against the public model built through timm (benchmarks/wtconvnext_parity.py)."""
    d = _load("wtconvnext_parity.json")
    rows = [[f"`{r['model']}`", f"{_count(r['params_ours'])} / {_count(r['params_public'])}",
             f"{_count(r['trainable_ours'])} / {_count(r['trainable_public'])}",
             "yes" if r["keys_equal"] and r["shapes_equal"] else "no", "yes" if r["init_equal"] else "no",
             f"{r['max_abs_diff_logits']:.1e}", f"{_macs(r['macs_ours'])} / {_macs(r['macs_public'])}"]
            for r in d["rows"]]
    table = _table(["model", "params (ours / public)", "trainable", "same keys and shapes", "same seeded init",
                    "max abs logit difference", "MACs at 224 (ours / public)"], rows)
    return (table + f"\n\n{d['input']}; timm {d['timm']}, torch {d['torch']}, {d['time']}. "
            + _source("wtconvnext_parity.json"))


def wtconv_depthwise(name: str = "wtconv_speed.json") -> str:
    """A lone depthwise 5x5 convolution in NCHW and channels-last (benchmarks/wtconv_speed.py): why
    WTConv2d runs its convolutions on large CPU maps channels-last."""
    d = _load(name)
    rows = [[r["channels"], f"{r['side']}x{r['side']}", r["batch"], f"{r['nchw_ms']:.2f}", f"{r['channels_last_ms']:.2f}",
             f"{r['ratio']:.2f}"] for r in d["depthwise"]]
    return (_table(["C", "map", "batch", "NCHW ms", "channels-last ms", "channels-last / NCHW"], rows)
            + "\n\nForward + backward (weight gradient included), float32, same run and conditions as the table "
            "above. " + _source(name))


TABLES: dict[str, Callable[..., str]] = {
    "models": models, "pretrained": pretrained, "recipes": recipes, "recipe-differences": recipe_differences,
    "main-output": main_output, "readme-digits": readme_digits, "wave-vit-digits": wave_vit_digits,
    "imagenet-pipeline": imagenet_pipeline, "recipe-costs": recipe_costs,
    "accel-runs": accel_runs,
    "wtconv-parity": wtconv_parity, "wtconv-speed": wtconv_speed, "wtconv-depthwise": wtconv_depthwise,
    "wtconv-segmentation": wtconv_segmentation,
    "wtconv-ablation": wtconv_ablation, "wtconv-erf": wtconv_erf, "wtconv-bench": wtconv_bench,
    "wtconvnext-parity": wtconvnext_parity,
}


# ---------------------------------------------------------------- rewriting


def render(text: str, where: str = "<text>") -> str:
    """``text`` with every marked region regenerated. An unknown table name is a ValueError."""

    def one(m: re.Match[str]) -> str:
        name, args = m["name"], m["args"].split()
        if name not in TABLES:
            raise ValueError(f"{where}: unknown table {name!r}; known: {', '.join(sorted(TABLES))}")
        return m.group(1) + TABLES[name](*args) + "\n" + m.group(5)

    return MARKER.sub(one, text)


def stale(paths: list[Path] | None = None) -> list[Path]:
    """The files whose generated regions differ from what their records give."""
    return [p for p in (paths or documents())
            if render(p.read_text(encoding="utf-8"), str(p)) != p.read_text(encoding="utf-8")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the files that are out of date (exit 1)")
    args = parser.parse_args(argv)
    out_of_date = stale()
    for path in out_of_date:
        if args.check:
            print(f"{path.relative_to(ROOT)}: generated tables are out of date; run python docs/gen_tables.py")
        else:
            path.write_text(render(path.read_text(encoding="utf-8"), str(path)), encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
    return 1 if args.check and out_of_date else 0


if __name__ == "__main__":
    sys.exit(main())
