"""The dashboard's pages: the videos, one video, one viewer, and one video's export.

Each page reads the signed-in tenant's figures through the analytics endpoints' own functions
(``report.insights``, ``report.audience``, ``report.export``), in process and in a worker
thread, then renders them; templates never compute a figure. Every query is scoped by the
session's tenant: another tenant's video or viewer is not found, like one that does not exist.
"""

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from vodwatch.api.incoming import Services
from vodwatch.api.insights import stream_file
from vodwatch.dashboard import present
from vodwatch.dashboard.site import SignedIn, error_page, render, secure, signed_in, to_sign_in
from vodwatch.errors import InvalidParameter, NotFound
from vodwatch.report import audience, export, insights
from vodwatch.report.params import parse_report_query
from vodwatch.store.insights import TimeRange
from vodwatch.validation import require_identifier

router = APIRouter(include_in_schema=False)

EVERYTHING = TimeRange()
VIDEO_COLUMNS = (
    "title",
    "viewers",
    "visits",
    "watchTime",
    "coverage",
    "completionRate",
    "lastVisit",
)
VIEWER_COLUMNS = ("name", "percent", "watchTime", "lastVisit")
ASCENDING_FIRST = {"title", "name"}  # the other columns start with the largest
VIEWERS_PAGE_SIZE = 20
VIEWER_VIDEOS_PAGE_SIZE = 10
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

Build = Callable[[Services, SignedIn], dict[str, Any]]


async def _page(request: Request, template: str, build: Build) -> Response:
    """Sign-in first; then the figures, off the event loop; then the page. A bad parameter is
    a 400 page, an unknown video or viewer a 404 page."""
    user = await signed_in(request)
    if user is None:
        return to_sign_in(request)
    services: Services = request.app.state.services
    try:
        context = await run_in_threadpool(build, services, user)
    except NotFound:
        return error_page(request, 404, user=user)
    except InvalidParameter as error:
        return error_page(request, 400, user=user, detail=error.message)
    return render(request, template, context, user=user)


def _given(request: Request, *names: str) -> list[tuple[str, str]]:
    """The request's values of ``names``, as the API's parsers take them."""
    return [(name, value) for name in names if (value := request.query_params.get(name))]


def sort_links(
    path: str, parameters: Mapping[str, str], columns: tuple[str, ...], sort: str, order: str
) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (the other way round when it is the
    sort already) and its ``aria-sort`` state."""
    links = {}
    for column in columns:
        first = "asc" if column in ASCENDING_FIRST else "desc"
        if column == sort:
            next_order = "asc" if order == "desc" else "desc"
            state = "ascending" if order == "asc" else "descending"
        else:
            next_order, state = first, "none"
        href = present.with_query(path, {**parameters, "sort": column, "order": next_order})
        links[column] = {"href": href, "state": state}
    return links


# -- the videos --------------------------------------------------------------------------------


@router.get("/dashboard")
async def videos_page(request: Request) -> Response:
    given = _given(request, "q", "sort", "order", "page")

    def build(services: Services, user: SignedIn) -> dict[str, Any]:
        renamed = [("videoInfo" if name == "q" else name, value) for name, value in given]
        query = insights.parse_videos_query(renamed)
        with services.db.read() as conn:
            videos = insights.build_videos(conn, user.tenant.tenant_id, user.tenant.defaults, query)
        kept = {name: value for name, value in given if name in ("q", "sort", "order")}
        return {
            "videos": videos,
            "search": query.video_info or "",
            "sorts": sort_links(
                "/dashboard", {"q": kept.get("q", "")}, VIDEO_COLUMNS, query.sort, query.order
            ),
            "page_link": lambda number: present.with_query("/dashboard", {**kept, "page": number}),
            "origin": str(request.base_url).rstrip("/"),
        }

    return await _page(request, "videos.html", build)


# -- one video ---------------------------------------------------------------------------------


def _identifier(name: str, value: str) -> str:
    """A path's id; one that no video or viewer can have is simply not found."""
    try:
        return require_identifier(name, value)
    except InvalidParameter:
        raise NotFound(f"no {name} {value!r}") from None


def _viewer_sort(request: Request) -> tuple[audience.ViewerSort, str]:
    sort = request.query_params.get("sort") or "lastVisit"
    order = request.query_params.get("order") or "desc"
    for known in audience.VIEWER_SORTS:
        if sort == known and order in audience.ORDERS:
            return known, order
    raise InvalidParameter(
        f"sort must be one of {', '.join(audience.VIEWER_SORTS)} and order asc or desc"
    )


