"""Token authentication: every route depends on `CurrentPrincipal` except `GET /api/v1/health`.

The token travels as `Authorization: Bearer <token>`, or as the password of HTTP Basic (`<any user>:<token>`),
which is how MLflow clients send `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`.

The admission middleware (`loopml.server.admission`) authenticates a request before its body is read and
leaves the principal in the ASGI scope; `current_principal` takes it from there, or authenticates itself
when the app runs without that middleware.

A successful lookup is cached in-process for `CACHE_SECONDS` (keyed by the sha256 of the secret), so a
token revoked on another replica stops working within that time; a revocation through this process
clears the cache at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loopml.domain import Principal
from loopml.errors import AuthenticationRequired
from loopml.governance import GovernanceService

__all__ = [
    "CACHE_SECONDS",
    "PRINCIPAL_SCOPE_KEY",
    "CurrentPrincipal",
    "PrincipalCache",
    "bearer_secret",
    "current_principal",
    "unknown_token",
]

CACHE_SECONDS = 5.0
_MAX_ENTRIES = 4096
PRINCIPAL_SCOPE_KEY = "loopml.principal"
_HOW = (
    "send Authorization: Bearer <token>, or HTTP Basic with the token as the password "
    "(create one with `loopml tokens create`)"
)

_bearer = HTTPBearer(auto_error=False, description="an API token, `lml_...`")


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def bearer_secret(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or the password of `Authorization: Basic`;
    `AuthenticationRequired` without one."""
    scheme, _, secret = (authorization or "").strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() == "basic" and secret:
        try:
            decoded = base64.b64decode(secret, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationRequired(f"the Basic credentials are not base64 of 'user:token': {_HOW}") from None
        secret = decoded.partition(":")[2].strip()
        if not secret:
            raise AuthenticationRequired(f"the Basic credentials carry no token as their password: {_HOW}")
        return secret
    if scheme.lower() != "bearer" or not secret:
        raise AuthenticationRequired(f"this request has no API token: {_HOW}")
    return secret


def unknown_token() -> AuthenticationRequired:
    return AuthenticationRequired(f"the API token is unknown or revoked: {_HOW}")


class PrincipalCache:
    """Secret hash -> (principal, expiry). Only successful lookups are cached, and at most a bounded few."""

    def __init__(self, governance: GovernanceService, ttl_seconds: float = CACHE_SECONDS) -> None:
        self._governance = governance
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def cached(self, secret: str) -> Principal | None:
        """The principal of `secret` if a fresh lookup is cached; never touches the store (safe on the event loop)."""
        return self._hit(_key(secret), time.monotonic())

    def _hit(self, key: str, now: float) -> Principal | None:
        with self._lock:
            hit = self._entries.get(key)
        return hit[0] if hit is not None and hit[1] > now else None

    def authenticate(self, secret: str) -> Principal | None:
        key = _key(secret)
        now = time.monotonic()
        hit = self._hit(key, now)
        if hit is not None:
            return hit
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
    admitted: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if admitted is not None:
        return admitted
    secret = credentials.credentials if credentials is not None else None
    if not secret:
        secret = bearer_secret(request.headers.get("authorization"))
    cache: PrincipalCache = request.app.state.principal_cache
    principal = cache.authenticate(secret)
    if principal is None:
        raise unknown_token()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
