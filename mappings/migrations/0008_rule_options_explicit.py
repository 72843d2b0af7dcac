"""Make the rule options whose defaults changed explicit on every stored step, so no plan
changes output: `trim` kept collapsing inner whitespace, `value_map` kept null/blank null."""

from django.db import migrations

# Frozen copy of runs.engine.snapshot.FORMAT_1_PARAMS (what format-1 steps meant).
FORMAT_1_PARAMS = {"trim": {"collapse_inner": True}, "value_map": {"on_null": "null"}}


def forwards(apps, schema_editor):
    RuleStep = apps.get_model("mappings", "RuleStep")
    for step in RuleStep.objects.filter(rule__in=list(FORMAT_1_PARAMS)).iterator():
        params = FORMAT_1_PARAMS[step.rule] | dict(step.params or {})
        if params != step.params:
            RuleStep.objects.filter(pk=step.pk).update(params=params)


class Migration(migrations.Migration):
    dependencies = [("mappings", "0007_staged_file")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
