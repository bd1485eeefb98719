"""API tokens, stored as sha256 of their secret (tokens are 256-bit random, so a fast hash is enough)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Connection, func, insert, select, update

from loopml.domain import Role, Token
from loopml.errors import TokenNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import tokens

PREFIX = "lml"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(row: object) -> Token:
    return Token(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        role=Role(row.role),  # type: ignore[attr-defined]
        project=row.project,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )


class TokenRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def create(self, name: str, role: Role, project: str | None, secret: str | None = None) -> tuple[Token, str]:
        """A new token and its secret (`lml_<id>_<random>`); the secret is shown once, never stored."""
        token_id = secrets.token_hex(6)
        if secret is None:
            secret = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        created = now_ms()
        self._conn.execute(
            insert(tokens).values(
                id=token_id,
                name=name,
                secret_hash=hash_secret(secret),
                role=role.value,
                project=project,
                created_at=created,
                revoked_at=None,
            )
        )
        self._audit.record(
            "token.create", "token", token_id, after={"name": name, "role": role.value, "project": project}
        )
        return Token(token_id, name, role, project, created, None), secret

    def authenticate(self, secret: str) -> Token | None:
        digest = hash_secret(secret)
        row = self._conn.execute(
            select(tokens).where(tokens.c.secret_hash == digest, tokens.c.revoked_at.is_(None))
        ).one_or_none()
        if row is None or not hmac.compare_digest(row.secret_hash, digest):
            return None
        return _token(row)

    def find_secret(self, secret: str) -> Token | None:
        """The token of `secret`, revoked or not (bootstrapping must not revive a revoked token)."""
        row = self._conn.execute(select(tokens).where(tokens.c.secret_hash == hash_secret(secret))).first()
        return None if row is None else _token(row)

    def get(self, token_id: str) -> Token | None:
        row = self._conn.execute(select(tokens).where(tokens.c.id == token_id)).one_or_none()
        return None if row is None else _token(row)

    def list(self, project: str | None = None) -> list[Token]:
        """Every token, or with `project` only the tokens scoped to that project."""
        query = select(tokens).order_by(tokens.c.created_at, tokens.c.id)
        if project is not None:
            query = query.where(tokens.c.project == project)
        return [_token(r) for r in self._conn.execute(query)]

    def revoke(self, token_id: str) -> Token:
        row = self._conn.execute(select(tokens).where(tokens.c.id == token_id)).one_or_none()
        if row is None:
            raise TokenNotFound(f"token {token_id!r} does not exist (see `loopml tokens list`)")
        if row.revoked_at is not None:
            return _token(row)
        at = now_ms()
        self._conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=at))
        self._audit.record("token.revoke", "token", token_id, before={"revoked_at": None}, after={"revoked_at": at})
        return Token(row.id, row.name, Role(row.role), row.project, row.created_at, at)

    def count_active(self) -> int:
        return int(
            self._conn.execute(
                select(func.count()).select_from(tokens).where(tokens.c.revoked_at.is_(None))
            ).scalar_one()
        )
