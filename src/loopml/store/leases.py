"""Leases: which server replica runs a background controller. One row per controller, with its holder and
expiry; a replica takes a free or expired lease, or renews its own, in one conditional statement, so two
replicas never both hold it. Not audited: leases are renewed every few seconds and change no user data."""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, or_, select, update

from loopml.store.schema import leases
from loopml.store.upsert import insert_if_missing


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
