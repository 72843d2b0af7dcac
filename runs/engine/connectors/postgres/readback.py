"""Reading a batch back before its commit: the intended values (in the load's temp table
``mp_load``) against the stored ones, by their canonical text (runs.engine.canonical)."""

from __future__ import annotations

from typing import Any

from psycopg2 import sql

from runs.engine.canonical import (
    pg_canonical_sql,
    pg_hash_sql,
    pg_intent_sql,
    pg_intent_typed_sql,
    pg_same_sql,
    pg_uuid_text_sql,
    pg_zoned_intent_sql,
)
from runs.engine.connectors.base import Coercion, ColumnInfo, TableInfo
from runs.engine.errors import EngineError

from .operations import _cast, text_array
from .plumbing import PostgresPlumbing

# A load's table, the columns it writes and its target key.
Shape = tuple[TableInfo, list[ColumnInfo], ColumnInfo]
# What a read-back finds: (ordinal -> hash of the intended values, ordinals that differ).
Found = tuple[dict[int, str], list[int]]

# Trigger functions of a foreign key that only check (the referencing table's, NO ACTION and
# RESTRICT on the referenced one): they change no row. CASCADE / SET NULL / SET DEFAULT do.
_CHECK_ONLY = [
    "RI_FKey_check_ins",
    "RI_FKey_check_upd",
    "RI_FKey_noaction_del",
    "RI_FKey_noaction_upd",
    "RI_FKey_restrict_del",
    "RI_FKey_restrict_upd",
]
_UNTOUCHED_SQL = """
SELECT NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = %(t)s::regclass)
   AND NOT EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
                   WHERE g.tgrelid = %(t)s::regclass AND NOT (g.tgisinternal
                     AND p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY(%(f)s)))
   AND NOT EXISTS (SELECT 1 FROM unnest(%(names)s::text[], %(types)s::text[]) AS w(name, type)
                   LEFT JOIN pg_attribute a ON a.attrelid = %(t)s::regclass
                     AND a.attname = w.name AND NOT a.attisdropped
                   WHERE a.attnum IS NULL OR format_type(a.atttypid, a.atttypmod) <> w.type)
"""


