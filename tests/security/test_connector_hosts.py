"""Connector hosts: a name is resolved once, checked, and the connection goes to that address
(DNS rebinding cannot swap in the application's own database between check and connect); a
MySQL server asking for the password in cleartext gets nothing (as PostgreSQL's require_auth).

DNS is an outbound boundary: a fake resolver answers for one made-up name only. The MySQL
server asking for cleartext is a fake too (a socket speaking the handshake), the only way to
see what the client would send."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from runs.engine.connectors import connect
from runs.engine.errors import EngineError
from runs.engine.guard import server_identity
from tests.support import mysql, pg

HARMLESS = "192.0.2.1"  # a documentation address: not ours, not loopback
NAME = "rebind.invalid"


@pytest.fixture
def rebinding_dns(monkeypatch):
    """The first answer for NAME is harmless; every later one is loopback, where our own
    database listens. Returns the list of answers given."""
    real = socket.getaddrinfo
    given: list[str] = []

    def resolve(host, port=None, *args, **kwargs):
        if host != NAME:
            return real(host, port, *args, **kwargs)
        given.append(HARMLESS if not given else "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (given[-1], port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return given


def _own(port: int, database: str):
    return [server_identity("127.0.0.1", port, database, default_port=0)]


def test_mysql_host_rebinding_to_our_database_is_not_followed(rebinding_dns):
    p = mysql.admin_params()
    conn = connect(
        "mysql",
        {
            "host": NAME,
            "port": p["port"],
            "dbname": "mysql",
            "user": p["user"],
            "password": p["password"],
            "connect_timeout": 3,
            "refused_servers": _own(p["port"], "mysql"),
        },
    )
    with pytest.raises(EngineError) as caught:
        conn.introspect()
    conn.close()
    assert HARMLESS in str(caught.value)  # it went to the address it checked, not loopback
    assert rebinding_dns == [HARMLESS]  # resolved once


def test_postgres_host_rebinding_to_our_database_is_not_followed(rebinding_dns):
    p = pg.admin_params()
    port = int(p.get("port", 5432))
    conn = connect(
        "postgresql",
        {
            "host": NAME,
            "port": port,
            "dbname": "postgres",
            "user": p.get("user", "postgres"),
            "password": p.get("password", ""),
            "connect_timeout": 3,
            "refused_servers": _own(port, "postgres"),
        },
    )
    with pytest.raises(EngineError) as caught:
        conn.introspect()
    conn.close()
    assert f'"{HARMLESS}"' in str(caught.value)  # libpq names the address it dialled
    assert rebinding_dns == [HARMLESS]


def test_a_host_resolving_to_our_database_is_refused_before_connecting(monkeypatch):
    """The check is made on the very answer the connection will use."""
    real = socket.getaddrinfo

    def resolve(host, port=None, *args, **kwargs):
        if host == NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    p = mysql.admin_params()
    with pytest.raises(EngineError, match="the application's own"):
        connect(
            "mysql",
            {
                "host": NAME,
                "port": p["port"],
                "dbname": "mysql",
                "user": "x",
                "refused_servers": _own(p["port"], "mysql"),
            },
        )


# --------------------------------------------------------------------------- MySQL cleartext


def _packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def _read_packet(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return b""
        head += chunk
    size = int.from_bytes(head[:3], "little")
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            break
        body += chunk
    return body


class ClearTextServer:
    """Greets as MySQL 8, then asks the client to switch to mysql_clear_password and keeps
    whatever it sends back."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.sock.accept()
        client.settimeout(5)
        caps = 0x0001 | 0x0008 | 0x0200 | 0x8000 | 0x80000  # 4.1 protocol, plugin auth
        salt = b"abcdefghijklmnopqrst"
        greeting = (
            b"\x0a8.0.36-fake\x00"
            + struct.pack("<I", 7)
            + salt[:8]
            + b"\x00"
            + struct.pack("<H", caps & 0xFFFF)
            + b"\x21"
            + struct.pack("<H", 2)
            + struct.pack("<H", caps >> 16)
            + bytes([21])
            + b"\x00" * 10
            + salt[8:]
            + b"\x00"
            + b"mysql_native_password\x00"
        )
        try:
            client.sendall(_packet(0, greeting))
            _read_packet(client)  # the handshake response
            client.sendall(_packet(2, b"\xfemysql_clear_password\x00"))
            self.received.append(_read_packet(client))
            client.sendall(_packet(4, b"\x00\x00\x00\x02\x00\x00\x00"))
        except OSError:
            pass
        finally:
            client.close()
            self.sock.close()


def test_mysql_never_sends_the_password_in_cleartext():
    server = ClearTextServer()
    conn = connect(
        "mysql",
        {
            "host": "127.0.0.1",
            "port": server.port,
            "dbname": "x",
            "user": "u",
            "password": "s3cret-canary",
            "connect_timeout": 3,
            "refused_servers": [],
        },
    )
    with pytest.raises(EngineError, match="cleartext"):
        conn.introspect()
    conn.close()
    server.thread.join(timeout=5)
    assert not any(b"s3cret-canary" in data for data in server.received)
