"""The audit trail (admin only): read events after a sequence number, and verify the hash chain."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from loopml.domain.wire import audit_to_json
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Governance
from loopml.server.fields import INT64

router = APIRouter(tags=["audit"])


@router.get("/audit")
def audit_events(
    principal: CurrentPrincipal,
    governance: Governance,
    after_seq: Annotated[int, Query(ge=0, le=INT64)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    return {"events": [audit_to_json(e) for e in governance.audit_events(principal, after_seq, limit)]}


@router.get("/audit/verify")
def verify_audit(principal: CurrentPrincipal, governance: Governance) -> dict[str, Any]:
    problems = governance.verify_audit(principal)
    return {"ok": not problems, "problems": problems}
