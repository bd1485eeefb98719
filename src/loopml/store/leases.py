"""Leases: which server replica runs a background controller. One row per controller, with its holder and
expiry; a replica takes a free or expired lease, or renews its own, in one conditional statement, so two
replicas never both hold it. Not audited: leases are renewed every few seconds and change no user data."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from sqlalchemy import Connection, and_, delete, or_, select, update

from loopml.store.schema import leases
from loopml.store.upsert import insert_if_missing

if TYPE_CHECKING:
    from loopml.store import MetadataStore

_logger = logging.getLogger("loopml.store")


class LeaseRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def acquire(self, name: str, holder: str, now_ms: int, ttl_ms: int) -> bool:
        """Take or renew lease `name` for `holder` until `now_ms + ttl_ms`; False if another holder has it."""
        taken = self._conn.execute(
            update(leases)
            .where(and_(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at <= now_ms)))
            .values(holder=holder, expires_at=now_ms + ttl_ms)
        )
        if taken.rowcount == 1:
            return True
        return insert_if_missing(
            self._conn, leases, {"name": name, "holder": holder, "expires_at": now_ms + ttl_ms}, ("name",)
        )

    def release(self, name: str, holder: str) -> None:
        self._conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))

    def holder(self, name: str, now_ms: int) -> str | None:
        """Who holds lease `name` now, if anyone."""
        row = self._conn.execute(
            select(leases.c.holder).where(leases.c.name == name, leases.c.expires_at > now_ms)
        ).one_or_none()
        return None if row is None else str(row.holder)


class LeasedLoop(ABC):
    """A background loop that acts on one server replica at a time: `start()` runs `background_tick()` every
    `interval_seconds` in a daemon thread until `stop()`, which also releases the lease. Subclasses implement
    `background_tick`, call `holds_lease()` at the start of each pass and do nothing without it."""

    def __init__(
        self, store: MetadataStore, lease: str, interval_seconds: float, lease_seconds: float, holder: str | None
    ) -> None:
        if interval_seconds <= 0 or lease_seconds <= interval_seconds:
            raise ValueError("interval_seconds must be positive and shorter than lease_seconds")
        self.lease_store = store
        self.lease = lease
        self.interval_seconds = interval_seconds
        self.lease_seconds = lease_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holds_lease(self, now_ms: int) -> bool:
        """Take or renew the lease; True if this replica holds it now."""
        with self.lease_store.write(self.holder) as unit:
            return unit.leases.acquire(self.lease, self.holder, now_ms, int(self.lease_seconds * 1000))

    @abstractmethod
    def background_tick(self) -> None:
        """One pass of the loop (the subclass's work)."""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"loopml-{self.lease}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        try:
            with self.lease_store.write(self.holder) as unit:
                unit.leases.release(self.lease, self.holder)
        except Exception:  # the store may be closed already; the lease then expires on its own
            _logger.debug("could not release the %s lease", self.lease, exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.background_tick()
            except Exception:  # the database may be briefly unreachable: try again next interval
                _logger.exception("%s tick failed", self.lease)
            self._stop.wait(self.interval_seconds)
