"""What the dashboard shows besides the analytics endpoints' answers: the summary row of one
video, the viewers of one video, and every video one viewer watched.

Each is put together from the endpoints' own queries and arithmetic (``report.insights``:
``summarize_videos``, ``render_pair``, ``render_visit``), so a figure on a dashboard page is
always the one the API gives for the same data.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection

from vodwatch.errors import NotFound
from vodwatch.formats import format_visit_time
from vodwatch.report.insights import (
    effective_threshold,
    render_pair,
    render_visit,
    summarize_videos,
)
from vodwatch.report.params import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, optional_integer
from vodwatch.store.insights import (
    Pair,
    TimeRange,
    VideoFacts,
    find_pairs,
    find_user_names,
    find_videos,
    find_visits,
)

ViewerSort = Literal["lastVisit", "name", "percent", "watchTime"]
VIEWER_SORTS: tuple[ViewerSort, ...] = ("lastVisit", "name", "percent", "watchTime")
ORDERS = ("desc", "asc")


@dataclass(frozen=True, slots=True)
class Paging:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @classmethod
    def parse(cls, given: Mapping[str, object]) -> "Paging":
        """``page`` and ``pageSize`` as the endpoints take them; ``InvalidParameter`` else."""
        return cls(
            page=optional_integer(given, "page", 1, MAX_PAGE) or 1,
            page_size=optional_integer(given, "pageSize", 1, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE,
        )

    def cut(self, rows: list[Any]) -> dict[str, Any]:
        """The endpoints' paging fields and this page of ``rows`` (in ``data``)."""
        offset = (self.page - 1) * self.page_size
        return {
            "total": len(rows),
            "per_page": self.page_size,
            "current_page": self.page,
            "last_page": max(1, -(-len(rows) // self.page_size)),
            "data": rows[offset : offset + self.page_size],
        }


def find_video(conn: Connection, tenant_id: int, asset_id: str) -> VideoFacts:
    """The video's catalog facts; ``NotFound`` when the tenant has no such video (another
    tenant's is no different)."""
    video = find_videos(conn, tenant_id, [asset_id]).get(asset_id)
    if video is None:
        raise NotFound(f"assetId {asset_id!r} is neither in the catalog nor ever seen")
    return video


def build_video_summary(
    conn: Connection, tenant_id: int, tenant_threshold: int, asset_id: str, time_range: TimeRange
) -> dict[str, Any] | None:
    """The videos endpoint's row of this one video; None when it has no visit in range."""
    pairs = find_pairs(conn, tenant_id, time_range, asset_id=asset_id)
    summaries = summarize_videos(pairs, find_videos(conn, tenant_id, [asset_id]), tenant_threshold)
    return summaries[0].render() if summaries else None


def build_video_viewers(
    conn: Connection,
    tenant_id: int,
    tenant_threshold: int,
    asset_id: str,
    time_range: TimeRange,
    *,
    sort: ViewerSort,
    order: str,
    paging: Paging,
) -> dict[str, Any]:
    """A page of the viewers of one video with visits in range: each viewer's figures as the
    viewer endpoint gives them, plus ``userId``, ``userName``, ``visits`` and ``lastVisit``
    (unix seconds). Ties are broken by userId ascending."""
    video = find_video(conn, tenant_id, asset_id)
    threshold = effective_threshold(video, tenant_threshold)
    pairs = find_pairs(conn, tenant_id, time_range, asset_id=asset_id)
    names = find_user_names(conn, tenant_id, [pair.user_id for pair in pairs])
    rows = [_viewer_row(pair, names.get(pair.user_id, ""), video, threshold) for pair in pairs]
    rows.sort(key=lambda row: row["userId"])
    rows.sort(key=_VIEWER_SORT_KEYS[sort], reverse=order == "desc")
    return paging.cut(rows)


def _viewer_row(pair: Pair, user_name: str, video: VideoFacts, threshold: int) -> dict[str, Any]:
    return {
        "userId": pair.user_id,
        "userName": user_name,
        **render_pair(pair, video, threshold),
        "visits": pair.visit_count,
        "lastVisit": pair.latest_started_at_ms // 1000,
    }


_VIEWER_SORT_KEYS: dict[ViewerSort, Any] = {
    "lastVisit": lambda row: row["lastVisit"],
    "name": lambda row: row["userName"] or row["userId"],  # code point order, as titles
    "percent": lambda row: row["coveredMs"],  # one video: the same D for every viewer
    "watchTime": lambda row: row["watchTimeMs"],
}


def build_viewer_videos(
    conn: Connection,
    tenant_id: int,
    tenant_threshold: int,
    user_id: str,
    time_range: TimeRange,
    paging: Paging,
) -> dict[str, Any]:
    """Every video one viewer watched in range, latest visit first (ties: assetId ascending),
    paged: each row is what the viewer endpoint answers for that video, visits included.
    Besides: ``userName``, ``completedVideos`` and the total ``watchTimeMs``/``visitTime``
    over all of them. ``NotFound`` when the viewer has no visit in range."""
    pairs = find_pairs(conn, tenant_id, time_range, user_id=user_id)
    if not pairs:
        raise NotFound(f"userId {user_id!r} has no visit in range")
    pairs.sort(key=lambda pair: pair.asset_id)
    pairs.sort(key=lambda pair: pair.latest_started_at_ms, reverse=True)
    videos = find_videos(conn, tenant_id, [pair.asset_id for pair in pairs])
    rows = []
    for pair in pairs:
        video = videos.get(pair.asset_id) or VideoFacts(pair.asset_id, "", None, None)
        rows.append(
            {
                "assetId": pair.asset_id,
                "videoTitle": video.title,
                "duration": video.duration_ms or 0,
                **render_pair(pair, video, effective_threshold(video, tenant_threshold)),
                "lastVisit": pair.latest_started_at_ms // 1000,
            }
        )
    answer = paging.cut(rows)
    for row in answer["data"]:
        found = find_visits(conn, tenant_id, row["assetId"], time_range, user_id=user_id)
        row["visits"] = [render_visit(visit, row["duration"]) for visit in found]
    watch_ms = sum(pair.watch_ms for pair in pairs)
    return {
        "userId": user_id,
        "userName": find_user_names(conn, tenant_id, [user_id]).get(user_id, ""),
        "completedVideos": sum(1 for row in rows if row["completed"]),
        "watchTimeMs": watch_ms,
        "visitTime": format_visit_time(watch_ms),
        **answer,
    }
