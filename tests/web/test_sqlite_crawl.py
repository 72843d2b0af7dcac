"""The default install (SQLite app database): every page a user can reach by links answers.

The rest of the suite runs the app on PostgreSQL, so a query only PostgreSQL supports (a JSON
`contains` lookup, say) would pass CI and answer 500 on a fresh `bash scripts/run.sh`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_linked_page_answers_on_the_sqlite_app_database(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
        "MP_DATA_DIR": str(tmp_path),
        "MP_SYSTEMS_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "migration_planner.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.crawl_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == [], (result, done.stderr[-3000:])
    assert result["visited"] >= 40 and result["statuses"].get("200", 0) >= 40, result
