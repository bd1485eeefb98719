"""Tokens and audit: create, list, revoke, authenticate; read and verify the hash chain."""

from __future__ import annotations

import re

from loopml.domain import AuditEvent, Principal, Role, Token
from loopml.domain.validation import check_name
from loopml.errors import InvalidInput, PermissionDenied, TokenNotFound
from loopml.store import AuditFilter, MetadataStore, read_events, verify_chain

_TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")


class GovernanceService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def create_token(self, principal: Principal, name: str, role: str, project: str | None = None) -> tuple[Token, str]:
        """A new token and its secret, shown only now. Only a global admin mints tokens."""
        principal.require(Role.ADMIN)
        if principal.project is not None:
            raise PermissionDenied("only a global admin token can create tokens")
        check_name("token", name)
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidInput(f"role must be one of viewer, editor, admin, got {role!r}") from None
        if project is not None:
            check_name("project", project)
        with self.store.write(principal.actor) as unit:
            return unit.tokens.create(name, parsed, project)

    def list_tokens(self, principal: Principal) -> list[Token]:
        """Every token for a global admin; a project admin sees only the tokens scoped to its project."""
        principal.require(Role.ADMIN)
        with self.store.read() as unit:
            return unit.tokens.list(principal.project)

    def revoke_token(self, principal: Principal, token_id: str) -> Token:
        """A project admin revokes only tokens of its project; any other token is "not found" to it."""
        principal.require(Role.ADMIN)
        missing = TokenNotFound(f"token {token_id!r} does not exist (see `loopml tokens list`)")
        if not isinstance(token_id, str) or not _TOKEN_ID.match(token_id):
            raise missing
        with self.store.write(principal.actor) as unit:
            found = unit.tokens.get(token_id)
            if found is None or (principal.project is not None and found.project != principal.project):
                raise missing
            return unit.tokens.revoke(token_id)

    def authenticate(self, secret: str) -> Principal | None:
        with self.store.read() as unit:
            token = unit.tokens.authenticate(secret)
        if token is None:
            return None
        return Principal(actor=f"token:{token.name}", role=token.role, project=token.project)

    def bootstrap_admin(self, secret: str | None) -> str | None:
        """Make sure an admin can log in. With `secret` (LOOPML_ADMIN_TOKEN) that token is registered if it
        is not yet; otherwise, on a store with no token at all, a new admin token is minted and returned
        (to be printed once). Returns None when nothing new was minted."""
        with self.store.write("system") as unit:
            if secret is not None:
                if unit.tokens.find_secret(secret) is None:  # a revoked one stays revoked
                    unit.tokens.create("admin", Role.ADMIN, None, secret=secret)
                return None
            if unit.tokens.count_active() == 0:
                _, minted = unit.tokens.create("admin", Role.ADMIN, None)
                return minted
        return None

    def audit_events(
        self,
        principal: Principal,
        after_seq: int = 0,
        limit: int = 1000,
        actor: str | None = None,
        action: str | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        before_seq: int | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        """Events after `after_seq` (and before `before_seq`), oldest first or `newest_first`, matching the
        given actor, action (exact, or a prefix ending in a dot: `deployment.`), entity type and id; a project
        admin reads only the events of its project."""
        principal.require(Role.ADMIN)
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be from 1 to 10000, got {limit}")
        for what, value in (
            ("actor", actor),
            ("action", action),
            ("entity_type", entity_type),
            ("entity_id", entity_id),
        ):
            if value is not None and (not isinstance(value, str) or not value or len(value) > 600):
                raise InvalidInput(f"{what} must be a non-empty string of at most 600 characters, got {value!r}")
        if before_seq is not None and (
            isinstance(before_seq, bool) or not isinstance(before_seq, int) or before_seq < 1
        ):
            raise InvalidInput(f"before_seq must be a positive integer, got {before_seq!r}")
        where = AuditFilter(actor, action, entity_type, entity_id, before_seq, bool(newest_first))
        with self.store.read() as unit:
            return list(read_events(unit.connection, after_seq, limit, principal.project, where))

    def verify_audit(self, principal: Principal) -> list[str]:
        """Problems found in the audit chain (empty when intact). The chain spans every project, so only a
        global admin verifies it."""
        principal.require(Role.ADMIN)
        if principal.project is not None:
            raise PermissionDenied(
                "verifying the audit chain needs a global admin token; "
                f"the token in use is scoped to project {principal.project!r}"
            )
        with self.store.read() as unit:
            return verify_chain(unit.connection)
