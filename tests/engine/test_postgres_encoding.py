"""PostgreSQL: the connector speaks UTF8 to a database of another encoding, so what COPY
sends (UTF-8 bytes) is stored as the characters meant, and the ledger's hash is theirs."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from runs.engine.connectors.base import text_frame
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.hashing import row_hash
from runs.engine.snapshot import EntitySpec, FieldSpec
from tests.engine.conftest import _admin_exec, pg_admin_params


@pytest.fixture
def latin1():
    name = f"engine_latin1_{uuid.uuid4().hex[:12]}"
    _admin_exec(
        f"CREATE DATABASE \"{name}\" ENCODING 'LATIN1' TEMPLATE template0 "
        "LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    try:
        yield {**pg_admin_params(), "dbname": name}
    finally:
        _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_pg_a_latin1_database_stores_the_characters_meant_and_refuses_others(latin1):
    raw = psycopg2.connect(**latin1)
    raw.autocommit = True
    cur = raw.cursor()
    cur.execute("CREATE TABLE t (id serial PRIMARY KEY, ext text UNIQUE NOT NULL, v text)")
    connector = PostgresConnector(latin1)
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

    def load(values, batch):
        ext = [f"{batch}{i}" for i in range(len(values))]
        return connector.load_batch(
            entity=entity,
            rows=text_frame(["ext", "v"], {"ext": ext, "v": values}),
            source_keys=ext,
            run_id="r",
            batch_id=batch,
            namespace="plan",
            result_meta={},
        )

    try:
        values = ["é", "Größe", "naïve\tçà"]
        result = load(values, "a")
        assert (result.inserted, result.coerced) == (3, 0)
        raw.set_client_encoding("UTF8")
        cur.execute("SELECT v, length(v) FROM t ORDER BY ext")
        assert cur.fetchall() == [(v, len(v)) for v in values]
        cur.execute("SELECT row_hash FROM mp_ledger.written ORDER BY target_key::int")
        assert [r[0] for r in cur.fetchall()] == [
            row_hash([f"a{i}", v]) for i, v in enumerate(values)
        ]
        with pytest.raises(Exception, match="LATIN1"):  # no LATIN1 character: an error
            load(["😀"], "b")
    finally:
        connector.close()
        raw.close()
