"""Field checks shared by beacons, the catalog and the report: pure, each raising
``InvalidParameter`` with a message that names the field and says what it must be."""

import math
import re
from typing import TypeGuard

from vodwatch.errors import InvalidParameter

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 512
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def require_int(name: str, value: object, *, low: int, high: int) -> int:
    """An integer in ``[low, high]``; booleans and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"{name} must be an integer, got {_describe(value)}")
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}, got {value}")
    return value


def require_number(name: str, value: object, *, low: float, high: float) -> float:
    """A finite number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameter(f"{name} must be a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise InvalidParameter(f"{name} must be a finite number, got {value}")
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    return float(value)


def require_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameter(f"{name} must be true or false, got {_describe(value)}")
    return value


def require_text(name: str, value: object, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Any string without control characters, at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise InvalidParameter(f"{name} must be a string, got {_describe(value)}")
    if len(value) > max_length:
        raise InvalidParameter(f"{name} must be at most {max_length} characters")
    if _CONTROL.search(value):
        raise InvalidParameter(f"{name} must not contain control characters")
    return value


def require_identifier(name: str, value: object) -> str:
    """A userId or assetId: 1..128 characters, no control characters, no ``/``."""
    text = require_text(name, value, max_length=MAX_ID_LENGTH)
    if not text.strip(" "):  # (no control characters are left: blank means spaces only)
        raise InvalidParameter(f"{name} must not be empty")
    if "/" in text:
        raise InvalidParameter(f"{name} must not contain '/'")
    return text


def is_identifier(value: object) -> TypeGuard[str]:
    """Whether ``require_identifier`` accepts ``value`` as it is (a quick check, no message)."""
    return (
        type(value) is str
        and 0 < len(value) <= MAX_ID_LENGTH
        and "/" not in value
        and _CONTROL.search(value) is None
        and bool(value.strip(" "))
    )


def require_session_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise InvalidParameter(f"{name} must be 8 to 64 characters of A-Z a-z 0-9 _ -")
    return value


def parse_int_text(name: str, text: str, *, low: int, high: int) -> int:
    """An integer given as text (a query parameter)."""
    stripped = text.strip()
    if not re.fullmatch(r"[+-]?\d{1,18}", stripped):
        raise InvalidParameter(f"{name} must be an integer, got {text!r}")
    return require_int(name, int(stripped), low=low, high=high)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return repr(value)
