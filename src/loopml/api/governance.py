"""Governance operations (admin only): API tokens and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from loopml.api.codecs import listed
from loopml.api.fields import INT64, Name
from loopml.api.operation import Codec, Operation, Request
from loopml.domain import AuditEvent, Token, wire


class NoArguments(Request):
    pass


class CreateToken(Request):
    name: Name
    role: Literal["viewer", "editor", "admin"]
    project: Name | None = None


class RevokeToken(Request):
    token_id: Annotated[str, Field(max_length=64)]


class AuditEvents(Request):
    after_seq: Annotated[int, Field(ge=0, le=INT64)] = 0
    limit: Annotated[int, Field(ge=1, le=10_000)] = 1000
    actor: Annotated[str, Field(min_length=1, max_length=250)] | None = None
    action: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    """An exact action (`deployment.update`) or a prefix ending in a dot (`deployment.`)."""
    entity_type: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    entity_id: Annotated[str, Field(min_length=1, max_length=600)] | None = None
    before_seq: Annotated[int, Field(ge=1, le=INT64)] | None = None
    newest_first: bool = False
    """The newest `limit` events (between the bounds) first; page backwards with `before_seq`."""


def _minted(minted: tuple[Token, str], _: Any) -> dict[str, Any]:
    token, secret = minted
    return {"token": wire.token_to_json(token), "secret": secret}


_token = Codec[Token](lambda token, _: {"token": wire.token_to_json(token)}, lambda b: wire.token_from_json(b["token"]))

LIST_TOKENS: Operation[list[Token]] = Operation(
    "list_tokens", "governance", "list_tokens", "admin", "listing", "token's project", "GET", "/tokens", NoArguments,
    listed("tokens", wire.token_to_json, wire.token_from_json), "tokens",
)  # fmt: skip
CREATE_TOKEN: Operation[tuple[Token, str]] = Operation(
    "create_token", "governance", "create_token", "admin", "global", "-", "POST", "/tokens", CreateToken,
    Codec(_minted, lambda b: (wire.token_from_json(b["token"]), str(b["secret"]))), "tokens",
    summary="Mint a token; its secret is in this answer only",
)  # fmt: skip
REVOKE_TOKEN: Operation[Token] = Operation(
    "revoke_token", "governance", "revoke_token", "admin", "path", "token's project",
    "DELETE", "/tokens/{token_id}", RevokeToken, _token, "tokens",
    summary="Revoke a token (at once on this replica; within the principal cache's 5 s on the others)",
    endpoint="custom",
)  # fmt: skip
AUDIT_EVENTS: Operation[list[AuditEvent]] = Operation(
    "audit_events", "governance", "audit_events", "admin", "listing", "project of the row's entity",
    "GET", "/audit", AuditEvents, listed("events", wire.audit_to_json, wire.audit_from_json), "audit",
)  # fmt: skip
VERIFY_AUDIT: Operation[list[str]] = Operation(
    "verify_audit", "governance", "verify_audit", "admin", "global", "-", "GET", "/audit/verify", NoArguments,
    Codec(lambda problems, _: {"ok": not problems, "problems": problems}, lambda b: [str(p) for p in b["problems"]]),
    "audit",
)  # fmt: skip

OPERATIONS = (LIST_TOKENS, CREATE_TOKEN, REVOKE_TOKEN, AUDIT_EVENTS, VERIFY_AUDIT)
