"""``PUT`` and ``GET /vod/webapi/media/{assetId}``: the catalog of videos (SPEC §8)."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import Incoming
from vodwatch.api.incoming import Services, parse_json, read_incoming
from vodwatch.api.openapi import SIGNED_ERRORS, identifier_schema, responses, text_schema
from vodwatch.api.responses import success
from vodwatch.attention import MAX_RATE, MIN_RATE
from vodwatch.beacon.model import MAX_MEDIA_SECONDS
from vodwatch.errors import InvalidParameter, NotFound
from vodwatch.formats import format_duration, seconds_to_ms
from vodwatch.store.catalog import (
    KEEP,
    Asset,
    Keep,
    SecondsRanges,
    get_asset,
    put_asset,
    rules_json,
)
from vodwatch.store.signed_requests import claim
from vodwatch.store.tenants import Tenant
from vodwatch.validation import (
    require_bool,
    require_identifier,
    require_int,
    require_number,
    require_text,
)

router = APIRouter()
MEDIA_FIELDS = ("videoTitle", "duration")  # required
OPTIONAL_MEDIA_FIELDS = ("completionThreshold", "requiredRanges", "maxRate", "visibleOnly")
MAX_REQUIRED_RANGES = 100
RANGES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": MAX_REQUIRED_RANGES,
    "items": {
        "type": "array",
        "items": {"type": "number", "minimum": 0, "maximum": MAX_MEDIA_SECONDS},
        "minItems": 2,
        "maxItems": 2,
    },
}
RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["threshold", "requiredRanges", "maxRate", "visibleOnly"],
    "properties": {
        "threshold": {"type": "integer", "minimum": 1, "maximum": 100},
        "requiredRanges": RANGES_SCHEMA,
        "maxRate": {"type": ["number", "null"], "minimum": MIN_RATE, "maximum": MAX_RATE},
        "visibleOnly": {"type": "boolean"},
    },
    "description": "the completion rules in force: the video's own, else its tenant's",
}
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
        "requiredRanges": {**RANGES_SCHEMA, "type": ["array", "null"]},
        "maxRate": {"type": ["number", "null"], "minimum": MIN_RATE, "maximum": MAX_RATE},
        "visibleOnly": {"type": ["boolean", "null"]},
        "effectiveRules": RULES_SCHEMA,
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
                            "requiredRanges": {
                                **RANGES_SCHEMA,
                                "type": ["array", "null"],
                                "description": "[[startSeconds, endSeconds], ...] that must be "
                                "watched: each non-empty, sorted, not overlapping, within the "
                                "duration; null: none; absent: left as it is",
                            },
                            "maxRate": {
                                "type": ["number", "null"],
                                "minimum": MIN_RATE,
                                "maximum": MAX_RATE,
                                "description": "coverage played faster does not count; null: "
                                "the tenant's; absent: left as it is",
                            },
                            "visibleOnly": {
                                "type": ["boolean", "null"],
                                "description": "leave out coverage played in a hidden page; "
                                "null: the tenant's; absent: left as it is",
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
    asset, is_new, tenant = await run_in_threadpool(save_media, services, incoming, asset_id)
    return success({**render_asset(asset, tenant), "created": is_new})


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
    asset, tenant = await run_in_threadpool(find_media, services, incoming, asset_id)
    return success(render_asset(asset, tenant))


def save_media(services: Services, incoming: Incoming, asset_id: str) -> tuple[Asset, bool, Tenant]:
    tenant = services.auth.server(incoming, services.clock())
    asset_id = require_identifier("assetId", asset_id)
    body = parse_json(incoming.body)
    if not isinstance(body, dict):
        raise InvalidParameter('body must be an object {"videoTitle": ..., "duration": ...}')
    for name in body:
        if name not in MEDIA_FIELDS + OPTIONAL_MEDIA_FIELDS:
            raise InvalidParameter(
                f"unknown field '{name}'; known: videoTitle, duration, "
                + ", ".join(OPTIONAL_MEDIA_FIELDS)
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
    rules = read_rules(body, duration)
    now_ms = services.now_ms()

    signature = services.auth.signature(tenant, incoming)

    def write(conn: Any) -> tuple[Asset, bool]:
        # Accepted once: the change and its record are stored together, or neither is.
        if claim(conn, [signature]):
            raise services.auth.replayed(incoming, tenant)
        saved = put_asset(
            conn, tenant.tenant_id, asset_id, title, duration_ms, now_ms, threshold, rules
        )
        return saved

    asset, is_new = services.db.run_write(write)
    services.writer.rules.forget(tenant.tenant_id, asset_id)  # this process: at once
    return asset, is_new, tenant


def read_rules(body: dict[str, Any], duration: float) -> dict[str, object]:
    """The completion rules a PUT body sets (by column name), checked: null clears one."""
    rules: dict[str, object] = {}
    if "requiredRanges" in body:
        rules["required_ranges"] = read_required_ranges(body["requiredRanges"], duration)
    if "maxRate" in body:
        given = body["maxRate"]
        rules["max_rate"] = (
            None if given is None else require_number("maxRate", given, low=MIN_RATE, high=MAX_RATE)
        )
    if "visibleOnly" in body:
        given = body["visibleOnly"]
        rules["visible_only"] = None if given is None else require_bool("visibleOnly", given)
    return rules


def read_required_ranges(value: object, duration: float) -> SecondsRanges | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidParameter("requiredRanges must be an array of [startSeconds, endSeconds]")
    if len(value) > MAX_REQUIRED_RANGES:
        raise InvalidParameter(
            f"requiredRanges has {len(value)} ranges; at most {MAX_REQUIRED_RANGES}"
        )
    ranges: list[tuple[float, float]] = []
    for index, pair in enumerate(value):
        name = f"requiredRanges[{index}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidParameter(f"{name} must be a [startSeconds, endSeconds] pair")
        start = require_number(f"{name}[0]", pair[0], low=0, high=MAX_MEDIA_SECONDS)
        end = require_number(f"{name}[1]", pair[1], low=0, high=MAX_MEDIA_SECONDS)
        if end <= start:
            raise InvalidParameter(
                f"{name} must be non-empty: end {end:g} is not after start {start:g}"
            )
        if end > duration:
            raise InvalidParameter(f"{name} ends at {end:g} s, after the duration ({duration:g} s)")
        if ranges and start < ranges[-1][1]:
            raise InvalidParameter(
                f"{name} starts at {start:g} s, before the range before it ends "
                f"({ranges[-1][1]:g} s): ranges must be sorted and not overlap"
            )
        ranges.append((pair[0], pair[1]))  # as written: 120 stays 120
    return tuple(ranges)


def find_media(services: Services, incoming: Incoming, asset_id: str) -> tuple[Asset, Tenant]:
    now = services.clock()
    tenant = services.auth.server(incoming, now)
    services.auth.claim_read(tenant, incoming, now)
    with services.db.read() as conn:
        asset = get_asset(conn, tenant.tenant_id, asset_id)
    if asset is None:
        raise NotFound(f"assetId {asset_id!r} is not in the catalog")
    return asset, tenant


def render_asset(asset: Asset, tenant: Tenant) -> dict[str, Any]:
    return {
        "assetId": asset.asset_id,
        "videoTitle": asset.title,
        "duration": format_duration(asset.duration_ms),
        "completionThreshold": asset.completion_threshold,
        "effectiveCompletionThreshold": asset.effective_threshold(tenant.completion_threshold),
        "requiredRanges": None
        if asset.required_ranges is None
        else [list(r) for r in asset.required_ranges],
        "maxRate": asset.max_rate,
        "visibleOnly": asset.visible_only,
        "effectiveRules": rules_json(asset, tenant.defaults),
    }
