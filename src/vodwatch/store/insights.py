"""Queries behind the analytics endpoints (SPEC §9): every viewer-and-video pair of a tenant
with its summed watch time and united coverage, the visits of one video or one pair, and the
catalog facts (title, duration, thresholds) of the videos they name.

Pairs come from the ``viewer_videos`` rollup unless a time range asks for part of a pair's
visits: then they are grouped from the visits in range, as the seed endpoint does
(``store.reports``), so both always agree. With no time range, the videos summary sums the
rollup per video in SQL instead (``sum_videos``), reading no coverage but that of the few pairs
that reach past their video's duration (``find_pairs_past_end``).
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, and_, case, cast, func, or_, select

from vodwatch.attention import Attention, Defaults, Rules, merge, rules_for, unite
from vodwatch.intervals import IntervalSet, union
from vodwatch.store.catalog import SecondsRanges, decode_ranges
from vodwatch.store.reports import asset_condition
from vodwatch.store.schema import assets, viewer_videos, viewers, visits
from vodwatch.store.visits import decode_attention, decode_intervals

IDS_PER_QUERY = 500
COVERAGES_PER_FETCH = 1_000  # rows fetched at a time: a third of the cost of one by one


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Visits started in ``[start_time, end_time]``, unix seconds, either end open (None)."""

    start_time: int | None = None
    end_time: int | None = None

    @property
    def is_everything(self) -> bool:
        return self.start_time is None and self.end_time is None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.start_time is not None:
            conditions.append(visits.c.started_at_ms >= self.start_time * 1000)
        if self.end_time is not None:
            # As in the seed endpoint: all of the end second is in range.
            conditions.append(visits.c.started_at_ms < (self.end_time + 1) * 1000)
        return conditions


@dataclass(slots=True)
class Pair:
    """One viewer on one video, over their visits in range."""

    user_id: str
    asset_id: str
    watch_ms: int
    visit_count: int
    latest_started_at_ms: int
    coverage: IntervalSet  # the union of the visits' coverage, not clamped
    attention: Attention = field(default_factory=list)  # of those visits (vodwatch.attention)


@dataclass(frozen=True, slots=True)
class VideoFacts:
    asset_id: str
    title: str
    duration_ms: int | None
    completion_threshold: int | None  # the video's own; None: the tenant's
    # The video's other rules (SPEC §10); None: the tenant's (required ranges: none).
    required_ranges: SecondsRanges | None = None
    max_rate: float | None = None
    visible_only: bool | None = None

    def rules(self, defaults: Defaults) -> Rules:
        return rules_for(
            defaults,
            self.completion_threshold,
            self.required_ranges,
            self.max_rate,
            self.visible_only,
        )


@dataclass(frozen=True, slots=True)
class VisitFacts:
    session_id: str
    user_id: str
    started_at_ms: int
    watch_ms: int
    coverage: IntervalSet  # not clamped
    attention: Attention = field(default_factory=list)


# A pair as the rollup holds it: what ``_rollup_pair`` takes, in this order.
_ROLLUP_PAIR = (
    viewer_videos.c.user_id,
    viewer_videos.c.asset_id,
    viewer_videos.c.watch_ms,
    viewer_videos.c.visit_count,
    viewer_videos.c.latest_started_at_ms,
    viewer_videos.c.coverage,
    viewer_videos.c.attention,
)


def _rollup_pair(
    user_id: str, asset_id: str, watch: int, count: int, latest: int, coverage: str, attention: str
) -> Pair:
    return Pair(
        user_id,
        asset_id,
        watch,
        count,
        latest,
        decode_intervals(coverage),
        decode_attention(attention),
    )


