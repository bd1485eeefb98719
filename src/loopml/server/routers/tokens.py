"""API tokens (admin only): list, create (the secret is returned once), revoke."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict

from loopml.domain.wire import token_to_json
from loopml.errors import TokenNotFound
from loopml.server.auth import CurrentPrincipal, PrincipalCache
from loopml.server.dependencies import Governance
from loopml.server.fields import Name

router = APIRouter(tags=["tokens"])

_TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class CreateToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    role: Literal["viewer", "editor", "admin"]
    project: Name | None = None


@router.get("/tokens")
def list_tokens(principal: CurrentPrincipal, governance: Governance) -> dict[str, Any]:
    return {"tokens": [token_to_json(t) for t in governance.list_tokens(principal)]}


@router.post("/tokens")
def create_token(body: CreateToken, principal: CurrentPrincipal, governance: Governance) -> dict[str, Any]:
    token, secret = governance.create_token(principal, body.name, body.role, body.project)
    return {"token": token_to_json(token), "secret": secret}


@router.delete("/tokens/{token_id}")
def revoke_token(
    request: Request,
    token_id: Annotated[str, Path(max_length=64)],
    principal: CurrentPrincipal,
    governance: Governance,
) -> dict[str, Any]:
    if not _TOKEN_ID.fullmatch(token_id):  # never send arbitrary bytes (NUL) to the database
        raise TokenNotFound(f"token {token_id!r} does not exist (see `loopml tokens list`)")
    token = governance.revoke_token(principal, token_id)
    cache: PrincipalCache = request.app.state.principal_cache
    cache.clear()  # revocation through this replica takes effect at once
    return {"token": token_to_json(token)}
