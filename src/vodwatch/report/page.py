"""The watch-completeness report: run the query, shape the page exactly as the seed does."""

from typing import Any

from sqlalchemy import Connection

from vodwatch.formats import format_visit_radio, format_visit_time
from vodwatch.intervals import clamp, measure
from vodwatch.report.params import ReportQuery
from vodwatch.store.reports import ReportRow, page_viewer_videos, page_visits


def build_report(conn: Connection, tenant_id: int, query: ReportQuery) -> dict[str, Any]:
    """The ``data`` object of the seed endpoint: ``total``, paging fields and the rows."""
    paginate = page_visits if query.group_by == "visit" else page_viewer_videos
    total, rows = paginate(conn, tenant_id, query)
    return paged(total, query.page, query.page_size, [render_row(row) for row in rows])


def paged(total: int, page: int, page_size: int, data: list[Any]) -> dict[str, Any]:
    """The seed's paging fields for ``total`` rows in pages of ``page_size``, and ``data``, the
    rows of page ``page``: the shape of every paged answer (SPEC §3, §9)."""
    return {
        "total": total,
        "per_page": page_size,
        "current_page": page,
        "last_page": max(1, -(-total // page_size)),
        "data": data,
    }


def covered_ms(row: ReportRow) -> int:
    """Coverage inside the catalog duration as it is now (none when the duration is unknown)."""
    if not row.duration_ms:
        return 0
    return measure(clamp(row.coverage, 0, row.duration_ms))


def render_row(row: ReportRow) -> dict[str, Any]:
    """The seed's six string fields first, then vodwatch's own numeric ones."""
    covered = covered_ms(row)
    rendered: dict[str, Any] = {
        "userId": row.user_id,
        "userName": row.user_name,
        "assetId": row.asset_id,
        "videoTitle": row.title,
        "visitTime": format_visit_time(row.watch_ms),
        "visitRadio": format_visit_radio(covered, row.duration_ms),
    }
    if row.session_id is not None:
        rendered["sessionId"] = row.session_id
    else:
        rendered["visits"] = row.visit_count
    rendered["startedAt"] = row.started_at_ms // 1000
    rendered["lastSeenAt"] = row.last_seen_at_ms // 1000
    rendered["watchMs"] = row.watch_ms
    rendered["coveredMs"] = covered
    rendered["durationMs"] = row.duration_ms
    return rendered
