"""``GET /vod/webapi/progress``: a learner's own progress on the video of their playback token
(SPEC §10), for a progress bar under the player and for resuming where they stopped.

Authenticated by the playback token in ``Authorization: Bearer``; it answers CORS for the
tenant's allowed origins, as beacons do (and the preflight, allowing ``Authorization``).
"""

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import Incoming
from vodwatch.api.beacons import cors_headers, is_origin_permitted, preflight
from vodwatch.api.incoming import Services, read_incoming
from vodwatch.api.openapi import responses
from vodwatch.api.responses import error_response, success
from vodwatch.attention import counted, is_complete, unite
from vodwatch.errors import InvalidCredentials, MissingAuth, OriginNotAllowed, VodwatchError
from vodwatch.intervals import clamp, measure
from vodwatch.playback_token import PlaybackClaims
from vodwatch.store.attempts import find_attempt_visits
from vodwatch.store.catalog import effective_rules, get_asset
from vodwatch.store.events import find_completed
from vodwatch.store.tenants import Tenant

router = APIRouter()
PATH = "/vod/webapi/progress"
INTERVALS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
    "description": "[[startMs, endMs], ...] of media time, sorted, disjoint",
}
PROGRESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "userId",
        "assetId",
        "attemptId",
        "duration",
        "coveredMs",
        "countedMs",
        "percent",
        "completed",
        "completedAt",
        "intervals",
        "countedIntervals",
        "resumeAt",
    ],
    "properties": {
        "userId": {"type": "string"},
        "assetId": {"type": "string"},
        "attemptId": {"type": "string", "description": '"" when the token names none'},
        "duration": {"type": "integer", "description": "ms; 0 when not known"},
        "coveredMs": {"type": "integer", "description": "|U| of the attempt"},
        "countedMs": {"type": "integer", "description": "|C|: what counts under the rules"},
        "percent": {"type": "integer", "minimum": 0, "maximum": 100},
        "completed": {"type": "boolean"},
        "completedAt": {"type": ["integer", "null"], "description": "unix s"},
        "intervals": INTERVALS_SCHEMA,
        "countedIntervals": INTERVALS_SCHEMA,
        "resumeAt": {"type": "integer", "description": "ms of media time to resume at"},
    },
}


@router.get(
    PATH,
    summary="The viewer's own progress on the video of their playback token",
    openapi_extra={
        "parameters": [
            {
                "name": "Authorization",
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "Bearer <playback token>",
            }
        ]
    },
    responses=responses(PROGRESS_SCHEMA, 401, 403),
)
async def get_progress(request: Request) -> Response:
    services: Services = request.app.state.services
    origin = request.headers.get("origin")
    try:
        incoming = await read_incoming(request)
        data = await run_in_threadpool(read_progress, services, incoming)
    except VodwatchError as error:
        is_known = origin is not None and await run_in_threadpool(
            services.directory.is_origin_known, origin
        )
        return error_response(error, cors_headers(origin) if is_known else {"Vary": "Origin"})
    return success(data, headers=cors_headers(origin))


@router.options(PATH, include_in_schema=False)
async def preflight_progress(request: Request) -> Response:
    """CORS preflight: a page reads progress with an ``Authorization`` header."""
    return await preflight(request, methods="GET, OPTIONS", allow_headers="Authorization")


def read_progress(services: Services, incoming: Incoming) -> dict[str, Any]:
    """Authenticate the token, check the origin, and answer the attempt's progress."""
    given = incoming.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidCredentials("Authorization: Bearer <playback token> is required")
    try:
        tenant, claims = services.auth.player(token.strip(), incoming.client, services.clock())
    except MissingAuth as error:  # (not a JWT, no issuer): a bad token all the same
        raise InvalidCredentials(error.message) from None
    if not is_origin_permitted(services, incoming, tenant):
        origin = incoming.headers.get("origin")
        raise OriginNotAllowed(f"origin {origin} may not read progress for this tenant")
    with services.db.read() as conn:
        return attempt_progress(conn, tenant, claims)


def attempt_progress(conn: Connection, tenant: Tenant, claims: PlaybackClaims) -> dict[str, Any]:
    """The ``data`` of the progress endpoint for the viewer, video and attempt of ``claims``."""
    asset = get_asset(conn, tenant.tenant_id, claims.asset_id)
    duration = (asset.duration_ms if asset else None) or claims.duration_ms
    rules = effective_rules(asset, tenant.defaults)
    visits = find_attempt_visits(
        conn, tenant.tenant_id, claims.user_id, claims.asset_id, claims.attempt_id
    )
    coverage, attention = unite((visit.coverage, visit.attention) for visit in visits)
    if duration:
        coverage = clamp(coverage, 0, duration)
    counted_coverage = counted(coverage, attention, rules)
    counted_ms = measure(counted_coverage)
    key = (tenant.tenant_id, claims.user_id, claims.asset_id, claims.attempt_id)
    completed_at = find_completed(conn, [key]).get(key)
    return {
        "userId": claims.user_id,
        "assetId": claims.asset_id,
        "attemptId": claims.attempt_id,
        "duration": duration or 0,
        "coveredMs": measure(coverage),
        "countedMs": counted_ms,
        "percent": min(100, counted_ms * 100 // duration) if duration else 0,
        "completed": is_complete(counted_coverage, duration, rules),
        "completedAt": None if completed_at is None else completed_at // 1000,
        "intervals": [list(interval) for interval in coverage],
        "countedIntervals": [list(interval) for interval in counted_coverage],
        "resumeAt": (visits[0].position_ms or 0) if visits else 0,
    }
