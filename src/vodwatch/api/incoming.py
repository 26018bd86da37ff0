"""Reading a request: the body (bounded), the raw query, JSON that refuses NaN and friends."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from starlette.requests import Request

from vodwatch.api.auth import Incoming, TenantDirectory
from vodwatch.errors import InvalidParameter, PayloadTooLarge
from vodwatch.ingest.writer import IngestWriter
from vodwatch.signing import parse_query
from vodwatch.store.database import Database

MAX_BODY_BYTES = 1024 * 1024


@dataclass
class Services:
    """What every handler needs, built once per process."""

    db: Database
    clock: Callable[[], float] = time.time  # unix seconds; tests move it
    directory: TenantDirectory = field(init=False)
    writer: IngestWriter = field(init=False)

    def __post_init__(self) -> None:
        self.directory = TenantDirectory(self.db)
        self.writer = IngestWriter(self.db)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


async def read_incoming(request: Request, max_body: int = MAX_BODY_BYTES) -> Incoming:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise PayloadTooLarge(f"request body is {declared} bytes; at most {max_body} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise PayloadTooLarge(f"request body is over {max_body} bytes")
        chunks.append(chunk)
    try:
        query = parse_query(request.scope.get("query_string", b""))
    except UnicodeDecodeError:
        raise InvalidParameter("query string is not valid UTF-8") from None
    return Incoming(
        method=request.method,
        path=request.url.path,
        query=query,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=b"".join(chunks),
    )


def parse_json(body: bytes, what: str = "body") -> object:
    """Decode JSON; NaN, Infinity and invalid UTF-8 are errors, as in strict JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidParameter(f"{what} is not valid JSON: {error}") from None
