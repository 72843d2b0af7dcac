"""A separate app process on its own (SQLite by default) app database, for boot-level tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def app_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """Environment of an app process whose data (and, by default, SQLite database) is data_dir."""
    return {
        **os.environ,
        "DATABASE_URL": database_url or f"sqlite:///{data_dir / 'app.sqlite3'}",
        "MP_DATA_DIR": str(data_dir),
        "MP_SYSTEMS_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "migration_planner.settings",
    }


def migrate(env: dict[str, str]) -> None:
    """manage.py migrate in a fresh process with env (raises CalledProcessError on failure)."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )


def run_python(env: dict[str, str], *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """python ARGS in the repository with env; output captured, exit code not checked."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
