"""What the dashboard shows besides the analytics endpoints' answers: the summary row of one
video, the viewers of one video, and every video one viewer watched.

Each is put together from the endpoints' own queries and arithmetic (``report.insights``:
``collect_video_summaries``, ``render_pair``, ``render_visit``), so a figure on a dashboard page is
always the one the API gives for the same data.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection

from vodwatch.attention import Defaults, Rules, is_completed_by
from vodwatch.errors import NotFound
from vodwatch.formats import format_visit_time
from vodwatch.report.insights import (
    add_titles,
    collect_video_summaries,
    render_pair,
    render_visit,
    tally_retention,
    united_ms,
)
from vodwatch.report.page import paged
from vodwatch.report.params import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, optional_integer
from vodwatch.store.insights import (
    Pair,
    TimeRange,
    VideoFacts,
    find_pairs,
    find_user_names,
    find_video_pairs,
    find_video_user_names,
    find_videos,
    find_viewer_visits,
    iter_pairs,
    iter_visit_coverages,
)

ViewerSort = Literal["lastVisit", "name", "percent", "watchTime"]
VIEWER_SORTS: tuple[ViewerSort, ...] = ("lastVisit", "name", "percent", "watchTime")
ORDERS = ("desc", "asc")
T = TypeVar("T")


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

    def window(self, rows: list[T]) -> list[T]:
        """This page of ``rows``."""
        offset = (self.page - 1) * self.page_size
        return rows[offset : offset + self.page_size]

    def answer(self, total: int, data: list[Any]) -> dict[str, Any]:
        """The endpoints' paging fields, for ``total`` rows, and this page's ``data``."""
        return paged(total, self.page, self.page_size, data)


def find_video(conn: Connection, tenant_id: int, asset_id: str) -> VideoFacts:
    """The video's catalog facts; ``NotFound`` when the tenant has no such video (another
    tenant's is no different)."""
    video = find_videos(conn, tenant_id, [asset_id]).get(asset_id)
    if video is None:
        raise NotFound(f"assetId {asset_id!r} is neither in the catalog nor ever seen")
    return video


def build_video_summary(
    conn: Connection, tenant_id: int, defaults: Defaults, asset_id: str, time_range: TimeRange
) -> dict[str, Any] | None:
    """The videos endpoint's row of this one video; None when it has no visit in range."""
    summaries = collect_video_summaries(conn, tenant_id, defaults, time_range, asset_id=asset_id)
    add_titles(conn, tenant_id, summaries)
    return summaries[0].render() if summaries else None


class ViewerRanking:
    """The viewers of one video with visits in range, in the order of a sort (ties: userId
    ascending), from their pairs as they pass (``passing``): of each it keeps only its sort key
    and userId, names being read first when they are the sort. ``page`` reads the pairs of the
    page shown again, with their names, and formats them."""

    def __init__(
        self,
        conn: Connection,
        tenant_id: int,
        defaults: Defaults,
        video: VideoFacts,
        time_range: TimeRange,
        sort: ViewerSort,
        order: str,
    ) -> None:
        self._conn, self._tenant_id, self._time_range = conn, tenant_id, time_range
        self._video = video
        self._rules = video.rules(defaults)
        self._names: Mapping[str, str] = {}
        if sort == "name":
            self._names = find_video_user_names(conn, tenant_id, video.asset_id)
        self._key = _viewer_sort_key(sort, video, self._names)
        self._is_descending = order == "desc"
        self._ranked: list[tuple[Any, str]] = []  # (sort key, userId)

    def passing(self, pairs: Iterable[Pair]) -> Iterator[Pair]:
        """Each pair, ranked as it passes on (into retention, on the video's page)."""
        for pair in pairs:
            self._ranked.append((self._key(pair), pair.user_id))
            yield pair

    def page(self, paging: Paging) -> dict[str, Any]:
        """A page of rows: each viewer's figures as the viewer endpoint gives them, plus
        ``userId``, ``userName``, ``visits`` and ``lastVisit`` (unix seconds)."""
        ranked = sorted(self._ranked, key=itemgetter(1))  # ties: userId ascending
        ranked.sort(key=itemgetter(0), reverse=self._is_descending)
        shown = [user_id for _, user_id in paging.window(ranked)]
        conn, tenant_id, video = self._conn, self._tenant_id, self._video
        pairs = {
            pair.user_id: pair
            for pair in find_video_pairs(conn, tenant_id, video.asset_id, shown, self._time_range)
        }
        names = self._names or find_user_names(conn, tenant_id, shown)
        rows = [
            _viewer_row(pairs[user_id], names.get(user_id, ""), video, self._rules)
            for user_id in shown
        ]
        return paging.answer(len(ranked), rows)


