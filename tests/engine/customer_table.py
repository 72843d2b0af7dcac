"""The customer table the connector tests load and read: its DDL on PostgreSQL or SQLite,
its entity, rows to load, and small load / extract helpers."""

from __future__ import annotations

import pandas as pd

from runs.engine.connectors.base import text_frame
from runs.engine.snapshot import EntitySpec, FieldSpec

WEIRD = 'weird "name"'


def target_ddl(kind: str) -> str:
    key = "id serial PRIMARY KEY" if kind == "postgresql" else "id INTEGER PRIMARY KEY"
    return (
        f"CREATE TABLE customer ({key}, ext varchar(20) NOT NULL UNIQUE, "
        f'name varchar(10) NOT NULL, age integer, born date, "weird ""name""" text)'
    )


def customer_entity(mode: str = "upsert") -> EntitySpec:
    fields = tuple(FieldSpec(target=c, sources=(c,)) for c in ("ext", "name", "age", WEIRD))
    return EntitySpec(
        name="customer",
        source_table="src",
        target_table="customer",
        source_key=("ext",),
        target_key="id",
        external_id="ext",
        load_mode=mode,
        fields=fields,
    )


def customer_rows(n: int, *, start: int = 0, name: str = "n") -> pd.DataFrame:
    ids = [f"E{i:05d}" for i in range(start, start + n)]
    return text_frame(
        ["ext", "name", "age", WEIRD],
        {
            "ext": ids,
            "name": [f"{name}{i}" for i in range(n)],
            "age": [str(i % 90) if i % 7 else None for i in range(n)],
            WEIRD: ["" if i % 5 == 0 else f"w{i}" for i in range(n)],
        },
    )


def load(conn, rows, *, run="run-1", batch="b1", mode="upsert"):
    return conn.load_batch(
        entity=customer_entity(mode),
        rows=rows,
        source_keys=list(rows["ext"]),
        run_id=run,
        batch_id=batch,
        namespace="plan",
        result_meta={"note": batch},
    )


def extract_all(conn, table, columns, key_cols, ranges):
    frames = [conn.extract(table, columns, key_cols, r) for r in ranges]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
