"""Bearer-token authentication: every route depends on `CurrentPrincipal` except `GET /api/v1/health`.

A successful lookup is cached in-process for `CACHE_SECONDS` (keyed by the sha256 of the secret), so a
token revoked on another replica stops working within that time; a revocation through this process
clears the cache at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loopml.domain import Principal
from loopml.errors import AuthenticationRequired
from loopml.governance import GovernanceService

__all__ = ["CACHE_SECONDS", "CurrentPrincipal", "PrincipalCache", "current_principal"]

CACHE_SECONDS = 5.0
_MAX_ENTRIES = 4096
_HOW = "send Authorization: Bearer <token> (create one with `loopml tokens create`)"

_bearer = HTTPBearer(auto_error=False, description="an API token, `lml_...`")


class PrincipalCache:
    """Secret hash -> (principal, expiry). Only successful lookups are cached, and at most a bounded few."""

    def __init__(self, governance: GovernanceService, ttl_seconds: float = CACHE_SECONDS) -> None:
        self._governance = governance
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, secret: str) -> Principal | None:
        key = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal = self._governance.authenticate(secret)
        with self._lock:
            if principal is None:
                self._entries.pop(key, None)
            elif self._ttl > 0:
                if len(self._entries) >= _MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (principal, now + self._ttl)
        return principal

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The principal of the request's bearer token; `AuthenticationRequired` (401) without a valid one."""
    if credentials is None or not credentials.credentials:
        raise AuthenticationRequired(f"this request has no API token: {_HOW}")
    cache: PrincipalCache = request.app.state.principal_cache
    principal = cache.authenticate(credentials.credentials)
    if principal is None:
        raise AuthenticationRequired(f"the API token is unknown or revoked: {_HOW}")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
