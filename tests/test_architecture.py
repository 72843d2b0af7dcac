"""The architecture contracts in pyproject.toml ([tool.importlinter]) hold: the engine imports
no Django and none of the apps; base → mappings → runs → validation → composed pages, nothing
imports upward; connectors do not import each other."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("migration_planner", "accounts", "mappings", "runs", "validation")


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)

    exit_code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)

    assert exit_code == 0, "an import contract is broken: run `.venv/bin/lint-imports` to see it"


def test_import_graph_sees_the_known_downward_imports():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)

    assert graph.direct_import_exists(importer="validation.models", imported="mappings.models")
    assert graph.find_shortest_chain(importer="runs.services.launch", imported="mappings.models")
    assert graph.find_shortest_chains(importer="mappings", imported="validation") == set()
    assert graph.find_shortest_chains(importer="validation", imported="mappings") != set()


def _own_imports() -> list[tuple[str, int, str, str | None]]:
    """(file, line, module, name or None) of every import of our own packages, lazy ones too,
    in the packages themselves and in the tests, benchmarks and scripts."""
    found = []
    for package in (*PACKAGES, "tests", "bench", "scripts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            here = parts[:-1] if parts[-1] == "__init__" else parts[:-1]
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found += [(str(path), node.lineno, a.name, None) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = here[: len(here) - node.level + 1] if node.level else ()
                    module = ".".join([*base, *([node.module] if node.module else [])])
                    found += [(str(path), node.lineno, module, a.name) for a in node.names]
    return [f for f in found if f[2].split(".")[0] in PACKAGES]


def test_every_import_of_our_own_modules_resolves():
    # import-linter leaves out imports of modules that do not exist (a lazy import of a module
    # that moved): this finds them.
    broken = []
    for path, line, module, name in _own_imports():
        try:
            target = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"{path}:{line} {module}: {exc}")
            continue
        missing = name not in (None, "*") and not hasattr(target, name)
        if missing and importlib.util.find_spec(f"{module}.{name}") is None:
            broken.append(f"{path}:{line} {module} has no {name}")

    assert broken == []


def test_no_query_uses_a_lookup_sqlite_lacks():
    """REVIEW9 J1-2: ``source_columns__contains=[…]`` (JSON containment) is PostgreSQL-only and
    made the profile page a 500 on the default SQLite app database. The suite runs on
    PostgreSQL, so the code is checked for the lookups SQLite does not implement."""
    pattern = re.compile(r"\w__(?:contains|contained_by|has_key|has_keys|has_any_keys)\s*=")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PACKAGES
        for path in ROOT.joinpath(package).rglob("*.py")
        if "migrations" not in path.parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line) and "icontains" not in line
    ]
    assert found == []
