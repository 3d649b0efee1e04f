"""The documentation: generated tables equal their records, links resolve, the site builds.

Every table of README.md and docs/*.md that holds a number sits in a marked region that
``docs/gen_tables.py`` writes from the model and recipe records and ``benchmarks/results/*.json``;
the first tests regenerate them and compare (no mkdocs needed, so they run in both CI
environments). The last builds the site with ``mkdocs build --strict``: it skips without mkdocs
(``pip install -e '.[docs]'``), except under ``CI=true`` in the vision environment.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _optional import core_only, in_ci

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_tables", ROOT / "docs" / "gen_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _gen()
DOCS = gen.documents()


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_generated_tables_equal_their_records(path):
    text = path.read_text(encoding="utf-8")
    assert gen.render(text, str(path)) == text, \
        f"{path.relative_to(ROOT)}: a generated table differs from its record; run python docs/gen_tables.py"


def test_every_table_is_generated_somewhere_and_no_region_is_empty():
    used = set()
    for path in DOCS:
        for m in gen.MARKER.finditer(path.read_text(encoding="utf-8")):
            used.add(m["name"])
            assert m["body"].strip(), f"{path.name}: the region {m['name']!r} is empty; run python docs/gen_tables.py"
    assert used == set(gen.TABLES), f"tables never used: {set(gen.TABLES) - used}"


def test_an_unknown_table_name_is_an_error():
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        gen.render("<!-- table:nope -->\n<!-- /table -->\n", "x.md")


def test_a_region_is_rewritten_from_its_record():
    stale = "<!-- table:wave-vit-digits -->\n| made up | 100.00 |\n<!-- /table -->\n"
    fresh = gen.render(stale)
    record = json.loads((gen.RESULTS / "wave_vit_digits.json").read_text())
    assert "made up" not in fresh and f"{record['test_top1']:.2f}" in fresh
    assert gen.render(fresh) == fresh


def test_the_models_table_has_every_registered_tag():
    import wavevision

    table = gen.models()
    for name in wavevision.list_models():
        for tagged in wavevision.get_entry(name).tags:
            assert f"| `{tagged}` |" in table


def test_every_results_file_is_shown():
    shown = set(re.findall(r"benchmarks/results/([\w.-]+\.json)", "".join(p.read_text() for p in DOCS)))
    files = {p.name for p in gen.RESULTS.glob("*.json")}
    assert files <= shown, f"results files no page shows: {files - shown}"


def test_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def _require_docs_extra() -> None:
    """Skip without the docs extra, except under CI=true in the vision environment (there it is a failure)."""
    missing = [m for m in ("mkdocs", "material", "mkdocstrings_handlers.python") if _absent(m)]
    if missing:
        reason = f"{', '.join(missing)} not installed; pip install -e '.[docs]'"
        if in_ci() and not core_only():
            pytest.fail(f"under CI the docs extra must be installed: {reason}")
        pytest.skip(reason)


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


def test_mkdocs_builds_strict(tmp_path):
    _require_docs_extra()
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir",
                          str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "index.html").exists()
