"""Staging of uploaded files (runs/engine/files.py) into real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import openpyxl
import psycopg2
import pytest

from runs.engine.errors import StagingError
from runs.engine.files import read_file, sniff_file, stage_file

PG_URL = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:54329/postgres")


def _pg_admin(statement: str) -> None:
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@dataclass
class Dest:
    """A staging destination plus raw SQL access to check what landed in it."""

    kind: str
    url: str

    def query(self, statement: str, args: tuple = ()) -> list[tuple]:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite://"))
            try:
                return conn.execute(statement, args).fetchall()
            finally:
                conn.close()
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args or None)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def rows(self, table: str) -> list[tuple]:
        return self.query(f'SELECT * FROM "{table}" ORDER BY _row')

    def columns(self, table: str) -> list[str]:
        if self.kind == "sqlite":
            return [r[1] for r in self.query(f'PRAGMA table_info("{table}")')]
        return [
            r[0]
            for r in self.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
        ]

    def exists(self, table: str) -> bool:
        if self.kind == "sqlite":
            return bool(self.query("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)))
        return self.query("SELECT to_regclass(%s)", (f'"{table}"',))[0][0] is not None


@pytest.fixture
def pg_dest() -> Iterator[Dest]:
    """A throwaway PostgreSQL database; an unreachable server fails the test."""
    name = f"files_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield Dest("postgresql", urlsplit(PG_URL)._replace(path=f"/{name}").geturl())
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def dest(request: pytest.FixtureRequest, tmp_path: Path) -> Dest:
    """Each test runs once against SQLite (sqlite:/// URL) and once against PostgreSQL."""
    if request.param == "sqlite":
        return Dest("sqlite", f"sqlite://{tmp_path / 'staging.sqlite3'}")
    return request.getfixturevalue("pg_dest")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- good files


def test_stage_file_csv_keeps_unicode_nulls_and_quoted_values(dest: Dest, tmp_path: Path):
    data = (
        'id,name,city,note\n1,Zoé,東京,"has, comma"\n2,,Besançon,"two\nlines"\n\n3, Ann ,😀,""\n'
    ).encode()
    path = _write(tmp_path / "people.csv", data)

    report = stage_file(path, dest=dest.url, table="people")

    assert (report.rows, report.columns, report.format) == (
        3,
        ["id", "name", "city", "note"],
        "csv",
    )
    assert (report.encoding, report.delimiter) == ("utf-8", ",")
    assert dest.columns("people") == ["_row", "id", "name", "city", "note"]
    assert dest.rows("people") == [
        (1, "1", "Zoé", "東京", "has, comma"),
        (2, "2", None, "Besançon", "two\nlines"),
        (3, "3", " Ann ", "😀", None),
    ]


def test_stage_file_latin1_semicolon_csv_detected(dest: Dest, tmp_path: Path):
    text = "id;nom;ville\n1;Zoé;Besançon\n2;Renée;Orléans\n3;Jürgen;Köln\n"
    path = _write(tmp_path / "villes.csv", text.encode("latin-1"))

    report = stage_file(path, dest=dest.url, table="villes")

    assert report.encoding in ("cp1252", "latin_1")
    assert report.delimiter == ";"
    assert dest.rows("villes") == [
        (1, "1", "Zoé", "Besançon"),
        (2, "2", "Renée", "Orléans"),
        (3, "3", "Jürgen", "Köln"),
    ]


def test_stage_file_csv_with_bom_has_clean_first_header(dest: Dest, tmp_path: Path):
    path = _write(tmp_path / "bom.csv", b"\xef\xbb\xbfcode|label\r\nA|\xc3\xa9t\xc3\xa9\r\n")

    report = stage_file(path, dest=dest.url, table="bom")

    assert (report.encoding, report.delimiter, report.columns) == (
        "utf-8-sig",
        "|",
        ["code", "label"],
    )
    assert dest.rows("bom") == [(1, "A", "été")]


def test_stage_file_json_array_keeps_nested_values_as_json_text(dest: Dest, tmp_path: Path):
    records = (
        '[{"id": 1, "price": 2.50, "tags": ["a", "é"], "ok": true, "note": ""},'
        ' {"id": 2, "price": null, "meta": {"k": null}}]'
    )
    path = _write(tmp_path / "items.json", records.encode())

    report = stage_file(path, dest=dest.url, table="items")

    assert report.columns == ["id", "price", "tags", "ok", "note", "meta"]
    assert dest.rows("items") == [
        (1, "1", "2.50", '["a", "é"]', "true", "", None),
        (2, "2", None, None, None, None, '{"k": null}'),
    ]


def test_stage_file_json_lines(dest: Dest, tmp_path: Path):
    path = _write(
        tmp_path / "events.jsonl", b'{"kind": "a", "n": 1}\n\n{"kind": "\\u00e9", "n": -2}\r\n'
    )

    report = stage_file(path, dest=dest.url, table="events")

    assert (report.rows, report.format) == (2, "json")
    assert dest.rows("events") == [(1, "a", "1"), (2, "é", "-2")]


def test_stage_file_xml_records_attributes_and_children(dest: Dest, tmp_path: Path):
    xml = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<customers xmlns="urn:x">\n'
        '  <customer id="1"><name>Zoé</name><city/></customer>\n'
        '  <customer id="2"><name>Ann</name><city>Köln</city>'
        "<address><street>Main</street></address></customer>\n"
        "</customers>\n"
    ).encode("latin-1")
    path = _write(tmp_path / "customers.xml", xml)

    report = stage_file(path, dest=dest.url, table="customers")

    assert (report.format, report.encoding) == ("xml", "ISO-8859-1")
    assert report.columns == ["id", "name", "city", "address"]
    assert dest.rows("customers") == [
        (1, "1", "Zoé", None, None),
        (2, "2", "Ann", "Köln", '<ns0:street xmlns:ns0="urn:x">Main</ns0:street>'),
    ]


