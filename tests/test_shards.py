"""The sharded test run: shard JUnit files merge into one, durations come from JUnit."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("test_shards_script", ROOT / "scripts/test_shards.py")
assert SPEC and SPEC.loader
shards = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(shards)

SUITE = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="{n}">
{cases}</testsuite></testsuites>"""


def _junit(path: Path, cases: list[tuple[str, str, float]]) -> Path:
    body = "".join(f'<testcase classname="{c}" name="{n}" time="{t}"/>\n' for c, n, t in cases)
    path.write_text(SUITE.format(n=len(cases), cases=body))
    return path


def test_merge_keeps_every_shards_tests(tmp_path: Path) -> None:
    one = _junit(tmp_path / "junit-1.xml", [("tests.test_shards", "a", 1.0)])
    two = _junit(tmp_path / "junit-2.xml", [("tests.test_shards", "b", 2.0), ("x.y", "c", 3)])
    out = tmp_path / "junit.xml"
    assert shards.merge_junit(out, [one, two]) == 3
    assert out.read_text().count("<testcase ") == 3


def test_durations_map_junit_classnames_to_pytest_node_ids(tmp_path: Path) -> None:
    junit = _junit(
        tmp_path / "junit.xml",
        [
            ("tests.test_shards", "test_merge_keeps_every_shards_tests", 0.25),
            ("tests.test_compose", "test_script_is_strict_and_parses[test.sh]", 1.5),
            ("tests.test_shards.TestSome", "test_in_class", 2),
        ],
    )
    out = tmp_path / "durations.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/test_shards.py"), "durations", str(junit), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 test durations" in result.stdout
    assert json.loads(out.read_text()) == {
        "tests/test_shards.py::test_merge_keeps_every_shards_tests": 0.25,
        "tests/test_compose.py::test_script_is_strict_and_parses[test.sh]": 1.5,
        "tests/test_shards.py::TestSome::test_in_class": 2.0,
    }


def test_recorded_durations_name_tests_that_exist() -> None:
    """A stale .test_durations splits the suite badly: most of its ids must still be tests."""
    recorded = json.loads((ROOT / ".test_durations").read_text())
    files = {node.split("::")[0] for node in recorded}
    assert len(recorded) > 1000
    assert sum((ROOT / f).is_file() for f in files) >= 0.9 * len(files)