@router.get("/dashboard/videos/{asset_id}")
async def video_page(request: Request, asset_id: str) -> Response:
    path = present.video_path(asset_id)

    def build(services: Services, user: SignedIn) -> dict[str, Any]:
        tenant = user.tenant
        video_id = _identifier("assetId", asset_id)
        sort, order = _viewer_sort(request)
        paging = audience.Paging.parse(
            {"page": request.query_params.get("page"), "pageSize": str(VIEWERS_PAGE_SIZE)}
        )
        query = insights.parse_retention_query([("assetId", video_id)])
        with services.db.read() as conn:
            shown = audience.build_video_page(
                conn,
                tenant.tenant_id,
                tenant.defaults,
                video_id,
                EVERYTHING,
                buckets=query.buckets,
                sort=sort,
                order=order,
                paging=paging,
            )
        retention = shown.retention
        bounds = insights.bucket_bounds(retention["duration"], retention["buckets"])
        kept = {"sort": sort, "order": order}
        return {
            "video": shown.video,
            "path": path,
            "threshold": shown.threshold,
            "summary": shown.summary,
            "retention": retention,
            "chart_data": present.retention_chart_data(retention, bounds),
            "viewers": shown.viewers,
            "sorts": sort_links(path, {}, VIEWER_COLUMNS, sort, order),
            "page_link": lambda number: present.with_query(path, {**kept, "page": number}),
            "origin": str(request.base_url).rstrip("/"),
        }

    return await _page(request, "video.html", build)


@router.get("/dashboard/videos/{asset_id}/export")
async def video_export(request: Request, asset_id: str) -> Response:
    """The ``groupBy=userVideo`` export of this one video, as the API's export writes it."""
    user = await signed_in(request)
    if user is None:
        return to_sign_in(request)
    services: Services = request.app.state.services
    tenant = user.tenant

    def write() -> tuple[export.ExportFormat, Any]:
        video_id = _identifier("assetId", asset_id)
        file_format = export.parse_format(request.query_params.get("format") or "csv")
        query = parse_report_query([("videoInfo", video_id), ("groupBy", "userVideo")])
        with services.db.read() as conn:
            audience.find_video(conn, tenant.tenant_id, video_id)
            file = export.export_file(
                conn,
                tenant.tenant_id,
                tenant.defaults,
                query,
                file_format,
                only_asset_id=video_id,
            )
        return file_format, file

    try:
        file_format, file = await run_in_threadpool(write)
    except NotFound:
        return error_page(request, 404, user=user)
    except InvalidParameter as error:
        return error_page(request, 400, user=user, detail=error.message)
    stamp = datetime.fromtimestamp(services.clock(), UTC).strftime("%Y%m%d-%H%M%S")
    name = _FILE_NAME_UNSAFE.sub("_", asset_id)[:60]
    return secure(
        StreamingResponse(
            stream_file(file),
            media_type=export.CONTENT_TYPES[file_format],
            headers={
                "Content-Disposition": (
                    f'attachment; filename="vodwatch-{name}-{stamp}.{file_format}"'
                )
            },
        )
    )


# -- one viewer --------------------------------------------------------------------------------


@router.get("/dashboard/viewers/{user_id}")
async def viewer_page(request: Request, user_id: str) -> Response:
    path = present.viewer_path(user_id)

    def build(services: Services, user: SignedIn) -> dict[str, Any]:
        tenant = user.tenant
        viewer_id = _identifier("userId", user_id)
        paging = audience.Paging.parse(
            {"page": request.query_params.get("page"), "pageSize": str(VIEWER_VIDEOS_PAGE_SIZE)}
        )
        with services.db.read() as conn:
            watched = audience.build_viewer_videos(
                conn, tenant.tenant_id, tenant.defaults, viewer_id, EVERYTHING, paging
            )
        return {
            "viewer": watched,
            "path": path,
            "page_link": lambda number: present.with_query(path, {"page": number}),
        }

    return await _page(request, "viewer.html", build)


# -- anything else -----------------------------------------------------------------------------


@router.get("/dashboard/{rest:path}")
async def not_a_page(request: Request, rest: str) -> Response:
    if rest == "":
        return secure(RedirectResponse("/dashboard", status_code=308))
    return error_page(request, 404, user=await signed_in(request))