def _workbook(path: Path, rows: list[list], title: str = "Data") -> Path:
    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["not", "this", "one"])
    sheet = book.create_sheet(title)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_stage_file_xlsx_named_sheet_values_as_text(dest: Dest, tmp_path: Path):
    path = _workbook(
        tmp_path / "book.xlsx",
        [
            ["id", " name ", "born", "score", "active"],
            [1, "東京", dt.date(2024, 1, 2), 2.5, True],
            [None, None, None, None, None],
            [2, None, dt.datetime(2024, 5, 6, 7, 8, 9), 3.0, False],
        ],
    )
    before = path.read_bytes()

    report = stage_file(path, dest=dest.url, table="book", sheet="Data")

    assert (report.rows, report.columns) == (2, ["id", "name", "born", "score", "active"])
    assert dest.rows("book") == [
        (1, "1", "東京", "2024-01-02", "2.5", "true"),
        (2, "2", None, "2024-05-06 07:08:09", "3", "false"),
    ]
    assert path.read_bytes() == before


def test_sniff_file_reports_profile_and_limits_preview(tmp_path: Path):
    lines = "\n".join(["a\tb"] + [f"{i}\tv{i}" for i in range(30)]) + "\n"
    path = _write(tmp_path / "data.tsv", lines.encode())

    profile = sniff_file(path, preview_rows=2)

    assert (profile.format, profile.encoding, profile.delimiter) == ("csv", "utf-8", "\t")
    assert (profile.columns, profile.row_count) == (["a", "b"], 30)
    assert profile.preview == [{"a": "0", "b": "v0"}, {"a": "1", "b": "v1"}]


def test_read_file_returns_all_text_object_frame(tmp_path: Path):
    path = _write(tmp_path / "n.csv", b"x,y\n1,2.5\n,3\n")

    frame = read_file(path)

    assert [str(t) for t in frame.dtypes] == ["object", "object"]
    assert frame.to_dict("records") == [{"x": "1", "y": "2.5"}, {"x": None, "y": "3"}]


def test_stage_file_replace_swaps_existing_table(dest: Dest, tmp_path: Path):
    stage_file(_write(tmp_path / "a.csv", b"k\n1\n2\n"), dest=dest.url, table="t")

    report = stage_file(
        _write(tmp_path / "b.csv", b"k,v\n9,x\n"), dest=dest.url, table="t", replace=True
    )

    assert report.rows == 1
    assert dest.rows("t") == [(1, "9", "x")]


def test_stage_file_existing_table_without_replace_is_refused(dest: Dest, tmp_path: Path):
    path = _write(tmp_path / "a.csv", b"k\n1\n")
    stage_file(path, dest=dest.url, table="t")

    with pytest.raises(StagingError, match="table 't' already exists"):
        stage_file(_write(tmp_path / "b.csv", b"k\n7\n8\n"), dest=dest.url, table="t")

    assert dest.rows("t") == [(1, "1")]


# --------------------------------------------------------------------------- bad files


