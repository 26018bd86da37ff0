"""The demo tenant: created with a dashboard account, filled with ``vodwatch.demo``'s plan
through the service itself, and removed with everything of it.

**Through the real ingest path.** The viewing goes in as what it pretends to be: the catalog
as signed ``PUT /vod/webapi/media/...`` requests, the viewing as the beacons a browser tracker
sends, to the service's own ASGI app in this process (``create_app``: authentication, the
beacon checks, the reality bounds, the group-commit writer), called as an HTTP server calls it.
So every stored figure has passed the bounds that real viewing passes, and the demo shows what
the service does with it.

**Player beacons, not server beacons.** Each sitting gets a playback token minted for it, as a
customer backend would mint one for each page it renders, and its beacons carry it. Server
beacons (Tk headers, ``startedAt``) could import three weeks of history in one request, but
they are trusted: no clock bounds apply to them, so they would prove nothing about the
figures, and their visits would not have the player clock of each viewer and video.

**A simulated clock, per request.** Player beacons are bounded by the server clock, so the
three weeks must pass for the service as the viewing would: the app's clock reads a context
variable that holds the instant of the request being handled (``call_asgi`` runs the app in
the task that makes the request). Each viewer's beacons go one after the other, in the order
and at the instants their browser sends them; many viewers' requests are in flight at once,
as on a real service, and the writer stores them in groups, which is what makes loading fast.
"""

import asyncio
import contextvars
import json
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Scope

from vodwatch.api.app import create_app
from vodwatch.client import VodwatchClient, media_path
from vodwatch.demo import DemoPlan, PlannedBeacon, Sitting, viewer_beacons
from vodwatch.playback_token import mint_playback_token
from vodwatch.settings import DEFAULT_HOST, DEFAULT_PORT
from vodwatch.store.accounts import create_account, find_account
from vodwatch.store.database import Database
from vodwatch.store.tenants import (
    Tenant,
    count_tenants,
    create_tenant,
    delete_tenant,
    find_demo_tenant,
    lock_tenant_creation,
)

DEMO_TENANT_NAME = "Demo school"
DEMO_EMAIL = "demo@example.com"
DASHBOARD_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/dashboard"
TOKEN_TTL_SECONDS = 6 * 3600  # a token per sitting, as a backend mints one per page
MAX_REQUESTS_IN_FLIGHT = 256
RETRIES = 5  # of a request answered 429 or 503, as a tracker retries
_BASE_URL = "http://127.0.0.1"  # for signing: requests never leave the process
BEACON_PATH = "/vod/webapi/beacon"
PLAYER_HEADERS = {"Content-Type": "text/plain;charset=UTF-8"}  # what sendBeacon sends

_request_time: contextvars.ContextVar[float] = contextvars.ContextVar("demo_request_time")


class DemoError(Exception):
    """The demo cannot be loaded or was not loaded whole; the message says why."""


class DemoExists(DemoError):
    """There is a demo tenant already: there is never a second one."""

    def __init__(self, tenant: Tenant) -> None:
        super().__init__(
            f"a demo tenant exists already ({tenant.name!r}, {tenant.authkey}): remove it "
            "first with 'vodwatch demo --remove'"
        )
        self.tenant = tenant


@dataclass(frozen=True, slots=True)
class DemoLogin:
    tenant: Tenant
    email: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class RemovedDemo:
    tenant: Tenant
    rows: dict[str, int]  # deleted per table


def create_demo_tenant(
    db: Database, plan: DemoPlan, now_ms: int, *, if_empty: bool = False
) -> DemoLogin | None:
    """The demo tenant, empty, and its dashboard account with a new random password.

    ``DemoExists`` when there is a demo tenant already (there is never a second one);
    ``DemoError`` when another tenant has the demo's e-mail address. With ``if_empty``, None
    (and nothing done) when the database has any tenant.
    """
    password = secrets.token_urlsafe(12)
    with db.write() as conn:
        lock_tenant_creation(conn)
        if if_empty and count_tenants(conn):
            return None
        existing = find_demo_tenant(conn, db.secret_box)
        if existing is not None:
            raise DemoExists(existing)
        if find_account(conn, DEMO_EMAIL) is not None:
            raise DemoError(f"the dashboard account {DEMO_EMAIL} belongs to another tenant")
        tenant = create_tenant(
            conn, db.secret_box, DEMO_TENANT_NAME, plan.starts_at_ms, is_demo=True
        )
        create_account(conn, tenant.tenant_id, DEMO_EMAIL, password, now_ms)
    return DemoLogin(tenant, DEMO_EMAIL, password)


def remove_demo(db: Database) -> list[RemovedDemo]:
    """Delete every demo tenant with all of its data (accounts, catalog, viewers, visits,
    signed requests), in one transaction; other tenants are left as they are."""
    removed = []
    with db.write() as conn:
        while (tenant := find_demo_tenant(conn, db.secret_box)) is not None:
            removed.append(RemovedDemo(tenant, delete_tenant(conn, tenant.tenant_id)))
    return removed


def count_beacons(plan: DemoPlan) -> int:
    return sum(len(stream) for stream in viewer_beacons(plan).values())


