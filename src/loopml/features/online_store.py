"""Online stores: the latest feature row per entity, for lookups at serving time.

An online store is a small Protocol, chosen by the `LOOPML_ONLINE_STORE` setting (`open_online_store`):
`sqlite` (the embedded default, a file under LOOPML_HOME), `sqlite:///path.db`, or `redis://host:port/db`.
A write keeps, per (namespace, entity key), the row with the highest (event time, created time): so writes
are idempotent and may arrive in any order, which makes a killed materialization safe to run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from loopml.errors import InvalidInput

Stored = tuple[int, bytes]
"""(event time in microseconds, the encoded feature values) of one entity in one namespace."""


class OnlineStore(Protocol):
    name: str
    """Identifies the store in materialization records (`sqlite:/abs/path.db`, `redis://host:6379/0`)."""

    def write(
        self,
        namespace: str,
        keys: Sequence[bytes],
        times: Sequence[int],
        created: Sequence[int],
        values: Sequence[bytes],
    ) -> None:
        """Upsert rows, keeping per key the one with the highest (time, created); durable when it returns."""
        ...

    def read(self, lookups: Sequence[tuple[str, Sequence[bytes]]]) -> list[list[Stored | None]]:
        """For each (namespace, keys), the stored row of each key (None where there is none)."""
        ...

    def close(self) -> None: ...


def open_online_store(setting: str | None, home: Path) -> OnlineStore:
    """The online store a `LOOPML_ONLINE_STORE` value names (None or "sqlite": `home/online.db`)."""
    value = (setting or "sqlite").strip()
    if value == "sqlite":
        from loopml.features.sqlite_online_store import SqliteOnlineStore

        return SqliteOnlineStore(home / "online.db")
    if value.startswith("sqlite:///"):
        from loopml.features.sqlite_online_store import SqliteOnlineStore

        return SqliteOnlineStore(Path(value.removeprefix("sqlite:///")))
    if value.startswith(("redis://", "rediss://", "unix://")):
        from loopml.features.redis_online_store import RedisOnlineStore

        return RedisOnlineStore(value)
    raise InvalidInput(
        f"LOOPML_ONLINE_STORE must be 'sqlite', 'sqlite:///path.db' or 'redis://host:port/db', got {value!r}"
    )
