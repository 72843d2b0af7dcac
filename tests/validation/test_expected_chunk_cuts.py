"""The report's expected side made cheaper per row gives the same Part as before: the sample's
seeded hashes without pandas' categorizing pass, the failed keys probed as Arrow strings. The
old definitions are kept here as oracles; hostile keys and a hostile source (NULLs, respelled
numbers, unicode, rows the run failed, rows the rules now fail)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.demo import legacy_crm
from mappings.demo_plan import demo_plan_install
from runs.connections import connection_spec
from runs.engine.batch import _keymaps, source_columns
from runs.engine.connectors import connect
from runs.engine.rules import TEXT, to_python
from runs.engine.transform import source_key_arrow, source_key_text, transform_frame
from runs.services import run_create
from runs.services.state import run_entities, run_snapshot
from tests.support import pg
from validation import reconciliation as rec
from validation.prefetch import Reader
from validation.reconciliation import expected as expected_side
from validation.reconciliation.expected import SampleSpec
from validation.reconciliation.keyset import KeySet

KEYS = st.text(st.characters(codec="utf-8"), max_size=6)  # any text PostgreSQL can hold


def _old_hashes(spec: SampleSpec, keys: pd.Index):
    """``SampleSpec.hashes`` before: pandas' default (categorize=True)."""
    seed = f"{spec.seed:016d}"[-16:]
    return pd.util.hash_pandas_object(
        pd.Series(keys, dtype=object), index=False, hash_key=seed
    ).to_numpy()


@settings(max_examples=150, deadline=None)
@given(st.lists(KEYS, max_size=40), st.integers(0, 10**17))
def test_sample_hashes_are_the_categorized_hashes(keys, seed):
    spec = SampleSpec(pct=5.0, n=None, seed=seed)
    index = pd.Index(keys, dtype=object)  # duplicates, "", unicode, NUL
    assert spec.hashes(index).tolist() == _old_hashes(spec, index).tolist()


def _oracle_counts(values: pd.Series) -> dict[str | None, int]:
    """Rows per value counted one by one in Python: NULL as None, apart from ""."""
    return dict(Counter(None if pd.isna(v) else str(v) for v in values.astype(object)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.sampled_from(["", "A", "a", "é", " A", "東京"]) | KEYS, max_size=40))
def test_category_counts_are_counts_one_by_one(values):
    for series in (pd.Series(values, dtype=TEXT), pd.Series(values, dtype=object)):
        assert expected_side._counts(series) == _oracle_counts(series)


