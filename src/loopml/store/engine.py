"""Engines for the two supported databases, tuned for the way loopml writes.

SQLite (embedded default): WAL journal, a 30 s busy timeout, `synchronous=FULL` so an acknowledged commit
survives a crash, foreign keys on, case-sensitive LIKE (ILIKE is the case-insensitive operator).
A writing transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on the busy timeout
instead of failing with "database is locked" when they upgrade a read lock.
PostgreSQL (production): psycopg 3, pooled, pre-pinged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

WRITE = "loopml_write"
"""Execution option that marks a connection as one that will write (BEGIN IMMEDIATE on SQLite)."""


def create_store_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=8, max_overflow=16)
    from loopml.errors import InvalidInput

    raise InvalidInput(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path/to/loopml.db "
        "or postgresql+psycopg://user@host:port/dbname"
    )


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=30000",
            "synchronous=FULL",
            "foreign_keys=ON",
            "case_sensitive_like=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
