"""Helpers for the sharded test run (scripts/test.sh): merge shard JUnit files, refresh durations.

Usage:
  python scripts/test_shards.py merge OUT.xml SHARD.xml...  (one JUnit file of all shards)
  python scripts/test_shards.py durations JUNIT.xml [OUT]   (JUnit times -> .test_durations)
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET  # noqa: S405  (our own pytest output, not untrusted input)
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def merge_junit(out: Path, shards: list[Path]) -> int:
    """Write one <testsuites> holding every shard's <testsuite>; returns the number of tests."""
    merged = ET.Element("testsuites")
    tests = 0
    for path in shards:
        root = ET.parse(path).getroot()  # noqa: S314
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            suite.set("name", f"{suite.get('name', 'pytest')}-{path.stem}")
            tests += int(suite.get("tests", "0"))
            merged.append(suite)
    ET.ElementTree(merged).write(out, encoding="utf-8", xml_declaration=True)
    return tests


def _node_id(classname: str, name: str) -> str:
    """pytest's node id from a JUnit classname ("tests.web.test_x.TestY") and test name."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        module = Path(*parts[:cut]).with_suffix(".py")
        if (ROOT / module).is_file():
            return "::".join([module.as_posix(), *parts[cut:], name])
    return f"{classname.replace('.', '/')}.py::{name}"


def durations_from_junit(junit: Path) -> dict[str, float]:
    """Seconds per test node id (setup + call + teardown, as JUnit records them)."""
    root = ET.parse(junit).getroot()  # noqa: S314
    return {
        _node_id(case.get("classname", ""), case.get("name", "")): round(
            float(case.get("time", "0")), 3
        )
        for case in root.iter("testcase")
    }


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "merge":
        count = merge_junit(Path(argv[1]), [Path(p) for p in argv[2:]])
        print(f"merged {len(argv) - 2} shard JUnit files: {count} tests -> {argv[1]}")
        return 0
    if len(argv) in (2, 3) and argv[0] == "durations":
        out = Path(argv[2]) if len(argv) == 3 else ROOT / ".test_durations"
        durations = durations_from_junit(Path(argv[1]))
        out.write_text(json.dumps(durations, indent=1, sort_keys=True) + "\n")
        print(f"{len(durations)} test durations ({sum(durations.values()):.0f} s) -> {out}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
