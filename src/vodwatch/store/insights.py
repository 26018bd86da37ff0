"""Queries behind the analytics endpoints (SPEC §9): every viewer-and-video pair of a tenant
with its summed watch time and united coverage, the visits of one video or one pair, and the
catalog facts (title, duration, thresholds) of the videos they name.

Pairs come from the ``viewer_videos`` rollup unless a time range asks for part of a pair's
visits: then they are grouped from the visits in range, as the seed endpoint does
(``store.reports``), so both always agree.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, select

from vodwatch.intervals import IntervalSet, union
from vodwatch.store.reports import asset_condition
from vodwatch.store.schema import assets, viewer_videos, viewers, visits
from vodwatch.store.visits import decode_intervals

IDS_PER_QUERY = 500


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


@dataclass(frozen=True, slots=True)
class VideoFacts:
    asset_id: str
    title: str
    duration_ms: int | None
    completion_threshold: int | None  # the video's own; None: the tenant's


@dataclass(frozen=True, slots=True)
class VisitFacts:
    session_id: str
    user_id: str
    started_at_ms: int
    watch_ms: int
    coverage: IntervalSet  # not clamped


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
        rows = conn.execute(
            select(
                table.user_id,
                table.asset_id,
                table.watch_ms,
                table.visit_count,
                table.latest_started_at_ms,
                table.coverage,
            ).where(*conditions)
        )
        return [
            Pair(user, asset, watch, count, latest, decode_intervals(coverage))
            for user, asset, watch, count, latest, coverage in rows
        ]
    conditions = [visits.c.tenant_id == tenant_id, *time_range.conditions()]
    if asset_id is not None:
        conditions.append(visits.c.asset_id == asset_id)
    if user_id is not None:
        conditions.append(visits.c.user_id == user_id)
    if video_info is not None:
        conditions.append(asset_condition(conn, tenant_id, video_info, visits.c.asset_id))
    pairs: dict[tuple[str, str], Pair] = {}
    for user, asset, watch, started, coverage in conn.execute(
        select(
            visits.c.user_id,
            visits.c.asset_id,
            visits.c.watch_ms,
            visits.c.started_at_ms,
            visits.c.coverage,
        ).where(*conditions)
    ):
        pair = pairs.get((user, asset))
        if pair is None:
            pairs[user, asset] = Pair(user, asset, watch, 1, started, decode_intervals(coverage))
            continue
        pair.watch_ms += watch
        pair.visit_count += 1
        pair.latest_started_at_ms = max(pair.latest_started_at_ms, started)
        pair.coverage = union(pair.coverage, decode_intervals(coverage))
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
    conditions = [
        visits.c.tenant_id == tenant_id,
        visits.c.asset_id == asset_id,
        *time_range.conditions(),
    ]
    if user_id is not None:
        conditions.append(visits.c.user_id == user_id)
    rows = conn.execute(
        select(
            visits.c.session_id,
            visits.c.user_id,
            visits.c.started_at_ms,
            visits.c.watch_ms,
            visits.c.coverage,
        )
        .where(*conditions)
        .order_by(visits.c.started_at_ms.desc(), visits.c.session_id.desc())
    )
    return [
        VisitFacts(session, user, started, watch, decode_intervals(coverage))
        for session, user, started, watch, coverage in rows
    ]


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
            ).where(assets.c.tenant_id == tenant_id, assets.c.asset_id.in_(chunk))
        )
        for row in rows:
            found[row.asset_id] = VideoFacts(*row)
    return found


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


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
