# The audit log moves from validation to this base app without touching the database: the
# table keeps its name (validation_auditevent), its rows and its indexes; only Django's state
# changes (validation 0007 forgets the model once this one knows it).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("validation", "0006_constraint_messages_leases_cutover"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("actor_name", models.CharField(blank=True, max_length=150)),
                        ("action", models.CharField(choices=[("create", "Create"), ("update", "Update"), ("delete", "Delete"), ("login", "Log in"), ("logout", "Log out"), ("login_failed", "Failed log-in"), ("run_start", "Run started"), ("run_control", "Run paused / resumed / cancelled"), ("rollback", "Rollback"), ("reprocess", "Re-process"), ("ignore", "Ignore failed record"), ("version", "Version created"), ("sign_off", "Sign-off"), ("import", "Import"), ("cutover", "Cutover (freeze, go / no-go, rollback)")], max_length=20)),
                        ("object_type", models.CharField(blank=True, max_length=100)),
                        ("object_id", models.CharField(blank=True, max_length=64)),
                        ("object_repr", models.CharField(blank=True, max_length=255)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("actor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "validation_auditevent",
                        "ordering": ["-at", "-id"],
                        "indexes": [
                            models.Index(fields=["object_type", "object_id"], name="validation__object__0f92ed_idx"),
                            models.Index(fields=["action"], name="validation__action_f15f71_idx"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
