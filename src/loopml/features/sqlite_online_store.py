"""The embedded online store: one SQLite file (WAL), one row per (namespace, entity key)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from loopml.features.online_store import Stored

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    namespace TEXT NOT NULL,
    entity BLOB NOT NULL,
    ts INTEGER NOT NULL,
    created INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, entity)
) WITHOUT ROWID
"""

_UPSERT = """
INSERT INTO online_features (namespace, entity, ts, created, value) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (namespace, entity) DO UPDATE SET ts = excluded.ts, created = excluded.created, value = excluded.value
WHERE excluded.ts > online_features.ts
   OR (excluded.ts = online_features.ts AND excluded.created >= online_features.created)
"""


class SqliteOnlineStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.name = f"sqlite:{path.resolve()}"
        # One connection shared under a lock: lookups are a few microseconds each, far below the cost of
        # opening connections per thread.
        self._conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL survives a killed process (not a power cut) without an fsync per write.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)

    def write(
        self,
        namespace: str,
        keys: Sequence[bytes],
        times: Sequence[int],
        created: Sequence[int],
        values: Sequence[bytes],
    ) -> None:
        rows = zip([namespace] * len(keys), keys, times, created, values, strict=True)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(_UPSERT, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def read(self, lookups: Sequence[tuple[str, Sequence[bytes]]]) -> list[list[Stored | None]]:
        out: list[list[Stored | None]] = []
        with self._lock:
            for namespace, keys in lookups:
                if len(keys) == 1:
                    row = self._conn.execute(
                        "SELECT ts, value FROM online_features WHERE namespace = ? AND entity = ?",
                        (namespace, keys[0]),
                    ).fetchone()
                    out.append([None if row is None else (row[0], row[1])])
                    continue
                found: dict[bytes, Stored] = {}
                for start in range(0, len(keys), 500):
                    chunk = list(keys[start : start + 500])
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT entity, ts, value FROM online_features WHERE namespace = ? AND entity IN ({marks})"
                    for entity, ts, value in self._conn.execute(query, (namespace, *chunk)):
                        found[entity] = (ts, value)
                out.append([found.get(key) for key in keys])
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()
