"""Dashboard sessions and CSRF tokens, signed with a key of the server's own. No I/O.

A session is a signed cookie, not a row: it holds the account's e-mail address, its tenant id,
the account's ``password_changed_at_ms`` (so a password change voids every older session; the
caller re-reads the account on each request and compares) and the session's CSRF token, which
every form of the session must send back. The key is derived from the server's secret key
(``SecretBox.derive_key``), so sessions survive restarts and every worker process accepts them.

Before there is a session, the sign-in form has a CSRF token of its own, in a signed cookie of
its own ("double submit"): a page on another site can neither read it nor forge one, so it
cannot post someone's browser into an account of its choosing (login CSRF).
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeSerializer

SESSION_SECONDS = 12 * 3600
SESSION_PURPOSE = b"dashboard sessions"


@dataclass(frozen=True, slots=True)
class Session:
    email: str
    tenant_id: int
    password_changed_at_ms: int
    csrf_token: str
    issued_at: int  # unix seconds


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def is_same_token(sent: str | None, expected: str) -> bool:
    """Whether a form's token is the expected one, in constant time."""
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


class SessionSigner:
    """Signs and checks session cookies and sign-in form tokens; each kind under a salt of
    its own, so one can never be passed off as the other."""

    def __init__(self, key: bytes, lifetime_seconds: int = SESSION_SECONDS) -> None:
        options: dict[str, Any] = {"digest_method": hashlib.sha256}
        self._sessions = URLSafeSerializer(key, salt="session", signer_kwargs=options)
        self._forms = URLSafeSerializer(key, salt="sign-in form", signer_kwargs=options)
        self.lifetime_seconds = lifetime_seconds

    def sign_session(self, session: Session) -> str:
        return self._sessions.dumps(
            [
                session.email,
                session.tenant_id,
                session.password_changed_at_ms,
                session.csrf_token,
                session.issued_at,
            ]
        )

    def load_session(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie holds; None when it is missing, forged or expired."""
        fields = self._load(self._sessions, cookie, now, issued_at_index=4, length=5)
        if fields is None:
            return None
        email, tenant_id, changed_at, csrf_token, issued_at = fields
        if not (
            isinstance(email, str)
            and isinstance(tenant_id, int)
            and isinstance(changed_at, int)
            and isinstance(csrf_token, str)
        ):
            return None
        return Session(email, tenant_id, changed_at, csrf_token, issued_at)

    def sign_form_token(self, token: str, now: float) -> str:
        return self._forms.dumps([token, int(now)])

    def load_form_token(self, cookie: str | None, now: float) -> str | None:
        """The sign-in form's token a cookie holds; None when missing, forged or expired."""
        fields = self._load(self._forms, cookie, now, issued_at_index=1, length=2)
        if fields is None or not isinstance(fields[0], str):
            return None
        return fields[0]

    def _load(
        self,
        serializer: URLSafeSerializer,
        cookie: str | None,
        now: float,
        *,
        issued_at_index: int,
        length: int,
    ) -> list[Any] | None:
        if not cookie:
            return None
        try:
            fields = serializer.loads(cookie)
        except (BadData, ValueError):
            return None
        if not isinstance(fields, list) or len(fields) != length:
            return None
        issued_at = fields[issued_at_index]
        if not isinstance(issued_at, int) or not 0 <= now - issued_at < self.lifetime_seconds:
            return None
        return fields


def safe_next(target: str | None, default: str = "/dashboard") -> str:
    """Where to go after signing in: ``target`` when it is a path of the dashboard on this
    site, else ``default`` (no open redirect: ``//evil.example``, ``/\\evil``, ``https:`` and
    paths outside ``/dashboard`` are refused)."""
    if not target or not target.startswith("/dashboard") or "\\" in target:
        return default
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    if parts.path != "/dashboard" and not parts.path.startswith("/dashboard/"):
        return default
    return target