def load_demo(
    db: Database,
    tenant: Tenant,
    plan: DemoPlan,
    *,
    on_sent: Callable[[int], None] = lambda count: None,
) -> int:
    """Send ``plan`` to the service on ``db`` as ``tenant``'s catalog and players; the number
    of beacons sent (``on_sent(n)`` is told of each ``n`` more). ``DemoError`` when the service
    refuses something."""
    app = create_app(db, clock=_request_clock)
    try:
        # An event loop of its own, in a thread of its own: the caller's thread may be running
        # one already (a notebook, or Playwright's sync API in the test session).
        with ThreadPoolExecutor(1, thread_name_prefix="vodwatch-demo") as pool:
            return pool.submit(asyncio.run, _send_plan(app, tenant, plan, on_sent)).result()
    finally:
        app.state.services.close()  # stores what is queued, then stops the writer


def _request_clock() -> float:
    return _request_time.get()


async def _send_plan(
    app: ASGIApp, tenant: Tenant, plan: DemoPlan, on_sent: Callable[[int], None]
) -> int:
    await _put_catalog(app, tenant, plan)
    names = {viewer.user_id: viewer.user_name for viewer in plan.viewers}
    in_flight = asyncio.Semaphore(MAX_REQUESTS_IN_FLIGHT)
    tasks = [
        asyncio.create_task(_send_viewer(app, in_flight, tenant, names[user_id], stream, on_sent))
        for user_id, stream in viewer_beacons(plan).items()
    ]
    try:
        sent = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return sum(sent)


async def _put_catalog(app: ASGIApp, tenant: Tenant, plan: DemoPlan) -> None:
    at = plan.starts_at_ms / 1000
    with VodwatchClient(_BASE_URL, tenant.authkey, tenant.secret, clock=lambda: at) as signer:
        for video in plan.videos:
            body: dict[str, Any] = {
                "videoTitle": video.title,
                "duration": video.duration_ms / 1000,
            }
            if video.completion_threshold is not None:
                body["completionThreshold"] = video.completion_threshold
            content = json.dumps(body, ensure_ascii=False).encode()
            path = media_path(video.asset_id)
            headers = signer.signed_headers("PUT", path, [], content)
            await _request(app, at, "PUT", path, content, headers)


async def _send_viewer(
    app: ASGIApp,
    in_flight: asyncio.Semaphore,
    tenant: Tenant,
    user_name: str,
    stream: Sequence[tuple[Sitting, PlannedBeacon]],
    on_sent: Callable[[int], None],
) -> int:
    """One viewer's browser: their beacons one after the other, each at its instant."""
    tokens: dict[str, str] = {}
    for sitting, beacon in stream:
        token = tokens.get(sitting.session_id)
        if token is None:  # the page of a sitting is rendered as it starts
            token = tokens[sitting.session_id] = mint_playback_token(
                tenant.authkey,
                tenant.secret,
                sitting.user_id,
                sitting.asset_id,
                user_name=user_name,
                ttl_seconds=TOKEN_TTL_SECONDS,
                now=sitting.starts_at_ms / 1000,
            )
        content = json.dumps(_beacon_body(token, beacon)).encode()
        async with in_flight:
            await _request(app, beacon.at_ms / 1000, "POST", BEACON_PATH, content, PLAYER_HEADERS)
        on_sent(1)
    return len(stream)


def _beacon_body(token: str, beacon: PlannedBeacon) -> dict[str, Any]:
    return {
        "token": token,
        "sessionId": beacon.session_id,
        "seq": beacon.seq,
        "segments": [[start / 1000, end / 1000] for start, end in beacon.segments],
        "playedMs": beacon.played_ms,
        "position": beacon.position_ms / 1000,
        "ended": beacon.is_ended,
    }


async def _request(
    app: ASGIApp,
    at_seconds: float,
    method: str,
    path: str,
    content: bytes,
    headers: dict[str, str],
) -> None:
    """One request at the service's instant ``at_seconds``; again after a while when it is
    answered 429 or 503 (a busy writer), as a tracker does; ``DemoError`` when refused."""
    _request_time.set(at_seconds)
    for attempt in range(1, RETRIES + 1):
        status, body = await call_asgi(app, method, path, content, headers)
        if status not in (429, 503) or attempt == RETRIES:
            break
        await asyncio.sleep(0.2 * attempt)
    answer = json.loads(body)
    if status != 200 or answer.get("result") != 0:
        raise DemoError(
            f"the service refused the demo's {method} {path}: HTTP {status}, {answer.get('msg')}"
        )


async def call_asgi(
    app: ASGIApp, method: str, path: str, content: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One HTTP request to ``app`` in this task, as an HTTP server hands it over; the status
    and body of the answer. (An HTTP client over an ASGI transport costs as much again as the
    service's own work per request here.)"""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-length", str(len(content)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 80),
    }
    answered = asyncio.Event()
    is_body_sent = False
    status = 500
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal is_body_sent
        if not is_body_sent:
            is_body_sent = True
            return {"type": "http.request", "body": content, "more_body": False}
        await answered.wait()  # the client stays until it has the whole answer
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)
