"""Revoking a token: the one governance operation with a hand-written endpoint, since it also empties this
replica's principal cache (`server.auth.PrincipalCache`), so the revocation takes effect here at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request

from loopml.api.governance import REVOKE_TOKEN
from loopml.server.auth import CurrentPrincipal, PrincipalCache
from loopml.server.dependencies import Governance
from loopml.server.routes import Custom


def revoke_token(
    request: Request,
    token_id: Annotated[str, Path(max_length=64)],
    principal: CurrentPrincipal,
    governance: Governance,
) -> dict[str, Any]:
    token = governance.revoke_token(principal, token_id)
    cache: PrincipalCache = request.app.state.principal_cache
    cache.clear()
    answer: dict[str, Any] = REVOKE_TOKEN.response.encode(token, {})
    return answer


ENDPOINTS = {"revoke_token": Custom(revoke_token)}
