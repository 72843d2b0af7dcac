"""Failed records hold every failing rule of the row and every column of its source row."""

from __future__ import annotations

import sqlite3

import pytest

from runs.enums import RunStatus
from runs.models import FailedRecord
from runs.services import failed_record_correct, failed_record_reprocess, run_create

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _columns(path, table: str) -> list[str]:
    return [r[1] for r in sqlite3.connect(path).execute(f"PRAGMA table_info({table})")]


def test_failed_records_hold_whole_source_rows_and_every_error(eager_celery, sqlite_demo_plan):
    plan, source, _ = sqlite_demo_plan
    conn = sqlite3.connect(source)
    conn.execute("ALTER TABLE customers ADD COLUMN Unmapped_Extra TEXT")
    conn.execute("UPDATE customers SET Unmapped_Extra = 'x' || Customer_ID")
    # one customer with a bad phone AND a bad e-mail: both must be on the record
    conn.execute(
        "UPDATE customers SET Phone_Number = '12', Email_Address = 'no-at-sign' "
        "WHERE Customer_ID = (SELECT min(Customer_ID) FROM customers)"
    )
    conn.commit()
    run = run_create(plan=plan, user=None, mode="load")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    records = FailedRecord.objects.filter(run=run, entity="accounts")
    assert records.count() > 0
    columns = _columns(source, "customers")
    assert "Unmapped_Extra" in columns and "Last_Modified" in columns
    for record in records:
        assert sorted(record.source_row) == sorted(columns), record.source_key  # jsonb: no order
        assert record.source_row["Unmapped_Extra"] == f"x{record.source_key}"
    first = records.get(source_key=str(min(int(r.source_key) for r in records)))
    assert {e["field"] for e in first.errors} >= {"phone", "email"}
    # fixing the phone only: the record lists what still fails (the e-mail), not the phone
    failed_record_correct(record=first, user=None, values={"Phone_Number": "2125550100"})
    failed_record_reprocess(records=FailedRecord.objects.filter(pk=first.pk), user=None)
    first.refresh_from_db()
    assert "phone" not in {e["field"] for e in first.errors}
    assert "email" in {e["field"] for e in first.errors}
