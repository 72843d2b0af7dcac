"""The target role: load-stage checks, writing a batch (COPY in), reading it back."""

from __future__ import annotations

import io
import json
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg2
import psycopg2.errors
from psycopg2 import sql

from runs.engine.canonical import (
    pg_canonical_sql,
    pg_hash_sql,
    pg_intent_sql,
    pg_intent_typed_sql,
    pg_same_sql,
)
from runs.engine.connectors.base import (
    CoercedFailure,
    ColumnInfo,
    LoadResult,
    TableInfo,
    load_columns,
    validate_frame,
    with_coerced,
)
from runs.engine.errors import EngineError
from runs.engine.unchanged import Carried, RowState

if TYPE_CHECKING:
    from runs.engine.snapshot import EntitySpec
    from runs.engine.transform import FieldError
from .ledger import _stored_result, _write_ledger, pack_failures
from .operations import _cast, _cols, _comparable, csv_bytes, frame_arrays, text_array
from .plumbing import PostgresPlumbing


class PostgresTarget(PostgresPlumbing):
    """The target role: load-stage checks, writing a batch (COPY in), reading it back."""

    def validate_rows(self, table: str, frame: pd.DataFrame) -> dict[Hashable, list[FieldError]]:
        """Rows the table would refuse -> their load-stage FieldErrors (one per refused column)
        by index; read-only; SchemaError if the table or a column is unknown."""
        return validate_frame(self._table(table), frame)

    def load_batch(
        self,
        *,
        entity: EntitySpec,
        rows: pd.DataFrame,
        source_keys: Sequence[str],
        run_id: str,
        batch_id: str,
        namespace: str,
        result_meta: dict[str, Any],
        skip_unchanged: bool = False,
        describe_coerced: CoercedFailure | None = None,
        row_state: RowState | None = None,
    ) -> LoadResult:
        """Write one batch + ledger + key map + batch record in ONE transaction. Idempotent.

        Every row is read back before the commit: a row the target stored otherwise than
        meant (a typmod, a trigger, a rule) is undone and becomes a ``coerced_by_target``
        failure in the stored result (``describe_coerced`` builds it), never a loaded row.
        The ledger's row hash is that of the intended values (runs.engine.canonical).
        ``skip_unchanged`` (upsert only; delta by comparison): rows whose target row already
        holds the same values are not written and not in the ledger, only counted.
        ``row_state`` (runs.engine.unchanged): the rows' source hashes and the rules hash are
        stored with the batch record, and its carried keys (skipped unread) are recorded and
        counted unchanged."""
        info = self._table(entity.target_table)
        cols, tk, ext = load_columns(info, entity, rows, source_keys)
        self.ensure_ledger()
        with self._tx() as cur:
            self._lock(cur, run_id, batch_id)
            stored = _stored_result(cur, run_id, batch_id)
            if stored is not None:
                return stored
            skip = skip_unchanged and entity.load_mode == "upsert"
            written, coerced = self._write_rows(
                cur, info, cols, tk, ext, entity.load_mode, rows, skip
            )
            result_meta = with_coerced(result_meta, coerced, rows, source_keys, describe_coerced)
            state = _state_arrays(written, source_keys, row_state)
            source_keys = [source_keys[w[5]] for w in written]
            inserted = sum(1 for w in written if w[1])
            changed = [w for w in written if w[4]]
            carried = row_state.carried if row_state is not None else None
            result = LoadResult(
                inserted=inserted,
                updated=len(changed) - inserted,
                unchanged=len(written) - len(changed) + (len(carried) if carried else 0),
                result_meta=result_meta,
                coerced=len(coerced),
            )
            # Inserted rows are kept as two arrays in the batch record (no ledger row each:
            # 16,700 rows cost ~40 ms in a COPY); overwritten rows keep a row with their
            # before-image. mp_ledger.written shows both as rows.
            _write_ledger(cur, entity, run_id, batch_id, [w for w in changed if not w[1]])
            inserts = [w for w in changed if w[1]]
            kept = _carried_literals(carried)
            target_keys = _join_arrays(
                text_array(w[0] for w in written) if written else None, kept[1]
            )
            keymap_source = _join_arrays(text_array(source_keys) if written else None, kept[0])
            inserted_keys = inserted_hashes = None
            if inserts:  # an insert-only batch: the key map's literal serves both
                same = len(inserts) == len(written) and not carried
                inserted_keys = target_keys if same else text_array(w[0] for w in inserts)
                inserted_hashes = text_array(w[3] for w in inserts)
            # rows found unchanged are the run's rows too (mp_ledger.covered); a batch with
            # row state lists them in its state arrays already
            kept_rows = [w for w in written if not w[4]] if row_state is None else []
            kept_keys = text_array(w[0] for w in kept_rows) if kept_rows else None
            kept_hashes = text_array(w[3] for w in kept_rows) if kept_rows else None
            counts = {k: v for k, v in result_meta.items() if k != "failures"}
            failures = result_meta.get("failures")
            cur.execute(
                "INSERT INTO mp_ledger.batch (run_id, batch_id, entity, target_table, "
                "target_key_column, result_meta, load_result, failures, namespace, "
                "keymap_source, keymap_target, inserted_keys, inserted_hashes, state_keys, "
                "state_targets, source_hashes, row_hashes, target_xmins, first_key, last_key, "
                "rules_hash, kept_keys, kept_hashes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::text[], %s::text[], %s::text[], %s, %s, %s, %s::text[], %s::text[])",
                (
                    run_id,
                    batch_id,
                    entity.name,
                    info.name,
                    tk.name,
                    json.dumps(counts),
                    json.dumps(
                        {
                            "inserted": result.inserted,
                            "updated": result.updated,
                            "unchanged": result.unchanged,
                        }
                    ),
                    psycopg2.Binary(pack_failures(failures)) if failures else None,
                    namespace,
                    keymap_source,
                    target_keys,
                    inserted_keys,
                    inserted_hashes,
                    *((keymap_source, target_keys) if row_state is not None else (None, None)),
                    *state,
                    kept_keys,
                    kept_hashes,
                ),
            )
        return result

    def _write_rows(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        ext: ColumnInfo | None,
        mode: str,
        rows: pd.DataFrame,
        skip_unchanged: bool = False,
    ) -> tuple[list[tuple], list[tuple[int, list[tuple[str, str | None, str | None]]]]]:
        """COPY rows into a temp table, then INSERT ... SELECT (ON CONFLICT) RETURNING, then
        read every row back and compare it with what was meant (``_read_back``).

        Returns (written, coerced). ``written``: (target key text, inserted?, before-image JSON
        or None, row hash of the INTENDED values, written?, row position) per row kept, in
        input order. ``coerced``: (row position, [(column, intended, stored)]) of rows the
        target stored otherwise than meant; those rows are undone (the write is rolled back to
        a savepoint and redone without them) and are not in ``written``.
        An upsert whose external ids are all new runs as a plain INSERT (no conflict check);
        a row committed meanwhile by someone else makes it fall back to ON CONFLICT.
        """
        temp = [sql.Identifier(f"c{i}") for i in range(len(cols))]
        if self._held is not None:  # an earlier write in the same held transaction made one
            cur.execute("DROP TABLE IF EXISTS pg_temp.mp_load")
        cur.execute(
            sql.SQL("CREATE TEMP TABLE mp_load (mp_ord bigserial, {}) ON COMMIT DROP").format(
                sql.SQL(", ").join(sql.SQL("{} text").format(t) for t in temp)
            )
        )
        self.read_back_rows, self.read_back_versions = 0, {}
        if not len(rows):
            return [], []
        # The read-back's row estimates (arrays, an unanalysed temp table) are far off and
        # make PostgreSQL JIT-compile its expressions: ~80 ms per batch for nothing.
        cur.execute("SET LOCAL jit = off")
        cur.copy_expert(
            sql.SQL("COPY mp_load ({}) FROM STDIN WITH (FORMAT csv)").format(
                sql.SQL(", ").join(temp)
            ),
            io.BytesIO(csv_bytes(frame_arrays(rows))),
        )
        before: dict[str, str] = {}
        upsert = mode == "upsert" and ext is not None
        if upsert:  # load_columns checked the external id is among the columns
            before = self._before_images(cur, info, tk, ext, temp[cols.index(ext)])
        coerced: list[tuple[int, list[tuple[str, str | None, str | None]]]] = []
        while True:
            cur.execute("SAVEPOINT mp_rows")
            if skip_unchanged and before:  # only rows that exist already can be unchanged
                out = self._write_changed(cur, info, cols, tk, ext, temp)
            else:
                out, before = self._insert_rows(
                    cur, info, cols, tk, ext if upsert else None, temp, before
                )
            hashes, bad = self._read_back(cur, info, cols, tk, out)
            if not bad:
                cur.execute("RELEASE SAVEPOINT mp_rows")
                break
            coerced += self._coerced_detail(cur, info, cols, tk, out, bad)
            cur.execute("ROLLBACK TO SAVEPOINT mp_rows")
            cur.execute("DELETE FROM mp_load WHERE mp_ord = ANY(%s::bigint[])", (text_array(bad),))
        versions = self.read_back_versions
        return [
            (key, ins, None if ins else before.get(key), hashes[o], wrote, o - 1, versions[o])
            for o, key, ins, wrote in out
        ], sorted(coerced)

    def _insert_rows(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        conflict_on: ColumnInfo | None,
        temp: list[sql.Identifier],
        before: dict[str, str],
    ) -> tuple[list[tuple[int, str, bool, bool]], dict[str, str]]:
        """INSERT (ON CONFLICT) the rows of mp_load: ((ordinal, target key, inserted?, True) in
        ordinal order, before-images). PostgreSQL returns INSERT ... SELECT ... ORDER BY rows
        in that order."""
        cur.execute("SELECT mp_ord FROM mp_load ORDER BY mp_ord")
        ords = [r[0] for r in cur.fetchall()]
        out = None
        if conflict_on is not None and not before:  # no external id exists yet: plain INSERT
            cur.execute("SAVEPOINT mp_plain")
            try:
                cur.execute(self._insert_sql(info, cols, tk, None))
                out = cur.fetchall()
                cur.execute("RELEASE SAVEPOINT mp_plain")
            except psycopg2.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT mp_plain")
                before = self._before_images(
                    cur, info, tk, conflict_on, temp[cols.index(conflict_on)]
                )
        if out is None:
            cur.execute(self._insert_sql(info, cols, tk, conflict_on))
            out = cur.fetchall()
        if len(out) != len(ords):
            raise EngineError(f"target returned {len(out)} rows for {len(ords)} written")
        return [(o, r[0], bool(r[1]), True) for o, r in zip(ords, out, strict=True)], before

    def _insert_sql(
        self,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        conflict_on: ColumnInfo | None,
    ) -> sql.Composed:
        temp = [sql.Identifier(f"c{i}") for i in range(len(cols))]
        conflict = sql.SQL("")
        if conflict_on is not None:
            conflict = sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
                sql.Identifier(conflict_on.name),
                sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name)) for c in cols
                ),
            )
        return sql.SQL(
            "INSERT INTO {t} AS mp_t ({c}) SELECT {casts} FROM mp_load ORDER BY mp_ord{conflict} "
            "RETURNING mp_t.{tk}::text, (mp_t.xmax = 0)"
        ).format(
            t=self.table_ident(info),
            c=_cols([c.name for c in cols]),
            casts=sql.SQL(", ").join(_cast(t, c) for t, c in zip(temp, cols, strict=True)),
            conflict=conflict,
            tk=sql.Identifier(tk.name),
        )

    def _read_back_from(self, info: TableInfo, tk: ColumnInfo) -> sql.Composed:
        """FROM clause pairing each loaded row (mp_load l) with its target row (t, NULL when
        gone) through two array parameters: ordinals and target key texts."""
        return sql.SQL(
            "unnest(%s::bigint[], %s::text[]) AS u(o, k) JOIN mp_load l ON l.mp_ord = u.o "
            "LEFT JOIN {t} AS t ON t.{k} = {key}"
        ).format(t=self.table_ident(info), k=sql.Identifier(tk.name), key=_cast(sql.SQL("u.k"), tk))

    def _read_back(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        out: list[tuple[int, str, bool, bool]],
    ) -> tuple[dict[int, str], list[int]]:
        """Read every written (or left unchanged) row back in the same transaction: (ordinal ->
        hash of the intended values, ordinals whose stored values differ from them). Intended
        and stored values are compared in their canonical text (runs.engine.canonical)."""
        # the intended values are read as their types once (OFFSET 0 keeps the subquery from
        # being flattened, which would cast every value twice: for the hash and the compare)
        typed = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(
                pg_intent_typed_sql(sql.Identifier("l", f"c{i}"), c), sql.Identifier(f"i{i}")
            )
            for i, c in enumerate(cols)
        )
        x = [sql.Identifier("x", f"i{i}") for i in range(len(cols))]
        intended = pg_hash_sql([pg_canonical_sql(v, c) for v, c in zip(x, cols, strict=True)])
        same = sql.SQL(" AND ").join(
            pg_same_sql(v, sql.Identifier("t", c.name), c) for v, c in zip(x, cols, strict=True)
        )
        cur.execute(
            sql.SQL(
                "SELECT x.o, {ih}, t.{k} IS NOT NULL AND {same}, t.xmin::text "
                "FROM (SELECT u.o, u.k, {typed} "
                "FROM unnest(%s::bigint[], %s::text[]) AS u(o, k) JOIN mp_load l "
                "ON l.mp_ord = u.o OFFSET 0) AS x LEFT JOIN {t} AS t ON t.{k} = {key}"
            ).format(
                ih=intended,
                same=same,
                typed=typed,
                k=sql.Identifier(tk.name),
                t=self.table_ident(info),
                key=_cast(sql.SQL("x.k"), tk),
            ),
            (text_array(o[0] for o in out), text_array(o[1] for o in out)),
        )
        got = cur.fetchall()
        self.read_back_rows += len(got)
        if len(got) != len(out):
            raise EngineError(f"read back {len(got)} rows of {len(out)} written")
        self.read_back_versions = {o: x for o, _, _, x in got}
        return {o: ih for o, ih, _, _ in got}, sorted(o for o, _, ok, _ in got if not ok)

    def _coerced_detail(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        out: list[tuple[int, str, bool, bool]],
        bad: list[int],
    ) -> list[tuple[int, list[tuple[str, str | None, str | None]]]]:
        """(row position, [(column, intended, stored)]) of the rows the target changed; a row
        the target no longer holds is one entry ("*", "row", None)."""
        wanted = set(bad)
        rows = [o for o in out if o[0] in wanted]
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

    def _write_changed(
        self,
        cur: Any,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        ext: ColumnInfo,
        temp: list[sql.Identifier],
    ) -> list[tuple[int, str, bool, bool]]:
        """Upsert writing only rows whose values differ: (ordinal, target key, inserted?,
        written?) per row of mp_load in ordinal order; unchanged rows keep their target key."""
        names = [c.name for c in cols]
        query = self._insert_sql(info, cols, tk, ext)
        ext_temp = _cast(sql.Composed([sql.SQL("l."), temp[names.index(ext.name)]]), ext)
        cur.execute(
            sql.SQL(
                "SELECT l.mp_ord, t.{tk}::text FROM mp_load l JOIN {t} t ON t.{ext} = {ext_temp}"
            ).format(
                tk=sql.Identifier(tk.name),
                t=self.table_ident(info),
                ext=sql.Identifier(ext.name),
                ext_temp=ext_temp,
            )
        )
        existing = dict(cur.fetchall())
        target_row = sql.SQL(", ").join(_comparable(sql.SQL("mp_t"), c) for c in cols)
        new_row = sql.SQL(", ").join(_comparable(sql.SQL("EXCLUDED"), c) for c in cols)
        guarded = (
            sql.Composed([query])
            .as_string(cur)
            .replace(
                " RETURNING ",
                " WHERE ROW("
                + target_row.as_string(cur)
                + ") IS DISTINCT FROM ROW("
                + new_row.as_string(cur)
                + ") RETURNING mp_t."
                + sql.Identifier(ext.name).as_string(cur)
                + " AS mp_ext, ",
                1,
            )
        )
        cur.execute(
            sql.SQL(
                "WITH w AS ({}) SELECT l.mp_ord, w.* FROM w JOIN mp_load l "
                "ON w.mp_ext = {} ORDER BY l.mp_ord"
            ).format(sql.SQL(guarded), ext_temp)
        )
        changed = {r[0]: r[2:] for r in cur.fetchall()}
        cur.execute("SELECT mp_ord FROM mp_load ORDER BY mp_ord")
        out = []
        for (ordinal,) in cur.fetchall():
            r = changed.get(ordinal)
            if r is None:
                out.append((ordinal, existing[ordinal], False, False))
            else:
                out.append((ordinal, r[0], bool(r[1]), True))
        return out

    def _before_images(
        self, cur: Any, info: TableInfo, tk: ColumnInfo, ext: ColumnInfo, temp_col: sql.Identifier
    ) -> dict[str, str]:
        """JSON of the existing rows an upsert will overwrite, locked FOR UPDATE."""
        cur.execute(
            sql.SQL(
                "SELECT b.{tk}::text, to_jsonb(b)::text FROM {t} AS b WHERE b.{ext} IN "
                "(SELECT {cast} FROM mp_load) FOR UPDATE OF b"
            ).format(
                tk=sql.Identifier(tk.name),
                t=self.table_ident(info),
                ext=sql.Identifier(ext.name),
                cast=_cast(temp_col, ext),
            )
        )
        return dict(cur.fetchall())


