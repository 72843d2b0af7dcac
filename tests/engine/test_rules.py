"""Rule registry: every rule type on ordinary values, None, "", unicode and failing rows."""

from __future__ import annotations

import random
import uuid

import numpy as np
import pandas as pd
import pytest

from runs.engine.rules import (
    FAILURE_CATEGORIES,
    PARAM_TYPES,
    REGISTRY,
    TEXT,
    RuleContext,
    RuleParamError,
    _parse_formats,
    run_step,
    to_python,
    uuid5_texts,
    validate_params,
)
from runs.engine.snapshot import LookupSpec

LOOKUPS = {
    "state": LookupSpec("state", {"NY": "New York", "ca": "California", "": "Blank"}, "Unknown"),
    "nodefault": LookupSpec("nodefault", {"A": "active"}),
}
KEYMAPS = {"customer": {"1": "c-1", "2": "c-2"}}
OK = None  # marker: the row has no error


def apply(rule, values, params=None, *, keys=None, namespace="plan"):
    """Run one rule on a list (or a dict of lists for frame rules); return values and errors."""
    data = (
        pd.DataFrame(values, dtype=object)
        if isinstance(values, dict)
        else pd.Series(values, dtype=object)
    )
    source_keys = pd.Series(
        keys if keys is not None else [str(i) for i in range(len(data))], dtype=object
    )
    ctx = RuleContext(
        lookups=LOOKUPS, keymaps=KEYMAPS, source_keys=source_keys, namespace=namespace
    )
    result = run_step(rule, data, params or {}, ctx)
    errors = [None] * len(data) if result.errors is None else result.errors.tolist()
    return to_python(result.values).tolist(), errors


