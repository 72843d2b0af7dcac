"""manage.py itself: a command's output and exit status as Django gives them, the collector's
passes at interpreter exit skipped (``gc.freeze`` once the command has returned)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# manage.py run as its own script, with an atexit probe registered before it: atexit handlers
# run after main() has returned, before the interpreter tears the modules down
_PROBE = """
import atexit, gc, runpy, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, flush=True))
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def _manage(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "migration_planner.settings"}
    return subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", _PROBE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_command_ends_with_its_own_output_and_the_objects_frozen():
    done = _manage("help", "run_plan")
    assert done.returncode == 0, done.stderr
    assert "Launch a run of a plan" in done.stdout
    assert done.stdout.rstrip().endswith("frozen at exit: True")


def test_a_failing_command_keeps_its_message_and_exit_status():
    done = _manage("run_plan")  # the plan argument is missing
    assert done.returncode == 2
    assert "the following arguments are required: plan" in done.stderr
    assert "frozen at exit: True" in done.stdout


def test_launching_a_run_imports_no_pandas():
    """``run_plan`` reads the systems' schemas through the connectors (the drift check) but
    builds no frame: pandas (~0.4 CPU-s to import) stays out of the command's process."""
    code = (
        "import django, sys; django.setup()\n"
        "import runs.management.commands.run_plan, runs.management.commands.rollback_run\n"
        "import mappings.services_drift, mappings.schema, runs.services.launch\n"
        "import runs.engine.connectors.postgres, runs.engine.connectors.mysql\n"
        "import runs.engine.connectors.sqlite\n"
        "print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "migration_planner.settings"}
    done = subprocess.run(  # noqa: S603 - our interpreter
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['pyarrow']"  # the connectors' Arrow COPY helpers; no pandas
