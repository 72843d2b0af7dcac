"""Orchestrator of scripts/multihost.sh, run inside the db namespace: app database, demo data,
two workers in their own namespaces (each with its own data directory: no shared file system),
beat here; a reference run, then a run during which worker host 1's link is cut."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migration_planner.settings")

import django  # noqa: E402 - after the path and settings module are set

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from mappings.demo import legacy_crm  # noqa: E402
from mappings.demo_plan import demo_plan_install  # noqa: E402
from mappings.models import System  # noqa: E402
from runs.enums import FINISHED_RUN_STATUSES, RunStatus  # noqa: E402
from runs.models import Batch, Run, Worker  # noqa: E402
from runs.services import run_create  # noqa: E402
from tests.runs.faults import KEYS, content_checksums  # noqa: E402
from tests.support import pg  # noqa: E402

ROWS, BATCH = 2000, 200
WORK = Path(os.environ["MP_WORK"])
NAMESPACES = os.environ["MP_NS_WORKERS"].split(",")
DB_ADDR = "198.18.0.1"


def log(message: str) -> None:
    print(f"[multihost] {message}", file=sys.stderr, flush=True)


def system(name: str, dbname: str, role: str) -> System:
    s = System(
        name=name,
        kind="postgresql",
        host=DB_ADDR,
        port=5432,
        database=dbname,
        username="postgres",
        environment="uat",
        role=role,
    )
    s.set_secret("")
    s.save()
    return s


def start(argv: list[str], log_name: str, env: dict[str, str]) -> subprocess.Popen:
    # S603: fixed argv of our own interpreter and ip(8)
    return subprocess.Popen(  # noqa: S603
        argv,
        cwd=ROOT,
        env=env,
        stdout=(WORK / log_name).open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def workers() -> list[subprocess.Popen]:
    procs = []
    for i, ns in enumerate(NAMESPACES, start=1):
        env = {**os.environ, "MP_DATA_DIR": str(WORK / f"host{i}")}  # its own disk
        procs.append(
            start(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "migration_planner",
                    "worker",
                    "--concurrency=1",
                    "--without-gossip",
                    "--without-mingle",
                    "-n",
                    f"host{i}@%h",
                ],
                f"worker{i}.log",
                env,
            )
        )
    return procs


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"{what}: not seen within {timeout}s")


def finished(run: Run, timeout: float = 300) -> Run:
    def ended() -> bool:
        run.refresh_from_db()
        return run.status in FINISHED_RUN_STATUSES

    wait(ended, timeout, "run end")
    return run


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def main() -> None:
    call_command("migrate", verbosity=0)
    for name in ("mh_src", "mh_ref", "mh_tgt"):
        pg.admin_exec(f"CREATE DATABASE {name}")
    legacy_crm.build_source(pg.url_for("mh_src"), rows=ROWS, seed=7)
    legacy_crm.build_target(pg.url_for("mh_ref"))
    legacy_crm.build_target(pg.url_for("mh_tgt"))
    source = system("Legacy CRM", "mh_src", "source")
    reference_target = system("Reference CRM", "mh_ref", "target")
    target = system("New CRM", "mh_tgt", "target")
    plan, _ = demo_plan_install(
        source=source,
        target=target,
        owner=User.objects.create(username="owner"),
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    plan.batch_size = BATCH
    plan.save()
    procs = workers()
    procs.append(
        start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "migration_planner",
                "beat",
                "--schedule",
                str(WORK / "beat-schedule"),
            ],
            "beat.log",
            dict(os.environ),
        )
    )
    try:
        wait(lambda: Worker.objects.count() == 2, 120, "both workers' heartbeats")
        log("both worker hosts report; reference run")
        ref = finished(run_create(plan=plan, user=None, target=reference_target, mode="load"))
        assert ref.status == RunStatus.SUCCEEDED, ref.error
        by_host = {
            w.split(":")[-1] for w in Batch.objects.filter(run=ref).values_list("worker", flat=True)
        }
        log(f"reference: {ref.loaded:,} loaded by {len(by_host)} processes")
        run = run_create(plan=plan, user=None, target=target, mode="load")
        host1 = children(procs[0].pid)
        busy = wait(
            lambda: next(
                (
                    b
                    for b in Batch.objects.filter(run=run, status="running")
                    if int(b.worker.rsplit(":", 1)[1]) in host1
                ),
                None,
            ),
            120,
            "a batch running on worker host 1",
        )
        subprocess.run(["ip", "link", "set", os.environ["MP_CUT_LINK"], "down"], check=True)  # noqa: S603, S607
        cut_at = time.monotonic()
        log(f"cut worker host 1's link while it ran batch {busy.seq}")
        wait(lambda: Batch.objects.get(pk=busy.pk).status == "done", 300, "lost batch redone")
        recovered = time.monotonic() - cut_at
        run = finished(run)
        ended = time.monotonic() - cut_at
        assert run.status == RunStatus.SUCCEEDED, run.error
        redone = Batch.objects.get(pk=busy.pk)
        rows = {t: pg.query("mh_tgt", f"SELECT count(*) FROM {t}")[0][0] for t in KEYS}
        dupes = {
            t: pg.query("mh_tgt", f"SELECT count(*) - count(DISTINCT {k}) FROM {t}")[0][0]
            for t, k in KEYS.items()
        }
        same = content_checksums("mh_tgt") == content_checksums("mh_ref")
        result = {
            "rows": ROWS * 6,
            "batches": run.batches_total,
            "loaded": run.loaded,
            "target_rows": sum(rows.values()),
            "duplicates": sum(dupes.values()),
            "checksums_equal_reference": same,
            "lost_batch_attempts": redone.attempts,
            "lost_batch_redone_by": "host2"
            if int(redone.worker.rsplit(":", 1)[1]) not in host1
            else "host1",
            "recover_s": round(recovered, 1),
            "run_end_s": round(ended, 1),
        }
        log(json.dumps(result))
        (ROOT / "artifacts" / "multihost.json").write_text(json.dumps(result, indent=2) + "\n")
        assert same and result["duplicates"] == 0 and result["target_rows"] == run.loaded
        assert run.loaded + run.failed + run.filtered + run.duplicates == run.source_total
        log("PASS: the run completed on the other worker host with the same checksums")
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
