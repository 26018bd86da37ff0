"""Report queries: one page of visits, or of viewer-and-video pairs, with the total count.

Filters and order are applied in SQL on indexed columns; coverage (a JSON interval list per
visit) is merged and clamped in Python for the rows of the page only. Pairs come from the
``viewer_videos`` rollup, kept by ingest, unless a time range asks for part of a pair's visits:
then they are grouped from the visits in range.

The export reads every matching row in the same order as one statement, a chunk at a time
(``stream_visits``, ``stream_viewer_videos``): no count and no OFFSET.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Row,
    Select,
    and_,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)

from vodwatch.attention import Attention, merge
from vodwatch.intervals import IntervalSet, normalize, union
from vodwatch.report.params import ReportQuery
from vodwatch.store.catalog import fold_title
from vodwatch.store.schema import assets, viewer_videos, viewers, visits
from vodwatch.store.visits import decode_attention, decode_intervals


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row of the report: a visit, or the visits of one viewer and video summed."""

    user_id: str
    user_name: str
    asset_id: str
    title: str
    duration_ms: int | None
    watch_ms: int
    coverage: IntervalSet  # not clamped to the duration yet
    started_at_ms: int  # of the visit, or of the pair's latest visit
    last_seen_at_ms: int
    session_id: str | None = None  # visits only
    visit_count: int = 1
    completion_threshold: int | None = None  # the video's own; None: the tenant's


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with ``ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


MAX_LISTED_ASSETS = 1000
SORT_MATCHES_UP_TO = 5000


def matching_assets(tenant_id: int, video_info: str) -> Select[tuple[str]]:
    """Videos whose assetId is ``video_info``, or whose title contains it (case-insensitive,
    ``%`` and ``_`` literal): answered from the catalog, by trigrams on PostgreSQL."""
    pattern = f"%{escape_like(fold_title(video_info))}%"
    return select(assets.c.asset_id).where(
        assets.c.tenant_id == tenant_id,
        or_(assets.c.asset_id == video_info, assets.c.title_folded.like(pattern, escape="\\")),
    )


def asset_condition(
    conn: Connection, tenant_id: int, video_info: str, column: ColumnElement[str]
) -> ColumnElement[bool]:
    """``column`` is one of the videos ``video_info`` matches."""
    # The matching videos first, then their rows through an index on the asset: a rare title
    # never walks every visit of the tenant. Past MAX_LISTED_ASSETS videos the title is not
    # selective, and the database plans the join as it likes.
    matching = matching_assets(tenant_id, video_info)
    asset_ids = conn.execute(matching.limit(MAX_LISTED_ASSETS + 1)).scalars().all()
    return column.in_(asset_ids if len(asset_ids) <= MAX_LISTED_ASSETS else matching)


