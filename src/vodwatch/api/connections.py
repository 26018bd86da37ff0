"""Slow and stuck clients: the HTTP protocol every worker runs.

uvicorn's httptools protocol, plus, per worker process:

- a deadline for each request head (``header_timeout``, counted from the connection's start or
  from the request's first byte) and for each whole body (``body_timeout``, counted from the
  end of the head). Past it the connection is answered 408 in the error shape, if nothing of an
  answer is on its way, and closed; a handler still reading the body sees a disconnect.
- a cap on open connections (``max_connections``). A connection over the cap makes room by
  closing the one that has waited longest for a request head (answered 503), or an idle
  keep-alive connection idle for longer still; with neither, its own request is answered 503.
- malformed HTTP answered 400 in the error shape instead of uvicorn's plain text.
- at most one warning every ``SUMMARY_SECONDS`` adding up what was cut, never a line per
  connection: that would let anyone fill the log.

Deadlines cost no timer per request. A connection waiting for a head or a body sits in one of
two dicts, in the order it started waiting (dicts keep insertion order), and a sweep a few
times a second closes those at the front whose time is up; the front of the head dict is also
the first to go when the cap is reached. A request whose head and body come in one read (the
usual case) never enters either dict.
"""

import asyncio
import contextlib
import logging
import math
import os
import resource
import weakref
from collections import Counter
from typing import Any

import httptools
import orjson
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from vodwatch.errors import (
    MalformedRequest,
    RequestTimeout,
    TooManyConnections,
    VodwatchError,
    error_fields,
)
from vodwatch.settings import (
    ConnectionLimits,
    connection_limits_from_environment,
    pool_size_from_environment,
)

log = logging.getLogger("vodwatch.connections")

SUMMARY_SECONDS = 10.0
SWEEP_SECONDS = 0.25  # at most: deadlines are kept to within this
# Descriptors kept for other uses than client connections (the database file, its journal,
# the log, the lock file, uvloop's own), besides 2 × pool size database connections.
FILES_FOR_OTHER_USES = 64
BUSY = TooManyConnections("too many open connections; try again shortly")

# What a connection waits for from its client.
HEAD, BODY, NOTHING = 0, 1, 2


