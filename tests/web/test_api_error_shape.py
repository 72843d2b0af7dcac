"""Every API 400 can be read the same way: {"detail", "field"} (REVIEW9 J4-2)."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_a_form_error_keeps_its_field_map_and_has_detail_and_field(client_for, analyst):
    response = client_for(analyst).post(
        "/api/plans/", {"name": "", "batch_size": -5}, content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["name"] and body["field"] == "name"  # DRF's map stays; the first field named
    assert body["detail"].startswith("name: ")
    assert "batch_size: " in body["detail"]


@pytest.mark.django_db
def test_an_invalid_cursor_is_bad_input_naming_the_cursor(client_for, operator):
    response = client_for(operator).get("/api/failed-records/?cursor=zzz")
    assert response.status_code == 400
    assert response.json()["field"] == "cursor"
    assert "cursor" in response.json()["detail"]
