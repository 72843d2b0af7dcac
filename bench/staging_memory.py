"""Peak memory of staging one large upload, as the Celery task does it (not part of the suite).

    PYTHONPATH=. .venv/bin/python bench/staging_memory.py csv 200   # or: json 200

Writes a file of about N MB under .data/bench/ (kept for re-runs), stages it with
``runs.engine.files.stage_file`` into a scratch SQLite database and prints the rows, the time
and the process's peak RSS (ru_maxrss) after the imports and after staging.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

ROW = "{n},Name {n} Zoé,user{n}@example.com,Besançon,{n}.25,2024-01-02,some note text here\n"
RECORD = (
    '{{"id": {n}, "name": "Name {n} Zoé", "email": "user{n}@example.com", '
    '"city": "Besançon", "amount": {n}.25, "note": "some note text here"}}'
)


def _write(path: Path, fmt: str, megabytes: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("id,name,email,city,amount,created,note\n" if fmt == "csv" else "[")
        n = 0
        while out.tell() < megabytes * 2**20:
            for _ in range(10_000):
                n += 1
                if fmt == "csv":
                    out.write(ROW.format(n=n))
                else:
                    out.write(("," if n > 1 else "") + RECORD.format(n=n) + "\n")
        if fmt == "json":
            out.write("]")


def main(fmt: str = "csv", megabytes: str = "200") -> None:
    folder = Path(".data/bench")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"staging-{megabytes}mb.{fmt}"
    if not path.exists():
        _write(path, fmt, int(megabytes))
    from runs.engine.files import stage_file

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dest = folder / "staging-memory.sqlite3"
    dest.unlink(missing_ok=True)
    started = time.monotonic()
    report = stage_file(path, dest=str(dest), table="big", preview_rows=10)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{fmt}: {path.stat().st_size / 2**20:.0f} MB, {report.rows:,} rows in "
        f"{time.monotonic() - started:.0f} s; RSS after imports {base / 1024:.0f} MB, "
        f"peak {peak / 1024:.0f} MB (+{(peak - base) / 1024:.0f} MB)"
    )
    dest.unlink(missing_ok=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
