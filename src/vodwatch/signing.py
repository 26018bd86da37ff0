"""Request signing for server-to-server calls (SPEC §5): pure functions, no I/O.

``Tk-token`` = base64 of HMAC-SHA256, keyed with the tenant secret, over
``authkey \\n Timestamp \\n METHOD \\n path \\n canonical_query \\n hex(sha256(body))``.
"""

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

TIMESTAMP_WINDOW_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Signature:
    """One signed request, as recorded to accept it once: its tenant, its ``Tk-token`` and
    when its ``Timestamp`` leaves the window (unix ms)."""

    tenant_id: int
    token: str
    expires_at_ms: int

    @classmethod
    def of(cls, tenant_id: int, timestamp: int, token: str) -> "Signature":
        return cls(tenant_id, token, (timestamp + TIMESTAMP_WINDOW_SECONDS + 1) * 1000)


def encode_component(text: str) -> str:
    """Percent-encode per RFC 3986: everything but ``A-Z a-z 0-9 - . _ ~``, as UTF-8."""
    return quote(text, safe="-._~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Parameters sorted by name, then value (code points, before encoding), ``&``-joined.

    >>> canonical_query([("userId", "李四"), ("page", "2")])
    'page=2&userId=%E6%9D%8E%E5%9B%9B'
    """
    return "&".join(
        f"{encode_component(name)}={encode_component(value)}" for name, value in sorted(pairs)
    )


def parse_query(raw: bytes | str) -> list[tuple[str, str]]:
    """Decode a raw query string into ``(name, value)`` pairs, keeping repeats and blanks.

    ``+`` is a space, as every form encoder writes it; ``%2B`` is a plus sign. Raises
    ``ValueError`` for bytes that are not UTF-8.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict")))
    return pairs


def string_to_sign(
    authkey: str,
    timestamp: str,
    method: str,
    path: str,
    pairs: Iterable[tuple[str, str]],
    body: bytes,
) -> str:
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join((authkey, timestamp, method.upper(), path, canonical_query(pairs), body_hash))


def sign_request(
    secret: str,
    authkey: str,
    timestamp: str,
    method: str,
    path: str,
    pairs: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> str:
    """The ``Tk-token`` header value for one request."""
    message = string_to_sign(authkey, timestamp, method, path, pairs, body)
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def is_signature_valid(expected: str, given: str) -> bool:
    """Constant-time comparison of two ``Tk-token`` values."""
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


def is_timestamp_fresh(timestamp: int, now_seconds: float) -> bool:
    return abs(now_seconds - timestamp) <= TIMESTAMP_WINDOW_SECONDS
