"""CDC apply rate and lag under a steady source write load (not a test).

Usage:
    python -m bench.cdc_rate [--pg postgresql://postgres@127.0.0.1:5432/postgres]
                             [--rate 1000] [--seconds 20] [--rows 20000] [--group-size 5000]

Without ``--pg`` a private PostgreSQL cluster (wal_level=logical) is started in a temporary
directory and stopped afterwards. Builds a source table of ``--rows`` rows and an empty
target, full-loads it from the slot's exported snapshot, then a separate process writes
``--rate`` changes per second (transactions of 5: half updates, a quarter inserts, a quarter
deletes) for ``--seconds`` while this process streams and applies them through the engine
(transform, ledger, checkpoint). Prints events applied per second, lag (commit to applied, in
seconds: p50/p95/max; WAL bytes: max) and the drain time after the writer stops, and checks
the target against the transformed source.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2

from runs.engine.batch import execute_batch
from runs.engine.cdc.apply import Applier, Counters
from runs.engine.cdc.slot import SnapshotSource, slot_create, slot_drop
from runs.engine.cdc.sync import stream_changes
from runs.engine.connectors.postgres import PostgresConnector
from runs.engine.rollback import rollback_run
from runs.engine.snapshot import EntitySpec, FieldSpec, PlanSnapshot, RuleStepSpec

SRC, TGT, SLOT = "mp_cdc_bench_src", "mp_cdc_bench_tgt", "mp_cdc_bench"
ENTITY = EntitySpec(
    name="item",
    source_table="item",
    target_table="item",
    source_key=("id",),
    target_key="id",
    external_id="ext",
    load_mode="upsert",
    delete_policy="delete",
    fields=(
        FieldSpec("ext", ("id",)),
        FieldSpec("name", ("name",), (RuleStepSpec("trim"), RuleStepSpec("upper"))),
        FieldSpec("amount", ("amount",)),
    ),
)


def _admin(params: dict, statement: str) -> None:
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def _exec(params: dict, statement: str, args: tuple | None = None) -> list:
    conn = psycopg2.connect(**params)
    with conn, conn.cursor() as cur:
        cur.execute(statement, args)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def _setup(admin: dict, rows: int) -> tuple[dict, dict]:
    if _exists(admin, SRC):
        slot_drop({**admin, "dbname": SRC}, SLOT)
    for name in (SRC, TGT):
        _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(admin, f'CREATE DATABASE "{name}"')
    src, tgt = {**admin, "dbname": SRC}, {**admin, "dbname": TGT}
    _exec(src, "CREATE TABLE item (id integer PRIMARY KEY, name text, amount numeric(12,2))")
    _exec(
        src,
        "INSERT INTO item SELECT g, ' item ' || g, g * 0.5 FROM generate_series(1, %s) g",
        (rows,),
    )
    _exec(
        tgt,
        "CREATE TABLE item (id serial PRIMARY KEY, ext text NOT NULL UNIQUE, name text, "
        "amount numeric(12,2))",
    )
    return src, tgt


def _exists(admin: dict, name: str) -> bool:
    return bool(_exec(admin, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def _writer(params: dict, rate: int, seconds: float, rows: int, out: str) -> None:
    """Paced changes: ``rate`` per second in transactions of 5 (runs in its own process)."""
    rnd, conn = random.Random(1), psycopg2.connect(**params)
    live, next_id, done, per_tx = list(range(1, rows + 1)), rows + 1, 0, 5
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        if done >= due:
            time.sleep(0.001)
            continue
        with conn, conn.cursor() as cur:
            for _ in range(per_tx):
                r = rnd.random()
                if r < 0.25:
                    cur.execute("INSERT INTO item VALUES (%s, %s, 1)", (next_id, f"new {next_id}"))
                    live.append(next_id)
                    next_id += 1
                elif r < 0.5 and live:
                    cur.execute(
                        "DELETE FROM item WHERE id = %s", (live.pop(rnd.randrange(len(live))),)
                    )
                else:
                    cur.execute(
                        "UPDATE item SET amount = amount + 1, name = %s WHERE id = %s",
                        (f" upd {done} ", rnd.choice(live)),
                    )
        done += per_tx
    Path(out).write_text(json.dumps({"changes": done, "seconds": time.monotonic() - start}))
    conn.close()


def run(admin: dict, rate: int, seconds: float, rows: int, group_size: int) -> dict:
    """One measurement; returns the figures (and leaves the databases for inspection)."""
    src, tgt = _setup(admin, rows)
    snapshot = PlanSnapshot(plan="cdc-bench", version=1, entities=(ENTITY,), batch_size=20_000)
    target = PostgresConnector(tgt)
    slot = slot_create(src, SLOT)
    source = SnapshotSource(src, slot.snapshot)
    started = time.monotonic()
    for i, key_range in enumerate(source.key_ranges("item", ["id"], snapshot.batch_size)):
        execute_batch(
            snapshot=snapshot,
            entity=ENTITY,
            key_range=key_range,
            source=source,
            target=target,
            run_id="bench",
            batch_id=f"item:{i}",
        )
    full_load_s = time.monotonic() - started
    source.close()
    slot.close()
    out = str(Path(tempfile.mkdtemp(prefix="mp-cdc-bench-")) / "writer.json")
    writer = multiprocessing.get_context("spawn").Process(
        target=_writer, args=(src, rate, seconds, rows, out)
    )
    lags, lag_bytes, applied_at = [], [], []
    writer.start()

    def on_group(result) -> None:
        applied_at.append((time.monotonic(), result.counters.total_events))

    def on_progress(progress) -> None:
        lags.append(progress.lag_seconds)
        lag_bytes.append(progress.lag_bytes)

    writer_done: list[float] = []

    def stop() -> bool:
        if not writer.is_alive() and not writer_done:
            writer_done.append(time.monotonic())
        return bool(writer_done)

    applier = Applier(
        snapshot=snapshot, source=PostgresConnector(src), target=target, run_id="bench", slot=SLOT
    )
    progress = stream_changes(
        params=src,
        slot=SLOT,
        start_lsn=slot.lsn,
        counters=Counters(),
        applier=applier,
        stop_requested=stop,
        on_group=on_group,
        on_progress=on_progress,
        group_size=group_size,
        poll_seconds=0.2,
    )
    drained_at = time.monotonic()
    slot_drop(src, SLOT)
    wrote = json.loads(Path(out).read_text())
    first, last = applied_at[0], applied_at[-1]
    window = max(last[0] - first[0], 1e-3)
    oracle = _exec(src, "SELECT count(*) FROM item")[0][0]
    target_rows = _exec(tgt, "SELECT count(*), count(DISTINCT ext) FROM item")[0]
    mismatched = _exec(tgt, "SELECT count(*) FROM item WHERE name <> upper(trim(name))")[0][0]
    figures = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_rows": rows,
        "full_load_s": round(full_load_s, 2),
        "target_rate": rate,
        "source_changes": wrote["changes"],
        "source_rate": round(wrote["changes"] / wrote["seconds"], 1),
        "events_applied": progress.counters.total_events,
        "apply_rate": round((last[1] - first[1]) / window, 1),
        "groups": len(applied_at),
        "lag_s_p50": round(statistics.median(lags), 3) if lags else 0,
        "lag_s_p95": round(_p95(lags), 3),
        "lag_s_max": round(max(lags, default=0), 3),
        "lag_bytes_max": max(lag_bytes, default=0),
        "drain_s": round(drained_at - writer_done[0], 2),
        "target_equals_source_count": target_rows[0] == oracle == target_rows[1],
        "transform_mismatches": mismatched,
    }
    started = time.monotonic()
    rollback_run(target=target, run_id="bench")
    figures["rollback_s"] = round(time.monotonic() - started, 2)
    figures["rolled_back_rows"] = _exec(tgt, "SELECT count(*) FROM item")[0][0]
    return figures


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", help="admin DSN of a server with wal_level=logical")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--group-size", type=int, default=5_000)
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.pg:
            u = urlsplit(args.pg)
            admin = {
                "host": u.hostname,
                "port": u.port or 5432,
                "user": u.username or "postgres",
                "dbname": u.path.lstrip("/") or "postgres",
            }
            if u.password:
                admin["password"] = u.password
        else:
            from tests.support.pg_cluster import temporary_cluster

            admin = stack.enter_context(
                temporary_cluster(Path(tempfile.gettempdir()), "-c wal_level=logical")
            )
        figures = run(admin, args.rate, args.seconds, args.rows, args.group_size)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
