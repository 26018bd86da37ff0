"""One structured log line per request: method, path, status, duration. Never the query
string, headers or body (they carry viewer ids, signatures, playback tokens, and the
dashboard's passwords, session cookies and CSRF tokens), nor the viewer id in the path of a
dashboard viewer page."""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("vodwatch.access")
VIEWER_PAGES = "/dashboard/viewers/"


def loggable_path(path: str) -> str:
    """``path``, with the viewer id of a dashboard viewer page left out."""
    return VIEWER_PAGES + "…" if path.startswith(VIEWER_PAGES) else path


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            authkey = next(
                (
                    value.decode("latin-1")
                    for name, value in scope["headers"]
                    if name == b"tk-authkey"
                ),
                None,
            )
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": loggable_path(scope["path"]),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "authkey": authkey,
                },
            )
