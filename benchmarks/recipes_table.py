"""The recipes table (issue 20's closing note): one row per registered recipe, from the registry.

Each row: the name, the reference the recipe is transcribed from, the expected result with its
source, the estimated accelerator-hours with the accelerator and how the estimate was made, the
fields that differ from the reference with the reason for each, and what the engine cannot do of
the recipe yet (``wavevision.engine.recipe.missing_pieces``; that list depends on the installed
extras, so the file records whether timm was there). Writes ``benchmarks/results/recipes.json``
and prints the table as markdown.

    python benchmarks/recipes_table.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "recipes.json"


def rows() -> list[dict[str, Any]]:
    """One dict per registered recipe (see the module docstring)."""
    from wavevision.engine.recipe import missing_pieces
    from wavevision.recipes import get_recipe, list_recipes

    out = []
    for name in list_recipes():
        r = get_recipe(name)
        expected = None
        if r.expected is not None:
            expected = {"metrics": dict(r.expected.metrics), "split": r.expected.split, "source": str(r.expected.source)}
        out.append({
            "name": name, "description": r.description, "reference": str(r.reference),
            "expected": expected,
            "hours": r.cost.accelerator_hours, "accelerator": r.cost.accelerator, "how": r.cost.how,
            "differences": [{"field": d.field, "reason": d.reason} for d in r.differences],
            "engine_missing": missing_pieces(r),
        })
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(table: list[dict[str, Any]]) -> str:
    """The table as markdown: one row per recipe; the differences numbered inside their cell."""
    lines = ["| recipe | reference | expected result | est. accelerator-hours (how) | differs from the reference (why) |",
             "|---|---|---|---|---|"]
    for row in table:
        exp = row["expected"]
        expected = "none published" if exp is None else \
            f"{exp['split']}: " + ", ".join(f"{k} {v}" for k, v in exp["metrics"].items()) + f" ({exp['source']})"
        hours = f"{row['hours']:g} on {row['accelerator']} ({row['how']})"
        diffs = "; ".join(f"{i}. `{d['field']}`: {d['reason']}" for i, d in enumerate(row["differences"], 1)) or "none"
        lines.append("| " + " | ".join(_cell(c) for c in (f"`{row['name']}`", row["reference"], expected, hours, diffs))
                     + " |")
    return "\n".join(lines)


def main() -> int:
    from wavevision.engine.mixing import have_timm

    table = rows()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"timm_installed": have_timm(), "recipes": table}, indent=2) + "\n")
    print(markdown(table))
    print(f"\nwrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
