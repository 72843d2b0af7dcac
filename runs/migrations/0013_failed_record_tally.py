"""The error queue's counts at millions of records (PostgreSQL only; nothing on SQLite).

- ``runs_failedrecordtally``: signed counts per (run, entity, stage, category, field, status),
  appended by statement-level AFTER triggers on ``runs_failedrecord`` reading the statement's
  transition tables, so every writer (batches, re-process, ignore, corrections, supersede,
  deletes) keeps it exact without knowing about it; a run's rows go when the run does.
- A trigram GIN index on ``upper(message || ' ' || source_key)`` (pg_trgm), the expression the
  queue's text filter searches (runs.selectors.queue), so a rare text is an index lookup.
"""

import django.db.models.deletion
from django.db import migrations, models

_DIMS = "run_id, entity, stage, category, field, status"

FORWARD = [
    f"""
    CREATE FUNCTION runs_failedrecord_tally_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedrecordtally ({_DIMS}, n)
        SELECT {_DIMS}, count(*) FROM tally_new GROUP BY {_DIMS};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION runs_failedrecord_tally_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedrecordtally ({_DIMS}, n)
        SELECT {_DIMS}, -count(*) FROM tally_old GROUP BY {_DIMS};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION runs_failedrecord_tally_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedrecordtally ({_DIMS}, n)
        SELECT {_DIMS}, sum(d) FROM (
            SELECT {_DIMS}, -1 AS d FROM tally_old
            UNION ALL
            SELECT {_DIMS}, 1 AS d FROM tally_new
        ) AS moved GROUP BY {_DIMS} HAVING sum(d) <> 0;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION runs_run_tally_forget() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM runs_failedrecordtally WHERE run_id IN (SELECT id FROM tally_runs);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER failed_record_tally_insert AFTER INSERT ON runs_failedrecord
    REFERENCING NEW TABLE AS tally_new
    FOR EACH STATEMENT EXECUTE FUNCTION runs_failedrecord_tally_insert()
    """,
    """
    CREATE TRIGGER failed_record_tally_delete AFTER DELETE ON runs_failedrecord
    REFERENCING OLD TABLE AS tally_old
    FOR EACH STATEMENT EXECUTE FUNCTION runs_failedrecord_tally_delete()
    """,
    """
    CREATE TRIGGER failed_record_tally_update AFTER UPDATE ON runs_failedrecord
    REFERENCING OLD TABLE AS tally_old NEW TABLE AS tally_new
    FOR EACH STATEMENT EXECUTE FUNCTION runs_failedrecord_tally_update()
    """,
    """
    CREATE TRIGGER run_tally_forget AFTER DELETE ON runs_run
    REFERENCING OLD TABLE AS tally_runs
    FOR EACH STATEMENT EXECUTE FUNCTION runs_run_tally_forget()
    """,
    f"""
    INSERT INTO runs_failedrecordtally ({_DIMS}, n)
    SELECT {_DIMS}, count(*) FROM runs_failedrecord GROUP BY {_DIMS}
    """,
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """
    CREATE INDEX failed_record_search_trgm ON runs_failedrecord
    USING gin ((upper(message || ' ' || source_key)) gin_trgm_ops)
    """,
]

BACKWARD = [
    "DROP INDEX IF EXISTS failed_record_search_trgm",
    "DROP TRIGGER IF EXISTS run_tally_forget ON runs_run",
    "DROP TRIGGER IF EXISTS failed_record_tally_update ON runs_failedrecord",
    "DROP TRIGGER IF EXISTS failed_record_tally_delete ON runs_failedrecord",
    "DROP TRIGGER IF EXISTS failed_record_tally_insert ON runs_failedrecord",
    "DROP FUNCTION IF EXISTS runs_run_tally_forget()",
    "DROP FUNCTION IF EXISTS runs_failedrecord_tally_update()",
    "DROP FUNCTION IF EXISTS runs_failedrecord_tally_delete()",
    "DROP FUNCTION IF EXISTS runs_failedrecord_tally_insert()",
]


def _on_postgresql(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0012_constraint_messages_leases_cutover"),
    ]

    operations = [
        migrations.CreateModel(
            name="FailedRecordTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("entity", models.CharField(max_length=100)),
                ("stage", models.CharField(max_length=10)),
                ("category", models.CharField(max_length=50)),
                ("field", models.CharField(blank=True, max_length=128)),
                ("status", models.CharField(max_length=20)),
                ("n", models.BigIntegerField()),
                (
                    "run",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="runs.run",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="failedrecordtally",
            index=models.Index(fields=["run", "status"], name="failed_record_tally_run"),
        ),
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD), elidable=False),
    ]