def _old_key_text(frame: pd.DataFrame, key_cols: list[str]) -> pd.Series:
    """``source_key_text`` before ``source_key_arrow`` was split out of it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from runs.engine.rules import as_text

    if len(key_cols) == 1:
        return to_python(as_text(frame[key_cols[0]]).fillna(""))
    parts = [pa.array(as_text(frame[c]).array).cast(pa.large_string()) for c in key_cols]
    sep = pa.scalar("|", pa.large_string())
    joined = pc.binary_join_element_wise(*parts, sep, null_handling="replace", null_replacement="")
    return to_python(pd.Series(TEXT.__from_arrow__(joined), index=frame.index))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.none() | KEYS, st.none() | KEYS), max_size=30),
    st.lists(KEYS, max_size=20),
    st.booleans(),
    st.booleans(),
)
def test_failed_keys_probed_as_arrow_strings_drop_the_same_rows(rows, failed, composite, arrow):
    a, b = [r[0] for r in rows], [r[1] for r in rows]
    dtype = TEXT if arrow else object
    frame = pd.DataFrame({"a": pd.Series(a, dtype=dtype), "b": pd.Series(b, dtype=dtype)})
    cols = ["a", "b"] if composite else ["a"]
    old = _old_key_text(frame, cols)
    # the failed set holds some of the frame's own keys (NULL keys read as "") and others
    keys = KeySet(failed + old.tolist()[::2])
    assert source_key_text(frame, cols).tolist() == old.tolist()
    assert to_python(source_key_arrow(frame, cols)).tolist() == old.tolist()
    got = keys.contains(source_key_arrow(frame, cols))
    assert got.tolist() == keys.contains(old).tolist()


def _old_parse(data: bytes, columns: list[str]) -> pd.DataFrame:
    """``parse_copy_csv(..., arrow=True)`` before: read as ``string``, cast by pandas."""
    import io

    import pyarrow as pa
    from pyarrow import csv as pacsv

    from runs.engine.connectors.base.frames import arrow_frame

    names = [f"c{i}" for i in range(len(columns))]
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return arrow_frame(table, columns, arrow=True)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
                 min_size=2, max_size=2),
        min_size=1,
        max_size=20,
    )
)  # fmt: skip
def test_copy_csv_read_as_large_strings_is_the_same_frame(rows):
    from runs.engine.connectors.postgres import parse_copy_csv

    # as COPY ... CSV writes it: NULL unquoted and empty, every other value quoted
    def cell(value):
        return "" if value is None else '"' + value.replace('"', '""') + '"'

    data = "".join(",".join(map(cell, row)) + "\n" for row in rows).encode()
    got = parse_copy_csv(data, ["a", "b"], arrow=True)
    pd.testing.assert_frame_equal(got, _old_parse(data, ["a", "b"]))
    assert got.dtypes.tolist() == [TEXT, TEXT]


# ---------------------------------------------------------------- the Part of every key range


def _old_chunk(ctx, key_range, *, entity, failed) -> pd.DataFrame:
    """``_expected_chunk`` before (a load run, no dedupe): the keys made Python text to probe
    the failed set."""
    extract = getattr(ctx.source, "extract_text", ctx.source.extract)
    frame = extract(entity.source_table, source_columns(entity), entity.source_key, key_range)
    if len(failed):
        frame = frame[~failed.contains(source_key_text(frame, entity.source_key))]
    keymaps = _keymaps(ctx.snapshot, entity, frame, ctx.source, ctx.target, False)
    result = transform_frame(
        entity=entity,
        frame=frame,
        lookups=ctx.snapshot.lookups,
        keymaps=keymaps,
        namespace=ctx.snapshot.plan,
        failure_records=False,
    )
    rows = result.text_rows
    rows.index = pd.Index(result.source_keys.to_numpy(dtype=object), dtype=object)
    return rows


def _same_part(got, want) -> None:
    assert (got.rows, got.sums, got.counts) == (want.rows, want.sums, want.counts)
    for name in ("smallest", "picked"):
        mine, theirs = getattr(got, name), getattr(want, name)
        assert mine.keys() == theirs.keys()
        for key, frame in theirs.items():
            pd.testing.assert_frame_equal(mine[key], frame)
            assert list(mine[key].index) == list(frame.index)


HOSTILE = [
    # unicode and a no-break space in the name, a respelled status and ZIP
    """UPDATE customers SET "Cust_Name" = ' zoë  東京 o''brien\u00a0', "Status" = ' a ',
       "Zip_Code" = '02134' WHERE "Customer_ID" % 7 = 1""",
    # NULLs everywhere the rules allow them, and where they do not (a name is required)
    """UPDATE customers SET "Phone_Number" = NULL, "Email_Address" = NULL, "City" = NULL
       WHERE "Customer_ID" % 11 = 2""",
    """UPDATE customers SET "Cust_Name" = NULL WHERE "Customer_ID" % 13 = 3""",
    # rows the run loaded that the rules now fail: a bad e-mail, an impossible date
    """UPDATE customers SET "Email_Address" = 'a..b@@x' WHERE "Customer_ID" % 17 = 4""",
    """UPDATE customers SET "Creation_Date" = '31/02/2021' WHERE "Customer_ID" % 19 = 5""",
    # digits of other scripts and full-width ones in the phone and ZIP
    """UPDATE customers SET "Phone_Number" = '٥٥٥-１２３-4567', "Zip_Code" = '９０２１０'
       WHERE "Customer_ID" % 23 = 6""",
]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_ranges_part_is_the_old_paths_on_a_hostile_source(
    eager_celery, demo_source_db, demo_target_db, monkeypatch
):
    from django.contrib.auth.models import User

    from tests.runs.conftest import _pg_system
    from tests.support.validation_rules import validation_rule as _rule

    with pg.throwaway_database("enc_src", template=demo_source_db) as source_db:
        plan, _ = demo_plan_install(
            source=_pg_system("Legacy CRM", source_db, "dev", "source"),
            target=_pg_system("New CRM (UAT)", demo_target_db, "uat", "target"),
            owner=User.objects.create(username="plan-owner"),
            us_states=legacy_crm.US_STATES,
            today=__import__("datetime").date(2026, 1, 5),
        )
        _rule(plan, "seven", "sample_compare", "accounts", n=7, seed=3)
        _rule(plan, "half", "sample_compare", "accounts", pct=50.0, seed=11)
        run = run_create(plan=plan, user=None, mode="load")
        run.refresh_from_db()
        assert run.failed > 0  # the run failed rows: the expected side leaves them out
        entity = next(e for e in run_entities(run) if e.name == "accounts")
        needs = rec._post_needs(run, entity)
        failed = rec._failed_keys(run, entity)
        source = connect(*connection_spec(run.plan.source))
        target = connect(*connection_spec(run.target))
        reader = Reader(run, run_snapshot(run), source, target)
        monkeypatch.setattr(expected_side, "REPORT_CHUNK", 40)  # several key ranges
        ranges = source.key_ranges(entity.source_table, entity.source_key, 40)
        assert len(ranges) > 3

        def parts(old: bool) -> list:
            out = []
            for key_range in ranges:
                if old:
                    with monkeypatch.context() as m:
                        m.setattr(SampleSpec, "hashes", _old_hashes)
                        rows = _old_chunk(reader, key_range, entity=entity, failed=failed)
                        out.append(expected_side._part(rows, needs))
                else:
                    out.append(
                        expected_side._range_part(
                            reader, key_range, entity=entity, failed=failed, needs=needs
                        )
                    )
            return out

        try:
            before = sum(p.rows for p in parts(False))
            for statement in HOSTILE:
                pg.query(source_db, statement)
            new, old = parts(False), parts(True)
        finally:
            source.close()
            target.close()
        assert sum(p.rows for p in new) < before  # rows the rules now fail drop out
        assert sum(len(p.picked.get((50.0, None, 11), [])) for p in new) > 0
        assert len(new) == len(old)
        for got, want in zip(new, old, strict=True):
            _same_part(got, want)