def _viewer_row(pair: Pair, user_name: str, video: VideoFacts, rules: Rules) -> dict[str, Any]:
    return {
        "userId": pair.user_id,
        "userName": user_name,
        **render_pair(pair, video, rules),
        "visits": pair.visit_count,
        "lastVisit": pair.latest_started_at_ms // 1000,
    }


def _viewer_sort_key(
    sort: ViewerSort, video: VideoFacts, names: Mapping[str, str]
) -> Callable[[Pair], Any]:
    """What a row's sort column shows, from its pair: lastVisit in unix seconds, the name (or
    userId when none, in code point order, as titles), the percent (one video: the same D for
    every viewer, so ``|U|``), the watch time."""
    if sort == "name":
        return lambda pair: names.get(pair.user_id, "") or pair.user_id
    if sort == "percent":
        duration = video.duration_ms
        return lambda pair: united_ms(pair.coverage, duration)
    if sort == "watchTime":
        return attrgetter("watch_ms")
    return lambda pair: pair.latest_started_at_ms // 1000


@dataclass(frozen=True, slots=True)
class VideoPage:
    """What the dashboard's video page shows of one video."""

    video: VideoFacts
    threshold: int  # effective
    retention: dict[str, Any]  # as build_retention answers
    summary: dict[str, Any] | None  # as build_video_summary answers
    viewers: dict[str, Any]  # a page of them, as ViewerRanking.page answers


def build_video_page(
    conn: Connection,
    tenant_id: int,
    defaults: Defaults,
    asset_id: str,
    time_range: TimeRange,
    *,
    buckets: int,
    sort: ViewerSort,
    order: str,
    paging: Paging,
) -> VideoPage:
    """The retention of one video (``buckets`` of it), its row of the videos endpoint and a
    page of its viewers, each as its own function answers, reading the video's pairs and
    visits once (the row is summed in SQL, as the videos endpoint does). ``NotFound`` when
    the tenant has no such video."""
    video = find_video(conn, tenant_id, asset_id)
    ranking = ViewerRanking(conn, tenant_id, defaults, video, time_range, sort, order)
    pairs = ranking.passing(iter_pairs(conn, tenant_id, asset_id, time_range))
    visits = iter_visit_coverages(conn, tenant_id, asset_id, time_range)
    # Retention reads the pairs, and the ranking sees them pass, before the page is cut.
    retention = tally_retention(video, buckets, (pair.coverage for pair in pairs), visits)
    return VideoPage(
        video=video,
        threshold=video.rules(defaults).threshold,
        retention=retention,
        summary=build_video_summary(conn, tenant_id, defaults, asset_id, time_range),
        viewers=ranking.page(paging),
    )


def build_viewer_videos(
    conn: Connection,
    tenant_id: int,
    defaults: Defaults,
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
    completed = 0
    for pair in pairs:
        video = videos.get(pair.asset_id) or VideoFacts(pair.asset_id, "", None, None)
        completed += is_completed_by(
            pair.coverage, pair.attention, video.duration_ms, video.rules(defaults)
        )
    rows = []
    shown = paging.window(pairs)  # formatted for the page shown only
    assets = [pair.asset_id for pair in shown]
    visits = find_viewer_visits(conn, tenant_id, user_id, assets, time_range)
    for pair in shown:
        video = videos.get(pair.asset_id) or VideoFacts(pair.asset_id, "", None, None)
        found = visits.get(pair.asset_id, [])
        rows.append(
            {
                "assetId": pair.asset_id,
                "videoTitle": video.title,
                "duration": video.duration_ms or 0,
                **render_pair(pair, video, video.rules(defaults)),
                "lastVisit": pair.latest_started_at_ms // 1000,
                "visits": [
                    render_visit(visit, video.duration_ms or 0, video.rules(defaults))
                    for visit in found
                ],
            }
        )
    answer = paging.answer(len(pairs), rows)
    watch_ms = sum(pair.watch_ms for pair in pairs)
    return {
        "userId": user_id,
        "userName": find_user_names(conn, tenant_id, [user_id]).get(user_id, ""),
        "completedVideos": completed,
        "watchTimeMs": watch_ms,
        "visitTime": format_visit_time(watch_ms),
        **answer,
    }
