"""The analytics of SPEC §9: a summary per video, a retention curve and coverage distribution
per video, one viewer's heatmap on one video. Every figure comes from the per-visit coverage
and watch time the seed endpoint reports, with the arithmetic written out here once.

For a viewer, ``U`` is the union of the coverage of their visits in range, clamped to the
catalog duration ``D`` (not clamped when ``D`` is unknown); their percent is
``floor(100·|U|/D)``, capped at 100 — the ``groupBy=userVideo`` visitRadio. They have
completed the video when that percent reaches the video's effective threshold.
"""

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import Connection

from vodwatch.errors import InvalidParameter, NotFound
from vodwatch.formats import format_duration, format_visit_radio, format_visit_time
from vodwatch.intervals import IntervalSet, clamp, measure
from vodwatch.report.params import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    MAX_UNIX_SECONDS,
    merge_parameters,
    optional_integer,
    optional_text,
)
from vodwatch.store.insights import (
    Pair,
    TimeRange,
    VideoFacts,
    VisitFacts,
    find_pairs,
    find_user_name,
    find_videos,
    find_visits,
)
from vodwatch.validation import require_identifier

VideoSort = Literal[
    "lastVisit", "viewers", "visits", "watchTime", "coverage", "completionRate", "title"
]
VIDEO_SORTS: tuple[VideoSort, ...] = (
    "lastVisit",
    "viewers",
    "visits",
    "watchTime",
    "coverage",
    "completionRate",
    "title",
)
ORDERS = ("desc", "asc")
DISTRIBUTION_BINS = 10
MIN_BUCKETS, MAX_BUCKETS, DEFAULT_BUCKETS = 10, 1000, 100


# -- the arithmetic ---------------------------------------------------------------------------


def clamped(coverage: IntervalSet, duration_ms: int | None) -> IntervalSet:
    """``U``: coverage inside ``[0, D)``, or all of it when ``D`` is unknown."""
    return clamp(coverage, 0, duration_ms) if duration_ms else coverage