def find_pairs(
    conn: Connection,
    tenant_id: int,
    time_range: TimeRange,
    *,
    video_info: str | None = None,
    asset_id: str | None = None,
    user_id: str | None = None,
) -> list[Pair]:
    """Every pair with a visit in range, of the videos ``video_info`` matches (as in the seed
    endpoint) or of one ``asset_id``, and of one ``user_id`` when given."""
    if time_range.is_everything:
        table = viewer_videos.c
        conditions: list[ColumnElement[bool]] = [table.tenant_id == tenant_id]
        if asset_id is not None:
            conditions.append(table.asset_id == asset_id)
        if user_id is not None:
            conditions.append(table.user_id == user_id)
        if video_info is not None:
            conditions.append(asset_condition(conn, tenant_id, video_info, table.asset_id))
        rows = conn.execute(select(*_ROLLUP_PAIR).where(*conditions))
        return [_rollup_pair(*row) for row in rows]
    conditions = [visits.c.tenant_id == tenant_id, *time_range.conditions()]
    if asset_id is not None:
        conditions.append(visits.c.asset_id == asset_id)
    if user_id is not None:
        conditions.append(visits.c.user_id == user_id)
    if video_info is not None:
        conditions.append(asset_condition(conn, tenant_id, video_info, visits.c.asset_id))
    pairs: dict[tuple[str, str], Pair] = {}
    for user, asset, watch, started, coverage, attention in conn.execute(
        select(
            visits.c.user_id,
            visits.c.asset_id,
            visits.c.watch_ms,
            visits.c.started_at_ms,
            visits.c.coverage,
            visits.c.attention,
        ).where(*conditions)
    ):
        pair = pairs.get((user, asset))
        visit_coverage, visit_attention = decode_intervals(coverage), decode_attention(attention)
        if pair is None:
            pairs[user, asset] = Pair(
                user, asset, watch, 1, started, visit_coverage, visit_attention
            )
            continue
        pair.watch_ms += watch
        pair.visit_count += 1
        pair.latest_started_at_ms = max(pair.latest_started_at_ms, started)
        pair.attention = merge(pair.coverage, pair.attention, visit_coverage, visit_attention)
        pair.coverage = union(pair.coverage, visit_coverage)
    return list(pairs.values())


def find_visits(
    conn: Connection,
    tenant_id: int,
    asset_id: str,
    time_range: TimeRange,
    *,
    user_id: str | None = None,
) -> list[VisitFacts]:
    """The visits in range of one video (of one viewer, when given), newest first."""
    asset: ColumnElement[str] = visits.c.asset_id
    if user_id is not None:
        asset = _off_index(visits.c.asset_id)  # among the viewer's visits (ix_visits_user)
    newest_first: ColumnElement[int] = visits.c.started_at_ms
    if conn.dialect.name == "sqlite":
        # As in ``store.reports.page_visits``: SQLite would walk every visit of the tenant in
        # time order (``ix_visits_started``) to spare sorting a few; "+ 0" keeps it off.
        newest_first = visits.c.started_at_ms + 0
    conditions = [visits.c.tenant_id == tenant_id, asset == asset_id, *time_range.conditions()]
    if user_id is not None:
        conditions.append(visits.c.user_id == user_id)
    rows = conn.execute(
        select(
            visits.c.session_id,
            visits.c.user_id,
            visits.c.started_at_ms,
            visits.c.watch_ms,
            visits.c.coverage,
            visits.c.attention,
        )
        .where(*conditions)
        .order_by(newest_first.desc(), visits.c.session_id.desc())
    )
    return [
        VisitFacts(
            session, user, started, watch, decode_intervals(coverage), decode_attention(attention)
        )
        for session, user, started, watch, coverage, attention in rows
    ]


def find_viewer_visits(
    conn: Connection,
    tenant_id: int,
    user_id: str,
    asset_ids: Iterable[str],
    time_range: TimeRange,
) -> dict[str, list[VisitFacts]]:
    """One viewer's visits in range of each video named (those it has), newest first: a page of
    the viewer's videos, in one pass over the viewer's visits (``ix_visits_user``)."""
    found: dict[str, list[VisitFacts]] = {}
    newest_first: ColumnElement[int] = visits.c.started_at_ms
    if conn.dialect.name == "sqlite":
        newest_first = visits.c.started_at_ms + 0  # as in find_visits
    for chunk in _chunks(sorted(set(asset_ids)), IDS_PER_QUERY):
        rows = conn.execute(
            select(
                visits.c.asset_id,
                visits.c.session_id,
                visits.c.started_at_ms,
                visits.c.watch_ms,
                visits.c.coverage,
                visits.c.attention,
            )
            .where(
                visits.c.tenant_id == tenant_id,
                visits.c.user_id == user_id,
                _off_index(visits.c.asset_id).in_(chunk),
                *time_range.conditions(),
            )
            .order_by(newest_first.desc(), visits.c.session_id.desc())
        )
        for asset_id, session, started, watch, coverage, attention in rows:
            visit = VisitFacts(
                session,
                user_id,
                started,
                watch,
                decode_intervals(coverage),
                decode_attention(attention),
            )
            found.setdefault(asset_id, []).append(visit)
    return found


