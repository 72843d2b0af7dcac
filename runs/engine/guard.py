"""Where a connector may point: file paths inside an allowed root, servers by identity (no Django).

A server host name is resolved once per connection and the connection goes to that address
(``server_pin``), so what was checked is what is reached.
A SQLite (or staged file) system's path is resolved (symlinks followed) and must lie inside the
allowed root the caller passes; some files inside it (the application's own database and key
files) are always refused. A server is identified by its resolved addresses, port and database
name, so ``localhost``, ``127.0.0.1`` and the machine's own name are the same server.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runs.engine.errors import EngineError

# SQLite keeps a database's state in these side files too; refusing a file refuses them.
_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
_LOCAL = "this-machine"


class DestinationRefused(EngineError):
    """A system points somewhere it may not: outside the allowed root, or at our own data."""


def file_path_check(path: str, *, allowed_root: str, refused: Iterable[str] = ()) -> str:
    """The resolved path when it lies inside ``allowed_root`` and is not a refused file.

    Pure (reads only the file system's links). Raises DestinationRefused naming the path.
    """
    if not path or "\x00" in path:
        raise DestinationRefused("A database file path is required.")
    root = Path(os.path.realpath(allowed_root))
    resolved = Path(os.path.realpath(Path(path).expanduser()))
    if not resolved.is_relative_to(root):
        raise DestinationRefused(
            f"The path “{path}” is outside the data directory {root}: SQLite and file "
            "systems may only use files inside it."
        )
    base = str(resolved)
    for suffix in _SIDE_SUFFIXES:
        base = base.removesuffix(suffix)
    for item in refused:
        if base == os.path.realpath(item):
            raise DestinationRefused(
                f"The path “{path}” is the application's own data; no system may use it."
            )
    return str(resolved)


_RESOLVED: dict[str, tuple[float, frozenset[str]]] = {}
_RESOLVE_TTL = 60.0


def _addresses(host: str) -> frozenset[str]:
    """The host's addresses (resolved at most once a minute per host name)."""
    now = time.monotonic()
    hit = _RESOLVED.get(host)
    if hit is not None and now - hit[0] < _RESOLVE_TTL:
        return hit[1]
    found = _resolve(host)
    if len(_RESOLVED) > 1000:
        _RESOLVED.clear()
    _RESOLVED[host] = (now, found)
    return found


def _resolve(host: str) -> frozenset[str]:
    """The host's addresses, loopback and this machine's own names folded to one token."""
    if not host or host.startswith("/"):
        return frozenset({_LOCAL})  # a Unix socket is this machine
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return frozenset({host.lower()})
    own = _own_addresses()
    return frozenset(_token(str(info[4][0]), own) for info in infos)


def _token(address: str, own: frozenset[str]) -> str:
    """An address as identity: loopback, unspecified and this machine's own are one token."""
    ip = ipaddress.ip_address(address.split("%")[0])
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return _LOCAL if ip.is_loopback or ip.is_unspecified or str(ip) in own else str(ip)


def _own_addresses() -> frozenset[str]:
    try:
        return frozenset(str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None))
    except OSError:
        return frozenset()


@dataclass(frozen=True)
class ServerIdentity:
    """Where a database connection lands: resolved addresses, port and database name."""

    addresses: frozenset[str]
    port: int
    database: str

    def same_as(self, other: ServerIdentity) -> bool:
        """True when both name the same database on the same server."""
        return (
            self.port == other.port
            and self.database == other.database
            and bool(self.addresses & other.addresses)
        )


def server_identity(
    host: str, port: int | str | None, database: str, *, default_port: int
) -> ServerIdentity:
    """The identity of a server database (resolves the host name; never raises)."""
    try:
        number = int(port) if port else default_port
    except ValueError:
        number = default_port
    return ServerIdentity(_addresses((host or "").strip()), number, (database or "").strip())


def file_identity(path: str) -> str:
    """The identity of a file database: its resolved path (symlinks followed)."""
    return os.path.realpath(Path(path).expanduser()) if path else ""


def server_check(
    host: str,
    port: int | str | None,
    database: str,
    *,
    default_port: int,
    refused: Iterable[ServerIdentity],
) -> None:
    """Raise DestinationRefused when the server database is one of ``refused`` (our own)."""
    ident = server_identity(host, port, database, default_port=default_port)
    if any(ident.same_as(other) for other in refused):
        raise DestinationRefused(
            f"The database “{database}” on “{host}” is the application's own; no system may use it."
        )


def server_pin(
    host: str,
    port: int | str | None,
    database: str,
    *,
    default_port: int,
    refused: Iterable[ServerIdentity],
) -> str | None:
    """Resolve ``host`` once (no cache), refuse the answer when it is one of ``refused``, and
    return that address: the connection must go there, so a DNS answer that changes between
    the check and the connect (rebinding) cannot swap in our own database. None for a local
    socket (checked as this machine). Raises DestinationRefused."""
    if not host or host.startswith("/"):
        server_check(host, port, database, default_port=default_port, refused=refused)
        return None
    try:
        number = int(port) if port else default_port
    except ValueError:
        number = default_port
    try:
        infos = socket.getaddrinfo(host, number, type=socket.SOCK_STREAM)
        address = str(infos[0][4][0]).split("%")[0]
    except (OSError, UnicodeError, IndexError) as exc:
        raise DestinationRefused(f"The host “{host}” does not resolve: {exc}") from None
    ident = ServerIdentity(
        frozenset({_token(address, _own_addresses())}), number, (database or "").strip()
    )
    if any(ident.same_as(other) for other in refused):
        raise DestinationRefused(
            f"The database “{database}” on “{host}” is the application's own; no system may use it."
        )
    return address
