"""Helpers of the workbench API tests (test_api_*.py): a JSON request, the demo plan's field."""

from __future__ import annotations

from mappings.models import FieldMapping, Plan

JSON = "application/json"


def send(client, method: str, url: str, body: dict | None = None):
    return getattr(client, method)(url, body or {}, content_type=JSON)


def name_field(plan: Plan) -> FieldMapping:
    return plan.entities.get(name="accounts").fields.get(target_column="name")
