"""``POST /vod/webapi/beacon``: beacons from players (playback token) and servers (Tk headers)."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import (
    Incoming,
    authenticate_player,
    authenticate_server,
    has_server_auth,
)
from vodwatch.api.incoming import Services, parse_json, read_incoming
from vodwatch.api.responses import error_response, success
from vodwatch.beacon.model import MAX_BEACONS_PER_REQUEST, parse_beacons
from vodwatch.errors import InvalidParameter, OriginNotAllowed, VodwatchError
from vodwatch.ingest.batch import IngestRequest
from vodwatch.origins import is_origin_allowed, is_same_origin
from vodwatch.playback_token import PlaybackClaims
from vodwatch.store.tenants import Tenant

router = APIRouter()
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain")

BEACON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sessionId", "seq"],
    "properties": {
        "token": {"type": "string", "description": "playback JWT (players only)"},
        "sessionId": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
        "seq": {"type": "integer", "minimum": 1},
        "segments": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            "description": "media-time ranges [start, end] in seconds played since the "
            "previous beacon",
        },
        "playedMs": {"type": "integer", "minimum": 0},
        "position": {"type": "number", "minimum": 0},
        "ended": {"type": "boolean"},
        "duration": {"type": "number", "exclusiveMinimum": 0},
        "userId": {"type": "string", "description": "server beacons only"},
        "userName": {"type": "string", "description": "server beacons only"},
        "assetId": {"type": "string", "description": "server beacons only"},
        "startedAt": {"type": "integer", "description": "server beacons only, unix seconds"},
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
)
async def post_beacons(request: Request) -> Response:
    """Idempotent per (sessionId, seq); all beacons of a request are stored, or none."""
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    try:
        incoming = await read_incoming(request)
        # Checked on the event loop (no database but a cached tenant lookup), then stored by
        # the writer thread, together with the requests that arrive meanwhile.
        result = await services.writer.submit(read_beacons(services, incoming))
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
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    if origin is None or not await run_in_threadpool(services.directory.is_origin_known, origin):
        return error_response(
            OriginNotAllowed(f"origin {origin} is not allowed"), {"Vary": "Origin"}
        )
    headers = {
        **cors_headers(origin),
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


def cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def read_beacons(services: Services, incoming: Incoming) -> IngestRequest:
    """Authenticate and validate a beacon request, all or nothing; nothing is stored yet."""
    content_type = incoming.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_CONTENT_TYPES:
        raise InvalidParameter(
            f"Content-Type must be application/json or text/plain, got {content_type!r}"
        )
    now = services.clock()
    is_trusted = has_server_auth(incoming)
    if is_trusted:
        tenant = authenticate_server(incoming, services.directory, now)
        beacons = parse_beacons(parse_json(incoming.body), claims_for=None, now_seconds=now)
    else:
        tenants: dict[int, Tenant] = {}
        verified: dict[str, PlaybackClaims] = {}

        def claims_for(token: str) -> PlaybackClaims:
            if token not in verified:
                tenant, verified[token] = authenticate_player(token, services.directory, now)
                tenants[tenant.tenant_id] = tenant
            return verified[token]

        beacons = parse_beacons(parse_json(incoming.body), claims_for=claims_for, now_seconds=now)
        if len(tenants) != 1:
            raise InvalidParameter("all beacons of one request must carry tokens of one tenant")
        (tenant,) = tenants.values()
    origin = incoming.headers.get("origin")
    if (
        origin is not None
        and not is_same_origin(origin, incoming.headers.get("host", ""))
        and not is_origin_allowed(origin, tenant.allowed_origins)
    ):
        raise OriginNotAllowed(
            f"origin {origin} may not send beacons for this tenant: allow it with "
            f"'vodwatch tenant set-origins AUTHKEY {origin}'"
        )
    return IngestRequest(tenant.tenant_id, beacons, int(now * 1000), is_trusted)