def find_video_pairs(
    conn: Connection,
    tenant_id: int,
    asset_id: str,
    user_ids: Iterable[str],
    time_range: TimeRange,
) -> list[Pair]:
    """The pairs of one video and of the viewers named, those with a visit in range, in no
    particular order (a page of a video's viewers; one viewer's heatmap). Looked up among each
    viewer's own pairs, or visits for a time range, never through the video's index."""
    users = sorted(set(user_ids))
    pairs: list[Pair] = []
    if not time_range.is_everything:
        for user in users:
            found = find_visits(conn, tenant_id, asset_id, time_range, user_id=user)
            if found:
                pairs.append(_pair_of(user, asset_id, found))
        return pairs
    table = viewer_videos.c
    for chunk in _chunks(users, IDS_PER_QUERY):
        rows = conn.execute(
            select(*_ROLLUP_PAIR).where(
                table.tenant_id == tenant_id,
                table.user_id.in_(chunk),
                _off_index(table.asset_id) == asset_id,
            )
        )
        pairs += [_rollup_pair(*row) for row in rows]
    return pairs


def _off_index(column: ColumnElement[str]) -> ColumnElement[str]:
    """``column || ''``: the same value, compared without an index on the column. A few of a
    viewer's rows are found among theirs, not among a popular video's many: SQLite without
    statistics (no ANALYZE) cannot weigh one index against the other, and PostgreSQL's generic
    plan (psycopg prepares a statement a connection has run 5 times; the server may then plan
    it once for any values) takes the video's index, reading every visit or pair of a popular
    video to find one viewer's."""
    return column + ""


def _pair_of(user_id: str, asset_id: str, found: Sequence[VisitFacts]) -> Pair:
    """The pair of one viewer's visits of one video, summed as ``find_pairs`` sums them."""
    coverage, attention = unite((visit.coverage, visit.attention) for visit in found)
    return Pair(
        user_id,
        asset_id,
        sum(visit.watch_ms for visit in found),
        len(found),
        max(visit.started_at_ms for visit in found),
        coverage,
        attention,
    )


def iter_pairs(
    conn: Connection, tenant_id: int, asset_id: str, time_range: TimeRange
) -> Iterator[Pair]:
    """The pairs of one video with a visit in range, as ``find_pairs`` gives them but in no
    particular order and, for all time, one at a time as the rollup's rows come
    (``ix_viewer_videos_asset``): a caller keeps of a popular video's pairs only what it needs
    (``iter_visit_coverages`` says why). A time range groups the visits in range, all at once.
    Iterate it before the connection closes."""
    if not time_range.is_everything:
        yield from find_pairs(conn, tenant_id, time_range, asset_id=asset_id)
        return
    table = viewer_videos.c
    rows = conn.execute(
        select(*_ROLLUP_PAIR).where(table.tenant_id == tenant_id, table.asset_id == asset_id)
    )
    for chunk in rows.partitions(COVERAGES_PER_FETCH):
        for row in chunk:
            yield _rollup_pair(*row)


def iter_pair_coverages(
    conn: Connection, tenant_id: int, asset_id: str, time_range: TimeRange
) -> Iterator[IntervalSet]:
    """The coverage alone of each pair ``iter_pairs`` gives: all that retention needs, read
    without the other columns or a ``Pair`` for each (a tenth of retention's time)."""
    if not time_range.is_everything:
        for pair in find_pairs(conn, tenant_id, time_range, asset_id=asset_id):
            yield pair.coverage
        return
    rows = conn.execute(
        select(viewer_videos.c.coverage).where(
            viewer_videos.c.tenant_id == tenant_id, viewer_videos.c.asset_id == asset_id
        )
    )
    for chunk in rows.scalars().partitions(COVERAGES_PER_FETCH):
        for coverage in chunk:
            yield decode_intervals(coverage)


