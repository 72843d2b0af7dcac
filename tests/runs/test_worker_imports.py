"""The Celery worker's parent process never runs a task, so it must not load pandas/pyarrow
(~100 MB resident in every worker); the pool child imports them with its first batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER_START = """
import sys
import django
django.setup()
from migration_planner.celery import app
app.loader.import_default_modules()  # what `celery worker` does before forking its pool
heavy = sorted(m for m in ("pandas", "pyarrow", "numpy") if m in sys.modules)
print(len(app.tasks), ",".join(heavy))
"""


def _start(code: str) -> tuple[int, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "migration_planner.settings"}
    env.pop("CELERY_SKIP_CHECKS", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    tasks, heavy = (
        result.stdout.strip().split(" ", 1)
        if " " in result.stdout.strip()
        else (result.stdout.strip(), "")
    )
    return int(tasks), heavy


def test_worker_parent_start_loads_no_pandas_or_pyarrow():
    tasks, heavy = _start(WORKER_START)
    assert tasks >= 5
    assert heavy == ""


def test_the_check_catches_a_heavy_import():
    tasks, heavy = _start("import pandas\n" + WORKER_START)
    assert "pandas" in heavy


def test_arrow_uses_the_system_allocator_in_the_app():
    code = (
        "import django; django.setup(); import pyarrow as pa; "
        "print(0, pa.default_memory_pool().backend_name)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "migration_planner.settings"}
    env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "system"]


def test_pool_children_load_the_engine_when_they_start():
    """The parent stays light; each pool child imports the engine as it starts (Celery's
    worker_process_init), not in the middle of a run's first batch."""
    tasks, heavy = _start(
        WORKER_START.replace(
            "heavy = ",
            "from celery.signals import worker_process_init\n"
            "worker_process_init.send(sender=None)\n"
            "import gc\n"
            "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
            "heavy = ",
        )
    )
    assert heavy == "numpy,pandas,pyarrow"