# (rule, params, input, expected output, expected error flags: True = the row fails)
CASES = [
    ("copy", {}, ["a", None, "", "José"], ["a", None, "", "José"], None),
    (
        "trim",
        {},
        ["  a  b ", None, "", "   ", "  josé   ÅNGSTRÖM ", "a\u00a0\tb", "tab\there\n"],
        ["a  b", None, None, None, "josé   ÅNGSTRÖM", "a\u00a0\tb", "tab\there"],
        None,
    ),
    (
        "trim",
        {"collapse_inner": True},
        ["  a  b ", None, "", "   ", "  josé   ÅNGSTRÖM ", "a\u00a0\tb", "tab\there"],
        ["a b", None, None, None, "josé ÅNGSTRÖM", "a b", "tab here"],
        None,
    ),
    ("trim", {"empty_to_null": False}, ["  ", None, " x "], ["", None, "x"], None),
    ("upper", {}, ["abc", None, "", "josé straße"], ["ABC", None, "", "JOSÉ STRAẞE"], None),
    ("lower", {}, ["ABC", None, "", "ÅNGSTRÖM"], ["abc", None, "", "ångström"], None),
    (
        "title",
        {},
        ["ACME CORP.", None, "", "josé ÅNGSTRÖM", "o'brien-smith"],
        ["Acme Corp.", None, "", "José Ångström", "O'Brien-Smith"],
        None,
    ),
    (
        "split",
        {"separator": ",", "index": 1},
        ["a, b ,c", "a", None, "", "x,é"],
        ["b", None, None, None, "é"],
        None,
    ),
    (
        "split",
        {"separator": " ", "index": -1},
        ["John Q Public", "Cher", None],
        ["Public", "Cher", None],
        None,
    ),
    (
        "value_map",
        {"lookup": "state"},
        ["NY", "ca", "TX", None, ""],
        ["New York", "California", "Unknown", "Unknown", "Blank"],
        None,
    ),
    (
        "value_map",
        {"lookup": "state", "on_null": "null"},
        ["NY", "ca", "TX", None, ""],
        ["New York", "California", "Unknown", None, "Blank"],
        None,
    ),
    (
        "value_map",
        {"lookup": "nodefault", "on_null": "fail"},
        ["A", None, "", " "],
        ["active", None, None, None],
        [False, True, True, False],
    ),
    (
        "value_map",
        {"lookup": "state", "on_null": "fail", "on_missing": "fail"},
        ["NY", None, "", "TX"],
        ["New York", None, "Blank", None],
        [False, True, False, True],
    ),
    (
        "value_map",
        {"lookup": "nodefault"},
        ["A", "B", None, ""],
        ["active", None, None, None],
        None,
    ),
    (
        "value_map",
        {"lookup": "state", "on_missing": "fail"},
        ["NY", "TX", None],
        ["New York", None, "Unknown"],
        [False, True, False],
    ),
    (
        "value_map",
        {"lookup": "state", "on_missing": "keep"},
        ["NY", "Tëxas", None],
        ["New York", "Tëxas", "Unknown"],
        None,
    ),
    (
        "value_map",
        {"lookup": "state", "ignore_case": True},
        [" ny ", "CA", "Ca"],
        ["New York", "California", "California"],
        None,
    ),
    (
        "regex_replace",
        {"pattern": "[^0-9]", "replacement": ""},
        ["a1b2", None, "", "é3"],
        ["12", None, "", "3"],
        None,
    ),
    (
        "regex_replace",
        {"pattern": "([a-z]+)-([0-9]+)", "replacement": r"\2/\1"},
        ["ab-12"],
        ["12/ab"],
        None,
    ),
    (
        "regex_validate",
        {"pattern": "[A-Z][0-9]{3}"},
        ["A123", "A1234", None, "", "é123"],
        ["A123", "A1234", None, "", "é123"],
        [False, True, False, False, True],
    ),
    (
        "regex_validate",
        {"pattern": "[0-9]", "full_match": False},
        ["ab3", "abc"],
        ["ab3", "abc"],
        [False, True],
    ),
    (
        "phone_format",
        {},
        [
            "555.123.4567",
            "+1 (555) 123-4567",
            "1-555-123-4567",
            "123",
            None,
            "",
            "  ",
            "n/a",
            "2 555 123 4567",
        ],
        [
            "(555) 123-4567",
            "(555) 123-4567",
            "(555) 123-4567",
            "123",
            None,
            None,
            None,
            "n/a",
            "2 555 123 4567",
        ],
        [False, False, False, True, False, False, False, True, True],
    ),
    (
        "email",
        {},
        [" John.Doe@Example.COM ", "bad@", "a..b@x.com", "no-at.com", None, "", "josé@exämple.de"],
        ["john.doe@example.com", "bad@", "a..b@x.com", "no-at.com", None, None, "josé@exämple.de"],
        [False, True, True, True, False, False, False],
    ),
    (
        "parse_date",
        {"formats": ["%Y-%m-%d", "%d/%m/%Y"]},
        ["2021-02-28", "03/04/2020", "2021-02-30", "garbage", None, "", " 1600-01-01 "],
        ["2021-02-28", "2020-04-03", None, None, None, None, "1600-01-01"],
        [False, False, True, True, False, False, False],
    ),
    (
        "parse_date",
        {"formats": ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"], "output": "datetime"},
        ["2021-02-28 13:45:10", "2021-02-28T01:02:03+02:00", "2021-02-29 00:00:00"],
        ["2021-02-28 13:45:10", "2021-02-27 23:02:03", None],
        [False, False, True],
    ),
    (
        "cast",
        {"to": "int"},
        ["007", "+5", "-0", "12.00", " 42 ", "1.5", "abc", None, ""],
        ["7", "5", "0", "12", "42", None, None, None, None],
        [False, False, False, False, False, True, True, False, False],
    ),
    (
        "cast",
        {"to": "decimal", "scale": 2, "thousands_separator": ","},
        ["12.345", "-2.5", ".5", "5.", "1,234.5", "0.125", "x", "1e3", None],
        ["12.35", "-2.50", "0.50", "5.00", "1234.50", "0.13", None, None, None],
        [False, False, False, False, False, False, True, True, False],
    ),
    ("cast", {"to": "decimal", "scale": 0}, ["2.5", "-2.5", "7"], ["3", "-3", "7"], None),
    (
        "cast",
        {"to": "bool"},
        ["Yes", "n", "TRUE", "0", "t", "maybe", None, ""],
        ["true", "false", "true", "false", "true", None, None, None],
        [False, False, False, False, False, True, False, False],
    ),
    ("cast", {"to": "text"}, ["x", None, ""], ["x", None, ""], None),
    (
        "truncate",
        {"length": 3},
        ["abcdef", "ab", None, "", "éèêëē"],
        ["abc", "ab", None, "", "éèê"],
        None,
    ),
    (
        "truncate",
        {"length": 3, "on_overflow": "fail"},
        ["abcd", "abc", None],
        ["abcd", "abc", None],
        [True, False, False],
    ),
    ("default_if_null", {"value": "N/A"}, ["a", None, "", "é"], ["a", "N/A", "N/A", "é"], None),
    ("default_if_null", {"value": "N/A", "blank_is_null": False}, [None, ""], ["N/A", ""], None),
    ("constant", {"value": "Ω"}, ["a", None, ""], ["Ω", "Ω", "Ω"], None),
    (
        "hash",
        {},
        ["a", None, ""],
        ["ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", None, ""],
        None,
    ),
    (
        "mask",
        {},
        ["4111111111111111", "1234", "12", None, "", "josé1234"],
        ["************1111", "****", "**", None, "", "****1234"],
        None,
    ),
    ("mask", {"keep_last": 0, "mask_char": "#"}, ["abc"], ["###"], None),
    (
        "reference_lookup",
        {"entity": "customer"},
        ["1", " 2 ", "3", None, ""],
        ["c-1", "c-2", None, None, None],
        [False, False, True, False, False],
    ),
    ("reference_lookup", {"entity": "unloaded"}, ["1", None], [None, None], [True, False]),
    (
        "concat",
        {"separator": ", "},
        {
            "a": ["1 Main", None, "", " x ", "José"],
            "b": ["Apt 2", None, "", None, "Ñ"],
            "c": ["NY", None, " ", "z", None],
        },
        ["1 Main, Apt 2, NY", None, None, "x, z", "José, Ñ"],
        None,
    ),
    (
        "concat",
        {"separator": "-", "strip": False},
        {"a": [" a", None], "b": ["b ", "c"]},
        [" a-b ", "c"],
        None,
    ),
    (
        "coalesce",
        {},
        {"a": [None, "", "x", None], "b": ["b", "y", "z", None]},
        ["b", "y", "x", None],
        None,
    ),
]


@pytest.mark.parametrize(
    ("rule", "params", "values", "expected", "fails"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_rule_produces_expected_values_and_errors(rule, params, values, expected, fails):
    out, errors = apply(rule, values, params)

    assert out == expected
    expected_fails = fails or [False] * len(expected)
    assert [e is not None for e in errors] == expected_fails


def test_rule_every_registered_type_has_a_case():
    covered = {c[0] for c in CASES} | {"uuid_from_key"}

    assert covered == set(REGISTRY)


def test_rule_registry_metadata_is_complete():
    for name, rule in REGISTRY.items():
        assert rule.name == name
        assert rule.description.endswith(".") and rule.label
        assert rule.category in FAILURE_CATEGORIES
        assert rule.null_handling
        for param in rule.params:
            assert param.type in PARAM_TYPES and param.help


def test_phone_format_error_names_the_value():
    _, errors = apply("phone_format", ["12-34"])

    assert "'12-34'" in errors[0]


def test_value_map_fail_error_names_value_and_lookup():
    _, errors = apply("value_map", ["TX"], {"lookup": "state", "on_missing": "fail"})

    assert errors == ["no mapping for 'TX' in lookup 'state'"]


def test_value_map_unknown_lookup_raises():
    with pytest.raises(RuleParamError):
        apply("value_map", ["x"], {"lookup": "missing"})


def test_rule_categories_match_failure_kinds():
    categories = {
        name: REGISTRY[name].category
        for name in (
            "parse_date",
            "value_map",
            "truncate",
            "cast",
            "reference_lookup",
            "phone_format",
            "email",
            "regex_validate",
        )
    }

    assert categories == {
        "parse_date": "invalid_date",
        "value_map": "lookup_miss",
        "truncate": "too_long",
        "cast": "type_cast",
        "reference_lookup": "reference_missing",
        "phone_format": "invalid_format",
        "email": "invalid_format",
        "regex_validate": "invalid_format",
    }


def test_uuid_from_key_matches_stdlib_uuid5_and_is_deterministic():
    out1, _ = apply(
        "uuid_from_key", [None, None, None], {"scope": "customer"}, keys=["1", "2", "é|3"]
    )
    out2, _ = apply(
        "uuid_from_key", [None, None, None], {"scope": "customer"}, keys=["1", "2", "é|3"]
    )
    ns = uuid.uuid5(uuid.NAMESPACE_URL, "migration-planner:plan/customer")

    assert out1 == out2 == [str(uuid.uuid5(ns, k)) for k in ["1", "2", "é|3"]]


def test_uuid_from_key_differs_by_namespace_and_scope():
    base, _ = apply("uuid_from_key", [None], keys=["1"], namespace="a")
    other_plan, _ = apply("uuid_from_key", [None], keys=["1"], namespace="b")
    other_scope, _ = apply("uuid_from_key", [None], {"scope": "x"}, keys=["1"], namespace="a")

    assert len({base[0], other_plan[0], other_scope[0]}) == 3


def test_uuid_from_key_from_value_keeps_null():
    out, _ = apply("uuid_from_key", ["k", None], {"from": "value"})

    assert out[0] == str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "migration-planner:plan/"), "k"))
    assert out[1] is None


