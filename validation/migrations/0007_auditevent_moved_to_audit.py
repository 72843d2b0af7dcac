# The audit log now belongs to the base app ``audit`` (same table): forget it here, state only.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("validation", "0006_constraint_messages_leases_cutover"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="AuditEvent")],
            database_operations=[],
        ),
    ]