def iter_visit_coverages(
    conn: Connection, tenant_id: int, asset_id: str, time_range: TimeRange
) -> Iterator[IntervalSet]:
    """The coverage (not clamped) of each visit in range of one video, in no particular order
    (so through ``ix_visits_asset`` on both backends), decoded as the rows come: retention
    counts each and drops it, instead of holding a popular video's every visit (which the
    garbage collector would walk again and again). Iterate it before the connection closes."""
    rows = conn.execute(
        select(visits.c.coverage).where(
            visits.c.tenant_id == tenant_id,
            visits.c.asset_id == asset_id,
            *time_range.conditions(),
        )
    )
    for chunk in rows.scalars().partitions(COVERAGES_PER_FETCH):
        for coverage in chunk:
            yield decode_intervals(coverage)


def find_videos(
    conn: Connection, tenant_id: int, asset_ids: Iterable[str]
) -> dict[str, VideoFacts]:
    """Catalog facts of the videos named (those known: seen in a beacon or cataloged)."""
    found: dict[str, VideoFacts] = {}
    for chunk in _chunks(sorted(set(asset_ids)), IDS_PER_QUERY):
        rows = conn.execute(
            select(
                assets.c.asset_id,
                assets.c.title,
                assets.c.duration_ms,
                assets.c.completion_threshold,
                assets.c.required_ranges,
                assets.c.max_rate,
                assets.c.visible_only,
            ).where(assets.c.tenant_id == tenant_id, assets.c.asset_id.in_(chunk))
        )
        for row in rows:
            found[row.asset_id] = _video_facts(row)
    return found


def _video_facts(row: Any, title: str | None = None) -> VideoFacts:
    """A video's facts from a row of its catalog columns (``title``: when the row has none)."""
    return VideoFacts(
        row.asset_id,
        row.title if title is None else title,
        row.duration_ms,
        row.completion_threshold,
        decode_ranges(row.required_ranges),
        row.max_rate,
        None if row.visible_only is None else bool(row.visible_only),
    )


@dataclass(frozen=True, slots=True)
class VideoTotals:
    """One video's pairs summed in SQL (``sum_videos``), coverage as stored: ``covered_ms``
    and ``completed`` are right for the pairs whose coverage ends at or before ``D``; the others
    (``find_pairs_past_end``) are for the caller to clamp and put right."""

    video: VideoFacts  # no title
    viewers: int
    visits: int
    watch_ms: int
    last_visit_ms: int
    covered_ms: int  # Σ covered_ms (not clamped)
    # Pairs with no attention (every millisecond counts under any rule) and
    # 100·covered_ms ≥ threshold·D (none when D is unknown).
    completed: int
    # A pair's coverage ends past D, or an end is not known; or a pair has attention (rules may
    # leave some of it out); or the video has required ranges: ``find_pairs_to_check``.
    needs_check: bool


@dataclass(frozen=True, slots=True)
class PairToCheck:
    """A pair whose stored sums ``sum_videos`` took as they are, to be put right."""

    asset_id: str
    covered_ms: int  # as stored: the measure of coverage, not clamped
    coverage: IntervalSet  # not clamped
    attention: Attention


def sum_videos(
    conn: Connection,
    tenant_id: int,
    tenant_threshold: int,
    *,
    video_info: str | None = None,
    asset_id: str | None = None,
) -> list[VideoTotals]:
    """Every pair of the tenant (no time range: the ``viewer_videos`` rollup) summed per video
    in SQL, of the videos ``video_info`` matches or of one ``asset_id``; in no order.

    No coverage is read: media times are never negative, so a pair whose coverage ends at or
    before ``D`` (``coverage_end_ms``) has ``|U| = covered_ms``, and its percent reaches the
    threshold ``t`` exactly when ``100·covered_ms ≥ t·D``. The rare pairs ending past ``D``
    are summed as stored here too, and flagged; ``find_pairs_past_end`` reads them to be put
    right. One range of ``ix_viewer_videos_asset`` per video, which holds every column summed;
    the videos are the outer loop (grouped by their key, so no sort either).
    """
    pair, video = viewer_videos.c, assets.c
    threshold = func.coalesce(video.completion_threshold, tenant_threshold)
    ends = pair.coverage_end_ms
    needs_check = or_(
        func.max(ends) > video.duration_ms,
        func.count(ends) < func.count(),
        func.max(case((pair.attention != "[]", 1), else_=0)) == 1,
        video.required_ranges.is_not(None),
    )
    conditions = [video.tenant_id == tenant_id]
    if asset_id is not None:
        conditions.append(video.asset_id == asset_id)
    if video_info is not None:
        conditions.append(asset_condition(conn, tenant_id, video_info, video.asset_id))
    is_plainly_complete = and_(
        pair.attention == "[]", 100 * pair.covered_ms >= threshold * video.duration_ms
    )
    rows = conn.execute(
        select(
            video.asset_id,
            video.duration_ms,
            video.completion_threshold,
            video.required_ranges,
            video.max_rate,
            video.visible_only,
            func.count(),
            _sum(pair.visit_count),
            _sum(pair.watch_ms),
            func.max(pair.latest_started_at_ms),
            _sum(pair.covered_ms),
            func.count(case((is_plainly_complete, 1))),
            case((needs_check, True), else_=False),
        )
        .select_from(
            assets.join(
                viewer_videos,
                and_(pair.tenant_id == video.tenant_id, pair.asset_id == video.asset_id),
            )
        )
        .where(*conditions)
        .group_by(video.tenant_id, video.asset_id)
    )
    return [
        VideoTotals(
            _video_facts(row, title=""),
            viewers=row[6],
            visits=row[7],
            watch_ms=row[8],
            last_visit_ms=row[9],
            covered_ms=row[10],
            completed=row[11],
            needs_check=bool(row[12]),
        )
        for row in rows
    ]


