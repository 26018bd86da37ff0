"""Browser origins a tenant allows to send player beacons (CORS): pure helpers."""

import re
from collections.abc import Iterable

ANY_ORIGIN = "*"
_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?")


def normalize_origin(text: str) -> str:
    """``https://Example.com:443/`` → ``https://example.com``; raises ``ValueError`` for what
    is not a web origin (scheme, host and optional port, nothing else) or ``*``."""
    if text == ANY_ORIGIN:
        return text
    candidate = text.strip().rstrip("/").lower()
    match = _ORIGIN.fullmatch(candidate)
    if match is None:
        raise ValueError(
            f"{text!r} is not an origin: write scheme://host[:port], e.g. https://learn.example.com"
        )
    scheme, host, port = match.groups()
    if port in {":80", ":443"} and port == {"http": ":80", "https": ":443"}[scheme]:
        port = None
    return f"{scheme}://{host}{port or ''}"


def is_origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Whether a request's ``Origin`` header value is among ``allowed`` (or ``*`` is)."""
    allowed = set(allowed)
    if ANY_ORIGIN in allowed:
        return True
    try:
        return normalize_origin(origin) in allowed
    except ValueError:
        return origin in allowed  # "null" and other opaque origins, listed verbatim


def is_same_origin(origin: str, scheme: str, host: str, public_origin: str = "") -> bool:
    """Whether a page served by vodwatch itself sent the request: its origin is
    ``public_origin`` when the operator set one (``--public-url``), else the scheme and
    ``Host`` the request came with (a page on http:// is not the https:// service's)."""
    try:
        normalized = normalize_origin(origin)
    except ValueError:
        return False  # "null" and other opaque origins are nobody's own
    if public_origin:
        return normalized == public_origin
    if not host:
        return False
    try:
        return normalized == normalize_origin(f"{scheme}://{host}")
    except ValueError:
        return False
