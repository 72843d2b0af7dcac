"""A private, short-lived PostgreSQL cluster with its own settings (e.g. wal_level=replica)
for tests about what a differently configured server says. Loopback only, trust auth."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql/*/bin")
    return str(Path(found[-1]).parent)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def temporary_cluster(tmp_path: Path, options: str = "") -> Iterator[dict[str, Any]]:
    """initdb + start a cluster with ``options`` (postgres -c flags); yields connect params."""
    del tmp_path  # the cluster lives where the postgres user may write
    work = Path(tempfile.mkdtemp(prefix="mp-test-pgc."))
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
    bindir, port, data = _bindir(), _free_port(), work / "pg"
    run = {"cwd": "/", "check": True, "capture_output": True}
    subprocess.run(
        _as_postgres([f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-N"]),
        **run,
    )
    opts = f"-h 127.0.0.1 -p {port} -k {work} -c fsync=off {options}"
    subprocess.run(
        _as_postgres(
            [
                f"{bindir}/pg_ctl",
                "-D",
                str(data),
                "-o",
                opts,
                "-w",
                "-l",
                str(work / "log"),
                "start",
            ]
        ),
        **run,
    )
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": "postgres"}
    finally:
        subprocess.run(
            _as_postgres([f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"]),
            cwd="/",
            capture_output=True,
        )
        shutil.rmtree(work, ignore_errors=True)
