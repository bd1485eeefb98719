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

    def events(
        self,
        after_seq: int = 0,
        limit: int = 1000,
        *,
        actor: str | None = None,
        action: str | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        before_seq: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        """Audit events after `after_seq` (before `before_seq`), oldest first unless `newest_first`; only those
        of `actor`, `action` (exact, or a prefix ending in a dot: `"deployment."`), `entity_type`, `entity_id`
        when given."""
        return self._backend.call(
            ops.AUDIT_EVENTS,
            after_seq=after_seq,
            limit=limit,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before_seq=before_seq,
            newest_first=newest_first,
        )

    def verify(self) -> list[str]:
        """Problems in the audit hash chain; an empty list means no row was edited, inserted or deleted."""
        return self._backend.call(ops.VERIFY_AUDIT)
