"""``PUT`` and ``GET /vod/webapi/media/{assetId}``: the catalog of videos (SPEC §8)."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import Incoming
from vodwatch.api.incoming import Services, parse_json, read_incoming
from vodwatch.api.openapi import SIGNED_ERRORS, identifier_schema, responses, text_schema
from vodwatch.api.responses import success
from vodwatch.beacon.model import MAX_MEDIA_SECONDS
from vodwatch.errors import InvalidParameter, NotFound
from vodwatch.formats import format_duration, seconds_to_ms
from vodwatch.store.catalog import KEEP, Asset, Keep, get_asset, put_asset
from vodwatch.store.signed_requests import find_claimed, record_claims
from vodwatch.validation import require_identifier, require_int, require_number, require_text

router = APIRouter()
MEDIA_FIELDS = ("videoTitle", "duration")  # required
OPTIONAL_MEDIA_FIELDS = ("completionThreshold",)
THRESHOLD_SCHEMA: dict[str, Any] = {
    "type": ["integer", "null"],
    "minimum": 1,
    "maximum": 100,
    "description": "percent a viewer must cover to have completed the video; null: the tenant's",
}
ASSET_ID_PARAMETER = {
    "name": "assetId",
    "in": "path",
    "required": True,
    "schema": identifier_schema(),
    "description": "the video: 1 to 128 characters, no '/' or control characters",
}
ASSET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["assetId", "videoTitle", "duration"],
    "properties": {
        "assetId": {"type": "string"},
        "videoTitle": {"type": "string"},
        "duration": {"type": "string", "description": "whole seconds, as Talk-cloud shows it"},
        "completionThreshold": THRESHOLD_SCHEMA,
        "effectiveCompletionThreshold": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "description": "the video's threshold, or else its tenant's",
        },
    },
}
SAVED_ASSET_SCHEMA: dict[str, Any] = {
    **ASSET_SCHEMA,
    "properties": {**ASSET_SCHEMA["properties"], "created": {"type": "boolean"}},
}


@router.put(
    "/vod/webapi/media/{assetId}",
    summary="Create or update a video in the catalog",
    openapi_extra={
        "parameters": [ASSET_ID_PARAMETER],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": list(MEDIA_FIELDS),
                        "properties": {
                            "videoTitle": text_schema(),
                            "duration": {
                                "type": "number",
                                "exclusiveMinimum": 0,
                                "maximum": MAX_MEDIA_SECONDS,
                                "description": "seconds",
                            },
                            "completionThreshold": {
                                **THRESHOLD_SCHEMA,
                                "description": THRESHOLD_SCHEMA["description"]
                                + "; absent: left as it is",
                            },
                        },
                        "additionalProperties": False,
                    }
                }
            },
        },
    },
    responses=responses(
        {
            **ASSET_SCHEMA,
            "properties": {**ASSET_SCHEMA["properties"], "created": {"type": "boolean"}},
        },
        *SIGNED_ERRORS,
    ),
)
async def put_media(request: Request) -> Response:
    """The catalog is authoritative for title and duration: reports use it at query time."""
    services: Services = request.app.state.services
    incoming = await read_incoming(request)
    asset_id = request.path_params["assetId"]
    asset, is_new, tenant_threshold = await run_in_threadpool(
        save_media, services, incoming, asset_id
    )
    return success({**render_asset(asset, tenant_threshold), "created": is_new})


@router.get(
    "/vod/webapi/media/{assetId}",
    summary="One video of the catalog, in Talk-cloud's media-detail shape",
    openapi_extra={"parameters": [ASSET_ID_PARAMETER]},
    responses=responses(ASSET_SCHEMA, *SIGNED_ERRORS, 404),
)
async def get_media(request: Request) -> Response:
    services: Services = request.app.state.services
    incoming = await read_incoming(request)
    asset_id = request.path_params["assetId"]
    asset, tenant_threshold = await run_in_threadpool(find_media, services, incoming, asset_id)
    return success(render_asset(asset, tenant_threshold))


def save_media(services: Services, incoming: Incoming, asset_id: str) -> tuple[Asset, bool, int]:
    tenant = services.auth.server(incoming, services.clock())
    asset_id = require_identifier("assetId", asset_id)
    body = parse_json(incoming.body)
    if not isinstance(body, dict):
        raise InvalidParameter('body must be an object {"videoTitle": ..., "duration": ...}')
    for name in body:
        if name not in MEDIA_FIELDS + OPTIONAL_MEDIA_FIELDS:
            raise InvalidParameter(
                f"unknown field '{name}'; known: videoTitle, duration, completionThreshold"
            )
    for name in MEDIA_FIELDS:
        if name not in body:
            raise InvalidParameter(f"{name} is required")
    title = require_text("videoTitle", body["videoTitle"])
    duration = require_number("duration", body["duration"], low=0, high=MAX_MEDIA_SECONDS)
    if duration <= 0:
        raise InvalidParameter(f"duration must be > 0 seconds, got {duration:g}")
    duration_ms = seconds_to_ms(duration)
    threshold: int | Keep | None = KEEP
    if "completionThreshold" in body:
        given = body["completionThreshold"]
        threshold = (
            None if given is None else require_int("completionThreshold", given, low=1, high=100)
        )
    now_ms = services.now_ms()

    signature = services.auth.signature(tenant, incoming)

    def write(conn: Any) -> tuple[Asset, bool]:
        # Accepted once: the change and its record are stored together, or neither is.
        if find_claimed(conn, [signature]):
            raise services.auth.replayed(incoming, tenant)
        saved = put_asset(conn, tenant.tenant_id, asset_id, title, duration_ms, now_ms, threshold)
        record_claims(conn, [signature])
        return saved

    asset, is_new = services.db.run_write(write)
    return asset, is_new, tenant.completion_threshold


def find_media(services: Services, incoming: Incoming, asset_id: str) -> tuple[Asset, int]:
    now = services.clock()
    tenant = services.auth.server(incoming, now)
    services.auth.claim_read(tenant, incoming, now)
    with services.db.read() as conn:
        asset = get_asset(conn, tenant.tenant_id, asset_id)
    if asset is None:
        raise NotFound(f"assetId {asset_id!r} is not in the catalog")
    return asset, tenant.completion_threshold


def render_asset(asset: Asset, tenant_threshold: int) -> dict[str, Any]:
    return {
        "assetId": asset.asset_id,
        "videoTitle": asset.title,
        "duration": format_duration(asset.duration_ms),
        "completionThreshold": asset.completion_threshold,
        "effectiveCompletionThreshold": asset.effective_threshold(tenant_threshold),
    }
