"""Forms of the runs console: launch, error-queue filters, ignore, rollback."""

from __future__ import annotations

from django import forms

from mappings.models import Plan, System

from .enums import FailedRecordStatus, RunMode, RunStatus, Stage

STATUS_CHOICES = [("", "any status"), ("workable", "Open or fixed"), *FailedRecordStatus.choices]


class LaunchForm(forms.Form):
    target = forms.ModelChoiceField(queryset=System.objects.none(), to_field_name="name")
    mode = forms.ChoiceField(choices=RunMode.choices, initial=RunMode.DRY_RUN)
    scope_entity = forms.ChoiceField(required=False, label="Only entity")

    def __init__(self, *args, plan: Plan, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = System.objects.exclude(role="source").order_by("name")
        self.fields["target"].label_from_instance = lambda s: f"{s.name} ({s.environment})"
        self.fields["target"].initial = plan.target.name
        names = [e.name for e in plan.entities.order_by("load_order", "name")]
        self.fields["scope_entity"].choices = [("", "all entities, in load order")] + [
            (n, n) for n in names
        ]


class RunFilterForm(forms.Form):
    plan = forms.CharField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *RunStatus.choices])
    target = forms.CharField(required=False)
    launched_by = forms.CharField(required=False)


class QueueFilterForm(forms.Form):
    entity = forms.CharField(required=False)
    stage = forms.ChoiceField(required=False, choices=[("", "any stage"), *Stage.choices])
    category = forms.CharField(required=False)
    field = forms.CharField(required=False)
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES, initial="workable")
    q = forms.CharField(required=False, label="Message or key")

    def filters(self) -> dict[str, str]:
        """The cleaned filters (empty strings for unset ones); call after is_valid()."""
        data = getattr(self, "cleaned_data", {}) or {}
        return {k: (data.get(k) or "") for k in self.fields}


class IgnoreForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput)


class RollbackForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)
    confirm = forms.BooleanField(label="I understand the target rows above will be undone")
    with_later_runs = forms.BooleanField(required=False)
