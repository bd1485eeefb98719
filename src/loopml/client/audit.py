"""The audit log: read its events and verify the hash chain (`client.audit`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.api import governance as ops
from loopml.domain import AuditEvent

if TYPE_CHECKING:
    from loopml.client.client import Client


class Audit:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def events(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEvent]:
        return self._backend.call(ops.AUDIT_EVENTS, after_seq=after_seq, limit=limit)

    def verify(self) -> list[str]:
        """Problems in the audit hash chain; an empty list means no row was edited, inserted or deleted."""
        return self._backend.call(ops.VERIFY_AUDIT)
