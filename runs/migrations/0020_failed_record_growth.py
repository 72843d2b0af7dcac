"""The failed records cost less to write as the table grows (issue 20; Run Q's 10 M run).

- ``failed_record_run_page`` on (run, id) instead of (run, -id): new records have the highest
  ids, so they go to the ascending index's right edge (the fast path, 90 %-full pages) where the
  descending one took every insert at its left edge by a full descent and split it half and
  half; pages read it backward, the same rows in the same order.
- No insert-triggered autovacuum until 5 M records were inserted since the last vacuum (it was
  1,000 + 20 % of the table): the 10 M run's table, growing from nothing to 1.66 M records, was
  vacuumed all through the run (seen in 47 of its 324 one-second samples), each vacuum reading
  and dirtying again every heap page inserted since the last one only to set its all-visible
  bit (replayed: 57,746 of 56,585 new pages dirtied, 87,292 read). Nothing reads these records
  by an index-only scan; autovacuum's ANALYZE (and the run's own at its end) still run, and
  updates and deletes still trigger a vacuum as before.
- No statistics on the JSON columns (source_row, transformed_row, errors, corrected_values,
  earlier_failures): no query compares them, and sampling them was half of each ANALYZE
  (1.6 → 0.8 s at 1.66 M records).
"""

from django.db import migrations, models

_JSON = ("source_row", "transformed_row", "errors", "corrected_values", "earlier_failures")


def _alter(statistics: int, reloption: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        columns = ", ".join(f"ALTER COLUMN {c} SET STATISTICS {statistics}" for c in _JSON)
        schema_editor.execute(f"ALTER TABLE runs_failedrecord {columns}")
        schema_editor.execute(f"ALTER TABLE runs_failedrecord {reloption}")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0019_failed_message_insert_ordered"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="failedrecord", name="failed_record_run_page"),
        migrations.AddIndex(
            model_name="failedrecord",
            index=models.Index(fields=["run", "id"], name="failed_record_run_page"),
        ),
        migrations.RunPython(
            _alter(0, "SET (autovacuum_vacuum_insert_threshold = 5000000)"),
            _alter(-1, "RESET (autovacuum_vacuum_insert_threshold)"),
            elidable=False,
        ),
    ]
