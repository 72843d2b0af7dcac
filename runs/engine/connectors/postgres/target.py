"""The target role (``base.target.SqlTarget``) on PostgreSQL: a batch COPYed into a temp
table, written by INSERT ... SELECT (ON CONFLICT) RETURNING, read back (``readback``), and
recorded with its key map and row state as arrays in its batch record."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from runs.engine.connectors.base import Coercion, ColumnInfo, TableInfo
from runs.engine.connectors.base.target import Load, SqlTarget, Written
from runs.engine.errors import EngineError
from runs.engine.unchanged import Carried, RowState

from .ledger import _write_ledger, pack_failures
from .operations import _cast, _cols, _comparable, frame_arrays, load_copy, text_array
from .readback import Found, PostgresReadBack
from .record import HexArray, array_value, insert_record

if TYPE_CHECKING:  # pandas is loaded where a frame is made, not by importing this
    import pandas as pd


class PostgresTarget(SqlTarget, PostgresReadBack):
    """The target role: COPY into a temp table, INSERT ... SELECT (ON CONFLICT), read-back."""

    def _record_batch(self, cur: Any, batch: Written) -> None:
        """Ledger rows of the rows overwritten (with their before-image); inserted rows, the
        key map and the re-run row state as arrays in the batch record (no row each: 16,700
        rows cost ~40 ms in a COPY); ``mp_ledger.written`` shows both as rows."""
        written, row_state = batch.rows, batch.row_state
        changed = [w for w in written if w[4]]
        _write_ledger(
            cur, batch.entity, batch.run_id, batch.batch_id, [w for w in changed if not w[1]]
        )
        inserts = [w for w in changed if w[1]]
        carried = row_state.carried if row_state is not None else None
        kept = _carried_literals(carried)
        written_targets = array_value(w[0] for w in written) if written else None
        sources = array_value(batch.row_source_keys) if written else None
        # every written row's intended hash: the row state's, and the inserts' when all are
        row_hashes = array_value(w[3] for w in written) if row_state is not None else None
        inserted_keys = inserted_hashes = None
        if inserts:  # an insert-only batch: the key map's array serves both
            same = len(inserts) == len(written)
            inserted_keys = written_targets if same else array_value(w[0] for w in inserts)
            inserted_hashes = (
                row_hashes
                if same and row_hashes is not None
                else array_value(w[3] for w in inserts)
            )
        meta = batch.result.result_meta
        failures = meta.get("failures")
        state = _state_arrays(written, row_state, row_hashes)
        # The key map takes the rows this batch loaded; a carried key's pair is in the key map
        # already, from the live earlier run that mapped it (the rollback stack keeps that run
        # until this one is undone), so it is not applied again (~1 M no-op upserts at 1 M).
        arrays = {
            "keymap_source": sources,
            "keymap_target": written_targets,
            "inserted_keys": inserted_keys,
            "inserted_hashes": inserted_hashes,
            "state_keys": _join_arrays(sources, kept[0]) if row_state is not None else None,
            "state_targets": (
                _join_arrays(written_targets, kept[1]) if row_state is not None else None
            ),
            "source_hashes": state[0],
            "row_hashes": state[1],
            "target_xmins": state[2],
        }
        # rows found unchanged are the run's rows too (mp_ledger.covered); a batch with
        # row state lists them in its state arrays already
        alike = [w for w in written if not w[4]] if row_state is None else []
        arrays["kept_keys"] = array_value(w[0] for w in alike) if alike else None
        arrays["kept_hashes"] = array_value(w[3] for w in alike) if alike else None
        copied = _copied_state(carried, written)
        if copied is not None:  # the arrays are copied from the earlier record below
            arrays |= dict.fromkeys(_STATE_ARRAYS)
        record = batch.record({k: v for k, v in meta.items() if k != "failures"})
        record |= {
            "failures": psycopg2.Binary(pack_failures(failures)) if failures else None,
            "namespace": batch.namespace,
            **arrays,
            "first_key": state[3],
            "last_key": state[4],
            "rules_hash": state[5],
            "range_digest": row_state.digest if row_state is not None else None,
        }
        cur.execute(*insert_record(record, set(arrays)))
        if copied is not None:
            _copy_state(cur, copied, batch.run_id, batch.batch_id)

    def _write_rows(self, cur: Any, load: Load, rows: pd.DataFrame, skip_unchanged: bool) -> tuple:
        """COPY rows into a temp table, then INSERT ... SELECT (ON CONFLICT) RETURNING, then
        read every row back and compare it with what was meant (``_read_back``). Returns
        (written, coerced) as ``Written.rows`` (with each row's xmin) and ``Coercion`` lists;
        coerced rows are undone (the write rolled back to a savepoint and redone without
        them). An upsert whose external ids are all new runs as a plain INSERT (no conflict
        check); a row committed meanwhile by someone else makes it fall back to ON CONFLICT.
        """
        info, cols, tk, ext = load
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
        options, data = load_copy(frame_arrays(rows))  # COPY's text format, escaped if need be
        cur.copy_expert(
            sql.SQL("COPY mp_load ({}) FROM STDIN WITH ({})").format(
                sql.SQL(", ").join(temp), sql.SQL(options)
            ),
            io.BytesIO(data),
        )
        before: dict[str, str] = {}
        if ext is not None:  # load_columns checked the external id is among the columns
            before = self._before_images(cur, info, tk, ext, temp[cols.index(ext)])
        coerced: list[Coercion] = []
        # rows nothing but the INSERT touches are compared with what it returns (no read-back)
        checked = self._rows_stay_as_written(cur, (info, cols, tk))
        while True:
            cur.execute("SAVEPOINT mp_rows")
            found = None
            if skip_unchanged and before:  # only rows that exist already can be unchanged
                out = self._write_changed(cur, info, cols, tk, ext, temp)
            else:
                out, before, found = self._insert_rows(cur, load, temp, before, checked)
            hashes, bad = found or self._read_back(cur, (info, cols, tk), out)
            if not bad:
                cur.execute("RELEASE SAVEPOINT mp_rows")
                break
            wanted = set(bad)
            coerced += self._coerced_detail(
                cur, (info, cols, tk), [o for o in out if o[0] in wanted]
            )
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
        load: Load,
        temp: list[sql.Identifier],
        before: dict[str, str],
        checked: bool,
    ) -> tuple[list[tuple[int, str, bool, bool]], dict[str, str], Found | None]:
        """INSERT (ON CONFLICT) the rows of mp_load: ((ordinal, target key, inserted?, True) in
        ordinal order, before-images, the rows compared as written (``_as_written``) when
        ``checked``, else None). PostgreSQL returns INSERT ... SELECT ... ORDER BY rows in
        that order. Sets ``read_back_versions`` (each row's xmin)."""
        info, cols, tk, conflict_on = load
        found = None
        if checked:
            ords, found = self._as_written(cur, (info, cols, tk))
        else:
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
        self.read_back_versions = {o: r[2] for o, r in zip(ords, out, strict=True)}
        written = [(o, r[0], bool(r[1]), True) for o, r in zip(ords, out, strict=True)]
        return written, before, found

    def _insert_sql(
        self,
        info: TableInfo,
        cols: list[ColumnInfo],
        tk: ColumnInfo,
        conflict_on: ColumnInfo | None,
    ) -> sql.Composed:
        """INSERT (ON CONFLICT) of mp_load's rows in ordinal order, RETURNING target key
        text, inserted?, xmin."""
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
            "RETURNING mp_t.{tk}::text, (mp_t.xmax = 0), mp_t.xmin::text"
        ).format(
            t=self.table_ident(info),
            c=_cols([c.name for c in cols]),
            casts=sql.SQL(", ").join(_cast(t, c) for t, c in zip(temp, cols, strict=True)),
            conflict=conflict,
            tk=sql.Identifier(tk.name),
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
            sql.SQL("SELECT l.mp_ord, t.mp_tk FROM mp_load l CROSS JOIN {probe}").format(
                probe=self._probe(
                    info,
                    ext,
                    ext_temp,
                    sql.SQL("t.{}::text AS mp_tk").format(sql.Identifier(tk.name)),
                )
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
        """JSON of the existing rows an upsert will overwrite, locked FOR UPDATE. The keys go
        in as one array (``= ANY``): an index lookup per key, where ``IN (SELECT …)`` may be
        planned as a full scan of the target (readback._probe)."""
        cur.execute(
            sql.SQL(
                "SELECT b.{tk}::text, to_jsonb(b)::text FROM {t} AS b WHERE b.{ext} = ANY("
                "ARRAY(SELECT {cast} FROM mp_load)) FOR UPDATE OF b"
            ).format(
                tk=sql.Identifier(tk.name),
                t=self.table_ident(info),
                ext=sql.Identifier(ext.name),
                cast=_cast(temp_col, ext),
            )
        )
        return dict(cur.fetchall())


def _join_arrays(
    first: str | HexArray | None, second: str | HexArray | None
) -> str | HexArray | None:
    """Two arrays (PostgreSQL array literals or ``HexArray``s) as one (either may be None or
    empty). Pure."""
    parts = [a for a in (first, second) if a is not None and a != "{}"]
    if len(parts) < 2:  # the one array itself (no copy; insert_record sends it once)
        return parts[0] if parts else None
    if isinstance(parts[0], HexArray) and isinstance(parts[1], HexArray):
        return HexArray(parts[0].plain + "," + parts[1].plain)
    head, tail = (p.literal() if isinstance(p, HexArray) else p for p in parts)
    return "{" + head[1:-1] + "," + tail[1:-1] + "}"


# The row-state arrays a batch record keeps, aligned (state_keys first).
_STATE_ARRAYS = ("state_keys", "state_targets", "source_hashes", "row_hashes", "target_xmins")
_COPY_STATE = (
    "UPDATE mp_ledger.batch b SET "
    + ", ".join(f"{name} = s.{name}" for name in _STATE_ARRAYS)
    + " FROM mp_ledger.batch s WHERE s.seq = %s AND b.run_id = %s AND b.batch_id = %s "
    "AND cardinality(s.state_keys) = %s"
)


def _copied_state(carried: Carried | None, written: list) -> Carried | None:
    """The Carried whose state arrays the new record copies from its earlier record on the
    server (a range carried whole: nothing written beside it); None otherwise. Pure."""
    if carried and carried.from_seq is not None and not written:
        return carried
    return None


def _copy_state(cur: Any, carried: Carried, run_id: str, batch_id: str) -> None:
    """Copy the earlier record's state arrays into the new one (no text round trip); raises
    EngineError when that record no longer holds the keys ``unchanged_range`` found."""
    cur.execute(_COPY_STATE, (carried.from_seq, run_id, batch_id, len(carried)))
    if cur.rowcount != 1:
        raise EngineError(
            f"the batch record {carried.from_seq} a key range was carried from changed"
        )


def _carried_literals(carried: Carried | None) -> tuple[str | None, ...]:
    """A Carried's five arrays as PostgreSQL array literals (None when nothing is carried or
    the arrays are copied on the server: ``_copied_state``)."""
    if not carried or carried.from_seq is not None:
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
    written: list[tuple], state: RowState | None, row_hashes: str | HexArray | None
) -> tuple[Any, ...]:
    """The batch record's row state (runs.engine.unchanged), aligned with its key-map arrays
    (the kept rows, then the carried keys): source hashes, intended row hashes
    (``row_hashes``: ``array_value`` of each written row's, made once by the caller), row
    versions (xmin), first and last source key, rules hash. All None without a state."""
    if state is None:
        return (None,) * 6
    kept = _carried_literals(state.carried)
    return (
        _join_arrays(array_value(state.source_hashes[w[5]] for w in written), kept[2]),
        _join_arrays(row_hashes, kept[3]),
        _join_arrays(array_value(w[6] for w in written), kept[4]),
        state.first_key,
        state.last_key,
        state.rules_hash,
    )