class ConnectionGuard:
    """The deadlines, the cap and the counts of one worker (one per uvicorn ``ServerState``,
    whose ``connections`` set every protocol of the worker shares)."""

    def __init__(
        self,
        limits: ConnectionLimits,
        server_state: ServerState,
        loop: asyncio.AbstractEventLoop,
        keep_alive_timeout: float,
    ) -> None:
        self.limits = limits
        self.connections = server_state.connections
        self.loop = loop
        self.keep_alive_timeout = keep_alive_timeout
        self.max_connections = cap_by_open_file_limit(limits.max_connections)
        self.awaiting_head: dict[GuardedHttpProtocol, float] = {}  # connection: since when
        self.awaiting_body: dict[GuardedHttpProtocol, float] = {}
        self.cut_counts: Counter[str] = Counter()
        self.last_summary = -math.inf
        self.head_timeout_error = RequestTimeout(
            f"request head not received within {limits.header_timeout:g} s"
        )
        self.body_timeout_error = RequestTimeout(
            f"request body not received within {limits.body_timeout:g} s"
        )
        self.sweep_every = min(SWEEP_SECONDS, limits.header_timeout / 4, limits.body_timeout / 4)
        loop.call_later(self.sweep_every, self.sweep)

    def make_room(self, newcomer: "GuardedHttpProtocol") -> None:
        """``newcomer`` took the worker over its cap: close connections that wait for a client
        until it fits, or answer its own request 503 if none does."""
        while len(self.connections) > self.max_connections:
            victim = self.longest_waiting(newcomer)
            if victim is None:
                newcomer.refuse()
                return
            if victim.cut(BUSY if victim.waiting_for == HEAD else None):
                self.cut_counts["evictions"] += 1

    def longest_waiting(self, newcomer: "GuardedHttpProtocol") -> "GuardedHttpProtocol | None":
        """The connection waiting for a request head for longest, or the keep-alive connection
        idle for longest if that is longer; never ``newcomer``."""
        head = next(iter(self.awaiting_head), None)
        if head is newcomer:  # it came last: nobody else waits for a head
            head = None
        now = self.loop.time()
        if head is not None and now - self.awaiting_head[head] >= self.keep_alive_timeout:
            return head  # no keep-alive connection stays idle that long: no need to look
        idle, idle_since = None, now
        for connection in self.connections:  # only over the cap: a few thousand at most
            if isinstance(connection, GuardedHttpProtocol):
                timer = connection.timeout_keep_alive_task
                if timer is not None and timer.when() - self.keep_alive_timeout < idle_since:
                    idle, idle_since = connection, timer.when() - self.keep_alive_timeout
        if idle is not None and (head is None or idle_since < self.awaiting_head[head]):
            return idle
        return head

    def sweep(self) -> None:
        try:
            now = self.loop.time()
            self.expire(
                self.awaiting_head,
                now - self.limits.header_timeout,
                self.head_timeout_error,
                "header_timeouts",
            )
            self.expire(
                self.awaiting_body,
                now - self.limits.body_timeout,
                self.body_timeout_error,
                "body_timeouts",
            )
            if self.cut_counts and now - self.last_summary >= SUMMARY_SECONDS:
                self.summarise()
                self.last_summary = now
        finally:
            self.loop.call_later(self.sweep_every, self.sweep)

    def expire(
        self,
        waiting: "dict[GuardedHttpProtocol, float]",
        started_by: float,
        error: VodwatchError,
        count: str,
    ) -> None:
        """Cut the connections of ``waiting`` that started waiting at ``started_by`` or before,
        answering ``error``."""
        expired = []
        for connection, since in waiting.items():
            if since > started_by:
                break  # in the order they started waiting: the rest have time left
            expired.append(connection)
        for connection in expired:
            if connection.cut(error):
                self.cut_counts[count] += 1

    def summarise(self) -> None:
        counts = self.cut_counts
        log.warning(
            "closed %d connections: %d header timeouts, %d body timeouts, %d evictions, "
            "%d refused over the cap, %d malformed requests",
            counts.total(),
            counts["header_timeouts"],
            counts["body_timeouts"],
            counts["evictions"],
            counts["refused"],
            counts["malformed"],
            extra={
                "closed": counts.total(),
                "header_timeouts": counts["header_timeouts"],
                "body_timeouts": counts["body_timeouts"],
                "evictions": counts["evictions"],
                "refused": counts["refused"],
                "malformed": counts["malformed"],
                "open_connections": len(self.connections),
                "max_connections": self.max_connections,
                "pid": os.getpid(),
            },
        )
        counts.clear()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under the worker's ``ConnectionGuard``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = guard_for(server_state, self.loop, config)
        self.waiting_for = HEAD
        self.waiting_in: dict[GuardedHttpProtocol, float] | None = None  # a dict of the guard
        self.is_over_cap = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        self.wait_in(guard.awaiting_head)
        if len(self.connections) > guard.max_connections:
            guard.make_room(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, but a malformed request is answered in the error shape and counted for
        # the summary instead of logged one line each.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.send_400_response(describe_parser_error(error))
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return
            self._unsupported_upgrade_warning()
        # A head or a body left incomplete by this read starts its clock.
        if self.waiting_in is None and self.waiting_for != NOTHING:
            guard = self.guard
            self.wait_in(guard.awaiting_head if self.waiting_for == HEAD else guard.awaiting_body)

    # The parser calls these for every request: the base class is named rather than found
    # with super(), which costs more than the rest of each of them on Python 3.11.

    def on_message_begin(self) -> None:
        self.waiting_for = HEAD
        HttpToolsProtocol.on_message_begin(self)

    def on_headers_complete(self) -> None:
        self.waiting_for = BODY
        if self.waiting_in is not None:
            self.stop_waiting()
        if self.is_over_cap and len(self.connections) <= self.guard.max_connections:
            self.is_over_cap = False  # room was made meanwhile: serve it after all
            self.app = self.config.loaded_app
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self.waiting_for = NOTHING
        if self.waiting_in is not None:
            self.stop_waiting()
            if self.cycle.response_complete and not self.pipeline:
                # Answered before its body was in (a 413, say): each read of the rest of the
                # body cancelled uvicorn's keep-alive timer, and nothing else arms it again.
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
        HttpToolsProtocol.on_message_complete(self)

    def send_400_response(self, msg: str) -> None:
        self.guard.cut_counts["malformed"] += 1
        self.cut(MalformedRequest(f"malformed HTTP request: {msg}"))

    def wait_in(self, waiting: "dict[GuardedHttpProtocol, float]") -> None:
        waiting[self] = self.loop.time()
        self.waiting_in = waiting

    def stop_waiting(self) -> None:
        if self.waiting_in is not None:
            self.waiting_in.pop(self, None)
            self.waiting_in = None

    def cut(self, error: VodwatchError | None) -> bool:
        """Close the connection, first answering ``error`` (if any) when nothing of an answer
        to the request it concerns is on its way; a handler still reading the body sees a
        disconnect. False if the connection was closing already."""
        self.stop_waiting()
        self.connections.discard(self)  # it no longer counts against the cap
        if self.transport.is_closing():
            return False
        cycle = self.cycle
        is_answering = cycle is not None and not cycle.response_complete
        if error is not None:
            if self.waiting_for == BODY:  # the request being answered is the late one
                can_answer = is_answering and not cycle.response_started and not self.pipeline
            else:  # a new request, behind any that is being answered
                can_answer = not is_answering and not self.pipeline
            if can_answer:
                self.transport.write(render_error(error, self.server_state.default_headers))
        if cycle is not None and is_answering:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
        return True

    def refuse(self) -> None:
        """Answer this connection's request 503: it came over the cap and no other connection
        could be let go (unless one is by the time its head is in)."""
        self.is_over_cap = True
        self.app = self.answer_busy

    async def answer_busy(
        self, _scope: Scope, _receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        self.guard.cut_counts["refused"] += 1
        body = orjson.dumps(error_fields(BUSY))
        await send(
            {
                "type": "http.response.start",
                "status": BUSY.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def render_error(error: VodwatchError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response carrying ``error`` in the error shape, then closing."""
    body = orjson.dumps(error_fields(error))
    parts = [STATUS_LINE[error.status]]
    for name, value in default_headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
    parts.append(b"connection: close\r\n\r\n")
    parts.append(body)
    return b"".join(parts)


def describe_parser_error(error: httptools.HttpParserError) -> str:
    """llhttp's reason, e.g. "Duplicate Content-Length"."""
    if isinstance(error, httptools.HttpParserCallbackError):
        # Raised by a callback of uvicorn's or ours, not by the parser: a bug.
        log.error("cannot handle a request head", exc_info=error.__context__)
        return "cannot read the request head"
    return str(error)


_guards: "weakref.WeakKeyDictionary[ServerState, ConnectionGuard]" = weakref.WeakKeyDictionary()


def guard_for(
    server_state: ServerState, loop: asyncio.AbstractEventLoop, config: Config
) -> ConnectionGuard:
    """The worker's guard, made by its first connection with the limits of the environment."""
    guard = _guards.get(server_state)
    if guard is None:
        guard = ConnectionGuard(
            connection_limits_from_environment(), server_state, loop, config.timeout_keep_alive
        )
        _guards[server_state] = guard
    return guard


def raise_open_file_limit() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (worker processes inherit
    it), so that the connection cap, not running out of descriptors, decides; returns the soft
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        # An unlimited hard limit can be above what the kernel allows: then soft stays.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cap_by_open_file_limit(max_connections: int) -> int:
    """``max_connections``, lowered (with a warning) if the open-file limit would run out
    first: a worker out of descriptors accepts and drops every new connection unanswered."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    room = max(soft - FILES_FOR_OTHER_USES - 2 * pool_size_from_environment(), 1)
    if max_connections <= room:
        return max_connections
    log.warning(
        "max connections lowered from %d to %d: the open-file limit is %d",
        max_connections,
        room,
        soft,
        extra={"max_connections": room, "open_file_limit": soft},
    )
    return room