def percent(covered_ms: int, duration_ms: int | None) -> int:
    """``floor(100·covered/D)`` capped at 100; 0 when ``D`` is unknown."""
    if not duration_ms:
        return 0
    return min(100, covered_ms * 100 // duration_ms)


def is_completed(covered_ms: int, duration_ms: int | None, threshold: int) -> bool:
    """Percent ≥ threshold; never when ``D`` is unknown."""
    return bool(duration_ms) and percent(covered_ms, duration_ms) >= threshold


def effective_threshold(video: VideoFacts | None, tenant_threshold: int) -> int:
    if video is None or video.completion_threshold is None:
        return tenant_threshold
    return video.completion_threshold


def bucket_bounds(duration_ms: int, buckets: int) -> list[int]:
    """``B + 1`` bounds: bucket ``i`` is ``[bounds[i], bounds[i + 1])``,
    ``bounds[i] = floor(i·D/B)``."""
    return [index * duration_ms // buckets for index in range(buckets + 1)]


def watched_buckets(coverage: IntervalSet, bounds: Sequence[int]) -> list[int]:
    """The buckets that ``coverage`` (normal, inside ``[0, D)``) covers at least half of:
    ``2·|coverage ∩ bucket| ≥ |bucket|``; an empty bucket is never watched.

    O(intervals · log B + buckets covered): a bucket lying wholly inside one interval is
    watched without measuring it; only the buckets at the intervals' ends are measured.
    """
    last = len(bounds) - 2
    watched: list[int] = []
    partial: dict[int, int] = {}
    for start, end in coverage:
        first_bucket = bisect_right(bounds, start) - 1
        last_bucket = min(bisect_right(bounds, end - 1) - 1, last)
        for index in range(first_bucket, last_bucket + 1):
            low, high = bounds[index], bounds[index + 1]
            if start <= low and high <= end:
                if low < high:
                    watched.append(index)
            else:
                partial[index] = partial.get(index, 0) + min(end, high) - max(start, low)
    for index, covered in partial.items():
        if 2 * covered >= bounds[index + 1] - bounds[index]:
            watched.append(index)
    return watched


# -- parameters --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideosQuery:
    time_range: TimeRange
    video_info: str | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    sort: VideoSort = "lastVisit"
    order: str = "desc"


def _time_range(given: Mapping[str, object]) -> TimeRange:
    start = optional_integer(given, "startTime", 0, MAX_UNIX_SECONDS)
    end = optional_integer(given, "endTime", 0, MAX_UNIX_SECONDS)
    if start is not None and end is not None and start > end:
        raise InvalidParameter(f"startTime ({start}) is after endTime ({end})")
    return TimeRange(start, end)


def _choice(given: Mapping[str, object], name: str, choices: Sequence[str], default: str) -> str:
    value = given.get(name, default)
    if value not in choices:
        raise InvalidParameter(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _required_identifier(given: Mapping[str, object], name: str) -> str:
    value = given.get(name)
    if value is None:
        raise InvalidParameter(f"{name} is required")
    return require_identifier(name, value)


VIDEOS_PARAMETERS = ("startTime", "endTime", "videoInfo", "page", "pageSize", "sort", "order")
RETENTION_PARAMETERS = ("assetId", "buckets", "startTime", "endTime")
VIEWER_PARAMETERS = ("userId", "assetId", "startTime", "endTime")


def parse_videos_query(
    query: list[tuple[str, str]], body: Mapping[str, object] | None = None
) -> VideosQuery:
    given = merge_parameters(query, body, VIDEOS_PARAMETERS)
    return VideosQuery(
        time_range=_time_range(given),
        video_info=optional_text(given, "videoInfo"),
        page=optional_integer(given, "page", 1, MAX_PAGE) or 1,
        page_size=optional_integer(given, "pageSize", 1, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE,
        sort=_choice(given, "sort", VIDEO_SORTS, "lastVisit"),  # type: ignore[arg-type]
        order=_choice(given, "order", ORDERS, "desc"),
    )


@dataclass(frozen=True, slots=True)
class RetentionQuery:
    asset_id: str
    buckets: int
    time_range: TimeRange


def parse_retention_query(
    query: list[tuple[str, str]], body: Mapping[str, object] | None = None
) -> RetentionQuery:
    given = merge_parameters(query, body, RETENTION_PARAMETERS)
    buckets = optional_integer(given, "buckets", MIN_BUCKETS, MAX_BUCKETS)
    return RetentionQuery(
        asset_id=_required_identifier(given, "assetId"),
        buckets=DEFAULT_BUCKETS if buckets is None else buckets,
        time_range=_time_range(given),
    )


@dataclass(frozen=True, slots=True)
class ViewerQuery:
    user_id: str
    asset_id: str
    time_range: TimeRange


def parse_viewer_query(
    query: list[tuple[str, str]], body: Mapping[str, object] | None = None
) -> ViewerQuery:
    given = merge_parameters(query, body, VIEWER_PARAMETERS)
    return ViewerQuery(
        user_id=_required_identifier(given, "userId"),
        asset_id=_required_identifier(given, "assetId"),
        time_range=_time_range(given),
    )


# -- the answers -------------------------------------------------------------------------------


@dataclass(slots=True)
class VideoSummary:
    video: VideoFacts
    threshold: int
    viewers: int = 0
    visits: int = 0
    watch_ms: int = 0
    covered_ms: int = 0  # Σ|U_v|
    completed: int = 0
    last_visit_ms: int = 0

    @property
    def coverage_ratio(self) -> Fraction:
        duration = self.video.duration_ms
        if not duration or not self.viewers:
            return Fraction(0)
        return Fraction(self.covered_ms, self.viewers * duration)

    @property
    def completion_ratio(self) -> Fraction:
        return Fraction(self.completed, self.viewers) if self.viewers else Fraction(0)

    def sort_key(self, sort: VideoSort) -> Any:
        if sort == "lastVisit":
            return self.last_visit_ms // 1000
        if sort == "viewers":
            return self.viewers
        if sort == "visits":
            return self.visits
        if sort == "watchTime":
            return self.watch_ms
        if sort == "coverage":
            return self.coverage_ratio
        if sort == "completionRate":
            return self.completion_ratio
        return self.video.title  # str order is Unicode code point order

    def render(self) -> dict[str, Any]:
        duration = self.video.duration_ms
        mean = self.covered_ms * 100 // (self.viewers * duration) if duration else 0
        return {
            "assetId": self.video.asset_id,
            "videoTitle": self.video.title,
            "duration": format_duration(duration),
            "viewers": self.viewers,
            "visits": self.visits,
            "watchTimeMs": self.watch_ms,
            "visitTime": format_visit_time(self.watch_ms),
            "meanCoverage": f"{mean}%",
            "completedViewers": self.completed,
            "completionRate": f"{self.completed * 100 // self.viewers}%",
            "completionThreshold": self.threshold,
            "lastVisit": self.last_visit_ms // 1000,
        }


def summarize_videos(
    pairs: Sequence[Pair], videos: Mapping[str, VideoFacts], tenant_threshold: int
) -> list[VideoSummary]:
    """One summary per video with a pair, in no particular order."""
    summaries: dict[str, VideoSummary] = {}
    for pair in pairs:
        summary = summaries.get(pair.asset_id)
        if summary is None:
            video = videos.get(pair.asset_id) or VideoFacts(pair.asset_id, "", None, None)
            threshold = effective_threshold(video, tenant_threshold)
            summaries[pair.asset_id] = summary = VideoSummary(video, threshold)
        duration = summary.video.duration_ms
        covered = measure(clamped(pair.coverage, duration)) if duration else 0
        summary.viewers += 1
        summary.visits += pair.visit_count
        summary.watch_ms += pair.watch_ms
        summary.covered_ms += covered
        summary.completed += is_completed(covered, duration, summary.threshold)
        summary.last_visit_ms = max(summary.last_visit_ms, pair.latest_started_at_ms)
    return list(summaries.values())


def build_videos(
    conn: Connection, tenant_id: int, tenant_threshold: int, query: VideosQuery
) -> dict[str, Any]:
    """The ``data`` of ``GET /vod/webapi/statistics/vod/videos``: a page of video summaries."""
    pairs = find_pairs(conn, tenant_id, query.time_range, video_info=query.video_info)
    videos = find_videos(conn, tenant_id, {pair.asset_id for pair in pairs})
    summaries = summarize_videos(pairs, videos, tenant_threshold)
    summaries.sort(key=lambda summary: summary.video.asset_id)  # ties: assetId ascending
    summaries.sort(key=lambda summary: summary.sort_key(query.sort), reverse=query.order == "desc")
    total = len(summaries)
    offset = (query.page - 1) * query.page_size
    return {
        "total": total,
        "per_page": query.page_size,
        "current_page": query.page,
        "last_page": max(1, -(-total // query.page_size)),
        "data": [summary.render() for summary in summaries[offset : offset + query.page_size]],
    }


def build_retention(conn: Connection, tenant_id: int, query: RetentionQuery) -> dict[str, Any]:
    """The ``data`` of ``GET /vod/webapi/statistics/vod/retention``."""
    video = find_videos(conn, tenant_id, [query.asset_id]).get(query.asset_id)
    if video is None:
        raise NotFound(f"assetId {query.asset_id!r} is neither in the catalog nor ever seen")
    pairs = find_pairs(conn, tenant_id, query.time_range, asset_id=query.asset_id)
    visits = find_visits(conn, tenant_id, query.asset_id, query.time_range)
    duration = video.duration_ms or 0
    distribution = [0] * DISTRIBUTION_BINS
    if not duration:
        distribution[0] = len(pairs)
        return {
            "assetId": query.asset_id,
            "duration": 0,
            "buckets": query.buckets,
            "totalViewers": len(pairs),
            "totalVisits": len(visits),
            "viewers": [],
            "views": [],
            "distribution": distribution,
        }
    bounds = bucket_bounds(duration, query.buckets)
    viewers = [0] * query.buckets
    views = [0] * query.buckets
    for pair in pairs:
        coverage = clamp(pair.coverage, 0, duration)
        distribution[min(9, percent(measure(coverage), duration) // 10)] += 1
        for index in watched_buckets(coverage, bounds):
            viewers[index] += 1
    for visit in visits:
        for index in watched_buckets(clamp(visit.coverage, 0, duration), bounds):
            views[index] += 1
    return {
        "assetId": query.asset_id,
        "duration": duration,
        "buckets": query.buckets,
        "totalViewers": len(pairs),
        "totalVisits": len(visits),
        "viewers": viewers,
        "views": views,
        "distribution": distribution,
    }


def build_viewer(
    conn: Connection, tenant_id: int, tenant_threshold: int, query: ViewerQuery
) -> dict[str, Any]:
    """The ``data`` of ``GET /vod/webapi/statistics/vod/viewer``."""
    visits = find_visits(conn, tenant_id, query.asset_id, query.time_range, user_id=query.user_id)
    if not visits:
        raise NotFound(
            f"userId {query.user_id!r} has no visit of assetId {query.asset_id!r} in range"
        )
    video = find_videos(conn, tenant_id, [query.asset_id])[query.asset_id]
    pairs = find_pairs(
        conn, tenant_id, query.time_range, asset_id=query.asset_id, user_id=query.user_id
    )
    return {
        "userId": query.user_id,
        "userName": find_user_name(conn, tenant_id, query.user_id) or "",
        "assetId": query.asset_id,
        "videoTitle": video.title,
        "duration": video.duration_ms or 0,
        **render_pair(pairs[0], video, effective_threshold(video, tenant_threshold)),
        "visits": [render_visit(visit, video.duration_ms) for visit in visits],
    }


def render_pair(pair: Pair, video: VideoFacts, threshold: int) -> dict[str, Any]:
    """One viewer's figures on one video (``U``, percent, watch time, completion), as the
    viewer endpoint shows them; the dashboard's tables show the same."""
    duration = video.duration_ms
    united = clamped(pair.coverage, duration)
    covered = measure(united)
    return {
        "coveredMs": covered,
        "visitRadio": format_visit_radio(covered, duration),
        "watchTimeMs": pair.watch_ms,
        "visitTime": format_visit_time(pair.watch_ms),
        "completed": is_completed(covered, duration, threshold),
        "completionThreshold": threshold,
        "intervals": [list(interval) for interval in united],
    }


def render_visit(visit: VisitFacts, duration_ms: int | None) -> dict[str, Any]:
    coverage = clamped(visit.coverage, duration_ms)
    covered = measure(coverage)
    return {
        "sessionId": visit.session_id,
        "startTime": visit.started_at_ms // 1000,
        "watchTimeMs": visit.watch_ms,
        "visitTime": format_visit_time(visit.watch_ms),
        "coveredMs": covered,
        "visitRadio": format_visit_radio(covered, duration_ms),
        "intervals": [list(interval) for interval in coverage],
    }
