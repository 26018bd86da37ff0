"""The analytics of SPEC §9: a summary per video, a retention curve and coverage distribution
per video, one viewer's heatmap on one video. Every figure comes from the per-visit coverage
and watch time the seed endpoint reports, with the arithmetic written out here once.

For a viewer, ``U`` is the union of the coverage of their visits in range, clamped to the
catalog duration ``D`` (not clamped when ``D`` is unknown); their percent is
``floor(100·|U|/D)``, capped at 100 — the ``groupBy=userVideo`` visitRadio. They have
completed the video when that percent reaches the video's effective threshold.
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import Connection

from vodwatch.attention import (
    Attention,
    Defaults,
    Rules,
    counted,
    counted_within,
    is_complete,
    is_completed_by,
)
from vodwatch.errors import InvalidParameter, NotFound
from vodwatch.formats import format_duration, format_visit_radio, format_visit_time
from vodwatch.intervals import IntervalSet, clamp, measure
from vodwatch.report.page import paged
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
    PairToCheck,
    TimeRange,
    VideoFacts,
    VideoTotals,
    VisitFacts,
    find_pairs,
    find_pairs_to_check,
    find_user_name,
    find_video_pairs,
    find_videos,
    find_visits,
    iter_pair_coverages,
    iter_visit_coverages,
    sum_videos,
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


def united_ms(coverage: IntervalSet, duration_ms: int | None) -> int:
    """``|U|``: ``measure(clamped(coverage, duration_ms))``, clamping only a set that reaches
    outside ``[0, D)`` (few do). Summed in a loop: it runs for every viewer of a video."""
    if duration_ms and coverage and (coverage[0][0] < 0 or coverage[-1][1] > duration_ms):
        coverage = clamp(coverage, 0, duration_ms)
    covered = 0
    for start, end in coverage:
        covered += end - start
    return covered


def percent(covered_ms: int, duration_ms: int | None) -> int:
    """``floor(100·covered/D)`` capped at 100; 0 when ``D`` is unknown."""
    if not duration_ms:
        return 0
    return min(100, covered_ms * 100 // duration_ms)


def is_completed(covered_ms: int, duration_ms: int | None, threshold: int) -> bool:
    """Percent ≥ threshold; never when ``D`` is unknown."""
    return bool(duration_ms) and percent(covered_ms, duration_ms) >= threshold


def counted_ms(
    coverage: IntervalSet, attention: Attention, duration_ms: int | None, rules: Rules
) -> int:
    """``|C|``: the counted part of ``U`` (clamped to ``[0, D)``; 0 when ``D`` is unknown)."""
    if not duration_ms:
        return 0
    return measure(counted_within(coverage, attention, duration_ms, rules))


def bucket_bounds(duration_ms: int, buckets: int) -> list[int]:
    """``B + 1`` bounds: bucket ``i`` is ``[bounds[i], bounds[i + 1])``,
    ``bounds[i] = floor(i·D/B)``."""
    return [index * duration_ms // buckets for index in range(buckets + 1)]


def count_watched_buckets(
    coverages: Iterable[IntervalSet], duration_ms: int, buckets: int
) -> list[int]:
    """For each of the ``buckets`` buckets of ``bucket_bounds(duration_ms, buckets)``, how many
    of ``coverages`` (normal sets, clamped here to ``[0, D)``, ``D > 0``) cover at least half of it:
    ``2·|coverage ∩ bucket| ≥ |bucket|``; an empty bucket counts none.

    O(B + intervals): the buckets lying wholly inside an interval are counted with a
    difference array (+1 at the first, −1 after the last); only the two buckets at an
    interval's ends are measured. A set's intervals are disjoint, so a bucket its union covers
    wholly lies inside one of them, and the buckets it covers in part come in order: the
    ``partial`` bucket's pieces are summed until the next one begins, then it is judged.
    """
    bounds = bucket_bounds(duration_ms, buckets)
    steps = [0] * (buckets + 1)
    counts = [0] * buckets
    for coverage in coverages:
        partial, partial_ms = -1, 0
        for start, end in coverage:
            if start < 0:
                start = 0
            if end > duration_ms:
                end = duration_ms
            if start >= end:
                continue
            # The bucket holding millisecond x is the last i with floor(i·D/B) ≤ x, that is
            # with i·D < (x + 1)·B: i = ((x + 1)·B − 1) div D (never an empty one).
            first = ((start + 1) * buckets - 1) // duration_ms
            last = (end * buckets - 1) // duration_ms
            whole_first = first if bounds[first] == start else first + 1
            whole_last = last if bounds[last + 1] == end else last - 1
            if whole_first <= whole_last:
                steps[whole_first] += 1
                steps[whole_last + 1] -= 1
            if whole_first > first:  # the first bucket in part; it may go on a partial one
                piece_ms = (end if first == last else bounds[first + 1]) - start
                if first == partial:
                    partial_ms += piece_ms
                else:
                    if partial >= 0 and 2 * partial_ms >= bounds[partial + 1] - bounds[partial]:
                        counts[partial] += 1
                    partial, partial_ms = first, piece_ms
                if first == last:
                    continue
            if whole_last < last:  # the last bucket in part, from its start: a new one
                if partial >= 0 and 2 * partial_ms >= bounds[partial + 1] - bounds[partial]:
                    counts[partial] += 1
                partial, partial_ms = last, end - bounds[last]
        if partial >= 0 and 2 * partial_ms >= bounds[partial + 1] - bounds[partial]:
            counts[partial] += 1
    running = 0
    for index in range(buckets):
        running += steps[index]
        if bounds[index] < bounds[index + 1]:
            counts[index] += running
    return counts


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
    rules: Rules
    viewers: int = 0
    visits: int = 0
    watch_ms: int = 0
    covered_ms: int = 0  # Σ|U_v|
    counted_ms: int = 0  # Σ|C_v|
    completed: int = 0
    last_visit_ms: int = 0

    @property
    def threshold(self) -> int:
        return self.rules.threshold

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
        mean_counted = self.counted_ms * 100 // (self.viewers * duration) if duration else 0
        return {
            "assetId": self.video.asset_id,
            "videoTitle": self.video.title,
            "duration": format_duration(duration),
            "viewers": self.viewers,
            "visits": self.visits,
            "watchTimeMs": self.watch_ms,
            "visitTime": format_visit_time(self.watch_ms),
            "meanCoverage": f"{mean}%",
            "meanCountedCoverage": f"{mean_counted}%",
            "completedViewers": self.completed,
            "completionRate": f"{self.completed * 100 // self.viewers}%",
            "completionThreshold": self.threshold,
            "lastVisit": self.last_visit_ms // 1000,
        }


def summarize_videos(
    pairs: Sequence[Pair], videos: Mapping[str, VideoFacts], defaults: Defaults
) -> list[VideoSummary]:
    """One summary per video with a pair, in no particular order."""
    summaries: dict[str, VideoSummary] = {}
    for pair in pairs:
        summary = summaries.get(pair.asset_id)
        if summary is None:
            video = videos.get(pair.asset_id) or VideoFacts(pair.asset_id, "", None, None)
            summaries[pair.asset_id] = summary = VideoSummary(video, video.rules(defaults))
        duration = summary.video.duration_ms
        covered = measure(clamped(pair.coverage, duration)) if duration else 0
        summary.viewers += 1
        summary.visits += pair.visit_count
        summary.watch_ms += pair.watch_ms
        summary.covered_ms += covered
        summary.counted_ms += counted_ms(pair.coverage, pair.attention, duration, summary.rules)
        summary.completed += is_completed_by(pair.coverage, pair.attention, duration, summary.rules)
        summary.last_visit_ms = max(summary.last_visit_ms, pair.latest_started_at_ms)
    return list(summaries.values())


def build_videos(
    conn: Connection, tenant_id: int, defaults: Defaults, query: VideosQuery
) -> dict[str, Any]:
    """The ``data`` of ``GET /vod/webapi/statistics/vod/videos``: a page of video summaries.
    Titles are read for the page only, unless the page is sorted by them."""
    summaries = collect_video_summaries(
        conn, tenant_id, defaults, query.time_range, video_info=query.video_info
    )
    if query.sort == "title":
        add_titles(conn, tenant_id, summaries)
    summaries.sort(key=lambda summary: summary.video.asset_id)  # ties: assetId ascending
    summaries.sort(key=lambda summary: summary.sort_key(query.sort), reverse=query.order == "desc")
    total = len(summaries)
    offset = (query.page - 1) * query.page_size
    page = summaries[offset : offset + query.page_size]
    if query.sort != "title":
        add_titles(conn, tenant_id, page)
    return paged(total, query.page, query.page_size, [summary.render() for summary in page])


def collect_video_summaries(
    conn: Connection,
    tenant_id: int,
    defaults: Defaults,
    time_range: TimeRange,
    *,
    video_info: str | None = None,
    asset_id: str | None = None,
) -> list[VideoSummary]:
    """One summary per video with a visit in range (of the videos ``video_info`` matches, or
    of one ``asset_id``), in no particular order; titles may be missing (``add_titles``).

    With no time range, every pair counts: they are summed per video in SQL (``sum_videos``),
    and only the pairs whose coverage reaches past the duration are read and clamped here.
    A time range takes part of a pair's visits: the pairs are grouped from the visits then.
    """
    if not time_range.is_everything:
        pairs = find_pairs(conn, tenant_id, time_range, video_info=video_info, asset_id=asset_id)
        videos = find_videos(conn, tenant_id, {pair.asset_id for pair in pairs})
        return summarize_videos(pairs, videos, defaults)
    totals = sum_videos(
        conn, tenant_id, defaults.threshold, video_info=video_info, asset_id=asset_id
    )
    to_check = [t.video.asset_id for t in totals if t.needs_check and t.video.duration_ms]
    return summarize_totals(totals, find_pairs_to_check(conn, tenant_id, to_check), defaults)


def summarize_totals(
    totals: Iterable[VideoTotals], to_check: Iterable[PairToCheck], defaults: Defaults
) -> list[VideoSummary]:
    """``summarize_videos`` from the per-video sums of ``sum_videos``, which take each pair's
    coverage as stored and count as completed only pairs every millisecond of which counts, and
    the pairs among them it could not judge (coverage past the duration, attention, required
    ranges), whose stored figures are replaced here by those of ``U`` clamped and ``C``."""
    summaries: dict[str, VideoSummary] = {}
    for total in totals:
        is_known = bool(total.video.duration_ms)  # unknown: no coverage counts
        summaries[total.video.asset_id] = VideoSummary(
            total.video,
            total.video.rules(defaults),
            viewers=total.viewers,
            visits=total.visits,
            watch_ms=total.watch_ms,
            covered_ms=total.covered_ms if is_known else 0,
            counted_ms=total.covered_ms if is_known else 0,
            completed=total.completed if is_known else 0,
            last_visit_ms=total.last_visit_ms,
        )
    for pair in to_check:
        summary = summaries[pair.asset_id]
        duration = summary.video.duration_ms
        assert duration  # only videos of known duration have pairs checked
        covered = measure(clamp(pair.coverage, 0, duration))
        summary.covered_ms += covered - pair.covered_ms
        summary.counted_ms += (
            counted_ms(pair.coverage, pair.attention, duration, summary.rules) - pair.covered_ms
        )
        # Out with what sum_videos counted (a pair without attention, its stored measure against
        # the threshold, as it compares them), in with the pair's completion as SPEC §10 has it.
        summary.completed += is_completed_by(pair.coverage, pair.attention, duration, summary.rules)
        summary.completed -= (
            not pair.attention and 100 * pair.covered_ms >= summary.threshold * duration
        )
    return list(summaries.values())


def add_titles(conn: Connection, tenant_id: int, summaries: Iterable[VideoSummary]) -> None:
    """Give each summary its video's catalog title (read in the same snapshot)."""
    summaries = list(summaries)
    videos = find_videos(conn, tenant_id, [summary.video.asset_id for summary in summaries])
    for summary in summaries:
        found = videos.get(summary.video.asset_id)
        if found is not None:
            summary.video = replace(summary.video, title=found.title)


