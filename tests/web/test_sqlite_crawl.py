"""The default install (SQLite app database): every page a user can reach by links answers.

The rest of the suite runs the app on PostgreSQL, so a query only PostgreSQL supports (a JSON
`contains` lookup, say) would pass CI and answer 500 on a fresh `bash scripts/run.sh`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.app_process import app_env, migrate, run_python


def test_every_linked_page_answers_on_the_sqlite_app_database(tmp_path: Path) -> None:
    env = app_env(tmp_path)
    migrate(env)
    done = run_python(env, "-m", "tests.support.crawl_probe", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == [], (result, done.stderr[-3000:])
    assert result["visited"] >= 40 and result["statuses"].get("200", 0) >= 40, result
