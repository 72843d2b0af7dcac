# Re-runs carry unchanged failures (issue 20): the source and rules hash of a failed record,
# the record a carried one was copied from, and the status of a record carried into a later run.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0014_merge_failed_record_tally_and_leases"),
    ]

    operations = [
        migrations.AddField(
            model_name="failedrecord",
            name="source_hash",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="failedrecord",
            name="rules_hash",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="failedrecord",
            name="carried_from",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="runs.failedrecord",
            ),
        ),
        migrations.AlterField(
            model_name="failedrecord",
            name="status",
            field=models.CharField(
                choices=[
                    ("open", "Open"),
                    ("fixed", "Fixed (awaiting re-process)"),
                    ("reprocessed", "Re-processed"),
                    ("ignored", "Ignored"),
                    ("superseded", "Superseded (run rolled back)"),
                    ("carried", "Carried into a later run"),
                ],
                default="open",
                max_length=20,
            ),
        ),
    ]
