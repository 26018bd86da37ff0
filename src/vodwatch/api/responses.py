"""The two response shapes: ``{"result": 0, "msg": "成功", "data": ...}`` and the error shape
``{"result": code, "msg": "..."}``, rendered by one handler for every error."""

import logging
from typing import Any

import orjson
from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from vodwatch.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    VodwatchError,
    error_fields,
)

log = logging.getLogger("vodwatch.api")
SUCCESS_MESSAGE = "成功"


class JSONBody(Response):
    """UTF-8 JSON, non-ASCII kept as is (the seed's "成功", "李四")."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def success(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONBody:
    return JSONBody({"result": 0, "msg": SUCCESS_MESSAGE, "data": data}, status_code, headers)


def error_response(error: VodwatchError, headers: dict[str, str] | None = None) -> JSONBody:
    if error.retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(error.retry_after)}
    return JSONBody(error_fields(error), error.status, headers)


async def handle_vodwatch_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, VodwatchError)
    return error_response(error)


async def handle_http_exception(request: Request, error: Exception) -> Response:
    """Starlette's own 404 / 405 / 413, in our shape."""
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        mapped: VodwatchError = MethodNotAllowed(
            f"method {request.method} is not allowed on {request.url.path}"
        )
    elif error.status_code == 404:
        mapped = NotFound(f"no such endpoint: {request.method} {request.url.path}")
    elif error.status_code == 413:
        mapped = PayloadTooLarge("request body is too large")
    else:
        body = {"result": error.status_code * 100, "msg": str(error.detail)}
        return JSONBody(body, error.status_code, dict(error.headers or {}))
    return error_response(mapped, dict(error.headers or {}))


async def handle_unexpected(request: Request, error: Exception) -> Response:
    """A bug: log it with its trace, answer without one."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(InternalError("internal error; the service log has the details"))
