"""Pieces of the OpenAPI document: the two response shapes, field schemas that say exactly
what the service accepts (so that generated clients and fuzzers send what it takes), and the
answers each endpoint may give, errors included."""

from typing import Any

from vodwatch.validation import MAX_ID_LENGTH, MAX_TEXT_LENGTH

# Any text but control characters (validation.require_text).
TEXT_PATTERN = r"^[^\u0000-\u001f\u007f]*$"
# A userId or assetId: not blank, no control characters, no "/" (validation.require_identifier).
IDENTIFIER_PATTERN = r"^[^\u0000-\u001f\u007f/]*[^\u0000-\u0020\u007f/][^\u0000-\u001f\u007f/]*$"


def text_schema(max_length: int = MAX_TEXT_LENGTH, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "pattern": TEXT_PATTERN, **extra}


def identifier_schema(**extra: Any) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_LENGTH,
        "pattern": IDENTIFIER_PATTERN,
        **extra,
    }


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["result", "msg"],
    "properties": {
        "result": {"type": "integer", "description": "non-zero: what went wrong (README)"},
        "msg": {"type": "string", "description": "what is wrong, naming the parameter"},
    },
    "additionalProperties": False,
}

_ERRORS = {
    400: "A parameter, field or the body is wrong (result 40010; 40000: body cut short)",
    401: "Missing, malformed or invalid credentials (40001, 40002, 40003), or a replay (40004)",
    403: "A browser page on an origin the tenant has not allowed (40300)",
    404: "No such video in the catalog (40400)",
    413: "Body over 1 MiB, or too many beacons or segments (41300)",
    429: "A rate limit (42900): failed authentications, or beacons per playback token",
    500: "A bug (50000): the service log has the details",
    503: "The database cannot answer or write (50300), or the ingest queue is full (42900)",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def responses(data_schema: dict[str, Any], *errors: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: 200 with ``{"result": 0, "msg": "成功", "data": ...}`` and
    each of ``errors`` (plus 500) in the error shape."""
    documented: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "成功 (success)",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["result", "msg", "data"],
                        "properties": {
                            "result": {"type": "integer", "enum": [0]},
                            "msg": {"type": "string"},
                            "data": data_schema,
                        },
                    }
                }
            },
        }
    }
    for status in sorted({*errors, 500}):
        documented[status] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        if status in (429, 503):
            documented[status]["headers"] = _RETRY_AFTER
    return documented


SIGNED_ERRORS = (400, 401, 413, 429, 503)  # every signed endpoint may answer these