def _filters(conn: Connection, tenant_id: int, query: ReportQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [visits.c.tenant_id == tenant_id]
    if query.start_time is not None:
        conditions.append(visits.c.started_at_ms >= query.start_time * 1000)
    if query.end_time is not None:
        # startedAt is compared in whole seconds: all of the end second is in range.
        conditions.append(visits.c.started_at_ms < (query.end_time + 1) * 1000)
    if query.user_id is not None:
        conditions.append(visits.c.user_id == query.user_id)
    if query.video_info is not None:
        conditions.append(asset_condition(conn, tenant_id, query.video_info, visits.c.asset_id))
    return conditions


def _rollup_filters(
    conn: Connection, tenant_id: int, query: ReportQuery
) -> list[ColumnElement[bool]]:
    pairs_table = viewer_videos.c
    conditions: list[ColumnElement[bool]] = [pairs_table.tenant_id == tenant_id]
    if query.user_id is not None:
        conditions.append(pairs_table.user_id == query.user_id)
    if query.video_info is not None:
        conditions.append(asset_condition(conn, tenant_id, query.video_info, pairs_table.asset_id))
    return conditions


def page_visits(
    conn: Connection, tenant_id: int, query: ReportQuery
) -> tuple[int, list[ReportRow]]:
    """Total visits matching ``query`` and the requested page, newest first."""
    conditions = _filters(conn, tenant_id, query)
    total = conn.execute(select(func.count()).select_from(visits).where(*conditions)).scalar_one()
    if query.offset >= total:
        return total, []
    newest_first: ColumnElement[int] = visits.c.started_at_ms
    is_selective = query.user_id is not None or query.video_info is not None
    if conn.dialect.name == "sqlite" and is_selective and total <= SORT_MATCHES_UP_TO:
        # Few matches: find them through the viewer's or video's index and sort them. SQLite
        # would otherwise walk the tenant's visits in time order until it has found a page
        # (every visit of the tenant, for a viewer with a dozen); "+ 0" keeps it off that index.
        newest_first = visits.c.started_at_ms + 0
    page = (
        select(visits)
        .where(*conditions)
        .order_by(newest_first.desc(), visits.c.session_id.desc())
        .limit(query.page_size)
        .offset(query.offset)
        .subquery()
    )
    rows = conn.execute(
        _with_names(
            select(
                page.c.session_id,
                page.c.user_id,
                page.c.asset_id,
                page.c.watch_ms,
                page.c.coverage,
                page.c.started_at_ms,
                page.c.last_seen_at_ms,
            ),
            page,
            tenant_id,
        ).order_by(page.c.started_at_ms.desc(), page.c.session_id.desc())
    )
    return total, [
        _report_row(
            row,
            watch_ms=row.watch_ms,
            coverage=decode_intervals(row.coverage),
            started_at_ms=row.started_at_ms,
            session_id=row.session_id,
        )
        for row in rows
    ]


def page_viewer_videos(
    conn: Connection, tenant_id: int, query: ReportQuery
) -> tuple[int, list[ReportRow]]:
    """Total viewer-and-video pairs matching ``query`` and the requested page, ordered by each
    pair's latest visit; watch time summed and coverage united over the pair's visits."""
    if query.start_time is None and query.end_time is None:
        return _page_rollup(conn, tenant_id, query)
    return _page_grouped_visits(conn, tenant_id, query)


def _page_rollup(
    conn: Connection, tenant_id: int, query: ReportQuery
) -> tuple[int, list[ReportRow]]:
    """All of each pair's visits: read from the rollup, one row per pair."""
    pairs_table = viewer_videos.c
    conditions = _rollup_filters(conn, tenant_id, query)
    total = conn.execute(
        select(func.count()).select_from(viewer_videos).where(*conditions)
    ).scalar_one()
    if query.offset >= total:
        return total, []
    page = (
        select(viewer_videos)
        .where(*conditions)
        .order_by(
            pairs_table.latest_started_at_ms.desc(),
            pairs_table.user_id.desc(),
            pairs_table.asset_id.desc(),
        )
        .limit(query.page_size)
        .offset(query.offset)
        .subquery()
    )
    pairs = conn.execute(
        _with_names(select(page), page, tenant_id).order_by(
            page.c.latest_started_at_ms.desc(), page.c.user_id.desc(), page.c.asset_id.desc()
        )
    )
    return total, [
        _report_row(
            pair,
            watch_ms=pair.watch_ms,
            coverage=decode_intervals(pair.coverage),
            started_at_ms=pair.latest_started_at_ms,
            visit_count=pair.visit_count,
        )
        for pair in pairs
    ]


def _page_grouped_visits(
    conn: Connection, tenant_id: int, query: ReportQuery
) -> tuple[int, list[ReportRow]]:
    """The pairs of the visits that match ``query`` (a time range among them), grouped now."""
    conditions = _filters(conn, tenant_id, query)
    grouped = (
        select(
            visits.c.user_id,
            visits.c.asset_id,
            func.max(visits.c.started_at_ms).label("started_at_ms"),
            func.max(visits.c.last_seen_at_ms).label("last_seen_at_ms"),
            func.sum(visits.c.watch_ms).label("watch_ms"),
            func.count().label("visit_count"),
        )
        .where(*conditions)
        .group_by(visits.c.user_id, visits.c.asset_id)
    )
    total = conn.execute(select(func.count()).select_from(grouped.subquery())).scalar_one()
    if query.offset >= total:
        return total, []
    page = (
        grouped.order_by(
            literal_column("started_at_ms").desc(),
            visits.c.user_id.desc(),
            visits.c.asset_id.desc(),
        )
        .limit(query.page_size)
        .offset(query.offset)
        .subquery()
    )
    pairs = conn.execute(
        _with_names(select(page), page, tenant_id).order_by(
            page.c.started_at_ms.desc(), page.c.user_id.desc(), page.c.asset_id.desc()
        )
    ).all()
    coverage: dict[tuple[str, str], IntervalSet] = {}
    keys = [(pair.user_id, pair.asset_id) for pair in pairs]
    for user_id, asset_id, text in conn.execute(
        select(visits.c.user_id, visits.c.asset_id, visits.c.coverage).where(
            *conditions, tuple_(visits.c.user_id, visits.c.asset_id).in_(keys)
        )
    ):
        key = (user_id, asset_id)
        coverage[key] = union(coverage.get(key, []), decode_intervals(text))
    return total, [
        _report_row(
            pair,
            watch_ms=int(pair.watch_ms),
            coverage=coverage.get((pair.user_id, pair.asset_id), []),
            started_at_ms=pair.started_at_ms,
            visit_count=pair.visit_count,
        )
        for pair in pairs
    ]


class StreamRow(NamedTuple):
    """A report row as the export reads it: a tuple (built and unpacked several times faster
    than a ``ReportRow``), with only what the export writes."""

    user_id: str
    user_name: str
    asset_id: str
    title: str
    duration_ms: int | None
    completion_threshold: int | None  # the video's own; None: the tenant's
    watch_ms: int
    coverage: IntervalSet  # not clamped to the duration yet
    started_at_ms: int  # of the visit, or of the pair's latest visit
    attention: Attention  # of that coverage (vodwatch.attention)
    # The video's own other rules (SPEC §10), as stored: required ranges JSON, maxRate,
    # visibleOnly (each None: the tenant's).
    rule_columns: tuple[str | None, float | None, bool | None]


def stream_visits(
    conn: Connection, tenant_id: int, query: ReportQuery, chunk_rows: int
) -> Iterator[list[StreamRow]]:
    """Every visit matching ``query`` (paging aside) in ``page_visits``' order, in lists of up
    to ``chunk_rows``: one statement read as it goes (a server-side cursor on PostgreSQL), so
    no count and no OFFSET, and every row from the snapshot of the caller's read."""
    statement = _with_rules(
        select(
            visits.c.user_id,
            visits.c.asset_id,
            visits.c.watch_ms,
            visits.c.coverage,
            visits.c.started_at_ms,
            visits.c.attention,
        ),
        visits,
        tenant_id,
    ).where(*_filters(conn, tenant_id, query))
    newest_first = statement.order_by(visits.c.started_at_ms.desc(), visits.c.session_id.desc())
    yield from _stream_decoded(conn, newest_first, chunk_rows)


def stream_viewer_videos(
    conn: Connection, tenant_id: int, query: ReportQuery, chunk_rows: int
) -> Iterator[list[StreamRow]]:
    """Every viewer-and-video pair matching ``query`` (paging aside) in
    ``page_viewer_videos``' order, in lists of up to ``chunk_rows``, as ``stream_visits``."""
    if query.start_time is not None or query.end_time is not None:
        yield from _stream_grouped_visits(conn, tenant_id, query, chunk_rows)
        return
    pairs_table = viewer_videos.c
    conditions = _rollup_filters(conn, tenant_id, query)
    statement = _with_rules(
        select(
            pairs_table.user_id,
            pairs_table.asset_id,
            pairs_table.watch_ms,
            pairs_table.coverage,
            pairs_table.latest_started_at_ms,
            pairs_table.attention,
        ),
        viewer_videos,
        tenant_id,
    ).where(*conditions)
    latest_first = statement.order_by(
        pairs_table.latest_started_at_ms.desc(),
        pairs_table.user_id.desc(),
        pairs_table.asset_id.desc(),
    )
    yield from _stream_decoded(conn, latest_first, chunk_rows)


def _stream_decoded(
    conn: Connection, statement: Select[Any], chunk_rows: int
) -> Iterator[list[StreamRow]]:
    """``statement``'s rows, (user_id, asset_id, watch_ms, coverage, started_at_ms, attention)
    and then the columns of ``_with_rules``, as stream rows with their coverage decoded."""
    for rows in _stream(conn, statement, chunk_rows):
        yield [
            StreamRow(
                user_id,
                user_name,
                asset_id,
                title,
                duration_ms,
                threshold,
                watch_ms,
                decode_intervals(coverage),
                started_at_ms,
                decode_attention(attention),
                (required_ranges, max_rate, visible_only),
            )
            for (
                user_id,
                asset_id,
                watch_ms,
                coverage,
                started_at_ms,
                attention,
                title,
                duration_ms,
                threshold,
                user_name,
                required_ranges,
                max_rate,
                visible_only,
            ) in rows
        ]


def _stream_grouped_visits(
    conn: Connection, tenant_id: int, query: ReportQuery, chunk_rows: int
) -> Iterator[list[StreamRow]]:
    """The visits in range, each with its pair's totals (window functions), in the pairs'
    order: a pair's visits come one after another, so each pair is united as it is read, in
    one pass (a query per chunk for the coverage would search the visits again each time)."""
    pair = (visits.c.user_id, visits.c.asset_id)
    in_range = (
        select(
            visits.c.user_id,
            visits.c.asset_id,
            func.sum(visits.c.watch_ms).over(partition_by=pair).label("watch_ms"),
            func.max(visits.c.started_at_ms).over(partition_by=pair).label("started_at_ms"),
            visits.c.coverage,
            visits.c.attention,
        )
        .where(*_filters(conn, tenant_id, query))
        .subquery()
    )
    latest_first = _with_rules(select(in_range), in_range, tenant_id).order_by(
        in_range.c.started_at_ms.desc(), in_range.c.user_id.desc(), in_range.c.asset_id.desc()
    )
    chunk: list[StreamRow] = []
    current: StreamRow | None = None
    pieces: IntervalSet = []  # the coverage of the current pair's visits read so far
    weighed: list[tuple[IntervalSet, Attention]] = []  # those of them with attention

    def finished(row: StreamRow) -> StreamRow:
        if not weighed:  # (the usual pair: nothing but plain viewing)
            return row._replace(coverage=normalize(pieces))
        coverage: IntervalSet = []
        attention: Attention = []
        for visit_coverage, visit_attention in weighed:  # the visits with attention first,
            attention = merge(coverage, attention, visit_coverage, visit_attention)
            coverage = union(coverage, visit_coverage)
        plain = normalize(pieces)  # then the others: all plain
        attention = merge(coverage, attention, plain, [])
        return row._replace(coverage=union(coverage, plain), attention=attention)

    for rows in _stream(conn, latest_first, chunk_rows):
        for (
            user_id,
            asset_id,
            watch_ms,
            started_at_ms,
            coverage,
            attention,
            title,
            duration_ms,
            threshold,
            user_name,
            required_ranges,
            max_rate,
            visible_only,
        ) in rows:
            if current is None or (user_id, asset_id) != (current.user_id, current.asset_id):
                if current is not None:
                    chunk.append(finished(current))
                    if len(chunk) == chunk_rows:
                        yield chunk
                        chunk = []
                current = StreamRow(
                    user_id,
                    user_name,
                    asset_id,
                    title,
                    duration_ms,
                    threshold,
                    int(watch_ms),
                    [],
                    started_at_ms,
                    [],
                    (required_ranges, max_rate, visible_only),
                )
                pieces = []
                weighed = []
            if attention == "[]":
                pieces.extend(decode_intervals(coverage))
            else:
                weighed.append((decode_intervals(coverage), decode_attention(attention)))
    if current is not None:
        chunk.append(finished(current))
    if chunk:
        yield chunk


def _stream(
    conn: Connection, statement: Select[Any], chunk_rows: int
) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of ``statement``, ``chunk_rows`` at a time, fetched as they are consumed."""
    result = conn.execute(statement.execution_options(yield_per=chunk_rows))
    try:
        yield from result.partitions()
    finally:
        result.close()


def _report_row(
    row: Row[Any],
    *,
    watch_ms: int,
    coverage: IntervalSet,
    started_at_ms: int,
    session_id: str | None = None,
    visit_count: int = 1,
) -> ReportRow:
    """A report row from a page row joined by ``_with_names``."""
    return ReportRow(
        user_id=row.user_id,
        user_name=row.user_name,
        asset_id=row.asset_id,
        title=row.title,
        duration_ms=row.duration_ms,
        watch_ms=watch_ms,
        coverage=coverage,
        started_at_ms=started_at_ms,
        last_seen_at_ms=row.last_seen_at_ms,
        session_id=session_id,
        visit_count=visit_count,
        completion_threshold=row.completion_threshold,
    )


def _with_rules(
    statement: Select[tuple[object, ...]], page: FromClause, tenant_id: int
) -> Select[tuple[object, ...]]:
    """``_with_names``, then each video's own rules besides its threshold (SPEC §10)."""
    return _with_names(statement, page, tenant_id).add_columns(
        assets.c.required_ranges, assets.c.max_rate, assets.c.visible_only
    )


def _with_names(
    statement: Select[tuple[object, ...]], page: FromClause, tenant_id: int
) -> Select[tuple[object, ...]]:
    """Join a page to the catalog for titles, durations and viewer names."""
    return (
        statement.add_columns(
            assets.c.title,
            assets.c.duration_ms,
            assets.c.completion_threshold,
            viewers.c.user_name,
        )
        .join_from(
            page,
            assets,
            and_(assets.c.tenant_id == tenant_id, assets.c.asset_id == page.c.asset_id),
        )
        .join(viewers, and_(viewers.c.tenant_id == tenant_id, viewers.c.user_id == page.c.user_id))
    )
