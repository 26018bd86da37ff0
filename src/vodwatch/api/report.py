"""``GET /vod/webapi/statistics/vod/watch``: the seed endpoint, 用户观看完整度 (SPEC §3)."""

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import Incoming
from vodwatch.api.incoming import Services, parse_json, read_incoming
from vodwatch.api.openapi import SIGNED_ERRORS, responses, text_schema
from vodwatch.api.responses import success
from vodwatch.errors import InvalidParameter
from vodwatch.report.page import build_report
from vodwatch.report.params import (
    MAX_PAGE,
    MAX_PAGE_SIZE,
    MAX_UNIX_SECONDS,
    parse_report_query,
)
from vodwatch.store.tenants import Tenant

Q = TypeVar("Q")
router = APIRouter()


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A query parameter; blank means "not given", as Talk-cloud clients send unused ones."""
    if schema.get("type") != "string":
        schema = {"anyOf": [schema, {"type": "string", "enum": [""]}]}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description + " (blank: not given)",
    }


UNIX_SECONDS = {"type": "integer", "minimum": 0, "maximum": MAX_UNIX_SECONDS}
REPORT_PARAMETERS = [
    query_parameter("startTime", UNIX_SECONDS, "unix seconds; visits started at or after"),
    query_parameter("endTime", UNIX_SECONDS, "unix seconds; visits started at or before"),
    query_parameter("userId", text_schema(), "viewer id, exact"),
    query_parameter(
        "videoInfo",
        text_schema(),
        "assetId exactly, or a case-insensitive substring of the title",
    ),
    query_parameter(
        "page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}, "1-based page"
    ),
    query_parameter(
        "pageSize",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20},
        "rows per page (vodwatch extension)",
    ),
    query_parameter(
        "groupBy",
        {"type": "string", "enum": ["visit", "userVideo", ""], "default": "visit"},
        "one row per visit, or per viewer and video (vodwatch extension)",
    ),
]


ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["userId", "userName", "assetId", "videoTitle", "visitTime", "visitRadio"],
    "properties": {
        "userId": {"type": "string"},
        "userName": {"type": "string"},
        "assetId": {"type": "string"},
        "videoTitle": {"type": "string"},
        "visitTime": {"type": "string", "pattern": r"^\d{2,}:\d{2}:\d{2}$"},
        "visitRadio": {"type": "string", "pattern": r"^\d{1,3}%$"},
        "sessionId": {"type": "string"},
        "visits": {"type": "integer"},
        "startedAt": {"type": "integer"},
        "lastSeenAt": {"type": "integer"},
        "watchMs": {"type": "integer"},
        "coveredMs": {"type": "integer"},
        "durationMs": {"type": ["integer", "null"]},
    },
}
PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["total", "per_page", "current_page", "last_page", "data"],
    "properties": {
        "total": {"type": "integer"},
        "per_page": {"type": "integer"},
        "current_page": {"type": "integer"},
        "last_page": {"type": "integer"},
        "data": {"type": "array", "items": ROW_SCHEMA},
    },
}


@router.get(
    "/vod/webapi/statistics/vod/watch",
    summary="用户观看完整度: watch time and completeness per visit, newest first",
    openapi_extra={"parameters": REPORT_PARAMETERS},
    responses=responses(PAGE_SCHEMA, *SIGNED_ERRORS),
)
async def get_watch_report(request: Request) -> Response:
    """Parameters may also come as a JSON body (the query string wins where both name one)."""
    services: Services = request.app.state.services
    incoming = await read_incoming(request)
    data = await run_in_threadpool(answer_report, services, incoming)
    return success(data)


def answer_report(services: Services, incoming: Incoming) -> dict[str, Any]:
    tenant, query = signed_read(services, incoming, parse_report_query)
    with services.db.read() as conn:
        return build_report(conn, tenant.tenant_id, query)


def json_parameters(incoming: Incoming) -> dict[str, object] | None:
    """The parameters a read's JSON body gives (None without a body)."""
    body = parse_json(incoming.body) if incoming.body.strip() else None
    if body is not None and not isinstance(body, dict):
        raise InvalidParameter("body must be a JSON object of report parameters")
    return body


def signed_read(
    services: Services,
    incoming: Incoming,
    parse: Callable[[list[tuple[str, str]], dict[str, object] | None], Q],
) -> tuple[Tenant, Q]:
    """A signed request that only reads: authenticated, its parameters parsed from the query
    string and a JSON body (a bad one refuses it before it is recorded), then recorded once
    (replay). The tenant and the parsed query."""
    now = services.clock()
    tenant = services.auth.server(incoming, now)
    query = parse(incoming.query, json_parameters(incoming))
    services.auth.claim_read(tenant, incoming, now)
    return tenant, query
