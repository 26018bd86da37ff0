"""Queries on viewer_videos (per viewer and video totals): lock, insert, update, recount."""

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, func, select, tuple_, update

from vodwatch.ingest.viewer_videos import PairKey, ViewerVideo
from vodwatch.intervals import coverage_end, measure
from vodwatch.store.database import UpdateByKey, insert_new
from vodwatch.store.schema import viewer_videos, visits
from vodwatch.store.visits import (
    decode_attention,
    decode_intervals,
    encode_attention,
    encode_intervals,
)

_COLUMNS = viewer_videos.c
_UPDATE = UpdateByKey(viewer_videos)


# Built once: ingest runs it for every group of requests.
_LOCK = (
    select(viewer_videos)
    .where(
        _COLUMNS.tenant_id == bindparam("tenant_id"),
        tuple_(_COLUMNS.user_id, _COLUMNS.asset_id).in_(bindparam("pairs", expanding=True)),
    )
    .order_by(_COLUMNS.user_id, _COLUMNS.asset_id)
    .with_for_update()
)


def lock_viewer_videos(conn: Connection, keys: Iterable[PairKey]) -> dict[PairKey, ViewerVideo]:
    """The stored pairs among ``keys``, locked (in key order) until the transaction ends."""
    by_tenant: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for tenant_id, user_id, asset_id in sorted(set(keys)):
        by_tenant[tenant_id].append((user_id, asset_id))
    found: dict[PairKey, ViewerVideo] = {}
    for tenant_id, pairs in by_tenant.items():
        rows = conn.execute(_LOCK, {"tenant_id": tenant_id, "pairs": pairs})
        for row in rows:
            pair = ViewerVideo(
                tenant_id=row.tenant_id,
                user_id=row.user_id,
                asset_id=row.asset_id,
                first_started_at_ms=row.first_started_at_ms,
                latest_started_at_ms=row.latest_started_at_ms,
                last_seen_at_ms=row.last_seen_at_ms,
                watch_ms=row.watch_ms,
                coverage=decode_intervals(row.coverage),
                visit_count=row.visit_count,
                player_since_ms=row.player_since_ms,
                player_watch_ms=row.player_watch_ms,
                player_gain_ms=row.player_gain_ms,
                attention=decode_attention(row.attention),
            )
            found[pair.key] = pair
    return found


def save_viewer_videos(
    conn: Connection, changed: Sequence[ViewerVideo], stored: Iterable[PairKey]
) -> None:
    """Insert the new pairs and update the stored ones; ``ConcurrentInsert`` when another
    transaction created one of the new pairs first (the caller retries the transaction)."""
    existing = set(stored)
    new = [pair for pair in changed if pair.key not in existing]
    old = [pair for pair in changed if pair.key in existing]
    insert_new(conn, viewer_videos, [_row(pair) for pair in sorted(new, key=lambda pair: pair.key)])
    _UPDATE(conn, [_row(pair) for pair in old])


def recount_latest_start(conn: Connection, keys: Iterable[PairKey]) -> None:
    """Set each pair's latest start from its visits again."""
    for tenant_id, user_id, asset_id in sorted(keys):
        latest = (
            select(func.max(visits.c.started_at_ms))
            .where(
                visits.c.tenant_id == tenant_id,
                visits.c.user_id == user_id,
                visits.c.asset_id == asset_id,
            )
            .scalar_subquery()
        )
        conn.execute(
            update(viewer_videos)
            .where(
                _COLUMNS.tenant_id == tenant_id,
                _COLUMNS.user_id == user_id,
                _COLUMNS.asset_id == asset_id,
            )
            .values(latest_started_at_ms=latest)
        )


def _row(pair: ViewerVideo) -> dict[str, object]:
    return {
        "tenant_id": pair.tenant_id,
        "user_id": pair.user_id,
        "asset_id": pair.asset_id,
        "first_started_at_ms": pair.first_started_at_ms,
        "latest_started_at_ms": pair.latest_started_at_ms,
        "last_seen_at_ms": pair.last_seen_at_ms,
        "watch_ms": pair.watch_ms,
        "coverage": encode_intervals(pair.coverage),
        "covered_ms": measure(pair.coverage),
        "coverage_end_ms": coverage_end(pair.coverage),
        "visit_count": pair.visit_count,
        "player_since_ms": pair.player_since_ms,
        "player_watch_ms": pair.player_watch_ms,
        "player_gain_ms": pair.player_gain_ms,
        "attention": encode_attention(pair.attention),
    }
