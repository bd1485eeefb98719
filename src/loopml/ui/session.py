"""The browser session: a signed, HttpOnly, SameSite=Strict cookie that carries the user's token.

The token is re-checked against the token store on every request (`GovernanceService.authenticate`), so a
revoked token logs its sessions out at once. The CSRF token of a session is an HMAC of the session cookie under
the server's key: a page embeds it in every form, and an action without it (or with another session's) is
refused with 403. Sessions are signed with a key made at start-up unless `LOOPML_UI_SECRET` is set (needed when
several server replicas share the users), so a restart logs everyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

__all__ = ["COOKIE", "EMBEDDED", "SessionSigner"]

COOKIE = "loopml_session"
EMBEDDED = "embedded"
"""The session value of `loopml ui` (no token: the local user is a global admin)."""
MAX_AGE_SECONDS = 12 * 3600


class SessionSigner:
    def __init__(self, key: bytes | None = None) -> None:
        configured = os.environ.get("LOOPML_UI_SECRET")
        self._key = key or (configured.encode() if configured else secrets.token_bytes(32))

    def _mac(self, purpose: bytes, value: bytes) -> str:
        digest = hmac.new(self._key, purpose + b"\0" + value, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, secret: str) -> str:
        """The cookie value for a token (or `EMBEDDED`)."""
        raw = secret.encode()
        encoded = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return f"{encoded}.{self._mac(b'session', raw)}"

    def unsign(self, cookie: str | None) -> str | None:
        """The token inside a cookie whose signature holds, else None."""
        if not cookie or len(cookie) > 4096 or "." not in cookie:
            return None
        encoded, _, mac = cookie.rpartition(".")
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(b"session", raw)):
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return None

    def csrf(self, cookie: str) -> str:
        """The CSRF token of the session whose cookie is `cookie`."""
        return self._mac(b"csrf", cookie.encode())

    def csrf_holds(self, cookie: str, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf(cookie), sent or "")
