"""Profiling of a source table: shapes, nulls, suggestions, the page."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pandas as pd
import pytest
from django.urls import reverse

from mappings.profiling import profile_frame, value_shape
from tests.mappings.workbench_fixtures import demo_files, demo_systems  # noqa: F401


def test_value_shape_maps_digits_letters_and_keeps_punctuation():
    assert value_shape("(555) 123-4567") == "(9) 9-9"
    assert value_shape("555.123.4567") == "9.9.9"
    assert value_shape("Acme  Corp") == "Aa Aa"


def test_profile_counts_nulls_distinct_and_duplicates():
    frame = pd.DataFrame({"id": ["1", "2", "2"], "x": ["a", None, "a"]}, dtype=object)
    profile = profile_frame("t", frame, key=("id",))
    x = profile.columns[1]
    assert (x.nulls, x.distinct, round(x.null_pct, 1)) == (1, 1, 33.3)
    assert profile.duplicate_keys == [("2", 2)]


@pytest.mark.django_db
def test_profiling_finds_the_demo_phone_shapes(client_for, viewer, demo_systems):
    url = reverse("mappings:table_profile", args=[demo_systems[0].uuid, "customers"])
    body = client_for(viewer).get(url).content.decode()
    assert "(9) 9-9" in body and "9.9.9" in body and "+9 9 9 9" in body
    assert "suggest: phone_format" in body
    assert "suggest: parse_date with formats:" in body
    assert "Computed on all 300 rows" in body