def test_uuid5_texts_matches_stdlib_for_many_names():
    ns = uuid.uuid4()
    names = [str(i) for i in range(1000)] + ["", "ünïcode", None]

    texts = uuid5_texts(ns, names).to_pylist()

    assert texts == [None if n is None else str(uuid.uuid5(ns, n)) for n in names]


def test_rule_keeps_input_index():
    values = pd.Series(["a ", None], index=[10, 20], dtype=object)

    result = run_step("trim", values, {}, RuleContext())

    assert list(result.values.index) == [10, 20]


def test_rule_accepts_non_text_values():
    out = run_step("copy", pd.Series([1, None, 2.5], dtype=object), {}, RuleContext()).values

    assert to_python(out).tolist() == ["1", None, "2.5"]


def test_rule_runs_on_empty_input():
    for name, rule in REGISTRY.items():
        params = {
            "lookup": "state",
            "entity": "customer",
            "to": "int",
            "length": 3,
            "value": "v",
            "pattern": "x",
        }
        params = {p.name: params[p.name] for p in rule.params if p.name in params}
        result = run_step(
            name,
            pd.Series([], dtype=object),
            params,
            RuleContext(lookups=LOOKUPS, keymaps=KEYMAPS, source_keys=pd.Series([], dtype=object)),
        )
        assert len(result.values) == 0, name


