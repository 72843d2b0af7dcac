# The plan's checks now belong to mappings (mappings 0009) and the audit log to the base app
# ``audit``: forget them here (state only, same tables) and move their content types along, so
# the role groups keep their permissions on them.

import django.db.models.deletion
from django.db import migrations, models


MOVED = {"validationrule": "mappings", "uattestcase": "mappings", "auditevent": "audit"}


def content_types_move(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        if not ContentType.objects.filter(app_label=app_label, model=model).exists():
            ContentType.objects.filter(app_label="validation", model=model).update(
                app_label=app_label
            )


def content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        if not ContentType.objects.filter(app_label="validation", model=model).exists():
            ContentType.objects.filter(app_label=app_label, model=model).update(
                app_label="validation"
            )


class Migration(migrations.Migration):

    dependencies = [
        ('mappings', '0009_plan_checks_from_validation'),
        ('validation', '0007_auditevent_moved_to_audit'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='uatresult',
                    name='case',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='results', to='mappings.uattestcase'),
                ),
                migrations.RemoveField(
                    model_name='validationrule',
                    name='plan',
                ),
                migrations.AlterField(
                    model_name='validationresult',
                    name='rule',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='results', to='mappings.validationrule'),
                ),
                migrations.DeleteModel(
                    name='UATTestCase',
                ),
                migrations.DeleteModel(
                    name='ValidationRule',
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_move, content_types_back),
    ]