def _csv_with_long_row_57() -> tuple[bytes, str]:
    header = b"a,b,c,d,e,f,g,h\n"
    rows = [f"{i},Zoé,x,x,x,x,x,x\n".encode() for i in range(1, 57)]
    data = header + b"".join(rows) + b"57,1,2,3,4,5,6,7,8\n58,x,x,x,x,x,x,x\n"
    offset = len(header) + sum(map(len, rows))
    return data, f"line 58 (data row 57), byte {offset}: 9 fields, header has 8"


def _utf8_with_ff_at_1042() -> bytes:
    data = b"id,name\n" + b"".join(b"%d,Zo\xc3\xa9\n" % i for i in range(100))
    data = data[: data.rindex(b"\n", 0, 1030) + 1]
    return data + b"9," + b"x" * (1042 - len(data) - 2) + b"\xff\n"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<rows><row><a>&lol9;</a></row></rows>
"""
_JSON_BAD = '[\n  {"a": "é"},\n  {"a": 2,, "b": 1}\n]\n'

BAD_FILES = {
    "csv_extra_fields": ("wide.csv", _csv_with_long_row_57()[0], {}, _csv_with_long_row_57()[1]),
    "csv_bad_byte_chosen": (
        "b.csv",
        _utf8_with_ff_at_1042(),
        {"encoding": "utf-8"},
        "byte 1042 (line 102): cannot decode 0xff as utf-8",
    ),
    "csv_bad_byte_detected": (
        "b.csv",
        _utf8_with_ff_at_1042(),
        {},
        "byte 1042 (line 102): cannot decode 0xff as utf-8",
    ),
    "csv_bad_quote": (
        "q.csv",
        b'a,b\n1,2\n3,"x"y\n',
        {},
        "line 3 (data row 2), byte 8: ',' expected after '\"'",
    ),
    "csv_bad_quote_after_a_multiline_value": (
        "m.csv",
        b'a,b\n1,"multi\nline"\n3,"x"y\n',
        {},
        "line 4 (data row 2), byte 19: ',' expected after '\"'",
    ),
    "csv_empty_header": ("h.csv", b"id, ,name\n1,2,3\n", {}, "header column 2 has an empty name"),
    "csv_duplicate_header": (
        "d.csv",
        b"id,Name,name \n1,2,3\n",
        {},
        "header column 3 'name' duplicates column 2",
    ),
    "csv_reserved_header": ("r.csv", b"_row,x\n1,2\n", {}, "header column 1 is named '_row'"),
    "csv_empty": ("e.csv", b"", {}, "the file is empty"),
    "json_syntax": (
        "s.json",
        _JSON_BAD.encode(),
        {},
        "line 3 column 11 (byte 27): Expecting property name",
    ),
    "jsonl_syntax": (
        "s.jsonl",
        b'{"a": 1}\n{"a": 2\n',
        {},
        "line 2 column 8 (byte 16): Expecting ',' delimiter",
    ),
    "json_not_objects": (
        "n.json",
        b'[{"a": 1}, [1, 2]]',
        {},
        "record 2: expected an object, got list",
    ),
    "xml_syntax": (
        "x.xml",
        b"<rows>\n<row><a>1</a></row>\n<row><a>2</b></row>\n</rows>",
        {},
        "line 3 column 12: mismatched tag",
    ),
    "xml_billion_laughs": (
        "lol.xml",
        BILLION_LAUGHS,
        {},
        "line 2: DOCTYPE/ENTITY declarations are not allowed",
    ),
    "xml_external_entity": (
        "xxe.xml",
        b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r><row><a>&e;</a></row></r>',
        {},
        "line 1: DOCTYPE/ENTITY declarations are not allowed",
    ),
    "xlsx_not_zip": (
        "fake.xlsx",
        b"id,name\n1,x\n",
        {},
        "not an XLSX workbook: the file is not a zip archive",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_stage_file_bad_file_rejected_with_position_nothing_staged(
    case: tuple, dest: Dest, tmp_path: Path
):
    name, data, options, expected = case
    path = _write(tmp_path / name, data)

    with pytest.raises(StagingError) as caught:
        stage_file(path, dest=dest.url, table="upload", **options)

    assert str(caught.value).startswith(expected), str(caught.value)
    assert not dest.exists("upload")
    assert path.read_bytes() == data


def test_stage_file_bad_file_with_replace_keeps_old_table(dest: Dest, tmp_path: Path):
    stage_file(_write(tmp_path / "ok.csv", b"k\n1\n"), dest=dest.url, table="t")
    bad, _ = _csv_with_long_row_57()

    with pytest.raises(StagingError, match="row 57"):
        stage_file(_write(tmp_path / "bad.csv", bad), dest=dest.url, table="t", replace=True)

    assert dest.rows("t") == [(1, "1")]


def test_stage_file_postgres_failure_inside_transaction_rolls_back_drop(
    pg_dest: Dest, tmp_path: Path
):
    stage_file(_write(tmp_path / "ok.csv", b"k\n1\n"), dest=pg_dest.url, table="t")
    pg_dest.query("""CREATE FUNCTION refuse() RETURNS event_trigger LANGUAGE plpgsql AS
                     $$ BEGIN RAISE EXCEPTION 'creation refused'; END $$""")
    pg_dest.query(
        "CREATE EVENT TRIGGER refuse ON ddl_command_end WHEN TAG IN ('CREATE TABLE')"
        " EXECUTE FUNCTION refuse()"
    )

    with pytest.raises(StagingError, match="creation refused"):
        stage_file(
            _write(tmp_path / "new.csv", b"k\n5\n"), dest=pg_dest.url, table="t", replace=True
        )

    assert pg_dest.rows("t") == [(1, "1")]


def test_stage_file_postgres_rejects_nul_and_overlong_names(pg_dest: Dest, tmp_path: Path):
    nul = _write(tmp_path / "nul.csv", b"a,b\n1,2\n3,x\x00y\n")
    long = _write(tmp_path / "long.csv", ("x" * 64 + ",b\n1,2\n").encode())

    with pytest.raises(StagingError, match="row 2 column 'b': contains a NUL"):
        stage_file(nul, dest=pg_dest.url, table="t")
    with pytest.raises(StagingError, match="header column 1 .*at most 63 bytes"):
        stage_file(long, dest=pg_dest.url, table="t")

    assert not pg_dest.exists("t")


@pytest.mark.parametrize("table", ["1abc", "a-b", "x; DROP TABLE y", "a" * 64, "t\n", ""])
def test_stage_file_bad_table_name_rejected(table: str, dest: Dest, tmp_path: Path):
    path = _write(tmp_path / "ok.csv", b"k\n1\n")

    with pytest.raises(StagingError, match="invalid table name"):
        stage_file(path, dest=dest.url, table=table)

    assert dest.query(
        "SELECT count(*) FROM sqlite_master"
        if dest.kind == "sqlite"
        else "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    ) == [(0,)]


def test_sniff_file_missing_sheet_names_the_sheets(tmp_path: Path):
    path = _workbook(tmp_path / "book.xlsx", [["a"], [1]])

    with pytest.raises(
        StagingError, match="no sheet named 'Nope'; the workbook has 'Cover', 'Data'"
    ):
        sniff_file(path, sheet="Nope")


# --------------------------------------------------------------------------- volume


def test_stage_file_postgres_200k_rows(pg_dest: Dest, tmp_path: Path):
    path = tmp_path / "big.csv"
    lines = [
        f"{i},Name {i} Zoé,user{i}@example.com,Besançon,{i * 1.5:.2f},2024-01-02,,Y\n"
        for i in range(200_000)
    ]
    path.write_text("id,name,email,city,amount,created,note,flag\n" + "".join(lines))

    report = stage_file(path, dest=pg_dest.url, table="big")

    assert report.rows == 200_000
    assert pg_dest.query("SELECT count(*), max(_row), count(note) FROM big") == [
        (200_000, 200_000, 0)
    ]
    assert pg_dest.query("SELECT id, name FROM big WHERE _row = 200000") == [
        ("199999", "Name 199999 Zoé")
    ]


# --------------------------------------------------------------------------- options


def test_read_file_explicit_format_encoding_delimiter_override_detection(tmp_path: Path):
    path = _write(tmp_path / "export.dat", "a,b|c\nx,1|é\n".encode("latin-1"))

    frame = read_file(path, fmt="csv", encoding="latin-1", delimiter="|")

    assert frame.to_dict("records") == [{"a,b": "x,1", "c": "é"}]


def test_read_file_unknown_extension_asks_for_a_format(tmp_path: Path):
    path = _write(tmp_path / "export.dat", b"a\n1\n")

    with pytest.raises(StagingError, match="cannot tell the format of 'export.dat'"):
        read_file(path)


def test_read_file_single_pretty_printed_json_object_is_one_record(tmp_path: Path):
    path = _write(tmp_path / "one.json", b'{\n  "a": 1,\n  "b": [true, null]\n}\n')

    frame = read_file(path)

    assert frame.to_dict("records") == [{"a": "1", "b": "[true, null]"}]