# --------------------------------------------------------------------------- validate_params


def test_validate_params_fills_defaults():
    assert validate_params("truncate", {"length": 5}) == {"length": 5, "on_overflow": "truncate"}


def test_validate_params_normalises_form_strings():
    params = validate_params("mask", {"keep_last": "2"})
    dates = validate_params("parse_date", {"formats": "%Y-%m-%d\n%d/%m/%Y\n"})

    assert params["keep_last"] == 2
    assert dates["formats"] == ["%Y-%m-%d", "%d/%m/%Y"]


@pytest.mark.parametrize(
    ("rule", "params", "bad_param"),
    [
        ("no_such_rule", {}, "rule"),
        ("truncate", {}, "length"),
        ("value_map", {"on_missing": "fail"}, "lookup"),
        ("regex_validate", {"pattern": "(unclosed"}, "pattern"),
        ("regex_replace", {"pattern": "[a-"}, "pattern"),
        ("value_map", {"lookup": "s", "on_missing": "explode"}, "on_missing"),
        ("cast", {"to": "float"}, "to"),
        ("truncate", {"length": "ten"}, "length"),
        ("truncate", {"length": 0}, "length"),
        ("cast", {"to": "decimal", "scale": 11}, "scale"),
        ("trim", {"empty_to_null": "maybe"}, "empty_to_null"),
        ("parse_date", {"formats": [1, 2]}, "formats"),
        ("parse_date", {"formats": []}, "formats"),
        ("constant", {"value": 3}, "value"),
        ("copy", {"surprise": 1}, "surprise"),
        ("reference_lookup", {"entity": ""}, "entity"),
    ],
)
def test_validate_params_rejects_bad_input(rule, params, bad_param):
    with pytest.raises(RuleParamError) as excinfo:
        validate_params(rule, params)

    assert excinfo.value.param == bad_param
    assert isinstance(excinfo.value, ValueError)


def test_run_step_refuses_frame_for_single_column_rule():
    frame = pd.DataFrame({"a": ["x"], "b": ["y"]}, dtype=object)

    with pytest.raises(RuleParamError):
        run_step("trim", frame, {}, RuleContext())


# ------------------------------------------------------------------ parse_date: Arrow fast path


def _pandas_formats(text: pd.Series, formats: list[str]) -> np.ndarray:
    """The reference: pandas.to_datetime per format, in order, on the rows still unparsed."""
    parsed = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[s]")
    todo = ~(text.fillna("") == "").to_numpy(dtype=bool)
    for fmt in formats:
        got = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc="%z" in fmt)
        if "%z" in fmt:
            got = got.dt.tz_localize(None)
        values = got.to_numpy(dtype="datetime64[s]")
        rows = np.flatnonzero(todo)[~np.isnat(values)]
        parsed[rows] = values[~np.isnat(values)]
        todo[rows] = False
    return parsed


