"""Helpers of the fault tests: wait for a run, prove its target content, time the recovery."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from runs.enums import FINISHED_RUN_STATUSES, RunStatus
from runs.models import COUNTERS, Batch, Run
from tests.support import pg

ROOT = Path(__file__).resolve().parents[2]
# Content of the demo target without its surrogate ids (BIGSERIAL ids depend on the order in
# which batches committed, so they differ between two correct runs): every column but id, the
# foreign keys replaced by the parent's business key, ordered by the business key.
CONTENT_SQL = {
    "accounts": "SELECT count(*), md5(string_agg((to_jsonb(a) - 'id')::text, '|' "
    "ORDER BY a.account_number)) FROM accounts a",
    "contacts": "SELECT count(*), md5(string_agg(((to_jsonb(c) - 'id' - 'account_id') || "
    "jsonb_build_object('account', a.account_number))::text, '|' ORDER BY c.legacy_contact_id)) "
    "FROM contacts c JOIN accounts a ON a.id = c.account_id",
    "orders": "SELECT count(*), md5(string_agg(((to_jsonb(o) - 'id' - 'contact_id') || "
    "jsonb_build_object('contact', c.legacy_contact_id))::text, '|' ORDER BY o.legacy_order_id)) "
    "FROM orders o JOIN contacts c ON c.id = o.contact_id",
}
KEYS = {"accounts": "account_number", "contacts": "legacy_contact_id", "orders": "legacy_order_id"}


def content_checksums(dbname: str) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the rows' content) per demo target table."""
    return {t: tuple(pg.query(dbname, q)[0]) for t, q in CONTENT_SQL.items()}


def wait_for(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what}: not seen within {timeout}s")


def wait_finished(run: Run, timeout: float = 180) -> Run:
    def ended() -> bool:
        run.refresh_from_db()
        return run.status in FINISHED_RUN_STATUSES

    wait_for(ended, timeout, f"run still {run.status}", step=0.2)
    return run


def assert_exact(run: Run, target_db: str, reference: dict) -> None:
    """The run succeeded, wrote every row once, balanced its accounting, and the target holds
    exactly what an undisturbed run of the same plan wrote."""
    assert run.status == RunStatus.SUCCEEDED, run.error
    sums = {c: sum(Batch.objects.filter(run=run).values_list(c, flat=True)) for c in COUNTERS}
    assert sums == {c: getattr(run, c) for c in COUNTERS}
    assert run.loaded + run.failed + run.filtered + run.duplicates == run.source_total
    rows = {t: pg.query(target_db, f"SELECT count(*) FROM {t}")[0][0] for t in KEYS}
    assert sum(rows.values()) == run.loaded
    for table, key in KEYS.items():
        dupes = pg.query(target_db, f"SELECT count(*) - count(DISTINCT {key}) FROM {table}")
        assert dupes == [(0,)], table
    ledger = pg.query(
        target_db, "SELECT count(*), count(DISTINCT (batch_id, target_key)) FROM mp_ledger.written"
    )
    assert ledger == [(run.loaded, run.loaded)]
    assert content_checksums(target_db) == reference


def record_recovery(fault: str, seconds: float, **extra: object) -> None:
    """Append a measured time-to-recover to artifacts/faults.jsonl (figures for the docs)."""
    folder = ROOT / "artifacts"
    folder.mkdir(exist_ok=True)
    line = {"fault": fault, "recover_s": round(seconds, 1), "pid": os.getpid(), **extra}
    with (folder / "faults.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")
