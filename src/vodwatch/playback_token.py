"""Playback tokens (SPEC §5): short-lived HS256 JWTs that let a browser report one viewer's
viewing of one video without ever holding the tenant secret.

Claims: ``iss`` authkey, ``sub`` userId, ``name`` userName, ``aid`` assetId, optional ``title``
and ``dur`` (seconds), optional ``att`` (the attempt, 1..64 characters: SPEC §10), ``exp`` at
most 24 h ahead.
"""

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from vodwatch.errors import InvalidCredentials, MissingAuth
from vodwatch.formats import seconds_to_ms

MAX_LIFETIME_SECONDS = 24 * 3600
CLOCK_LEEWAY_SECONDS = 60
MAX_ATTEMPT_ID_LENGTH = 64
ATTEMPT_ID_RULE = "1 to 64 characters without control characters"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_attempt_id(value: str) -> bool:
    """An attempt id (SPEC §10): 1..64 characters, no control characters."""
    return 0 < len(value) <= MAX_ATTEMPT_ID_LENGTH and _CONTROL.search(value) is None


ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class PlaybackClaims:
    authkey: str
    user_id: str
    user_name: str | None
    asset_id: str
    title: str | None
    duration_ms: int | None
    expires_at: int
    attempt_id: str = ""  # "": no attempt named


def mint_playback_token(
    authkey: str,
    secret: str,
    user_id: str,
    asset_id: str,
    *,
    user_name: str | None = None,
    title: str | None = None,
    duration: float | None = None,
    attempt_id: str | None = None,
    ttl_seconds: int = 6 * 3600,
    now: float | None = None,
) -> str:
    """A playback token for one viewer and one video, valid ``ttl_seconds`` (at most 24 h)."""
    if not 0 < ttl_seconds <= MAX_LIFETIME_SECONDS:
        raise ValueError("ttl_seconds must be between 1 and 86400")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": authkey,
        "sub": user_id,
        "aid": asset_id,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if user_name is not None:
        claims["name"] = user_name
    if title is not None:
        claims["title"] = title
    if duration is not None:
        claims["dur"] = duration
    if attempt_id is not None:
        claims["att"] = attempt_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_issuer(token: str) -> str:
    """The ``iss`` claim, read before the signature is checked, to find the tenant's secret."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise MissingAuth("token: not a JWT") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise MissingAuth("token: claim 'iss' (the tenant authkey) is missing")
    return issuer


def verify_playback_token(
    token: str, secret_for: Callable[[str], str | tuple[str, ...] | None], now: float
) -> PlaybackClaims:
    """Check signature, expiry and claims; raise ``InvalidCredentials`` for any forgery.

    ``secret_for(authkey)`` returns the tenant secret (or its valid secrets, any of which
    may have signed), or None for an unknown authkey (which gets the same answer as a bad
    signature).
    """
    authkey = read_issuer(token)
    found = secret_for(authkey)
    candidates = (found,) if isinstance(found, str) else found or ()
    claims = _decode(token, candidates)
    expires_at = claims["exp"]
    not_before = claims.get("nbf", 0)
    if (
        not _is_number(expires_at)
        or not _is_number(not_before)
        or expires_at + CLOCK_LEEWAY_SECONDS < now
        or not_before - CLOCK_LEEWAY_SECONDS > now
    ):
        raise InvalidCredentials("token: invalid or expired playback token")
    if expires_at > now + MAX_LIFETIME_SECONDS + CLOCK_LEEWAY_SECONDS:
        raise InvalidCredentials("token: 'exp' is more than 24 h ahead")
    return PlaybackClaims(
        authkey=authkey,
        user_id=_text_claim(claims, "sub", required=True) or "",
        user_name=_text_claim(claims, "name"),
        asset_id=_text_claim(claims, "aid", required=True) or "",
        title=_text_claim(claims, "title"),
        duration_ms=_duration_claim(claims.get("dur")),
        expires_at=int(expires_at),
        attempt_id=_attempt_claim(claims.get("att")),
    )


def _decode(token: str, secrets: tuple[str, ...]) -> dict[str, Any]:
    """The claims of a token signed with one of ``secrets``."""
    for secret in secrets:
        try:
            return jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                # Times are checked against the service clock (which tests can move).
                options={
                    "require": ["exp", "sub", "aid"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            break
    raise InvalidCredentials("token: invalid or expired playback token")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_unexpired(claims: PlaybackClaims, now: float) -> bool:
    """Whether verified ``claims`` are still within their lifetime (with the same leeway)."""
    return claims.expires_at + CLOCK_LEEWAY_SECONDS >= now


def _text_claim(claims: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidCredentials(f"token: claim '{name}' must be a non-empty string")
    return value


def _attempt_claim(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not is_attempt_id(value):
        raise InvalidCredentials(f"token: claim 'att' must be {ATTEMPT_ID_RULE}")
    return value


def _duration_claim(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidCredentials("token: claim 'dur' must be a number of seconds")
    if value <= 0:
        raise InvalidCredentials("token: claim 'dur' must be > 0")
    return seconds_to_ms(value)
