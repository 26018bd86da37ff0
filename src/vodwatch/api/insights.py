"""The analytics endpoints (SPEC §9): videos, retention, one viewer, and the export.

Signed like the seed endpoint; parameters from the query string and/or a JSON body (the query
string wins). The export answers a file; its errors, all found before the first byte, are the
usual JSON envelope.
"""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import IO, Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from vodwatch.api.auth import Incoming
from vodwatch.api.incoming import Services, read_incoming
from vodwatch.api.openapi import SIGNED_ERRORS, identifier_schema, responses, text_schema
from vodwatch.api.report import (
    PAGE_SCHEMA,
    REPORT_PARAMETERS,
    UNIX_SECONDS,
    query_parameter,
    signed_read,
)
from vodwatch.api.responses import success
from vodwatch.errors import InvalidParameter
from vodwatch.report import export, insights
from vodwatch.report.params import MAX_PAGE, MAX_PAGE_SIZE, ReportQuery, parse_report_query

router = APIRouter()

VIDEOS_PATH = "/vod/webapi/statistics/vod/videos"
RETENTION_PATH = "/vod/webapi/statistics/vod/retention"
VIEWER_PATH = "/vod/webapi/statistics/vod/viewer"
EXPORT_PATH = "/vod/webapi/statistics/vod/watch/export"
DOWNLOAD_CHUNK = 64 * 1024

TIME_PARAMETERS = [
    query_parameter("startTime", UNIX_SECONDS, "unix seconds; visits started at or after"),
    query_parameter("endTime", UNIX_SECONDS, "unix seconds; visits started at or before"),
]
PERCENT_TEXT = {"type": "string", "pattern": r"^\d{1,3}%$"}
INTERVALS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "half-open [startMs, endMs) pairs, sorted and merged",
    "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
}
THRESHOLD = {"type": "integer", "minimum": 1, "maximum": 100}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


VIDEO_ROW_SCHEMA = _object(
    {
        "assetId": {"type": "string"},
        "videoTitle": {"type": "string"},
        "duration": {"type": "string", "description": "whole seconds, as GET media shows it"},
        "viewers": {"type": "integer"},
        "visits": {"type": "integer"},
        "watchTimeMs": {"type": "integer"},
        "visitTime": {"type": "string"},
        "meanCoverage": PERCENT_TEXT,
        "completedViewers": {"type": "integer"},
        "completionRate": PERCENT_TEXT,
        "completionThreshold": THRESHOLD,
        "lastVisit": {"type": "integer", "description": "unix seconds, the latest visit start"},
    }
)
RETENTION_SCHEMA = _object(
    {
        "assetId": {"type": "string"},
        "duration": {"type": "integer", "description": "ms; 0 when unknown"},
        "buckets": {"type": "integer"},
        "totalViewers": {"type": "integer"},
        "totalVisits": {"type": "integer"},
        "viewers": {"type": "array", "items": {"type": "integer"}},
        "views": {"type": "array", "items": {"type": "integer"}},
        "distribution": {
            "type": "array",
            "items": {"type": "integer"},
            "minItems": 10,
            "maxItems": 10,
        },
    }
)
VISIT_SCHEMA = _object(
    {
        "sessionId": {"type": "string"},
        "startTime": {"type": "integer"},
        "watchTimeMs": {"type": "integer"},
        "visitTime": {"type": "string"},
        "coveredMs": {"type": "integer"},
        "visitRadio": PERCENT_TEXT,
        "intervals": INTERVALS_SCHEMA,
    }
)
VIEWER_SCHEMA = _object(
    {
        "userId": {"type": "string"},
        "userName": {"type": "string"},
        "assetId": {"type": "string"},
        "videoTitle": {"type": "string"},
        "duration": {"type": "integer", "description": "ms; 0 when unknown"},
        "coveredMs": {"type": "integer"},
        "visitRadio": PERCENT_TEXT,
        "watchTimeMs": {"type": "integer"},
        "visitTime": {"type": "string"},
        "completed": {"type": "boolean"},
        "completionThreshold": THRESHOLD,
        "intervals": INTERVALS_SCHEMA,
        "visits": {"type": "array", "items": VISIT_SCHEMA, "description": "newest first"},
    }
)


def _required(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": True,
        "schema": identifier_schema(),
        "description": description,
    }


@router.get(
    VIDEOS_PATH,
    summary="One row per video with a visit in range: viewers, watch time, coverage, completion",
    openapi_extra={
        "parameters": [
            *TIME_PARAMETERS,
            query_parameter(
                "videoInfo",
                text_schema(),
                "assetId exactly, or a case-insensitive substring of the title",
            ),
            query_parameter(
                "page",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
                "1-based page",
            ),
            query_parameter(
                "pageSize",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20},
                "rows per page",
            ),
            query_parameter(
                "sort",
                {"type": "string", "enum": [*insights.VIDEO_SORTS, ""], "default": "lastVisit"},
                "what to sort by (ties: assetId ascending)",
            ),
            query_parameter(
                "order", {"type": "string", "enum": ["desc", "asc", ""], "default": "desc"}, ""
            ),
        ]
    },
    responses=responses(
        {
            **PAGE_SCHEMA,
            "properties": {
                **PAGE_SCHEMA["properties"],
                "data": {"type": "array", "items": VIDEO_ROW_SCHEMA},
            },
        },
        *SIGNED_ERRORS,
    ),
)
async def get_videos(request: Request) -> Response:
    return await _answer(request, _videos)


