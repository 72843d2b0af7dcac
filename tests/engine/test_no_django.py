"""The engine must stay plain Python: no Django import anywhere under runs/engine/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "runs" / "engine"


def django_imports(path: Path) -> list[str]:
    """`import django...` / `from django... import` statements in one file, as 'file:line'."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(n == "django" or n.startswith("django.") for n in names):
            found.append(f"{path}:{node.lineno}")
    return found


def test_engine_sources_have_no_django_import():
    files = sorted(ENGINE.rglob("*.py"))

    offenders = [hit for path in files for hit in django_imports(path)]

    assert files
    assert offenders == []


def test_django_import_scan_detects_an_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom django.db import models\n", encoding="utf-8")

    assert len(django_imports(sample)) == 1


IMPORT_ALL = """
import pkgutil, sys
import runs.engine
names = [m.name for m in pkgutil.walk_packages(runs.engine.__path__, "runs.engine.")]
for name in names:
    __import__(name)
assert "runs.engine.rules" in names and "runs.engine.transform" in names, names
loaded = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
assert not loaded, loaded
print(len(names))
"""


def test_importing_every_engine_module_loads_no_django():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 4
