"""Helpers of the in-process run tests (test_runs_inline.py, test_runs_control.py): the demo
target's tables, their checksums and counts, a run launched without a user."""

from __future__ import annotations

from runs.connections import connector_for
from runs.models import Run
from runs.services import run_create
from tests.support import pg

TABLES = ("accounts", "contacts", "orders")


def checksums(plan) -> dict:
    target = connector_for(plan.target)
    return {t: target.table_checksum(t, ["id"]) for t in TABLES}


def count(dbname: str, table: str) -> int:
    return pg.query(dbname, f'SELECT count(*) FROM "{table}"')[0][0]


def launch(plan, mode="load", **kwargs) -> Run:
    run = run_create(plan=plan, user=None, mode=mode, **kwargs)
    run.refresh_from_db()
    return run
