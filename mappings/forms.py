"""Forms for the mapping workbench; rule-step forms are generated from the rule registry."""

from __future__ import annotations

from typing import Any

from django import forms

from runs.engine.rules import REGISTRY, Param

from .enums import DeletePolicy, LoadMode
from .models import Milestone, Plan, System


class SystemForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Password or token; stored encrypted, never shown again. Blank keeps it.",
    )

    class Meta:
        model = System
        fields = [
            "name",
            "kind",
            "environment",
            "role",
            "host",
            "port",
            "database",
            "username",
            "path",
            "description",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class PlanForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = [
            "name",
            "description",
            "source",
            "target",
            "strategy",
            "batch_size",
            "parallelism",
            "failure_threshold_pct",
            "rollback_on_threshold",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        labels = {"failure_threshold_pct": "Failure threshold (%)"}


class MilestoneForm(forms.ModelForm):
    class Meta:
        model = Milestone
        fields = ["phase", "start", "end", "deliverable"]
        widgets = {
            "start": forms.DateInput(attrs={"type": "date"}),
            "end": forms.DateInput(attrs={"type": "date"}),
        }


def _csv(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


class EntityForm(forms.Form):
    """An entity mapping; table choices come from the introspected schemas."""

    source_table = forms.ChoiceField()
    target_table = forms.ChoiceField()
    name = forms.SlugField(required=False, help_text="Defaults to the target table's name.")
    source_key = forms.CharField(
        required=False, help_text="Comma-separated; defaults to the primary key."
    )
    target_key = forms.CharField(required=False, help_text="Defaults to the primary key.")
    external_id = forms.CharField(required=False, help_text="Target column for upserts.")
    load_mode = forms.ChoiceField(choices=LoadMode.choices)
    load_order = forms.IntegerField(min_value=0, required=False)
    delete_policy = forms.ChoiceField(
        choices=DeletePolicy.choices,
        initial=DeletePolicy.IGNORE,
        required=False,
        help_text="What a delta run does with target rows whose source row was deleted.",
    )
    delete_mark_column = forms.CharField(
        required=False, help_text="Target column the “mark” policy sets."
    )
    delete_mark_value = forms.CharField(
        required=False, help_text="Value it sets, e.g. deleted; “now” = the time of the run."
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, source_tables=(), target_tables=(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source_table"].choices = [(t, t) for t in source_tables]
        self.fields["target_table"].choices = [(t, t) for t in target_tables]

    def service_data(self, source_pk: tuple[str, ...], target_pk: tuple[str, ...]) -> dict:
        """Cleaned data in the services' shape, keys defaulted from the primary keys."""
        data = dict(self.cleaned_data)
        data["source_key"] = _csv(data["source_key"]) or list(source_pk)
        data["target_key"] = data["target_key"].strip() or (target_pk[0] if target_pk else "id")
        if data.get("load_order") is None:
            data.pop("load_order", None)
        data["delete_policy"] = data.get("delete_policy") or DeletePolicy.IGNORE
        return data


class FieldForm(forms.Form):
    """The source side of one target column."""

    source_columns = forms.MultipleChoiceField(
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
        help_text="One column = 1:1; several = many:1 (the chain then starts with concat).",
    )
    default_value = forms.CharField(required=False)
    required = forms.BooleanField(required=False)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, columns=(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source_columns"].choices = [(c, c) for c in columns]

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data["default_value"] = data["default_value"] or None
        return data


_PICK = {
    "lookup": "— choose a lookup table —",
    "entity": "— choose an entity —",
    "column": "— choose a column —",
}


def _param_field(
    param: Param, *, lookups: list[str], entities: list[str], columns: list[str]
) -> forms.Field:
    common = {
        "required": param.required and param.type != "bool",
        "help_text": param.help,
        "label": param.name.replace("_", " "),
    }
    if param.type == "int":
        return forms.IntegerField(min_value=param.min_value, max_value=param.max_value, **common)
    if param.type == "bool":
        return forms.BooleanField(**common)
    if param.type == "list":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), **common, strip=False)
    named = {
        "choice": list(param.choices),
        "lookup": lookups,
        "entity": entities,
        "column": columns,
    }
    if param.type in named:
        choices = [(c, c) for c in named[param.type]]
        if param.type in _PICK:  # never pre-select a plan object: the user picks one
            choices = [("", _PICK[param.type]), *choices]
        elif not param.required:
            choices = [("", "—"), *choices]
        return forms.ChoiceField(choices=choices, **common)
    return forms.CharField(strip=False, **common)


def step_form(
    rule: str,
    *,
    prefix: str,
    data: Any = None,
    params: dict | None = None,
    lookups: list[str] = (),
    entities: list[str] = (),
    columns: list[str] = (),
) -> forms.Form:
    """A form for one rule step built from the registry's Param declarations."""
    rule_type = REGISTRY[rule]
    fields = {
        p.name: _param_field(
            p, lookups=list(lookups), entities=list(entities), columns=list(columns)
        )
        for p in rule_type.params
    }
    form_class = type(f"{rule}StepForm", (forms.Form,), fields)
    initial = {}
    for param in rule_type.params:
        value = (params or {}).get(param.name, param.default)
        initial[param.name] = "\n".join(value) if param.type == "list" and value else value
    return form_class(data=data, initial=initial, prefix=prefix)


def step_params(rule: str, form: forms.Form) -> dict:
    """A valid step form's values as rule parameters (blank optional values omitted)."""
    params: dict[str, Any] = {}
    for param in REGISTRY[rule].params:
        value = form.cleaned_data.get(param.name)
        if param.type == "list":
            value = [line.strip() for line in (value or "").splitlines() if line.strip()]
            value = value or None
        if value in ("", None) and param.type not in ("bool", "str"):
            continue
        if value is None:
            continue
        params[param.name] = value
    return params


class LookupForm(forms.Form):
    name = forms.SlugField(max_length=100)
    description = forms.CharField(required=False)
    default_value = forms.CharField(
        required=False, help_text="Used for unmapped values (blank = none)."
    )


class LookupEntryForm(forms.Form):
    key = forms.CharField(max_length=255, strip=False)
    value = forms.CharField(max_length=255, strip=False, required=False)


class UploadForm(forms.Form):
    file = forms.FileField()


class FileUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV, JSON, XLSX or XML.")
    table = forms.RegexField(
        regex=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        required=False,
        help_text="Staged table name; defaults to the file name.",
    )


class PlanImportForm(forms.Form):
    """A v1 plan document, pasted or uploaded, and the importer's two explicit choices."""

    yaml = forms.CharField(
        required=False,
        label="Paste the YAML",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
    )
    file = forms.FileField(required=False, label="or upload a .yaml file")
    replace = forms.BooleanField(
        required=False,
        label="Replace the plan with the same slug",
        help_text="Its mappings are overwritten; versions and runs stay.",
    )
    allow_unknown_schema = forms.BooleanField(
        required=False,
        label="The schema is not created yet",
        help_text="Import even though tables or columns are missing from the systems' "
        "schemas (they are listed after Validate).",
    )


class PlanCloneForm(forms.Form):
    name = forms.CharField(max_length=150, label="Name of the copy")
