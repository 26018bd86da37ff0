"""Reading a request: the body (bounded), the raw query, JSON that refuses NaN and friends."""

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from starlette.requests import ClientDisconnect, Request

from vodwatch.api.auth import AUTH_HEADERS, Authenticator, Incoming, TenantDirectory
from vodwatch.errors import ClientDisconnected, InvalidParameter, MissingAuth, PayloadTooLarge
from vodwatch.ingest.health import WriteHealth
from vodwatch.ingest.writer import IngestWriter
from vodwatch.settings import ServiceSettings
from vodwatch.signing import parse_query
from vodwatch.store.database import Database
from vodwatch.store.signed_requests import ReplayGuard

MAX_BODY_BYTES = 1024 * 1024
_AUTH_HEADERS = frozenset(name.encode("latin-1") for name in AUTH_HEADERS)


@dataclass
class Services:
    """What every handler needs, built once per process."""

    db: Database
    clock: Callable[[], float] = time.time  # unix seconds; tests move it
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    directory: TenantDirectory = field(init=False)
    health: WriteHealth = field(init=False)
    writer: IngestWriter = field(init=False)
    replay: ReplayGuard = field(init=False)
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        self.directory = TenantDirectory(self.db)
        self.health = WriteHealth()
        self.writer = IngestWriter(
            self.db,
            health=self.health,
            max_queued_beacons=self.settings.max_queued_beacons,
            deadline_seconds=self.settings.write_timeout,
        )
        self.replay = ReplayGuard(self.db)
        self.auth = Authenticator(self.directory, self.replay, self.settings)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def close(self) -> None:
        self.writer.close()
        self.replay.dispose()
        self.db.dispose()


async def read_incoming(request: Request, max_body: int = MAX_BODY_BYTES) -> Incoming:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise PayloadTooLarge(f"request body is {declared} bytes; at most {max_body} bytes")
    _refuse_repeated_auth_headers(request.scope["headers"])
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge(f"request body is over {max_body} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected(
            "the client disconnected before sending the whole body; nothing was done"
        ) from None
    try:
        query = parse_query(request.scope.get("query_string", b""))
    except UnicodeDecodeError:
        raise InvalidParameter("query string is not valid UTF-8") from None
    client = request.scope.get("client")
    return Incoming(
        method=request.method,
        path=request.url.path,
        query=query,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=b"".join(chunks),
        client=client[0] if client else "",
        scheme=request.scope.get("scheme", "http"),
    )


def _refuse_repeated_auth_headers(headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Two ``Tk-authkey`` headers (say) could authenticate as one tenant and log another."""
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in _AUTH_HEADERS:
            if name in seen:
                count = Counter(name for name, _ in headers)[name]
                raise MissingAuth(f"header {name.decode('latin-1')} is given {count} times; once")
            seen.add(name)


def parse_json(body: bytes, what: str = "body") -> object:
    """Decode JSON; NaN, Infinity and invalid UTF-8 are errors, as in strict JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidParameter(f"{what} is not valid JSON: {error}") from None