_DIGITS = {
    "arabic": str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"),
    "fullwidth": str.maketrans("0123456789", "０１２３４５６７８９"),
}


def _spellings(formats: list[str], n: int, rng: random.Random) -> list[str | None]:
    """Dates in the formats, canonical or bent the ways legacy exports bend them."""
    bends = [
        lambda t, ts: t,
        lambda t, ts: t.replace("0", "", 1),  # not zero-padded
        lambda t, ts: t.replace(" ", "  "),
        lambda t, ts: f" {t}",
        lambda t, ts: f"{t} ",
        lambda t, ts: t.replace(" ", "T"),
        lambda t, ts: t.replace("T", " "),
        lambda t, ts: t.translate(_DIGITS["arabic"]),
        lambda t, ts: t.translate(_DIGITS["fullwidth"]),
        lambda t, ts: t.replace(ts.strftime("%d"), rng.choice(["29", "30", "31", "00"]), 1),
        lambda t, ts: t.replace(ts.strftime("%m"), rng.choice(["02", "04", "13", "00"]), 1),
        lambda t, ts: t + rng.choice(["Z", ".5", "+01:00", ":00", "x"]),
        lambda t, ts: t.replace(ts.strftime("%H"), "24", 1),
        lambda t, ts: t.lower() if rng.random() < 0.5 else t.upper(),
        lambda t, ts: t.replace(ts.strftime("%Y"), rng.choice(["0000", "0001", "-2018", "218"]), 1),
        lambda t, ts: t.replace(" ", "\u00a0"),
        lambda t, ts: t.replace(" ", "\t"),
        lambda t, ts: rng.choice(["", None, "n/a", "2018", "2018-02-29 10:00", "2000-02-29"]),
    ]
    out = []
    for _ in range(n):
        fmt = rng.choice(formats)
        ts = pd.Timestamp(1900, 1, 1) + pd.Timedelta(seconds=rng.randrange(200 * 365 * 86400))
        bend = bends[0] if rng.random() < 0.4 else rng.choice(bends)
        out.append(bend(ts.strftime(fmt), ts))
    return out


