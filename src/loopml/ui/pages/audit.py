"""Audit: the log, newest first, filtered by actor, action (exact or a prefix ending in a dot), entity type and
id, with the hash chain's verification status (admins; verifying needs a global admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from loopml.governance import GovernanceService
from loopml.ui.framework import Session, UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

PAGE = 100


def _given(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


@router.get("/audit")
def audit(
    request: Request,
    session: Session,
    actor: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    before: int | None = None,
) -> Response:
    governance: GovernanceService = request.app.state.governance
    filters = {
        "actor": _given(actor),
        "action": _given(action),
        "entity_type": _given(entity_type),
        "entity_id": _given(entity_id),
    }
    events = governance.audit_events(
        session.principal,
        limit=PAGE + 1,
        actor=filters["actor"],
        action=filters["action"],
        entity_type=filters["entity_type"],
        entity_id=filters["entity_id"],
        before_seq=before,
        newest_first=True,
    )
    older = events[PAGE - 1].seq if len(events) > PAGE else None
    problems: list[str] | None = None
    if session.principal.project is None:
        problems = governance.verify_audit(session.principal)
    return render(
        request,
        session,
        "audit.html",
        events=events[:PAGE],
        filters={k: v or "" for k, v in filters.items()},
        older=older,
        problems=problems,
    )