@router.get(
    RETENTION_PATH,
    summary="The retention curve (viewers and views per bucket) and coverage distribution "
    "of one video",
    openapi_extra={
        "parameters": [
            _required("assetId", "the video, exactly"),
            query_parameter(
                "buckets",
                {
                    "type": "integer",
                    "minimum": insights.MIN_BUCKETS,
                    "maximum": insights.MAX_BUCKETS,
                    "default": insights.DEFAULT_BUCKETS,
                },
                "how many equal parts of the video",
            ),
            *TIME_PARAMETERS,
        ]
    },
    responses=responses(RETENTION_SCHEMA, *SIGNED_ERRORS, 404),
)
async def get_retention(request: Request) -> Response:
    return await _answer(request, _retention)


@router.get(
    VIEWER_PATH,
    summary="One viewer on one video: their heatmap (covered intervals) and their visits",
    openapi_extra={
        "parameters": [
            _required("userId", "the viewer, exactly"),
            _required("assetId", "the video, exactly"),
            *TIME_PARAMETERS,
        ]
    },
    responses=responses(VIEWER_SCHEMA, *SIGNED_ERRORS, 404),
)
async def get_viewer(request: Request) -> Response:
    return await _answer(request, _viewer)


EXPORT_RESPONSES = responses({}, *SIGNED_ERRORS)
EXPORT_RESPONSES[200] = {
    "description": "The file, as an attachment: CSV (UTF-8 with a BOM, CRLF) or XLSX; header "
    "row " + ",".join(export.HEADER),
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        export.CONTENT_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.get(
    EXPORT_PATH,
    summary="Every row of 用户观看完整度 for the filters, as one CSV or XLSX file",
    description="The seed endpoint's filters and groupBy; page and pageSize, if sent, are "
    "ignored (every matching row is in the file).",
    openapi_extra={
        "parameters": [
            *(p for p in REPORT_PARAMETERS if p["name"] not in ("page", "pageSize")),
            query_parameter(
                "format",
                {"type": "string", "enum": ["csv", "xlsx", ""], "default": "csv"},
                "the file format",
            ),
        ]
    },
    responses=EXPORT_RESPONSES,
)
async def get_export(request: Request) -> Response:
    """page and pageSize are taken and ignored: every matching row is in the file."""
    services: Services = request.app.state.services
    incoming = await read_incoming(request)
    file_format, file = await run_in_threadpool(_export, services, incoming)
    stamp = datetime.fromtimestamp(services.clock(), UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        stream_file(file),
        media_type=export.CONTENT_TYPES[file_format],
        headers={
            "Content-Disposition": f'attachment; filename="vodwatch-watch-{stamp}.{file_format}"'
        },
    )


async def stream_file(file: IO[bytes]) -> AsyncIterator[bytes]:
    """A file's bytes, a chunk at a time off the event loop; closed at the end."""
    try:
        while chunk := await run_in_threadpool(file.read, DOWNLOAD_CHUNK):
            yield chunk
    finally:
        file.close()


# -- in a worker thread ------------------------------------------------------------------------


async def _answer(
    request: Request, build: Callable[[Services, Incoming], dict[str, Any]]
) -> Response:
    services: Services = request.app.state.services
    incoming = await read_incoming(request)
    return success(await run_in_threadpool(build, services, incoming))


def _videos(services: Services, incoming: Incoming) -> dict[str, Any]:
    tenant, query = signed_read(services, incoming, insights.parse_videos_query)
    with services.db.read() as conn:
        return insights.build_videos(conn, tenant.tenant_id, tenant.defaults, query)


def _retention(services: Services, incoming: Incoming) -> dict[str, Any]:
    tenant, query = signed_read(services, incoming, insights.parse_retention_query)
    with services.db.read() as conn:
        return insights.build_retention(conn, tenant.tenant_id, query)


def _viewer(services: Services, incoming: Incoming) -> dict[str, Any]:
    tenant, query = signed_read(services, incoming, insights.parse_viewer_query)
    with services.db.read() as conn:
        return insights.build_viewer(conn, tenant.tenant_id, tenant.defaults, query)


def _parse_export(
    given: list[tuple[str, str]], body: dict[str, object] | None
) -> tuple[export.ExportFormat, ReportQuery]:
    """The export's format, and the seed report's parameters but its paging."""
    if sum(1 for name, _ in given if name == "format") > 1:
        raise InvalidParameter("parameter 'format' is given more than once")
    named = dict(given).get("format") or (body or {}).get("format")
    file_format = export.parse_format(named or "csv")
    ignored = ("page", "pageSize", "format")
    query = parse_report_query(
        [(name, value) for name, value in given if name not in ignored],
        {name: value for name, value in (body or {}).items() if name not in ignored},
    )
    return file_format, query


def _export(services: Services, incoming: Incoming) -> tuple[export.ExportFormat, IO[bytes]]:
    tenant, (file_format, query) = signed_read(services, incoming, _parse_export)
    with services.db.read() as conn:
        file = export.export_file(conn, tenant.tenant_id, tenant.defaults, query, file_format)
    return file_format, file
