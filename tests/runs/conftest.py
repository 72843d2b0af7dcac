"""Run fixtures: a demo legacy CRM and empty new CRM in throwaway PostgreSQL databases, the
demo plan over them, eager Celery for in-process runs, and real Celery worker processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from mappings.models import EntityMapping, FieldMapping, Plan, RuleStep, System
from runs.connections import connectors_close
from runs.engine.cdc.slot import slot_drop
from tests.support import pg

ROOT = Path(__file__).resolve().parents[2]
DEMO_ROWS = 300


@pytest.fixture(scope="session")
def demo_source_db():
    """The dirty legacy CRM (300 customers, 600 contacts, 900 orders), read-only in tests."""
    with pg.throwaway_database("runs_src") as name:
        legacy_crm.build_source(pg.url_for(name), rows=DEMO_ROWS, seed=7)
        yield name


@pytest.fixture
def demo_target_db(target_template):
    """An empty new CRM, fresh per test."""
    with pg.throwaway_database("runs_tgt", template=target_template) as name:
        yield name
        connectors_close()


def _pg_system(name: str, dbname: str, environment: str, role: str) -> System:
    p = pg.admin_params()
    system = System(
        name=name,
        kind="postgresql",
        host=p.get("host", "127.0.0.1"),
        port=int(p.get("port", 5432)),
        database=dbname,
        username=p.get("user", "postgres"),
        environment=environment,
        role=role,
    )
    system.set_secret(p.get("password", ""))
    system.save()
    return system


@pytest.fixture
def demo_plan(demo_source_db, demo_target_db):
    """The demo plan mapping the legacy CRM into the (UAT) new CRM."""
    source = _pg_system("Legacy CRM", demo_source_db, "dev", "source")
    target = _pg_system("New CRM (UAT)", demo_target_db, "uat", "target")
    owner = User.objects.create(username="plan-owner")
    plan, _ = demo_plan_install(
        source=source,
        target=target,
        owner=owner,
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    return plan


@pytest.fixture
def sqlite_demo_plan(tmp_path):
    """The demo plan from a 200-customer SQLite legacy CRM into an empty SQLite new CRM:
    (plan, source path, target path)."""
    source, target = tmp_path / "legacy.sqlite3", tmp_path / "new.sqlite3"
    legacy_crm.build_source(f"sqlite:///{source}", rows=200, seed=11)
    legacy_crm.build_target(f"sqlite:///{target}")
    src = System.objects.create(
        name="Legacy (file)", kind="sqlite", path=str(source), role="source"
    )
    tgt = System.objects.create(
        name="New (file)", kind="sqlite", path=str(target), role="target", environment="uat"
    )
    plan, _ = demo_plan_install(
        source=src,
        target=tgt,
        owner=User.objects.create(username="sqlite-plan-owner"),
        us_states=legacy_crm.US_STATES,
        today=dt.date(2026, 1, 5),
    )
    return plan, source, target


@pytest.fixture
def eager_celery():
    """Run Celery tasks in-process (on commit), propagating errors.

    Each task ends with a full gc.collect() (runs.tasks.release_after_task), as in a worker
    child whose start-up objects are frozen. Here the heap also holds everything pytest and
    earlier tests made since the last freeze (tests/conftest.py): ~0.1 s per collection,
    14 of them in a three-run test. Collected and frozen once here, each task's collection
    sees only what this test made."""
    gc.collect()
    gc.freeze()
    conf = current_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


def _worker_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    env.update(
        DATABASE_URL=f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        MP_BATCH_LEASE_SECONDS="3",
        MP_SUPERVISOR_SECONDS="1",
        MP_WORKER_HEARTBEAT_SECONDS="1",
        PYTHONPATH=str(ROOT),
        MP_DATA_DIR=str(settings.DATA_DIR),
    )
    return env


class Worker:
    """A real `celery worker` process tree on the test database and broker."""

    def __init__(self, concurrency: int, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "migration_planner",
                "worker",
                f"--concurrency={concurrency}",
                "--pool=prefork",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=_worker_env(),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill_all() takes parent + pool
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready." in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready: {self.log.read_text()[-3000:]}")

    def kill_all(self) -> None:
        """kill -9 of the whole worker: the parent and every pool child at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Beat:
    """A real `celery beat` process: queues the supervisor every MP_SUPERVISOR_SECONDS (1 s)."""

    def __init__(self, folder: Path) -> None:
        self.log = folder / "beat.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "migration_planner",
                "beat",
                "--loglevel=INFO",
                "--schedule",
                str(folder / "beat-schedule"),
            ],
            cwd=ROOT,
            env=_worker_env(),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def broker_clear() -> None:
    """Drop every queued and unacknowledged message (a killed worker's leftovers)."""
    current_app.control.purge()
    with current_app.connection_for_write() as conn:
        client = conn.default_channel.client
        client.delete("unacked", "unacked_index", "unacked_mutex")


@pytest.fixture
def start_worker(request):
    """Start real worker processes and one beat (the supervisor), with no message left from
    earlier tests; all stopped by PID after (workers by kill -9 of their process group).
    Logs: artifacts/celery/<test>/ (kept: a shared /tmp/pytest-of-* keeps only the last few
    sessions of every user)."""
    tmp_path = ROOT / "artifacts" / "celery" / request.node.name[:100]
    tmp_path.mkdir(parents=True, exist_ok=True)
    broker_clear()
    workers: list[Worker] = []
    beats: list[Beat] = []

    def start(concurrency: int = 2) -> Worker:
        if not beats:
            beats.append(Beat(tmp_path))
        worker = Worker(concurrency, tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    # The test is over: what its workers still do (the report after a run, a retry's
    # back-off) is nobody's business, and a warm shutdown waited for it, 3.5-5.4 s per test.
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):  # killed by the test already
            worker.kill_all()
    for beat in beats:
        beat.stop()
    broker_clear()


@pytest.fixture
def sync_plan():
    """A source table src (400 rows) and an empty target tgt in throwaway databases, and a
    one-entity upsert plan (delete policy: delete) between them; slots dropped after."""
    with pg.throwaway_database("sync_src") as src, pg.throwaway_database("sync_tgt") as tgt:
        pg.query(src, "CREATE TABLE src (id integer PRIMARY KEY, name text, amount numeric(10,2))")
        pg.query(
            src, "INSERT INTO src SELECT g, 'name ' || g, g * 1.25 FROM generate_series(1, 400) g"
        )
        pg.query(
            tgt,
            "CREATE TABLE tgt (id serial PRIMARY KEY, ext text NOT NULL UNIQUE, "
            "name text, amount numeric(10,2))",
        )
        source = _pg_system("Sync source", src, "dev", "source")
        target = _pg_system("Sync target", tgt, "uat", "target")
        plan = Plan.objects.create(
            name="Sync", slug="sync", source=source, target=target, batch_size=100
        )
        entity = EntityMapping.objects.create(
            plan=plan,
            name="src",
            source_table="src",
            target_table="tgt",
            source_key=["id"],
            target_key="id",
            external_id="ext",
            load_mode="upsert",
            delete_policy="delete",
        )
        FieldMapping.objects.create(entity=entity, target_column="ext", source_columns=["id"])
        name = FieldMapping.objects.create(
            entity=entity, target_column="name", source_columns=["name"], position=1
        )
        RuleStep.objects.create(field=name, rule="upper")
        FieldMapping.objects.create(
            entity=entity, target_column="amount", source_columns=["amount"], position=2
        )
        yield plan, src, tgt
        params = source.connection_params()
        for run in plan.runs.all():
            slot_drop(params, f"mp_sync_{run.uuid.hex[:20]}")
