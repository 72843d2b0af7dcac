"""PostgreSQL: a batch goes into mp_load in COPY's text format (values between 0x1F, NULL as
``\\N``) when no value needs an escape there, else as all-quoted CSV; both store every value
as it was meant (NULL and empty text apart, blanks kept)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.connectors.postgres.operations import copy_text_bytes, frame_arrays
from runs.engine.snapshot import EntitySpec, FieldSpec

PLAIN = ["a", "", None, " blanks ", "tab\there", "comma, too", "ünïcode €", "N"]
# each needs an escape (or quotes) the text format would not get: the batch goes as CSV
SPECIAL = ["back\\slash", "\\N", "\\.", 'say "hi"', "unit\x1fsep", "line\nfeed", "carriage\rret"]


def test_copy_text_bytes_writes_plain_values_and_refuses_any_needing_an_escape():
    plain = pa.array(PLAIN, type=pa.string())
    assert copy_text_bytes([plain, plain]) == b"".join(
        b"\x1f".join([b"\\N" if v is None else v.encode()] * 2) + b"\n" for v in PLAIN
    )
    for value in SPECIAL:
        assert copy_text_bytes([plain, pa.array(PLAIN[:-1] + [value])]) is None, value


@pytest.fixture
def conn(tpg, pg_params):
    tpg.script("CREATE TABLE t (id bigserial PRIMARY KEY, ext text UNIQUE NOT NULL, v text)")
    connector = PostgresConnector(pg_params)
    yield connector
    connector.close()


@pytest.mark.parametrize("values", [PLAIN, PLAIN + SPECIAL], ids=["text", "csv"])
def test_pg_load_stores_every_value_as_meant_in_either_format(tpg, conn, values):
    ext = [f"k{i}" for i in range(len(values))]
    rows = text_frame(["ext", "v"], {"ext": ext, "v": values})
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
