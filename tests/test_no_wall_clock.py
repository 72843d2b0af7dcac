"""The suite holds no wall-clock assertion: speed is judged by `make bench`, never by a test.

A test may wait with a deadline (a clock reading plus a margin) but may not assert on a duration
it measured (the difference of two clock readings compared with a limit).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
CLOCKS = {"perf_counter", "monotonic", "time", "perf_counter_ns", "monotonic_ns", "time_ns"}


def _reads_clock(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in CLOCKS
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "time"
        for n in ast.walk(node)
    )


def _durations(tree: ast.AST) -> set[str]:
    """Names assigned a difference that involves a clock reading (or a name holding one)."""
    clock_names: set[str] = set()
    durations: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _reads_clock(node.value):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            subtracts = any(
                isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub) for n in ast.walk(node.value)
            )
            (durations if subtracts else clock_names).update(names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp):
            used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
            if isinstance(node.value.op, ast.Sub) and used & clock_names:
                durations.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return durations


def _offences(path: Path, root: Path = TESTS.parent) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    durations = _durations(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
        if names & durations or _reads_clock(node.test):
            found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_test_asserts_on_a_measured_duration():
    offences = [o for p in sorted(TESTS.rglob("test_*.py")) for o in _offences(p)]
    assert offences == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time\nt=time.perf_counter()\nx()\nd=time.perf_counter()-t\nassert d < 1\n", 1),
        ("import time\nt=time.monotonic()\nassert time.monotonic() - t < 2\n", 1),
        ("import time\ndeadline=time.monotonic()+60\nassert deadline\n", 0),
        ("import time\nassert 1 + 1 == 2\n", 0),
    ],
)
def test_the_duration_finder_sees_what_it_should(tmp_path, source, expected):
    path = tmp_path / "test_probe.py"
    path.write_text(source)
    assert len(_offences(path, tmp_path)) == expected
