"""Batches carried by reference (issue 15): a re-run that finds a key range unchanged as a
whole records one ``runs_carriedbatch`` row instead of copying the batch's failed records.

A record of a batch that live (not rolled back) references carry answers to the newest of
them: the tally's UPDATE trigger charges a change of such a record to that run, so a
supersede or re-open of a referred record is counted where the queue shows it (PostgreSQL
only; SQLite carries nothing).
"""

import django.db.models.deletion
from django.db import migrations, models

_DIMS = "entity, stage, category, field, status"
_OWNER = "coalesce(o.run_id, t.run_id)"
# the newest live reference of each batch carried by reference (one hash join per statement)
_OWNERS = """LEFT JOIN (SELECT source_batch_id, max(run_id) AS run_id FROM runs_carriedbatch
    WHERE NOT rolled_back GROUP BY source_batch_id) o ON o.source_batch_id = t.batch_id"""


def _update(owner: str, owners: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION runs_failedrecord_tally_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO runs_failedrecordtally (run_id, {_DIMS}, n)
        SELECT run_id, {_DIMS}, sum(d) FROM (
            SELECT {owner} AS run_id, {_DIMS}, -1 AS d FROM tally_old t {owners}
            UNION ALL
            SELECT {owner} AS run_id, {_DIMS}, 1 AS d FROM tally_new t {owners}
        ) AS moved GROUP BY run_id, {_DIMS} HAVING sum(d) <> 0;
        RETURN NULL;
    END $$
    """


def _replace(owner: str, owners: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_update(owner, owners))

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0020_failed_record_growth"),
    ]

    operations = [
        migrations.CreateModel(
            name="CarriedBatch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("entity", models.CharField(max_length=100)),
                ("records", models.PositiveIntegerField()),
                ("rolled_back", models.BooleanField(default=False)),
                (
                    "batch",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="carries",
                        to="runs.batch",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="carried_batches",
                        to="runs.run",
                    ),
                ),
                (
                    "source_batch",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="carried_by",
                        to="runs.batch",
                    ),
                ),
                (
                    "source_run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="runs.run"
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["source_batch", "run"], name="carried_batch_source")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("batch",),
                        name="carried_batch_one_per_batch",
                        violation_error_message=(
                            "This batch already carries an earlier batch's failed records by reference."
                        ),
                    )
                ],
            },
        ),
        migrations.RunPython(_replace(_OWNER, _OWNERS), _replace("t.run_id", ""), elidable=False),
    ]