def _join_arrays(first: str | None, second: str | None) -> str | None:
    """Two PostgreSQL array literals as one (either may be None or empty). Pure."""
    parts = [a[1:-1] for a in (first, second) if a is not None and a != "{}"]
    return "{" + ",".join(parts) + "}" if parts else None


def _carried_literals(carried: Carried | None) -> tuple[str | None, ...]:
    """A Carried's five arrays as PostgreSQL array literals (None when nothing is carried)."""
    if not carried:
        return (None,) * 5
    if carried.literals:
        return carried.literals
    return tuple(
        text_array(values)
        for values in (
            carried.source_keys,
            carried.target_keys,
            carried.source_hashes,
            carried.row_hashes,
            carried.versions,
        )
    )


def _state_arrays(
    written: list[tuple], source_keys: Sequence[str], state: RowState | None
) -> tuple[str | None, ...]:
    """The batch record's row state (runs.engine.unchanged), aligned with its key-map arrays
    (the kept rows, then the carried keys): source hashes, intended row hashes, row versions
    (xmin), first and last source key, rules hash. All None without a state."""
    if state is None:
        return (None,) * 6
    kept = _carried_literals(state.carried)
    return (
        _join_arrays(text_array(state.source_hashes[w[5]] for w in written), kept[2]),
        _join_arrays(text_array(w[3] for w in written), kept[3]),
        _join_arrays(text_array(w[6] for w in written), kept[4]),
        state.first_key,
        state.last_key,
        state.rules_hash,
    )
