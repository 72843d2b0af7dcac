"""PostgreSQL dialect helpers: quoted column lists, casts, text arrays, COPY CSV in and out,
COPY text in."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg2 import sql

from runs.engine.connectors.base import (
    ColumnInfo,
    TableInfo,
    arrow_frame,
    arrow_text,
    text_frame,
)
from runs.engine.connectors.base.dialect import Dialect

if TYPE_CHECKING:  # pandas is loaded where a frame is made, not by importing this
    import pandas as pd


class PostgresDialect(Dialect):
    """PostgreSQL's dialect: psycopg2 ``sql`` objects, ``%s`` placeholders, schema
    ``mp_ledger``; text by ``::text``."""

    param = "%s"
    ledger = "mp_ledger."
    nth_row = "mod(mp_rn, {P}) = 0"
    duplicates_by_text = False
    for_update = " FOR UPDATE"
    ledger_rows = "written"

    def quote(self, name: str) -> sql.Composable:
        return sql.Identifier(name)

    def table(self, info: TableInfo) -> sql.Composable:
        """The table's schema-qualified identifier (``schema.table``, quoted). Pure."""
        rel = info.name.split(".", 1)[1] if info.name.startswith(f"{info.schema}.") else info.name
        return sql.Identifier(info.schema or "public", rel)

    def text(self, col: ColumnInfo, ref: str | None = None) -> sql.Composable:
        return sql.SQL("{}::text").format(sql.Identifier(ref or col.name))

    def bound(self, col: ColumnInfo) -> sql.Composable:
        return self.text(col)

    def sql(self, template: str, **parts: Any) -> sql.Composable:
        return sql.SQL(template).format(P=sql.SQL("%s"), L=sql.SQL(self.ledger), **parts)

    def join(self, parts: Iterable[Any], sep: str = ", ") -> sql.Composable:
        return sql.SQL(sep).join(parts)

    def in_keys(self, template: str, args: list[Any], keys: list[str], **parts: Any) -> list:
        """One query whatever the number of keys: they travel as one text[] parameter."""
        test = sql.SQL("= ANY(%s::text[])")
        return [(self.sql(template, keys=test, **parts), [*args, text_array(keys)])]


OPS = PostgresDialect()


def _cols(names: Sequence[str], prefix: str | None = None) -> sql.Composable:
    if prefix:
        return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