def build_retention(conn: Connection, tenant_id: int, query: RetentionQuery) -> dict[str, Any]:
    """The ``data`` of ``GET /vod/webapi/statistics/vod/retention``."""
    video = find_videos(conn, tenant_id, [query.asset_id]).get(query.asset_id)
    if video is None:
        raise NotFound(f"assetId {query.asset_id!r} is neither in the catalog nor ever seen")
    return tally_retention(
        video,
        query.buckets,
        iter_pair_coverages(conn, tenant_id, query.asset_id, query.time_range),
        iter_visit_coverages(conn, tenant_id, query.asset_id, query.time_range),
    )


def tally_retention(
    video: VideoFacts,
    buckets: int,
    viewer_coverages: Iterable[IntervalSet],
    visit_coverages: Iterable[IntervalSet],
) -> dict[str, Any]:
    """``build_retention``'s answer from the coverage (not clamped) of each of the video's
    pairs and of each of its visits in range, each looked at once as it passes (the dashboard's
    video page gives the pairs it has read for all it shows)."""
    duration = video.duration_ms or 0
    distribution = [0] * DISTRIBUTION_BINS
    visit_count = 0

    def binned(coverages: Iterable[IntervalSet]) -> Iterator[IntervalSet]:
        for coverage in coverages:  # each viewer's percent, into the distribution
            distribution[min(9, percent(united_ms(coverage, duration), duration) // 10)] += 1
            yield coverage

    def counted(coverages: Iterable[IntervalSet]) -> Iterator[IntervalSet]:
        nonlocal visit_count
        for coverage in coverages:
            visit_count += 1
            yield coverage

    viewers: list[int] = []
    views: list[int] = []
    if duration:
        viewers = count_watched_buckets(binned(viewer_coverages), duration, buckets)
        views = count_watched_buckets(counted(visit_coverages), duration, buckets)
    else:  # no buckets; every viewer is in bin 0
        distribution[0] = sum(1 for _ in viewer_coverages)
        visit_count = sum(1 for _ in visit_coverages)
    return {
        "assetId": video.asset_id,
        "duration": duration,
        "buckets": buckets,
        "totalViewers": sum(distribution),
        "totalVisits": visit_count,
        "viewers": viewers,
        "views": views,
        "distribution": distribution,
    }


def build_viewer(
    conn: Connection, tenant_id: int, defaults: Defaults, query: ViewerQuery
) -> dict[str, Any]:
    """The ``data`` of ``GET /vod/webapi/statistics/vod/viewer``."""
    visits = find_visits(conn, tenant_id, query.asset_id, query.time_range, user_id=query.user_id)
    if not visits:
        raise NotFound(
            f"userId {query.user_id!r} has no visit of assetId {query.asset_id!r} in range"
        )
    video = find_videos(conn, tenant_id, [query.asset_id])[query.asset_id]
    rules = video.rules(defaults)
    pairs = find_video_pairs(conn, tenant_id, query.asset_id, [query.user_id], query.time_range)
    return {
        "userId": query.user_id,
        "userName": find_user_name(conn, tenant_id, query.user_id) or "",
        "assetId": query.asset_id,
        "videoTitle": video.title,
        "duration": video.duration_ms or 0,
        **render_pair(pairs[0], video, rules),
        "visits": [render_visit(visit, video.duration_ms, rules) for visit in visits],
    }


def render_pair(pair: Pair, video: VideoFacts, rules: Rules) -> dict[str, Any]:
    """One viewer's figures on one video (``U`` and ``C``, percents, watch time, completion),
    as the viewer endpoint shows them; the dashboard's tables show the same."""
    duration = video.duration_ms
    united = clamped(pair.coverage, duration)
    covered = measure(united)
    counted_coverage = counted(united, pair.attention, rules)
    counted_total = measure(counted_coverage)
    return {
        "coveredMs": covered,
        "visitRadio": format_visit_radio(covered, duration),
        "countedMs": counted_total,
        "countedRadio": format_visit_radio(counted_total, duration),
        "watchTimeMs": pair.watch_ms,
        "visitTime": format_visit_time(pair.watch_ms),
        "completed": bool(duration) and is_complete(counted_coverage, duration, rules),
        "completionThreshold": rules.threshold,
        "intervals": [list(interval) for interval in united],
        "countedIntervals": [list(interval) for interval in counted_coverage],
    }


def render_visit(visit: VisitFacts, duration_ms: int | None, rules: Rules) -> dict[str, Any]:
    coverage = clamped(visit.coverage, duration_ms)
    covered = measure(coverage)
    counted_coverage = counted(coverage, visit.attention, rules)
    return {
        "sessionId": visit.session_id,
        "startTime": visit.started_at_ms // 1000,
        "watchTimeMs": visit.watch_ms,
        "visitTime": format_visit_time(visit.watch_ms),
        "coveredMs": covered,
        "visitRadio": format_visit_radio(covered, duration_ms),
        "countedMs": measure(counted_coverage),
        "intervals": [list(interval) for interval in coverage],
        "countedIntervals": [list(interval) for interval in counted_coverage],
    }
