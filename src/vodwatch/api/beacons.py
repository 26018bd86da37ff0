"""``POST /vod/webapi/beacon``: beacons from players (playback token) and servers (Tk headers)."""

import contextlib
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import Incoming, TenantNotCached, has_server_auth
from vodwatch.api.incoming import Services, parse_json, read_incoming
from vodwatch.api.openapi import SIGNED_ERRORS, identifier_schema, responses, text_schema
from vodwatch.api.responses import error_response, success
from vodwatch.beacon.model import (
    MAX_BEACON_RATE,
    MAX_BEACONS_PER_REQUEST,
    MAX_MEDIA_SECONDS,
    MAX_PLAYED_MS,
    MAX_SEGMENTS_PER_BEACON,
    MAX_SEQ,
    parse_beacons,
)
from vodwatch.errors import InvalidParameter, OriginNotAllowed, ReplayedRequest, VodwatchError
from vodwatch.ingest.batch import IngestRequest
from vodwatch.origins import is_origin_allowed, is_same_origin
from vodwatch.playback_token import PlaybackClaims
from vodwatch.store.tenants import Tenant

router = APIRouter()
# Larger bodies are validated in a thread: ~5 ms of work at most on the event loop, and the
# usual batches of 100 beacons (~20 KB) stay there (threads would fight it for the GIL).
CHECK_ON_LOOP_MAX_BYTES = 64 * 1024
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain")

MEDIA_SECONDS = {"type": "number", "minimum": 0, "maximum": MAX_MEDIA_SECONDS}
BEACON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sessionId", "seq"],
    "properties": {
        "token": {"type": "string", "description": "playback JWT (players only)"},
        "sessionId": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
        "seq": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ},
        "segments": {
            "type": "array",
            "items": {"type": "array", "items": MEDIA_SECONDS, "minItems": 2, "maxItems": 2},
            "maxItems": MAX_SEGMENTS_PER_BEACON,
            "description": "media-time ranges [start, end] in seconds played since the "
            "previous beacon (start <= end)",
        },
        "playedMs": {"type": "integer", "minimum": 0, "maximum": MAX_PLAYED_MS},
        "position": MEDIA_SECONDS,
        "ended": {"type": "boolean"},
        "duration": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_MEDIA_SECONDS},
        "userId": identifier_schema(description="server beacons only"),
        "userName": text_schema(description="server beacons only"),
        "assetId": identifier_schema(description="server beacons only"),
        "startedAt": {"type": "integer", "description": "server beacons only, unix seconds"},
        "attemptId": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "server beacons only: the attempt (players: the token's 'att')",
        },
        "rate": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_BEACON_RATE,
            "description": "playback rate while the segments played (default 1)",
        },
        "hidden": {
            "type": "boolean",
            "description": "the page was hidden while the segments played (default false)",
        },
    },
    "additionalProperties": False,
}
BEACON_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["accepted", "duplicates", "statuses"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "statuses": {
            "type": "array",
            "items": {"type": "string", "enum": ["accepted", "duplicate"]},
        },
    },
}


@router.post(
    "/vod/webapi/beacon",
    summary="Report viewing: one beacon or an array of them",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media_type: {
                    "schema": {
                        "oneOf": [
                            BEACON_SCHEMA,
                            {
                                "type": "array",
                                "items": BEACON_SCHEMA,
                                "maxItems": MAX_BEACONS_PER_REQUEST,
                            },
                        ]
                    }
                }
                for media_type in ACCEPTED_CONTENT_TYPES
            },
        }
    },
    responses=responses(BEACON_RESULT_SCHEMA, *SIGNED_ERRORS, 403),
)
async def post_beacons(request: Request) -> Response:
    """Idempotent per (sessionId, seq); all beacons of a request are stored, or none."""
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    try:
        incoming = await read_incoming(request)
        # A small request (a player's heartbeat) is checked on the event loop, without the
        # database: tenants come from the cache. A large one, or one whose tenant is not in
        # the cache, is checked in a thread (which may read the database), so that the event
        # loop serves others meanwhile. Then the writer thread stores it, together with the
        # requests that arrive meanwhile.
        ingest = None
        if len(incoming.body) <= CHECK_ON_LOOP_MAX_BYTES:
            with contextlib.suppress(TenantNotCached):
                ingest = read_beacons(services, incoming)
        if ingest is None:
            ingest = await run_in_threadpool(read_beacons, services, incoming, False)
        try:
            result = await services.writer.submit(ingest.request)
        except ReplayedRequest:
            raise services.auth.replayed(incoming, ingest.tenant) from None
    except VodwatchError as error:
        # Let a page of a known origin read why its beacon was refused.
        is_known = origin is not None and await run_in_threadpool(
            services.directory.is_origin_known, origin
        )
        return error_response(error, cors_headers(origin) if is_known else {"Vary": "Origin"})
    data = {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "statuses": result.statuses,
    }
    return success(data, headers=cors_headers(origin))


