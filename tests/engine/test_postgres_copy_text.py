"""PostgreSQL: a batch goes into mp_load in COPY's text format (values between 0x1F, NULL as
``\\N``) when no value needs an escape there, else in the text format with its escapes (it
went as all-quoted CSV before, which the server reads for ~1.4x the CPU); both store every
value as it was meant (NULL and empty text apart, blanks kept)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.connectors.postgres.operations import (
    COPY_TEXT_OPTIONS,
    copy_text_bytes,
    frame_arrays,
    load_copy,
)
from runs.engine.snapshot import EntitySpec, FieldSpec

PLAIN = ["a", "", None, " blanks ", "tab\there", "comma, too", "ünïcode €", "N"]
# each needs an escape the unescaped text format would not get: the batch goes escaped
SPECIAL = ["back\\slash", "\\N", "\\.", 'say "hi"', "unit\x1fsep", "line\nfeed", "carriage\rret"]


def test_copy_text_bytes_writes_plain_values_and_refuses_any_needing_an_escape():
    plain = pa.array(PLAIN, type=pa.string())
    assert copy_text_bytes([plain, plain]) == b"".join(
        b"\x1f".join([b"\\N" if v is None else v.encode()] * 2) + b"\n" for v in PLAIN
    )
    for value in SPECIAL:
        assert copy_text_bytes([plain, pa.array(PLAIN[:-1] + [value])]) is None, value


def _escaped(value: str | None) -> bytes:
    if value is None:
        return b"\\N"
    for char, escape in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        value = value.replace(char, escape)
    return value.encode()


def test_load_copy_sends_a_batch_needing_escapes_in_the_text_format_not_csv():
    plain = pa.array(PLAIN, type=pa.string())
    assert load_copy([plain, plain])[0] == COPY_TEXT_OPTIONS
    for value in SPECIAL:
        for kind in (pa.string(), pa.large_string()):  # pandas' Arrow strings are large
            other = PLAIN[:-1] + [value]
            options, data = load_copy([plain, pa.array(other, type=kind)])
            assert options == "FORMAT text", value
            assert data == b"".join(
                _escaped(a) + b"\t" + _escaped(b) + b"\n" for a, b in zip(PLAIN, other, strict=True)
            )


@pytest.fixture
def conn(tpg, pg_params):
    tpg.script("CREATE TABLE t (id bigserial PRIMARY KEY, ext text UNIQUE NOT NULL, v text)")
    connector = PostgresConnector(pg_params)
    yield connector
    connector.close()


@pytest.mark.parametrize("arrow", [False, True], ids=["object", "arrow"])
@pytest.mark.parametrize("values", [PLAIN, PLAIN + SPECIAL], ids=["text", "escaped"])
def test_pg_load_stores_every_value_as_meant_in_either_format(tpg, conn, values, arrow):
    ext = [f"k{i}" for i in range(len(values))]
    rows = text_frame(["ext", "v"], {"ext": ext, "v": values})
    if arrow:  # the pipeline's frames: pandas' Arrow strings (large_string)
        rows = rows.astype("string[pyarrow]")
    assert (copy_text_bytes(frame_arrays(rows)) is None) == (values is not PLAIN)
    entity = EntitySpec(
        name="t",
        source_table="src",
        target_table="t",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode="upsert",
        fields=(FieldSpec(target="ext", sources=("ext",)), FieldSpec(target="v", sources=("v",))),
    )
    result = conn.load_batch(
        entity=entity,
        rows=rows,
        source_keys=ext,
        run_id="r",
        batch_id="b1",
        namespace="plan",
        result_meta={},
    )
    assert (result.inserted, result.coerced) == (len(values), 0)
    assert dict(tpg.execute("SELECT ext, v FROM t")) == dict(zip(ext, values, strict=True))
