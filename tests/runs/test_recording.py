"""Failed records are stored exactly as the engine reported them (COPY path on PostgreSQL)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.models import PlanVersion
from runs.models import FailedRecord, Run
from runs.services.failed_copy import _uuid7_hex
from runs.services.recording import failed_records_insert
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


class _Error:
    def __init__(self, field, value):
        self.field, self.rule, self.value = field, "email", value
        self.message, self.category = f"invalid e-mail address {value!r}", "invalid_format"


class _Failure:
    def __init__(self, key, row):
        self.source_key, self.source_row, self.stage = key, row, "transform"
        self.transformed_row = {"email": None, "name": 'Acme "Quoted", Inc.'}
        self.errors = [_Error("email", row.get("Email_Address"))]
        self.category, self.field = "invalid_format", "email"
        self.rule, self.message = "email", self.errors[0].message


def test_failed_records_round_trip_awkward_text():
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    rows = [
        {"Customer_ID": "1", "Email_Address": 'a"b,c\nd', "Legacy_Notes": None},
        {"Customer_ID": "2", "Email_Address": "\\N", "Legacy_Notes": "josé ÅNGSTRÖM ✓"},
        {"Customer_ID": "3", "Email_Address": "", "Legacy_Notes": "tab\there \\ back"},
    ]
    failures = [_Failure(r["Customer_ID"], r) for r in rows]
    failed_records_insert(run=run, batch=None, entity="accounts", failures=failures)
    stored = {r.source_key: r for r in FailedRecord.objects.filter(run=run)}
    assert [stored[r["Customer_ID"]].source_row for r in rows] == rows
    assert stored["1"].batch_id is None
    assert stored["2"].message == "invalid e-mail address '\\\\N'"
    assert stored["1"].transformed_row == {"email": None, "name": 'Acme "Quoted", Inc.'}
    assert stored["3"].errors[0]["value"] == ""


def test_failed_records_round_trip_awkward_text_outside_the_json():
    """The COPY is in text format (JSON's double quotes go undoubled; issue 20): a tab,
    newline, carriage return or backslash in a plain column — per record or the same for the
    whole batch — and texts that look like COPY's markers (``\\N``, ``\\.``) read back as
    written; an empty text stays empty, a NULL stays NULL."""
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    keys = ["a\tb", "c\td\ne\rf", "\\N", "\\.", "x\\y\\", "\n\\.\n"]
    failures = []
    for key in keys:
        failure = _Failure(key, {"Customer_ID": key, "Email_Address": key})
        failure.errors[0].message = f"bad\t{key}\r\n\\."
        failure.errors[0].field, failure.errors[0].rule = "", "r\\1"
        failures.append(failure)
    entity, rules = "odd\tentity\\", "h\\\n"
    failed_records_insert(run=run, batch=None, entity=entity, failures=failures, rules_hash=rules)
    stored = {r.source_key: r for r in FailedRecord.objects.filter(run=run)}
    assert sorted(stored) == sorted(keys)
    for failure in failures:
        record = stored[failure.source_key]
        assert record.source_row == failure.source_row
        assert record.message == failure.errors[0].message
        assert (record.field, record.rule) == ("", "r\\1")
        assert (record.entity, record.rules_hash, record.batch_id) == (entity, rules, None)
        assert record.errors[0]["value"] == failure.source_key
        assert record.corrected_values == {} and record.ignore_reason == ""


def test_failed_record_twice_in_one_run_is_kept_once():
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    failure = _Failure("7", {"Customer_ID": "7", "Email_Address": "x"})
    failed_records_insert(run=run, batch=None, entity="accounts", failures=[failure])
    failed_records_insert(run=run, batch=None, entity="accounts", failures=[failure])
    assert FailedRecord.objects.filter(run=run).count() == 1


def test_copy_path_stores_what_the_orm_path_would():
    """The COPY columns are built without a dict per record; they must hold exactly what
    _failure_values (the bulk_create path) gives, non-text values included."""
    import uuid
    from decimal import Decimal

    from runs.engine.transform import FieldError, RowFailure
    from runs.services.recording import _failure_values

    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    odd = RowFailure(
        source_key="9",
        source_row={"Customer_ID": 9, "Balance": Decimal("1.50"), "Flag": True},
        transformed_row={"balance": None},
        stage="load",
        errors=[
            FieldError("balance", "cast", Decimal("1.50"), "not an integer", "type_cast"),
            FieldError("email", "email", None, "a value is required", "required_missing"),
        ],
    )
    plain = _Failure("10", {"Customer_ID": "10", "Email_Address": "x"})
    failed_records_insert(run=run, batch=None, entity="accounts", failures=[odd, plain])
    for failure in (odd, plain):
        stored = FailedRecord.objects.get(run=run, source_key=failure.source_key)
        expected = _failure_values(failure)
        assert {k: getattr(stored, k) for k in expected} == expected
    uuids = [uuid.UUID(str(u)) for u in FailedRecord.objects.values_list("uuid", flat=True)]
    assert len(set(uuids)) == 2 and all(
        u.version == 7 and u.variant == uuid.RFC_4122 for u in uuids
    )


def test_failed_record_uuids_ascend_so_the_uuid_index_is_appended_to():
    """The COPY path's uuids are time-ordered (version 7) and ascend in insert order, within
    a batch and from one batch to the next: the unique uuid index grows at its right edge
    instead of taking each record on a random leaf page (issue 20: at 1.66 M records a
    batch's 3,300 random uuids read ~2,100 and dirtied ~2,800 pages under buffer pressure)."""
    import uuid

    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    for first in (0, 300):
        failures = [
            _Failure(str(i), {"Customer_ID": str(i), "Email_Address": "x"})
            for i in range(first, first + 300)
        ]
        failed_records_insert(run=run, batch=None, entity="accounts", failures=failures)
    uuids = [
        uuid.UUID(str(u))
        for u in FailedRecord.objects.order_by("id").values_list("uuid", flat=True)
    ]
    assert len(uuids) == 600
    assert {(u.version, u.variant) for u in uuids} == {(7, uuid.RFC_4122)}
    assert uuids == sorted(uuids) and len(set(uuids)) == 600


def test_copy_of_many_failed_records_is_built_piece_by_piece():
    """A batch's failed records go into one COPY whose CSV is built a piece at a time: it
    holds less at once than one copy of the records' JSON (before: every JSON value, each in
    an 8 kB orjson buffer, plus the whole CSV: 17 times the JSON, ~50 MB at a 20,000-row
    batch's 3,300 failures, the worker's memory peak)."""
    import tracemalloc

    import orjson

    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    note = "x" * 1_000
    failures = [
        _Failure(str(i), {"Customer_ID": str(i), "Email_Address": "no", "Legacy_Notes": note})
        for i in range(3_000)
    ]
    json_size = sum(len(orjson.dumps(f.source_row)) for f in failures)
    tracemalloc.start()
    try:
        failed_records_insert(run=run, batch=None, entity="accounts", failures=failures)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert FailedRecord.objects.filter(run=run).count() == 3_000
    assert FailedRecord.objects.get(run=run, source_key="2999").source_row["Legacy_Notes"] == note
    assert len(set(FailedRecord.objects.filter(run=run).values_list("created_at", flat=True))) == 1
    assert peak < json_size


def test_json_safe_keeps_a_text_row_and_turns_anything_else_into_text():
    """The type check (``map(type, ...)``) answers as the per-item test it replaced: a row
    of str keys and str/None values is used as it is, any other is rebuilt as text."""
    from runs.services.recording import _json_safe

    text = {"a": "1", "b": None}
    assert _json_safe(text) is text
    assert _json_safe(None) == {} and _json_safe({}) == {}
    assert _json_safe({"a": 1, "b": None}) == {"a": "1", "b": None}
    assert _json_safe({1: "x"}) == {"1": "x"}
    assert _json_safe({"a": True, "b": 1.5}) == {"a": "True", "b": "1.5"}

    class Text(str):  # a str subclass is not plain text for orjson's sake: rebuilt
        pass

    odd = {"a": Text("v")}
    assert _json_safe(odd) is not odd and type(_json_safe(odd)["a"]) is str


def test_failed_record_json_keeps_the_order_it_was_written_in():
    """source_row, transformed_row and errors read back as written, key order included (the
    source row's columns in the source's order): on PostgreSQL they are ``json`` (input only
    validated), not ``jsonb`` (a tree built and its keys sorted, ~15 % of the failed-record
    COPY's backend CPU, issue 20). The bulk_create path (SQLite) stores them as text anyway."""
    from runs.services import recording

    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    row = {"Zip_Code": "1", "id": "2", "Customer_ID": "3", "a": None, "Email_Address": "no"}
    failure = _Failure("3", row)
    failure.transformed_row = {"phone": "x", "email": None, "name": "n"}
    failed_records_insert(run=run, batch=None, entity="accounts", failures=[failure])
    stored = FailedRecord.objects.get(run=run)
    assert list(stored.source_row.items()) == list(row.items())
    assert list(stored.transformed_row) == ["phone", "email", "name"]
    assert list(stored.errors[0]) == ["field", "rule", "value", "message", "category"]
    assert (
        recording.failed_records_build(run=run, batch=None, entity="accounts", failures=[failure])[
            0
        ].source_row
        == row
    )


def test_failed_record_json_columns_are_json_and_no_row_trigger_runs_on_insert():
    """What the failed-record COPY costs the app database per record (issue 20): its JSON
    columns are ``json``, and no per-row constraint trigger (the handled_by foreign key's
    deferred check, queued for every inserted record though the column is NULL) fires."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'runs_failedrecord' AND data_type LIKE 'json%%'"
        )
        types = dict(cur.fetchall())
        cur.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'runs_failedrecord'::regclass "
            "AND tgisinternal"
        )
        internal = cur.fetchone()[0]
    assert types == {
        "source_row": "json",
        "transformed_row": "json",
        "errors": "json",
        "earlier_failures": "json",
        "corrected_values": "jsonb",
    }
    assert internal == 0


def test_failed_record_json_reads_back_any_json_value_exactly():
    """JsonTextField decodes once: a JSON string stays a string (not decoded a second time),
    numbers and nesting as written, whether read as a model or by values()."""
    plan = PlanFactory()
    version = PlanVersion.objects.create(plan=plan, number=1, snapshot={}, content_hash="h")
    run = Run.objects.create(plan=plan, version=version, target=plan.target)
    odd = ['"quoted"', "12", {"b": [1, 2.5, None, True], "a": "x"}]
    record = FailedRecord.objects.create(
        run=run, entity="accounts", source_key="1", stage="load", category="c", message="m"
    )
    FailedRecord.objects.filter(pk=record.pk).update(errors=odd, earlier_failures="12")
    record.refresh_from_db()
    assert record.errors == odd and list(record.errors[2]) == ["b", "a"]
    assert record.earlier_failures == "12"
    assert FailedRecord.objects.filter(pk=record.pk).values_list("errors", flat=True)[0] == odd


_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('\x00\x01\t\n\r\x1f"\\,é😀 a'), st.characters(exclude_categories=("Cs",))
    ),
    max_size=10,
)


@given(
    width=st.integers(1, 4),
    values=st.lists(st.lists(st.one_of(st.none(), _TEXT), min_size=8, max_size=8), max_size=9),
    plain_at=st.sets(st.integers(0, 9)),
)
@settings(max_examples=120, deadline=None)
def test_a_blocks_failed_records_copy_the_bytes_the_rows_would(width, values, plain_at):
    """The failed records' COPY text of block failures (runs.engine.failure_block: the rows'
    JSON by Arrow) is byte for byte the text of the same failures as dicts, mixed or not."""
    import pyarrow as pa

    from runs.engine.connectors.postgres import text_copy_bytes
    from runs.engine.failure_block import block_failures, segments
    from runs.engine.transform import FieldError, RowFailure
    from runs.services import failed_copy

    names = ["Customer_ID", 'a"b', "c\\d", "é"][:width]
    columns = [pa.array([row[i] for row in values], pa.large_string()) for i in range(width)]
    tail = [pa.array([row[4 + i] for row in values], pa.large_string()) for i in range(width)]
    errors = [[FieldError("email", "email", row[0], f"bad {row[1]!r}", "c")] for row in values]
    keys = [f"k{i}" for i in range(len(values))]

    def made():
        failures = block_failures(
            pa.Table.from_arrays(columns, names=names),
            pa.Table.from_arrays(tail, names=[f"t{n}" for n in names]),
            keys,
            [list(e) for e in errors],
        )
        for f in failures:
            f.source_hash = f"h{f.source_key}"
        return failures

    block = made()
    plain = [  # the same failures holding dicts (the old form)
        RowFailure(f.source_key, f.source_row, f.transformed_row, f.stage, f.errors, f.source_hash)
        for f in made()
    ]
    mixed = [f if i not in plain_at else plain[i] for i, f in enumerate(block)]

    class _Pk:
        pk = 7

    def text(failures):
        failed_copy._uuid7_hex = lambda n: [f"{i:032x}" for i in range(n)]
        try:
            return text_copy_bytes(
                *failed_copy._copy_columns(
                    run=_Pk, batch=_Pk, entity="accounts", failures=failures, created="now"
                )
            )
        finally:
            failed_copy._uuid7_hex = _uuid7_hex

    at = 0
    for part in segments(mixed):  # each chunk as the COPY cuts them: the same bytes
        assert text(part) == text(plain[at : at + len(part)])
        at += len(part)
    assert at == len(plain)


def test_uuid7_hex_are_version_7_ascending_and_above_every_earlier_call():
    """``_uuid7_hex``'s own contract, call after call (the COPY's uuids; no database): 32 hex
    digits of an RFC 9562 version-7 UUID, its 48-bit millisecond timestamp moving on by at
    least one a call, sorted within a call, 74 random bits (no two alike)."""
    import uuid

    earlier: list[str] = []
    for n in (0, 1, 2, 3, 500, 3300):
        made = _uuid7_hex(n)
        assert len(made) == n and made == sorted(made) and len(set(made)) == n
        assert all(len(h) == 32 and int(h, 16) >= 0 and h == h.lower() for h in made)
        parsed = [uuid.UUID(h) for h in made]
        assert {(u.version, u.variant) for u in parsed} <= {(7, uuid.RFC_4122)}
        assert len({h[:12] for h in made}) <= 1  # one timestamp a call
        if earlier and made:
            assert made[0][:12] > earlier[-1][:12]
        earlier += made
    assert earlier == sorted(earlier)
