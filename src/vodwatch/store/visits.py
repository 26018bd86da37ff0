"""Visit queries for ingest: lock, insert, save.

Locks are taken in ``session_id`` order so that two requests touching the same sessions on
PostgreSQL wait for each other instead of deadlocking.
"""

from collections.abc import Iterable, Sequence

import orjson
from sqlalchemy import ARRAY, Connection, any_, bindparam, select

from vodwatch.attention import Attention
from vodwatch.attention import decode as attention_from_json
from vodwatch.ingest.visit import Visit
from vodwatch.intervals import IntervalSet
from vodwatch.store.database import UpdateByKey, insert_new
from vodwatch.store.schema import visits

_STATE_COLUMNS = (
    visits.c.session_id,
    visits.c.user_id,
    visits.c.asset_id,
    visits.c.started_at_ms,
    visits.c.last_seen_at_ms,
    visits.c.watch_ms,
    visits.c.coverage,
    visits.c.covered_ms,
    visits.c.seqs,
    visits.c.beacon_count,
    visits.c.position_ms,
    visits.c.position_seq,
    visits.c.is_ended,
    visits.c.attempt_id,
    visits.c.attention,
    visits.c.refused_ms,
)


# Built once: ingest runs them for every group of requests. On PostgreSQL the ids go as one
# array, so the statement text never changes and the server prepares it once.
_LOCK = (
    select(*_STATE_COLUMNS)
    .where(
        visits.c.tenant_id == bindparam("tenant_id"),
        visits.c.session_id.in_(bindparam("session_ids", expanding=True)),
    )
    .order_by(visits.c.session_id)
    .with_for_update()
)
_LOCK_POSTGRESQL = (
    select(*_STATE_COLUMNS)
    .where(
        visits.c.tenant_id == bindparam("tenant_id"),
        visits.c.session_id
        == any_(bindparam("session_ids", type_=ARRAY(visits.c.session_id.type))),
    )
    .order_by(visits.c.session_id)
    .with_for_update()
)


def lock_visits(conn: Connection, tenant_id: int, session_ids: Iterable[str]) -> dict[str, Visit]:
    """The stored visits among ``session_ids``, locked until the transaction ends."""
    wanted = sorted(set(session_ids))
    if not wanted:
        return {}
    statement = _LOCK_POSTGRESQL if conn.dialect.name == "postgresql" else _LOCK
    rows = conn.execute(statement, {"tenant_id": tenant_id, "session_ids": wanted})
    found = {}
    for row in rows:
        found[row.session_id] = Visit(
            session_id=row.session_id,
            user_id=row.user_id,
            asset_id=row.asset_id,
            started_at_ms=row.started_at_ms,
            last_seen_at_ms=row.last_seen_at_ms,
            watch_ms=row.watch_ms,
            coverage=decode_intervals(row.coverage),
            covered_ms=row.covered_ms,
            seqs=decode_intervals(row.seqs),
            beacon_count=row.beacon_count,
            position_ms=row.position_ms,
            position_seq=row.position_seq,
            is_ended=bool(row.is_ended),
            attempt_id=row.attempt_id,
            attention=decode_attention(row.attention),
            refused_ms=row.refused_ms,
        )
    return found


def insert_visits(conn: Connection, tenant_id: int, new: Sequence[Visit]) -> None:
    """Insert visits that do not exist yet; ``ConcurrentInsert`` when another transaction
    created one of them first (the caller retries, and then finds it stored)."""
    insert_new(
        conn,
        visits,
        [_row(tenant_id, visit) for visit in sorted(new, key=lambda visit: visit.session_id)],
    )


_UPDATE = UpdateByKey(visits)


def save_visits(conn: Connection, tenant_id: int, changed: Sequence[Visit]) -> None:
    """Write back visits read with ``lock_visits``."""
    _UPDATE(conn, [_row(tenant_id, visit) for visit in changed])


def encode_intervals(intervals: IntervalSet) -> str:
    """``[[start,end],...]``, compact JSON."""
    return orjson.dumps(intervals).decode()


def decode_intervals(text: str) -> IntervalSet:
    return [(start, end) for start, end in orjson.loads(text)]


def encode_attention(attention: Attention) -> str:
    return "[]" if not attention else orjson.dumps(attention).decode()


def decode_attention(text: str) -> Attention:
    return [] if text == "[]" else attention_from_json(orjson.loads(text))


def _row(tenant_id: int, visit: Visit) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "session_id": visit.session_id,
        "user_id": visit.user_id,
        "asset_id": visit.asset_id,
        "started_at_ms": visit.started_at_ms,
        "last_seen_at_ms": visit.last_seen_at_ms,
        "watch_ms": visit.watch_ms,
        "coverage": encode_intervals(visit.coverage),
        "covered_ms": visit.covered_ms,
        "seqs": encode_intervals(visit.seqs),
        "beacon_count": visit.beacon_count,
        "position_ms": visit.position_ms,
        "position_seq": visit.position_seq,
        "is_ended": visit.is_ended,
        "attempt_id": visit.attempt_id,
        "attention": encode_attention(visit.attention),
        "refused_ms": visit.refused_ms,
    }