def find_pairs_to_check(
    conn: Connection, tenant_id: int, asset_ids: Iterable[str]
) -> list[PairToCheck]:
    """The pairs of those videos whose coverage ends past the video's known duration (or whose
    end is not known), that have attention, or of a video with required ranges: those
    ``sum_videos`` could not judge. Asked only for the videos it flagged: it walks their index
    ranges (``ix_viewer_videos_asset``) and reads the rows that match."""
    pair, video = viewer_videos.c, assets.c
    found: list[PairToCheck] = []
    for chunk in _chunks(sorted(set(asset_ids)), IDS_PER_QUERY):
        rows = conn.execute(
            select(pair.asset_id, pair.covered_ms, pair.coverage, pair.attention)
            .select_from(
                assets.join(
                    viewer_videos,
                    and_(
                        pair.tenant_id == video.tenant_id,
                        pair.asset_id == video.asset_id,
                        or_(
                            pair.coverage_end_ms > video.duration_ms,
                            pair.coverage_end_ms.is_(None),
                            pair.attention != "[]",
                            video.required_ranges.is_not(None),
                        ),
                    ),
                )
            )
            .where(video.tenant_id == tenant_id, video.asset_id.in_(chunk), video.duration_ms > 0)
        )
        found += [
            PairToCheck(asset_id, covered, decode_intervals(coverage), decode_attention(attention))
            for asset_id, covered, coverage, attention in rows
        ]
    return found


def _sum(value: ColumnElement[int]) -> ColumnElement[int]:
    # PostgreSQL sums a bigint as numeric (a Decimal in Python): back to bigint.
    return cast(func.sum(value), BigInteger)


def find_user_name(conn: Connection, tenant_id: int, user_id: str) -> str | None:
    """A viewer's latest reported name ("" when none was); None for an unknown viewer."""
    return conn.execute(
        select(viewers.c.user_name).where(
            viewers.c.tenant_id == tenant_id, viewers.c.user_id == user_id
        )
    ).scalar_one_or_none()


def find_user_names(conn: Connection, tenant_id: int, user_ids: Iterable[str]) -> dict[str, str]:
    """The latest reported name ("" when none was) of each known viewer named."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(user_ids)), IDS_PER_QUERY):
        rows = conn.execute(
            select(viewers.c.user_id, viewers.c.user_name).where(
                viewers.c.tenant_id == tenant_id, viewers.c.user_id.in_(chunk)
            )
        )
        found.update((user_id, user_name) for user_id, user_name in rows)
    return found


def find_video_user_names(conn: Connection, tenant_id: int, asset_id: str) -> dict[str, str]:
    """The latest reported name ("" when none was) of every viewer who ever watched the
    video: one join, not ``find_user_names``' thousands of keys for a video's viewers."""
    pair, viewer = viewer_videos.c, viewers.c
    rows = conn.execute(
        select(viewer.user_id, viewer.user_name)
        .select_from(
            viewer_videos.join(
                viewers, and_(viewer.tenant_id == pair.tenant_id, viewer.user_id == pair.user_id)
            )
        )
        .where(pair.tenant_id == tenant_id, pair.asset_id == asset_id)
    )
    return {user_id: user_name for user_id, user_name in rows}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
