# The plan's checks (validation rules, UAT test cases) move from validation to mappings, where
# the rest of the plan's content lives: state only, the tables keep their names and rows.

import django.db.models.deletion
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mappings', '0008_rule_options_explicit'),
        ('validation', '0007_auditevent_moved_to_audit'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='UATTestCase',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('uuid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ('title', models.CharField(max_length=200)),
                        ('steps', models.TextField()),
                        ('expected_result', models.TextField()),
                        ('position', models.PositiveSmallIntegerField(default=0)),
                        ('plan', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='uat_cases', to='mappings.plan')),
                    ],
                    options={
                        'verbose_name': 'UAT test case',
                        'db_table': 'validation_uattestcase',
                        'ordering': ['plan', 'position', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='ValidationRule',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('uuid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ('name', models.CharField(max_length=150)),
                        ('phase', models.CharField(choices=[('pre', 'Pre-migration'), ('post', 'Post-migration')], max_length=5)),
                        ('kind', models.CharField(choices=[('row_count_range', 'Row count in range'), ('unique', 'Unique'), ('completeness', 'Completeness %'), ('format', 'Format (regex / named pattern)'), ('row_count_match', 'Row count match'), ('sum_match', 'Sum / aggregate match'), ('category_count_match', 'Counts per category match'), ('sample_compare', 'Random sample field-by-field'), ('referential_integrity', 'Referential integrity'), ('checksum', 'Checksum reconciliation')], max_length=30)),
                        ('entity', models.CharField(help_text='Entity mapping name the rule checks.', max_length=100)),
                        ('column', models.CharField(blank=True, max_length=128)),
                        ('params', models.JSONField(blank=True, default=dict)),
                        ('severity', models.CharField(choices=[('blocking', 'Blocking'), ('warning', 'Warning')], default='blocking', max_length=10)),
                        ('enabled', models.BooleanField(default=True)),
                        ('plan', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='validation_rules', to='mappings.plan')),
                    ],
                    options={
                        'db_table': 'validation_validationrule',
                        'ordering': ['plan', 'phase', 'name'],
                        'constraints': [models.UniqueConstraint(fields=('plan', 'name'), name='validation_rule_name_unique', violation_error_message='This plan already has a validation rule with this name.')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
