"""Profiling of a source table: shapes, nulls, suggestions, the page."""
# ruff: noqa: F811 -- pytest fixtures imported from workbench_fixtures are used as arguments

from __future__ import annotations

import pandas as pd
import pytest
from django.urls import reverse

from mappings.profiling import duplicate_candidates, profile_column, profile_frame, value_shape
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


def _labels(name: str, values: list[str | None]) -> list[str]:
    column = profile_column(name, pd.Series(values, dtype=object))
    return [s.label.split(" ")[0] for s in column.suggestions]


@pytest.mark.parametrize(
    "name,values",
    [
        ("State_Code", ["CA", "ny", "TX", "Wa", "or", "NV"] * 20),
        (
            "Phone_Number",
            [
                "555-123-4567",
                "(555) 123-4567",
                "555.123.4567",
                "+1 555 123 4567",
                "5551234567 ext",
                "555 123 4567 Home",
            ]
            * 20,
        ),
        ("Contact", ["ab12-XY34", "cd56-zw78", "EF90-gh12"] * 30),  # id-like: digit-heavy
        ("Email_Address", ["Ann@Example.com", "bob@example.COM", " cy@ex.org "] * 30),
    ],
)
def test_no_title_case_for_code_like_columns(name, values):
    assert "title" not in _labels(name, values)


def test_short_codes_in_mixed_case_get_upper_and_words_get_title():
    assert "upper" in _labels("State_Code", ["CA", "ny", "TX", "Wa"] * 20)
    assert "title" in _labels("Cust_Name", ["ACME CORP", "acme ltd", "Big River Inc"] * 20)


def test_no_title_when_most_values_are_already_in_mixed_case():
    cased = ["Acme LLC", "IBM Global Services", "Big River Inc", "ACME CORP", "smith & sons"]
    assert "title" not in _labels("Cust_Name", cased * 20)  # 3 of 5 already cased
    shouting = ["ACME LLC", "acme ltd", "BIG RIVER INC", "Big River Inc"]
    assert "title" in _labels("Cust_Name", shouting * 20)  # 1 of 4 cased


def test_value_map_only_for_low_cardinality_label_columns():
    """At most 12 distinct values, each seen 5 times on average, none over 40 characters."""
    labels = [f"Status {i}" for i in range(12)]
    assert "value_map" in _labels("Status", labels * 10)
    assert "value_map" not in _labels("Status", [f"Status {i}" for i in range(13)] * 10)
    assert "value_map" in _labels("Status", labels * 5)  # 60 rows: each value 5 times
    assert "value_map" not in _labels("Status", labels * 4 + labels[:7])  # 55 rows: too few
    notes = [
        f"Called the customer about invoice {i}; will renew in Q3 next year." for i in range(11)
    ]
    assert "value_map" not in _labels("Legacy_Notes", notes * 20)  # free text


def test_suggestions_carry_the_steps_they_would_add():
    dates = profile_column("Order_Date", pd.Series(["2024-01-02", "01/02/2024"] * 40))
    parse = dates.suggestions[0]
    assert parse.steps == (("parse_date", {"formats": ["%Y-%m-%d", "%m/%d/%Y"], "output": "date"}),)
    status = profile_column("Status", pd.Series(["open", "OPEN", "closed"] * 30))
    assert [s.steps[0][0] for s in status.suggestions] == ["title", "value_map"]
    assert status.suggestions[-1].needs_lookup


def test_duplicate_candidates_on_any_columns():
    frame = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4"],
            "email": ["a@x", "b@x", "a@x", None],
            "name": ["Ann", "Bob", "Ann", None],
        },
        dtype=object,
    )
    assert duplicate_candidates(frame, ["email"]) == [("a@x", 2)]
    assert duplicate_candidates(frame, ["email", "name"]) == [("a@x | Ann", 2)]
    assert duplicate_candidates(frame, ["id"]) == []
    assert duplicate_candidates(frame, ["nope"]) == []
