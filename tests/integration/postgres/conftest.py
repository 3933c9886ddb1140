"""The real PostgreSQL on 127.0.0.1:5432 (the ``postgres`` fixture of tests/conftest.py), one scratch
database per test.

A stand-in server that asks for a password and refuses it gives the one failure trust auth
cannot: a wrong password.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scratch_postgres import Postgres

SECRET = "pw-Zq8!never-print-me"


@pytest.fixture(scope="session")
def secret() -> str:
    """The password the postgres workspaces are given (trust auth ignores it); it must never show."""
    return SECRET


@pytest.fixture
def database(postgres: Postgres) -> str:
    """A fresh, empty database for one test."""
    return postgres.create_database()


@pytest.fixture
def pg_workspace(tmp_path: Path, postgres: Postgres, database: str, configure) -> Path:
    """A workspace whose engine is PostgreSQL (a scratch database, a password that must never show)."""
    import autoflux

    root = autoflux.init(tmp_path / "ws")
    configure(root, {"engine": postgres.engine_settings(database, password=SECRET)})
    return root


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PasswordRefuser:
    """A stand-in PostgreSQL server: asks for a cleartext password, records it, refuses it (28P01)."""

    port: int
    received: list[str]


@pytest.fixture
def password_refuser() -> Iterator[PasswordRefuser]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    refuser = PasswordRefuser(listener.getsockname()[1], [])
    stop = threading.Event()

    def read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:  # SSLRequest / GSSENCRequest are declined, then comes the startup message
                length, code = struct.unpack("!ii", read(conn, 8))
                read(conn, length - 8)
                if code in (80877103, 80877104):
                    conn.sendall(b"N")
                    continue
                break
            conn.sendall(b"R" + struct.pack("!ii", 8, 3))
            kind, length = struct.unpack("!ci", read(conn, 5))
            refuser.received.append(read(conn, length - 4).rstrip(b"\0").decode())
            fields = b"SFATAL\0VFATAL\0C28P01\0" + b'Mpassword authentication failed for user "postgres"\0' + b"\0"
            conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                serve(conn)
            except (ConnectionError, OSError, struct.error):
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield refuser
    stop.set()
    thread.join(timeout=5)
    listener.close()


@pytest.fixture
def pg_engine() -> Callable[..., Any]:
    """``pg_engine(workspace)``: the workspace's engine object."""
    from autoflux.engines import create_engine
    from autoflux.workspace import Workspace

    def make(root: Path):
        return create_engine(Workspace.open(root))

    return make
