"""API tokens and the principal a request acts as."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "editor": 1, "admin": 2}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    name: str
    role: Role
    project: str | None
    """None means global: the token reaches every project."""
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who performs an operation: recorded as the actor of every audit event."""

    actor: str
    role: Role
    project: str | None

    def can_see(self, project: str) -> bool:
        return self.project is None or self.project == project

    def require(self, role: Role) -> None:
        """Raise PermissionDenied unless this principal's role reaches `role`."""
        if not self.role.allows(role):
            from loopml.errors import PermissionDenied

            raise PermissionDenied(
                f"this operation needs the {role.value} role; the token in use has {self.role.value}"
            )


LOCAL_PRINCIPAL = Principal(actor="local", role=Role.ADMIN, project=None)
