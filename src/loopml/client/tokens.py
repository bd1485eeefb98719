"""API tokens: create, list, revoke (`client.tokens`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.api import governance as ops
from loopml.domain import Token

if TYPE_CHECKING:
    from loopml.client.client import Client


class Tokens:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def create(self, name: str, role: str = "viewer", project: str | None = None) -> tuple[Token, str]:
        return self._backend.call(ops.CREATE_TOKEN, name=name, role=role, project=project)

    def list(self) -> list[Token]:
        return self._backend.call(ops.LIST_TOKENS)

    def revoke(self, token_id: str) -> Token:
        return self._backend.call(ops.REVOKE_TOKEN, token_id=token_id)
