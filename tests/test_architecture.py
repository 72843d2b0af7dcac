"""The architecture contracts in pyproject.toml ([tool.importlinter]) hold: the engine imports
no Django and none of the apps; base → mappings → runs → validation → composed pages, nothing
imports upward; connectors do not import each other."""

from __future__ import annotations

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("migration_planner", "mappings", "runs", "validation")


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