@pytest.mark.parametrize(
    "formats",
    [
        ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%b %d %Y"],
        ["%d/%m/%y", "%m/%d/%Y", "%Y%m%d"],
        ["%H:%M %d-%m-%Y", "%Y-%m-%d\t%H", "%y-%m-%d %H:%M:%S", "%d.%m.%y"],
        ["%Y-%m-%d %I:%M %p", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d"],  # no fast path for %I %p %z
    ],
)
def test_parse_formats_answers_exactly_what_pandas_answers(formats):
    """Canonical spellings are parsed in Arrow; 30 Feb, year 0, '-2018', unpadded digits,
    other digit scripts, odd spaces, case and trailing text must come out as pandas says."""
    text = pd.Series(_spellings(formats, 6000, random.Random(len(formats))), dtype=TEXT)

    got, want = _parse_formats(text, formats), _pandas_formats(text, formats)

    same = (got == want) | (np.isnat(got) & np.isnat(want))
    assert same.all(), [(text[i], want[i], got[i]) for i in np.flatnonzero(~same)[:5]]
    assert 0.3 < (~np.isnat(want)).mean() < 0.95  # the corpus has both outcomes


def test_parse_formats_answers_what_pandas_answers_from_its_kept_answers_too(monkeypatch):
    """pandas' answers are kept per (format, text) for later batches: a corpus parsed again
    (answered from them), after another corpus filled them, or with room for only a few of
    them (dropped mid-corpus), answers as pandas does."""
    from runs.engine.rules import dates

    formats = ["%Y-%m-%d %H:%M", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S%z"]
    text = pd.Series(_spellings(formats, 3000, random.Random(7)), dtype=TEXT)
    other = pd.Series(_spellings(formats, 3000, random.Random(8)), dtype=TEXT)
    want = _pandas_formats(text, formats)

    dates._PANDAS_DATES.clear()
    cold = _parse_formats(text, formats)
    kept = len(dates._PANDAS_DATES)
    warm = _parse_formats(text, formats)
    _parse_formats(other, formats)
    after_other = _parse_formats(text, formats)
    monkeypatch.setattr(dates, "_PANDAS_DATES_MAX", 40)
    crowded = _parse_formats(text, formats)

    assert kept > 100  # the corpus has odd spellings only pandas answers
    for got in (cold, warm, after_other, crowded):
        same = (got == want) | (np.isnat(got) & np.isnat(want))
        assert same.all(), [(text[i], want[i], got[i]) for i in np.flatnonzero(~same)[:5]]


def test_parse_formats_fast_path_rejects_a_day_arrow_would_roll_over():
    text = pd.Series(["2018-02-29", "2020-02-29", "2018-04-31", "2018-02-28"], dtype=TEXT)

    got = _parse_formats(text, ["%Y-%m-%d"])

    assert [None if np.isnat(v) else str(v)[:10] for v in got] == [
        None,
        "2020-02-29",
        None,
        "2018-02-28",
    ]


def test_format_1_snapshot_keeps_the_behaviour_it_was_frozen_with():
    """A version frozen before `collapse_inner` / `on_null` existed runs as it always did."""
    from runs.engine.snapshot import PlanSnapshot
    from runs.engine.transform import transform_frame

    fields = [
        {"target": "t", "sources": ["a"], "steps": [{"rule": "trim", "params": {}}]},
        {
            "target": "m",
            "sources": ["b"],
            "steps": [{"rule": "value_map", "params": {"lookup": "st"}}],
        },
    ]
    old = {
        "plan": "p",
        "version": 3,
        "lookups": {"st": {"entries": {"X": "x"}, "default": "d"}},
        "entities": [
            {
                "name": "e",
                "source_table": "s",
                "target_table": "t",
                "source_key": ["k"],
                "target_key": "id",
                "fields": fields,
            }
        ],
    }
    frame = pd.DataFrame(
        {"k": ["1", "2"], "a": [" tab\there  x ", None], "b": [None, "Q"]}, dtype=object
    )
    for data, expected in (
        (old, [["tab here x", None], [None, "d"]]),
        (old | {"rules_format": 2}, [["tab\there  x", None], ["d", "d"]]),
    ):
        snapshot = PlanSnapshot.from_dict(data)
        result = transform_frame(
            entity=snapshot.entities[0],
            frame=frame,
            lookups=snapshot.lookups,
            keymaps={},
            namespace="p",
        )
        assert [result.rows["t"].tolist(), result.rows["m"].tolist()] == expected
    assert PlanSnapshot.from_dict(old).rules_format == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ACME LLC", "Acme LLC"),  # a known token keeps its form
        ("acme llc", "Acme LLC"),
        ("müller gmbh & co. kg", "Müller GmbH & Co. KG"),
        ("ACME CORP (USA)", "Acme Corp (USA)"),
        ("IBM consulting", "IBM Consulting"),  # a listed token
        ("ACME corp.", "Acme Corp."),  # other capitals are not kept ...
        ("Ann LEE", "Ann Lee"),  # ... legacy data writes surnames in capitals
        ("IBM CONSULTING", "IBM Consulting"),
        ("BIG RIVER INC", "Big River Inc"),
        ("MCDONALD'S", "Mcdonald's"),  # contractions stay lower
        ("DON’T STOP", "Don’t Stop"),
        ("o'neil", "O'Neil"),
        ("IBM/lotus", "Ibm/Lotus"),  # rules apply to whole words only
    ],
)
def test_title_keeps_known_tokens_and_lowers_other_capitals(value, expected):
    out, _ = apply("title", [value])
    assert out == [expected]


def test_title_gives_a_digraph_its_title_case_form():
    """Found by the oracle test: Arrow's title case upper-cased the first letter (ǆ -> Ǆ);
    the title-case form of the digraphs is ǅ, ǈ, ǋ, ǲ (what str.title gives)."""
    values = ["ǆungla ǉubljana", "ǄEMAL ǋ", "dzoa ǳ", "josé ÅNGSTRÖM", None, ""]
    out, _ = apply("title", values)
    assert out == ["ǅungla ǈubljana", "ǅemal ǋ", "Dzoa ǲ", "José Ångström", None, ""]


def test_trim_collapses_every_whitespace_it_strips():
    """Found by the oracle test: collapse_inner left NEL (U+0085) and the separators
    U+001C-U+001F inside a value although strip removes them at its ends."""
    values = ["nel\x85next\x85", "a\x1c\x1db", " a \x1f\x85 b "]
    out, _ = apply("trim", values, {"collapse_inner": True})
    assert out == ["nel next", "a b", "a b"]
