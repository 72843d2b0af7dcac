"""Processes the CDC tests run beside the test: a source writer (inserts, updates, deletes in
small transactions, a bounded number of them) and a streaming worker the test may kill -9.

    python -m tests.support.cdc_load write <dsn-json> <ops> <seed> <first-new-id> [<pause-s>]
    python -m tests.support.cdc_load stream <config-json>
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import psycopg2


def write(params: dict, ops: int, seed: int, next_id: int, pause: float = 0.002) -> None:
    """``ops`` random changes to table src, one or a few per transaction."""
    rnd = random.Random(seed)
    conn = psycopg2.connect(**params)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM src")
        ids = [r[0] for r in cur.fetchall()]
    conn.commit()
    done = 0
    while done < ops:
        with conn, conn.cursor() as cur:
            for _ in range(rnd.randint(1, 4)):
                kind = rnd.random()
                if kind < 0.35 or not ids:
                    cur.execute(
                        "INSERT INTO src VALUES (%s, %s, %s)",
                        (next_id, f"new {next_id}", rnd.randint(0, 99999) / 100),
                    )
                    ids.append(next_id)
                    next_id += 1
                elif kind < 0.8:
                    key = rnd.choice(ids)
                    cur.execute(
                        "UPDATE src SET name = %s, amount = amount + 1 WHERE id = %s",
                        (f"upd {done} o'k", key),
                    )
                else:
                    key = ids.pop(rnd.randrange(len(ids)))
                    cur.execute("DELETE FROM src WHERE id = %s", (key,))
                done += 1
        time.sleep(pause)  # spread the load over the full load and the stream (not asserted)
    conn.close()


def stream(config: dict) -> None:
    """Stream the slot into the target until the stop file exists and the stream is drained."""
    from runs.engine.cdc.apply import Applier, Counters, checkpoint_read
    from runs.engine.cdc.sync import stream_changes
    from runs.engine.connectors.postgres import PostgresConnector
    from runs.engine.snapshot import PlanSnapshot

    snapshot = PlanSnapshot.from_dict(config["snapshot"])
    source = PostgresConnector(config["source"])
    target = PostgresConnector(config["target"])
    found = checkpoint_read(target, config["slot"])
    lsn, counters = found if found else (config["start_lsn"], Counters())
    applier = Applier(
        snapshot=snapshot,
        source=source,
        target=target,
        run_id=config["run_id"],
        slot=config["slot"],
    )
    progress_file = Path(config["progress"])
    stream_changes(
        params=config["source"],
        slot=config["slot"],
        start_lsn=lsn,
        counters=counters,
        applier=applier,
        stop_requested=Path(config["stop"]).exists,
        on_group=lambda r: progress_file.write_text(str(r.counters.total_events)),
        on_progress=lambda p: None,
        group_size=config.get("group_size", 50),
        poll_seconds=0.2,
    )


if __name__ == "__main__":
    if sys.argv[1] == "write":
        pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.002
        write(json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), pause)
    else:
        stream(json.loads(sys.argv[2]))