class PostgresReadBack(PostgresPlumbing):
    """Reading rows back by key: a batch's rows before its commit, rows for the checks."""

    def _probe(
        self, info: TableInfo, key: ColumnInfo, value: sql.Composable, select: sql.Composable
    ) -> sql.Composed:
        """A LATERAL subquery (to alias ``t``): ``select`` of the target row whose ``key`` is
        ``value``, one index probe per outer row. OFFSET 0 keeps PostgreSQL from flattening it
        into a join, which it plans as a hash join over a full scan of the target when its
        estimates for the load's temp table and key arrays are off (they are): a batch would
        then cost time in proportion to the rows already in the target (issue 20)."""
        return sql.SQL("LATERAL (SELECT {c} FROM {t} AS t WHERE t.{k} = {v} OFFSET 0) AS t").format(
            c=select, t=self.table_ident(info), k=sql.Identifier(key.name), v=value
        )

    def _read_back_from(self, info: TableInfo, tk: ColumnInfo) -> sql.Composed:
        """FROM clause pairing each loaded row (mp_load l) with its target row (t, NULL when
        gone) through two array parameters: ordinals and target key texts."""
        return sql.SQL(
            "unnest(%s::bigint[], %s::text[]) AS u(o, k) JOIN mp_load l ON l.mp_ord = u.o "
            "LEFT JOIN {probe} ON true"
        ).format(probe=self._probe(info, tk, _cast(sql.SQL("u.k"), tk), sql.SQL("t.*")))

    def _read_back(self, cur: Any, load: Shape, out: list[tuple]) -> Found:
        """Read every written (or left unchanged) row back in the same transaction: (ordinal ->
        hash of the intended values, ordinals whose stored values differ from them). Intended
        and stored values are compared in their canonical text (runs.engine.canonical).
        ``out``: (ordinal, target key, ...) per row."""
        info, cols, tk = load
        # the intended values are read as their types once (OFFSET 0 keeps the subquery from
        # being flattened, which would cast every value twice: for the hash and the compare)
        typed = _typed(cols)
        x = [sql.Identifier("x", f"i{i}") for i in range(len(cols))]
        intended = pg_hash_sql([pg_canonical_sql(v, c) for v, c in zip(x, cols, strict=True)], x)
        same = sql.SQL(" AND ").join(
            pg_same_sql(v, sql.Identifier("t", c.name), c) for v, c in zip(x, cols, strict=True)
        )
        cur.execute(
            sql.SQL(
                "SELECT x.o, {ih}, t.{k} IS NOT NULL AND {same}, t.mp_xmin "
                "FROM (SELECT u.o, u.k, {typed} "
                "FROM unnest(%s::bigint[], %s::text[]) AS u(o, k) JOIN mp_load l "
                "ON l.mp_ord = u.o OFFSET 0) AS x LEFT JOIN {probe} ON true"
            ).format(
                ih=intended,
                same=same,
                typed=typed,
                k=sql.Identifier(tk.name),
                probe=self._probe(
                    info, tk, _cast(sql.SQL("x.k"), tk), sql.SQL("t.*, t.xmin::text AS mp_xmin")
                ),
            ),
            (text_array(o[0] for o in out), text_array(o[1] for o in out)),
        )
        got = cur.fetchall()
        self.read_back_rows += len(got)
        if len(got) != len(out):
            raise EngineError(f"read back {len(got)} rows of {len(out)} written")
        self.read_back_versions = {o: x for o, _, _, x in got}
        return {o: ih for o, ih, _, _ in got}, sorted(o for o, _, ok, _ in got if not ok)

    def _rows_stay_as_written(self, cur: Any, load: Shape) -> bool:
        """True when the INSERT stores exactly the values of its SELECT list (``_cast`` of each
        text to the column's declared type), so comparing those with the intended values
        (``_as_written``) proves what reading the rows back would: a plain table with no rule,
        no trigger but a foreign key's checks, every written column of the declared type the
        casts name. Its ROW EXCLUSIVE lock, taken here (outside the batch's savepoints) and
        held to the commit, keeps anyone from adding a trigger or rule or altering a column
        meanwhile. Transactional; changes no row."""
        info, cols, _ = load
        table = self.table_ident(info).as_string(cur)
        cur.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", (table,))
        if cur.fetchone()[0] != "r":
            return False
        cur.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(self.table_ident(info)))
        cur.execute(
            _UNTOUCHED_SQL,
            {
                "t": table,
                "f": _CHECK_ONLY,
                "names": text_array(c.name for c in cols),
                "types": text_array(c.cast_type for c in cols),
            },
        )
        return bool(cur.fetchone()[0])

    def _as_written(self, cur: Any, load: Shape) -> tuple[list[int], Found]:
        """mp_load's ordinals in order, and per row the hash of the intended values and
        whether the value the INSERT writes (``_insert_sql``'s cast) is the intended one, in
        canonical text — the read-back's answer without reading the target, sound only where
        ``_rows_stay_as_written``. A column whose cast is the intended value's own (no typmod,
        the same type) is the same by construction and not compared (a ``uuid``'s canonical
        text then taken from a text in that form already: ``pg_uuid_text_sql``); a
        ``timestamp`` without typmod is cast once, and compared only where its text names an
        instant (``pg_zoned_intent_sql``: elsewhere the intent is that cast)."""
        _, cols, _ = load
        selected, intents, same = [], [], []
        for i, c in enumerate(cols):
            text, x = sql.Identifier("l", f"c{i}"), sql.Identifier("x", f"i{i}")
            cast, typed = _cast(text, c), pg_intent_typed_sql(text, c)
            zoned = pg_zoned_intent_sql(text, c) if c.cast_type == c.family_type else None
            if zoned is not None:  # the INSERT's cast is the intent's plain branch
                z = sql.Identifier("x", f"z{i}")
                selected.append(
                    sql.SQL("{} AS {}, {} AS {}").format(
                        cast, sql.Identifier(f"i{i}"), zoned, sql.Identifier(f"z{i}")
                    )
                )
                intents.append(sql.SQL("coalesce({}, {})").format(z, x))
                same.append(sql.SQL("({0} IS NULL OR {0} = {1})").format(z, x))
                continue
            differ = cast.as_string(cur) != typed.as_string(cur)
            if not differ and c.cast_type == "uuid":  # the INSERT's cast checks the text
                typed = pg_uuid_text_sql(text)
            selected.append(sql.SQL("{} AS {}").format(typed, sql.Identifier(f"i{i}")))
            intents.append(x)
            if differ:
                s = sql.Identifier("x", f"s{i}")
                selected.append(sql.SQL("{} AS {}").format(cast, sql.Identifier(f"s{i}")))
                same.append(pg_same_sql(x, s, c))
        cur.execute(
            sql.SQL(
                "SELECT x.mp_ord, {ih}, {same} FROM (SELECT l.mp_ord, {selected} "
                "FROM mp_load l OFFSET 0) AS x ORDER BY x.mp_ord"
            ).format(
                ih=pg_hash_sql(
                    [pg_canonical_sql(v, c) for v, c in zip(intents, cols, strict=True)], intents
                ),
                same=sql.SQL(" AND ").join(same) if same else sql.SQL("true"),
                selected=sql.SQL(", ").join(selected),
            )
        )
        got = cur.fetchall()
        self.read_back_rows += len(got)
        return [r[0] for r in got], ({r[0]: r[1] for r in got}, [r[0] for r in got if not r[2]])

    def _coerced_detail(self, cur: Any, load: Shape, rows: list[tuple]) -> list[Coercion]:
        """(row position, [(column, intended, stored)]) of ``rows`` ((ordinal, target key,
        ...) each), which the target changed; a row it no longer holds is one entry ("*",
        "row", None)."""
        info, cols, tk = load
        pairs = [
            sql.SQL("{}, {}").format(
                pg_intent_sql(sql.Identifier("l", f"c{i}"), c),
                pg_canonical_sql(sql.Identifier("t", c.name), c),
            )
            for i, c in enumerate(cols)
        ]
        cur.execute(
            sql.SQL("SELECT u.o, t.{k} IS NOT NULL, {pairs} FROM {src}").format(
                k=sql.Identifier(tk.name),
                pairs=sql.SQL(", ").join(pairs),
                src=self._read_back_from(info, tk),
            ),
            (text_array(o[0] for o in rows), text_array(o[1] for o in rows)),
        )
        detail = []
        for r in cur.fetchall():
            if not r[1]:
                detail.append((r[0] - 1, [("*", "row", None)]))
                continue
            values = r[2:]
            diffs = [
                (c.name, values[2 * i], values[2 * i + 1])
                for i, c in enumerate(cols)
                if values[2 * i] != values[2 * i + 1]
            ]
            detail.append((r[0] - 1, diffs))
        return detail

    def _rows_by_key_sql(
        self, info: TableInfo, key: ColumnInfo, select: sql.Composable
    ) -> sql.Composed:
        """SELECT key text, ``select`` of the rows (alias t) whose key text is in the one
        ``%s::text[]`` parameter."""
        return sql.SQL(
            "SELECT t.{k}::text, {c} FROM {t} AS t WHERE t.{k} IN "
            "(SELECT {cast} FROM unnest(%s::text[]) AS u(v))"
        ).format(
            k=sql.Identifier(key.name),
            c=select,
            t=self.table_ident(info),
            cast=_cast(sql.SQL("u.v"), key),
        )


def _typed(cols: list[ColumnInfo]) -> sql.Composed:
    """The select list reading mp_load's (alias l) intended texts as their types: i0, i1, ..."""
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(
            pg_intent_typed_sql(sql.Identifier("l", f"c{i}"), c), sql.Identifier(f"i{i}")
        )
        for i, c in enumerate(cols)
    )
