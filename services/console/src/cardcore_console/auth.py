"""Who may look: an API key holding the `ops` scope, checked once at login, then a session.

- The key is checked with the gateway's own key module (the same table, hash and bootstrap key
  as the gateway), never stored: the session holds the key's SHA-256 and is re-checked against
  the key table every `recheck_seconds`, so revoking the key ends its console sessions too.
- The session is a cookie `<payload>.<HMAC-SHA256>` (HttpOnly, SameSite=Strict, Secure when the
  console is served over https), expiring after the configured hours. Its payload carries a
  random CSRF token; every POST must echo it (form field `csrf_token` or header `X-CSRF-Token`).
  The login form itself is protected by a double-submit token in a short-lived signed cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from cardcore_gateway.keys import KeyRepository, hash_key

SESSION_COOKIE = "cardcore_console"
LOGIN_CSRF_COOKIE = "cardcore_console_login"
REQUIRED_SCOPE = "ops"


@dataclass(frozen=True)
class Session:
    name: str
    key_hash: str
    csrf: str
    expires: float


class Signer:
    """HMAC-SHA256 over a compact JSON payload; constant-time verification."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()

    def sign(self, payload: dict[str, object]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        text = body.decode().rstrip("=")
        return f"{text}.{self._mac(text)}"

    def unsign(self, value: str) -> dict[str, object] | None:
        text, dot, mac = value.rpartition(".")
        if not dot or not hmac.compare_digest(mac, self._mac(text)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    def _mac(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class LoginRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Gatekeeper:
    def __init__(
        self,
        keys: KeyRepository,
        bootstrap_key: str | None,
        secret: bytes,
        session_seconds: float,
        recheck_seconds: float = 5.0,
    ) -> None:
        self._keys = keys
        self._bootstrap_hash = hash_key(bootstrap_key) if bootstrap_key else None
        self._sessions = Signer(secret, "console-session")
        self._login = Signer(secret, "console-login-csrf")
        self.session_seconds = session_seconds
        self._recheck = recheck_seconds
        self._checked: dict[str, tuple[bool, float]] = {}

    # ---------------------------------------------------------------- login
    def login(self, key: str) -> tuple[Session, str]:
        """A session for a key with the ops scope (and its cookie value); else LoginRefused."""
        key = key.strip()
        if not key:
            raise LoginRefused(401, "Enter an API key.")
        key_hash = hash_key(key)
        name = self._holder(key_hash)
        if name is None:
            raise LoginRefused(401, "Unknown or revoked API key.")
        if not self._has_ops(key_hash):
            raise LoginRefused(403, "This API key does not hold the ops scope.")
        session = Session(
            name=name,
            key_hash=key_hash,
            csrf=secrets.token_urlsafe(24),
            expires=time.time() + self.session_seconds,
        )
        cookie = self._sessions.sign(
            {"n": session.name, "k": session.key_hash, "c": session.csrf, "e": session.expires}
        )
        return session, cookie

    def login_token(self) -> tuple[str, str]:
        """(token for the form, cookie value) of the login form's double-submit CSRF check."""
        token = secrets.token_urlsafe(24)
        return token, self._login.sign({"t": token, "e": time.time() + 3600})

    def login_token_ok(self, form_token: str, cookie: str | None) -> bool:
        payload = self._login.unsign(cookie or "")
        if payload is None or float(payload.get("e", 0)) < time.time():  # type: ignore[arg-type]
            return False
        return bool(form_token) and hmac.compare_digest(str(payload.get("t", "")), form_token)

    # ---------------------------------------------------------------- each request
    def session(self, cookie: str | None) -> Session | None:
        payload = self._sessions.unsign(cookie or "")
        if payload is None:
            return None
        try:
            session = Session(
                name=str(payload["n"]),
                key_hash=str(payload["k"]),
                csrf=str(payload["c"]),
                expires=float(payload["e"]),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError):
            return None
        if session.expires < time.time() or not self._still_ops(session.key_hash):
            return None
        return session

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf, token or "")

    # ---------------------------------------------------------------- key table
    def _holder(self, key_hash: str) -> str | None:
        if self._bootstrap_hash is not None and hmac.compare_digest(key_hash, self._bootstrap_hash):
            return "bootstrap"
        client = self._keys.find(key_hash)
        return None if client is None else client.name

    def _has_ops(self, key_hash: str) -> bool:
        if self._bootstrap_hash is not None and hmac.compare_digest(key_hash, self._bootstrap_hash):
            return True
        client = self._keys.find(key_hash)
        return client is not None and REQUIRED_SCOPE in client.scopes

    def _still_ops(self, key_hash: str) -> bool:
        now = time.monotonic()
        cached = self._checked.get(key_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        ok = self._has_ops(key_hash)
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[key_hash] = (ok, now + self._recheck)
        return ok
