# The audit log now belongs to the base app ``audit`` (same table): forget it here, state only.

from django.db import migrations


def content_type_move(apps, schema_editor):
    """The role groups keep their permissions on the audit log: its content type moves along."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="audit", model="auditevent").exists():
        ContentType.objects.filter(app_label="validation", model="auditevent").update(
            app_label="audit"
        )


def content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="validation", model="auditevent").exists():
        ContentType.objects.filter(app_label="audit", model="auditevent").update(
            app_label="validation"
        )


class Migration(migrations.Migration):

    dependencies = [
        ("validation", "0006_constraint_messages_leases_cutover"),
        ("audit", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
        migrations.RunPython(content_type_move, content_type_back),
    ]
