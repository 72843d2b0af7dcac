"""REVIEW9 J4-1: a role refusal says in words what was refused and which role may do it, the
same on the page and in the API, never an internal permission code."""

from __future__ import annotations

import pytest
from django.urls import reverse

from migration_planner.lib.roles import CAPABILITIES, refusal
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def test_every_capability_refusal_names_its_roles_in_words():
    assert refusal("mp.edit_plan") == (
        "Only an analyst or an admin may edit plans, mappings, rules and lookups; "
        "ask an admin if you need it."
    )
    assert refusal("mp.sign_off").startswith("Only an approver may sign off a plan version")
    assert refusal("mp.launch_run").startswith("Only an analyst, an operator or an admin may")
    for capability in CAPABILITIES:
        assert "mp." not in refusal(capability) and "do this" not in refusal(capability)


def test_the_page_and_the_api_refuse_with_the_same_words(client_for, viewer, analyst):
    words = refusal("mp.edit_plan")
    page = client_for(viewer).get(reverse("mappings:plan_create"))
    assert page.status_code == 403 and words in page.content.decode().replace("&#x27;", "'")
    assert "(mp." not in page.content.decode()
    api = client_for(viewer).post("/api/plans/", {"name": "x"}, content_type="application/json")
    assert api.status_code == 403 and api.json()["detail"] == words

    plan = PlanFactory()
    page = client_for(analyst).post(reverse("validation:signoff_decide", args=[plan.slug]))
    assert page.status_code == 403 and refusal("mp.sign_off") in page.content.decode()
    api = client_for(analyst).post("/api/signoffs/", {}, content_type="application/json")
    assert api.status_code == 403 and api.json()["detail"] == refusal("mp.sign_off")
