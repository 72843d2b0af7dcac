"""The failed records cost the app database less to write (issue 20: their COPY was the run's
costliest app-database statement).

- source_row, transformed_row, errors and earlier_failures are ``json`` instead of ``jsonb``
  on PostgreSQL (runs.models.fields.JsonTextField): the input is validated, not built into a
  sorted tree (jsonb's input was ~15 % of the COPY's backend CPU); no query compares inside
  them. Existing values are converted in place (``USING column::json``: the same JSON, in
  jsonb's key order); all four in one ALTER TABLE, one rewrite of the table. SQLite keeps its
  text columns.
- handled_by has no database foreign key: its deferred check was queued for every inserted
  record (NULL there) and run at commit. Deleting a user still sets it NULL (Django).
"""

from django.conf import settings
from django.db import migrations, models

import runs.models.fields

_COLUMNS = ("source_row", "transformed_row", "errors", "earlier_failures")


def _retype(to: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        alter = ", ".join(f"ALTER COLUMN {c} TYPE {to} USING {c}::{to}" for c in _COLUMNS)
        schema_editor.execute(f"ALTER TABLE runs_failedrecord {alter}")

    return apply


_FIELDS = {
    "source_row": runs.models.fields.JsonTextField(default=dict),
    "transformed_row": runs.models.fields.JsonTextField(blank=True, default=dict),
    "errors": runs.models.fields.JsonTextField(blank=True, default=list),
    "earlier_failures": runs.models.fields.JsonTextField(
        blank=True,
        default=list,
        help_text="Failures this record had before its current one, oldest (the original) "
        "first: a failed re-process keeps them (stage, category, field, rule, message).",
        null=True,
    ),
}


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0021_carried_batch"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="failedrecord", name=name, field=field)
                for name, field in _FIELDS.items()
            ],
            database_operations=[
                migrations.RunPython(_retype("json"), _retype("jsonb"), elidable=False)
            ],
        ),
        migrations.AlterField(
            model_name="failedrecord",
            name="handled_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