@router.options("/vod/webapi/beacon", include_in_schema=False)
async def preflight_beacons(request: Request) -> Response:
    """CORS preflight (for a tracker that sends ``application/json``; ``text/plain`` and
    ``sendBeacon`` need none). It carries no token, so any tenant's origins admit it."""
    return await preflight(request, methods="POST, OPTIONS", allow_headers="Content-Type")


async def preflight(request: Request, *, methods: str, allow_headers: str) -> Response:
    """A CORS preflight's answer: allowed for an origin some tenant allows (a preflight
    carries no token, so it cannot say which)."""
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    if origin is None or not await run_in_threadpool(services.directory.is_origin_known, origin):
        return error_response(
            OriginNotAllowed(f"origin {origin} is not allowed"), {"Vary": "Origin"}
        )
    headers = {
        **cors_headers(origin),
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": allow_headers,
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


def cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {"Vary": "Origin"}
    return {
        "Access-Control-Allow-Origin": origin,
        # A tracker backs off as a 429 or 503 says: it must be able to read when to retry.
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }


@dataclass(frozen=True, slots=True)
class ReadBeacons:
    tenant: Tenant
    request: IngestRequest

    @property
    def is_trusted(self) -> bool:
        return self.request.is_trusted


def is_origin_permitted(services: Services, incoming: Incoming, tenant: Tenant) -> bool:
    """Whether the request's page may act for ``tenant``: no ``Origin`` (not a browser's
    cross-origin request), vodwatch's own origin, or one of the tenant's allowed origins."""
    origin = incoming.headers.get("origin")
    return (
        origin is None
        or is_same_origin(
            origin, incoming.scheme, incoming.headers.get("host", ""), services.settings.public_url
        )
        or is_origin_allowed(origin, tenant.allowed_origins)
    )


def read_beacons(services: Services, incoming: Incoming, cached_only: bool = True) -> ReadBeacons:
    """Authenticate and validate a beacon request, all or nothing; nothing is stored yet.
    With ``cached_only`` it never waits for the database: ``TenantNotCached`` when a tenant
    must be loaded first."""
    content_type = incoming.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_CONTENT_TYPES:
        raise InvalidParameter(
            f"Content-Type must be application/json or text/plain, got {content_type!r}"
        )
    now = services.clock()
    is_trusted = has_server_auth(incoming)
    signature = None
    if is_trusted:
        tenant = services.auth.server(incoming, now, cached_only=cached_only)
        signature = services.auth.signature(tenant, incoming)
        beacons = parse_beacons(parse_json(incoming.body), claims_for=None, now_seconds=now)
    else:
        tenants: dict[int, Tenant] = {}
        verified: dict[str, PlaybackClaims] = {}
        beacons_per_token: dict[str, int] = {}

        def claims_for(token: str) -> PlaybackClaims:
            beacons_per_token[token] = beacons_per_token.get(token, 0) + 1
            if token not in verified:
                tenant, verified[token] = services.auth.player(
                    token, incoming.client, now, cached_only=cached_only
                )
                tenants[tenant.tenant_id] = tenant
            return verified[token]

        beacons = parse_beacons(parse_json(incoming.body), claims_for=claims_for, now_seconds=now)
        if len(tenants) != 1:
            raise InvalidParameter("all beacons of one request must carry tokens of one tenant")
        (tenant,) = tenants.values()
        for token, count in beacons_per_token.items():
            services.auth.spend_beacons(token, count)
    origin = incoming.headers.get("origin")
    if not is_origin_permitted(services, incoming, tenant):
        raise OriginNotAllowed(
            f"origin {origin} may not send beacons for this tenant: allow it with "
            f"'vodwatch tenant set-origins AUTHKEY {origin}'"
        )
    request = IngestRequest(tenant.tenant_id, beacons, int(now * 1000), is_trusted, signature)
    return ReadBeacons(tenant, request)
