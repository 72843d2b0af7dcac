"""REVIEW9 J4-1: a role refusal says in words what was refused and which role may do it, the
same on the page and in the API, never an internal permission code (plans/API in
tests/web/test_access.py; here every capability, sign-off, the run controls and the queue)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from migration_planner.lib.roles import CAPABILITIES, refusal_text
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def test_every_capability_has_words_and_no_code():
    for capability in CAPABILITIES:
        assert "mp." not in refusal_text(capability)
        assert "only" in refusal_text(capability), capability


def test_sign_off_and_queue_refusals_say_the_same_on_page_and_api(client_for, analyst, viewer):
    words = refusal_text("mp.sign_off")
    plan = PlanFactory()
    page = client_for(analyst).post(reverse("validation:signoff_decide", args=[plan.slug]))
    assert page.status_code == 403 and words in page.content.decode()
    api = client_for(analyst).post("/api/signoffs/", {}, content_type="application/json")
    assert api.status_code == 403 and api.json()["detail"] == words
    words = refusal_text("mp.work_queue")
    page = client_for(viewer).post(reverse("runs:queue_ignore"), {"reason": "x"})
    assert page.status_code == 403 and words in page.content.decode()
    api = client_for(viewer).post(
        "/api/failed-records/ignore/", {"ids": [], "reason": "x"}, content_type="application/json"
    )
    assert api.status_code == 403 and api.json()["detail"] == words