# Types without an equality operator (ROW(...) IS DISTINCT FROM ROW(...) fails on them).
_NO_EQUALITY = frozenset(
    {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
)


def _comparable(alias: sql.Composable, col: ColumnInfo) -> sql.Composable:
    """``alias.col`` as a value a row comparison can use: its text where the type has no
    equality (found by the oracle test: a second upsert into a json column failed)."""
    expr = sql.SQL("{}.{}").format(alias, sql.Identifier(col.name))
    if col.family_type.lower() in _NO_EQUALITY:
        return sql.SQL("{}::text").format(expr)
    return expr


def _cast(expr: sql.Composable, col: ColumnInfo) -> sql.Composable:
    return sql.SQL("CAST({} AS {})").format(expr, sql.SQL(col.cast_type))


def text_array(values: Iterable[Any]) -> str:
    """A PostgreSQL text[] literal of ``values`` (str() of each, every element quoted), to be
    passed as one parameter with ``%s::text[]``. psycopg2 adapts a list to ARRAY['a', ...],
    which the server parses as one constant per element: 46 ms against 9 ms for 2 x 16,700
    keys. Texts with nothing to escape (keys, hashes, row versions: every array a batch
    record holds) are joined at once, 16,700 in ~0.5 ms instead of ~3.8 (a replace per value).
    Pure."""
    items = list(values)
    if not items:
        return "{}"
    if set(map(type, items)) <= _STR:
        plain = ",".join(items)
        if "\\" not in plain and '"' not in plain:
            if len(items) == 1:
                return '{"' + plain + '"}'
            # one join makes the literal (a concatenation would copy its megabyte twice)
            items[0], items[-1] = '{"' + items[0], items[-1] + '"}'
            return '","'.join(items)
    return _escaped_array(items)


_STR = frozenset({str})


def _escaped_array(values: Iterable[Any]) -> str:
    """``text_array``'s definition: str() of each value, backslashes and quotes escaped."""
    quoted = (str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _text_array(series: pd.Series) -> pa.Array:
    arr = arrow_text(series)  # the engine's TEXT: the column's own buffers
    if arr is not None:
        return arr
    values = series.to_numpy(dtype=object)
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        import pandas as pd  # a frame's column: pandas is loaded

        return pa.array([None if pd.isna(v) else str(v) for v in values], type=pa.string())


def frame_arrays(frame: pd.DataFrame) -> list[pa.Array]:
    """Each column of ``frame`` as an Arrow string array (the values COPY sends). Pure."""
    return [_text_array(frame.iloc[:, i]) for i in range(frame.shape[1])]


def csv_bytes(columns: Sequence[Sequence[Any]] | pd.DataFrame) -> bytes:
    """CSV for COPY FROM: NULL as an unquoted empty field, every other value quoted."""
    pd = sys.modules.get("pandas")  # not loaded: ``columns`` cannot be a frame
    if pd is not None and isinstance(columns, pd.DataFrame):
        arrays = frame_arrays(columns)
    elif all(isinstance(c, pa.Array) for c in columns):
        arrays = list(columns)
    else:
        arrays = [pa.array(list(c), type=pa.string()) for c in columns]
    table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
    sink = io.BytesIO()
    pacsv.write_csv(
        table, sink, pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    )
    return sink.getvalue()


# COPY's text format with 0x1F between values: what ``copy_text_bytes`` writes.
COPY_TEXT_OPTIONS = "FORMAT text, DELIMITER E'\\x1f'"


def copy_text_bytes(arrays: Sequence[pa.Array]) -> bytes | None:
    """Arrow string arrays as COPY's text format (``COPY_TEXT_OPTIONS``: values between 0x1F,
    NULL as ``\\N``) when no value needs an escape there, else None (``load_copy``).

    PostgreSQL parses it in ~3/4 of the time of the all-quoted CSV (16,700 rows of 12
    columns: ~20 against ~27 ms); Arrow writes it as fast. Arrow refuses (unquoted) a value
    holding 0x1F, a quote, CR or LF; a backslash, the text format's escape (and part of
    ``\\.``, its end of data), shows as one more than the NULLs' own. Pure."""
    table = pa.Table.from_arrays(list(arrays), names=[f"c{i}" for i in range(len(arrays))])
    sink = io.BytesIO()
    options = pacsv.WriteOptions(
        include_header=False, quoting_style="none", delimiter="\x1f", null_string="\\N"
    )
    try:
        pacsv.write_csv(table, sink, options)
    except pa.ArrowInvalid:
        return None
    data = sink.getvalue()
    if data.count(b"\\") != sum(a.null_count for a in arrays):
        return None
    return data


def load_copy(arrays: Sequence[pa.Array]) -> tuple[str, bytes]:
    """A batch for ``COPY mp_load``: (its WITH options, its bytes). COPY's text format
    unescaped with 0x1F between values (``copy_text_bytes``) where no value needs an escape,
    else the text format with its escapes (``text_copy_bytes``): a batch of the demo's notes
    (newlines, backslashes) is read by the server in ~0.7x the time of the all-quoted CSV it
    went as before (issue 20). Pure."""
    data = copy_text_bytes(arrays)
    if data is not None:
        return COPY_TEXT_OPTIONS, data
    return "FORMAT text", text_copy_bytes(arrays)


# COPY's text format escapes only these (a backslash first, so no escape is escaped again)
_TEXT_ESCAPES = (
    (b"\\", "\\", "\\\\"),
    (b"\t", "\t", "\\t"),
    (b"\n", "\n", "\\n"),
    (b"\r", "\r", "\\r"),
)


def _text_field(value: str | None) -> str:
    """One value as a field of COPY's text format (NULL as ``\\N``)."""
    if value is None:
        return "\\N"
    for _, char, escaped in _TEXT_ESCAPES:
        value = value.replace(char, escaped)
    return value


def text_copy_bytes(columns: Sequence[Sequence[Any]], tail: Sequence[str | None] = ()) -> bytes:
    """Lines for ``COPY … FROM STDIN (FORMAT text)``: row by row the values of ``columns``
    (str, UTF-8 bytes or None), then the ``tail`` values, the same on every line; backslash,
    tab, newline and carriage return escaped, NULL as ``\\N``. Pure.
    Built by Arrow's kernels (escaping only a column that holds one of the four). The server
    reads it for less than CSV when the values are JSON: CSV doubles every double quote and
    the server undoes it (issue 20: the failed records' COPY, ~10 ms less a batch)."""
    if not columns or not len(columns[0]):
        return b""
    given = [c if isinstance(c, pa.Array) else pa.array(c, type=pa.string()) for c in columns]
    if len({a.type for a in given}) > 1:  # pandas' Arrow strings are large_string: one type
        given = [a.cast(pa.large_string()) for a in given]
    arrays = []
    for arr in given:
        data = arr.buffers()[2]
        raw = b"" if data is None else data.to_pybytes()
        for byte, char, escaped in _TEXT_ESCAPES:
            if byte in raw:
                arr = pc.replace_substring(arr, char, escaped)
        arrays.append(arr)
    end = "".join("\t" + _text_field(v) for v in tail) + "\n"
    kind = arrays[0].type  # the separators' type must be the values' (large_string or not)
    lines = pc.binary_join_element_wise(
        *arrays,
        pa.scalar("\t").cast(kind),
        null_handling="replace",
        null_replacement="\\N",
    )
    lines = pc.binary_join_element_wise(lines, pa.scalar(end).cast(kind), pa.scalar("").cast(kind))
    _, offsets, text = lines.buffers()
    large = pa.types.is_large_string(lines.type) or pa.types.is_large_binary(lines.type)
    offsets = memoryview(offsets).cast("q" if large else "i")
    return text[offsets[lines.offset] : offsets[lines.offset + len(lines)]].to_pybytes()


def parse_copy_csv(data: bytes, columns: Sequence[str], *, arrow: bool = False) -> pd.DataFrame:
    """COPY ... CSV output -> object frame of str/None (unquoted empty = NULL, "" = empty);
    ``arrow``: Arrow-backed string columns instead (no Python str per value: ~5x less memory)."""
    if not data:
        return text_frame(columns, {c: [] for c in columns})
    names = [f"c{i}" for i in range(len(columns))]
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        # ignore_empty_lines=False: with one column, a NULL is an empty line (else lost)
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            # large_string: what the engine's TEXT holds (pandas would cast each column)
            column_types=dict.fromkeys(names, pa.large_string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return arrow_frame(table, columns, arrow=arrow)
