"""Where a system may point, and which systems point at the same place (identity).

The engine's guard (``runs.engine.guard``) does the checks; this module supplies what it needs
from settings: the allowed data directory (``MP_SYSTEMS_DIR``), the application's own files and
its own database server, which no system may ever use.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
from django.conf import settings

from migration_planner.lib.errors import ApplicationError
from runs.engine.errors import EngineError
from runs.engine.guard import (
    ServerIdentity,
    file_identity,
    file_path_check,
    server_check,
    server_identity,
)

from .enums import SystemEnvironment, SystemKind

FILE_KINDS = (SystemKind.SQLITE, SystemKind.FILE)
SERVER_KINDS = {SystemKind.POSTGRESQL: 5432, SystemKind.MYSQL: 3306}
# libpq 16 added require_auth; older ones get TLS so a cleartext password is never in the open.
LIBPQ_REQUIRE_AUTH = psycopg2.__libpq_version__ >= 160000


def allowed_root() -> str:
    """The directory SQLite and file systems must lie in (resolved)."""
    return str(Path(settings.MP_SYSTEMS_DIR).resolve())


def refused_paths() -> list[str]:
    """The application's own files: its SQLite database, key files and .env."""
    paths = [
        str(settings.FERNET_KEY_FILE),
        str(Path(settings.BASE_DIR) / ".env"),
        str(Path(settings.DATA_DIR) / "secret.key"),
    ]
    for db in settings.DATABASES.values():
        if db["ENGINE"].endswith("sqlite3") and db.get("NAME"):
            paths.append(str(db["NAME"]))
    return paths


def refused_servers() -> list[ServerIdentity]:
    """The application's own database(s) on a server."""
    found = []
    for db in settings.DATABASES.values():
        for marker, port in (("postgresql", 5432), ("mysql", 3306)):
            if marker in db["ENGINE"]:
                found.append(
                    server_identity(
                        str(db.get("HOST") or ""),
                        db.get("PORT") or None,
                        str(db.get("NAME") or ""),
                        default_port=port,
                    )
                )
                test_name = (db.get("TEST") or {}).get("NAME")
                if test_name:
                    found.append(
                        server_identity(
                            str(db.get("HOST") or ""),
                            db.get("PORT") or None,
                            test_name,
                            default_port=port,
                        )
                    )
    return found


def staging_root() -> str:
    """Where file systems' staging databases live (only the app writes there)."""
    return str((Path(settings.DATA_DIR) / "staging").resolve())


def guard_params(kind: str) -> dict:
    """The guard parameters the engine's ``connect`` takes for a system of ``kind``: a file
    system may only use the app's staging folder, a SQLite one MP_SYSTEMS_DIR."""
    if kind == SystemKind.FILE:
        return {"allowed_root": staging_root(), "refused_paths": refused_paths()}
    if kind in FILE_KINDS:
        return {"allowed_root": allowed_root(), "refused_paths": refused_paths()}
    params: dict = {"refused_servers": refused_servers()}
    if kind == SystemKind.POSTGRESQL:
        params |= pg_auth_params()
    return params


def pg_auth_params() -> dict:
    """libpq options that never answer a server's request for a cleartext password."""
    return {"require_auth": "!password"} if LIBPQ_REQUIRE_AUTH else {"sslmode": "require"}


def system_destination_check(system) -> None:
    """Raise ApplicationError (field path/host) when the system points where it may not."""
    try:
        if system.kind in FILE_KINDS and system.path:
            root = staging_root() if system.kind == SystemKind.FILE else allowed_root()
            file_path_check(system.path, allowed_root=root, refused=refused_paths())
        elif system.kind in SERVER_KINDS and system.host:
            server_check(
                system.host,
                system.port,
                system.database,
                default_port=SERVER_KINDS[system.kind],
                refused=refused_servers(),
            )
    except EngineError as exc:
        field = "path" if system.kind in FILE_KINDS else "host"
        raise ApplicationError(str(exc), field=field) from exc


def system_identity(system) -> tuple:
    """Where the system's data lives: ("file", resolved path) or ("server", kind, identity)."""
    if system.kind in FILE_KINDS:
        return ("file", file_identity(system.path))
    ident = server_identity(
        system.host, system.port, system.database, default_port=SERVER_KINDS.get(system.kind, 0)
    )
    return ("server", ident)


def _same(a: tuple, b: tuple) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "file":
        return bool(a[1]) and a[1] == b[1]
    return a[1].same_as(b[1])


def production_twins(system) -> list:
    """Production systems (other than ``system``) that point where ``system`` points."""
    from .models import System

    mine = system_identity(system)
    prod = System.objects.filter(environment=SystemEnvironment.PROD).exclude(pk=system.pk)
    return [other for other in prod if _same(mine, system_identity(other))]


def system_is_production(system) -> bool:
    """True when tagged prod, or when it points where a production system points."""
    return system.environment == SystemEnvironment.PROD or bool(production_twins(system))
