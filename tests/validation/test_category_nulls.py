"""Category counts keep NULL and "" apart, on the expected side, on the target side and in the
check: both used to be the category "", so where a column held both one count overwrote the
other and the check compared whichever came last — a swap of NULLs and empty texts, or a lost
count, could pass."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from runs.engine.rules import TEXT
from validation.expected_share import part_bytes, part_of
from validation.reconciliation import expected as expected_side
from validation.reconciliation.checks import _category_outcome

VALUES = ["a", None, "", "", None, None]


@pytest.mark.parametrize("dtype", [TEXT, object])
def test_counts_keep_null_apart_from_empty(dtype):
    assert expected_side._counts(pd.Series(VALUES, dtype=dtype)) == {"a": 1, None: 3, "": 2}


def test_counts_of_values_that_print_alike_add_up():
    assert expected_side._counts(pd.Series([1, "1", None, float("nan")], dtype=object)) == {
        "1": 2,
        None: 2,
    }


def test_the_check_fails_when_nulls_and_empty_texts_swap():
    outcome = _category_outcome({None: 3, "": 2, "a": 1}, {None: 2, "": 3, "a": 1})
    assert not outcome.ok
    assert outcome.expected == 'NULL 3, "" (empty) 2, a 1'
    assert outcome.observed == 'NULL 2, "" (empty) 3, a 1'
    assert outcome.details["mismatched"] == 2
    assert [t["category"] for t in outcome.details["categories"]] == [None, "", "a"]
    assert _category_outcome({None: 3, "": 2}, {None: 3, "": 2}).ok


def test_a_parts_null_category_travels_apart_from_empty():
    part = expected_side.Part(rows=6, counts={"status": Counter({None: 3, "": 2, "null": 1})})
    assert part_of(part_bytes(part)).counts == part.counts
