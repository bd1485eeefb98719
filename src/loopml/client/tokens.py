"""API tokens: create, list, revoke (`client.tokens`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.domain import Token

if TYPE_CHECKING:
    from loopml.client.client import Client


class Tokens:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def create(self, name: str, role: str = "viewer", project: str | None = None) -> tuple[Token, str]:
        return self._backend.create_token(name, role, project)

    def list(self) -> list[Token]:
        return self._backend.list_tokens()

    def revoke(self, token_id: str) -> Token:
        return self._backend.revoke_token(token_id)
