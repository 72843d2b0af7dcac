"""ANALYZE of the failed records samples 3,000 of them, not 30,000 (issue 20).

ANALYZE's cost is its sample: 300 rows per unit of the largest statistics target among the
table's columns and its expression indexes (``md5(message)::uuid``, ``upper(source_key)``),
whose default (100) made 30,000 rows — every page of a 1 M run's failed records, 0.5 s of the
app database at the run's end (``failed_records_analyze``), 1.2–1.5 s at 1.66 M records, and
as much again for each of autovacuum's. Every target is now 10 (3,000 rows: ~20 ms at 166 k
records, ~0.1 s at 1.66 M). The queue's pages, text filter and API page over a 1.66 M-record
run had the same plans with either. The JSON columns keep no statistics (0020).
"""

from django.db import migrations

_COLUMNS = (
    "id",
    "uuid",
    "entity",
    "source_key",
    "stage",
    "category",
    "field",
    "rule",
    "message",
    "status",
    "ignore_reason",
    "handled_at",
    "created_at",
    "batch_id",
    "handled_by_id",
    "run_id",
    "source_hash",
    "rules_hash",
    "carried_from_id",
)
_EXPRESSION_INDEXES = ("failed_record_message_digest", "failed_record_key_trgm")


def _target(statistics: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        columns = ", ".join(f"ALTER COLUMN {c} SET STATISTICS {statistics}" for c in _COLUMNS)
        schema_editor.execute(f"ALTER TABLE runs_failedrecord {columns}")
        for index in _EXPRESSION_INDEXES:
            schema_editor.execute(f"ALTER INDEX {index} ALTER COLUMN 1 SET STATISTICS {statistics}")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0023_failed_message_insert_distinct_first"),
    ]

    operations = [
        migrations.RunPython(_target(10), _target(-1), elidable=False),
    ]
