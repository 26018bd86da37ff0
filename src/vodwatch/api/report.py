"""``GET /vod/webapi/statistics/vod/watch``: the seed endpoint, 用户观看完整度 (SPEC §3)."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import Incoming
from vodwatch.api.incoming import Services, parse_json, read_incoming
from vodwatch.api.responses import success
from vodwatch.errors import InvalidParameter
from vodwatch.report.page import build_report
from vodwatch.report.params import MAX_PAGE_SIZE, parse_report_query

router = APIRouter()


def _parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


REPORT_PARAMETERS = [
    _parameter("startTime", {"type": "integer"}, "unix seconds; visits started at or after"),
    _parameter("endTime", {"type": "integer"}, "unix seconds; visits started at or before"),
    _parameter("userId", {"type": "string"}, "viewer id, exact"),
    _parameter(
        "videoInfo",
        {"type": "string"},
        "assetId exactly, or a case-insensitive substring of the title",
    ),
    _parameter("page", {"type": "integer", "minimum": 1, "default": 1}, "1-based page"),
    _parameter(
        "pageSize",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20},
        "rows per page (vodwatch extension)",
    ),
    _parameter(
        "groupBy",
        {"type": "string", "enum": ["visit", "userVideo"], "default": "visit"},
        "one row per visit, or per viewer and video (vodwatch extension)",
    ),
]


@router.get(
    "/vod/webapi/statistics/vod/watch",
    summary="用户观看完整度: watch time and completeness per visit, newest first",
    openapi_extra={"parameters": REPORT_PARAMETERS},
)
async def get_watch_report(request: Request) -> Response:
    """Parameters may also come as a JSON body (the query string wins where both name one)."""
    services: Services = request.app.state.services
    incoming = await read_incoming(request)
    data = await run_in_threadpool(answer_report, services, incoming)
    return success(data)


def answer_report(services: Services, incoming: Incoming) -> dict[str, Any]:
    tenant = services.auth.signed(incoming, services.clock())
    body = parse_json(incoming.body) if incoming.body.strip() else None
    if body is not None and not isinstance(body, dict):
        raise InvalidParameter("body must be a JSON object of report parameters")
    query = parse_report_query(incoming.query, body)
    with services.db.read() as conn:
        return build_report(conn, tenant.tenant_id, query)
