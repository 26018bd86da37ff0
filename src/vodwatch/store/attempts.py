"""One viewer's attempts at one video (SPEC §10): the visits behind a learner's progress and a
completion's audit. A visit belongs to the attempt of its lowest-seq beacon (``attempt_id``,
"" when none was named); a viewer's visits of one video are found among theirs
(``ix_visits_user``), never through the video's index."""

from dataclasses import dataclass

from sqlalchemy import Connection, select

from vodwatch.attention import Attention
from vodwatch.intervals import IntervalSet
from vodwatch.store.schema import visits
from vodwatch.store.visits import decode_attention, decode_intervals


@dataclass(frozen=True, slots=True)
class AttemptVisit:
    session_id: str
    attempt_id: str
    started_at_ms: int
    last_seen_at_ms: int
    watch_ms: int
    refused_ms: int  # claimed watch time the clock bounds refused
    coverage: IntervalSet  # not clamped
    attention: Attention
    position_ms: int | None  # of the highest-seq beacon that gave one


def find_attempt_visits(
    conn: Connection, tenant_id: int, user_id: str, asset_id: str, attempt_id: str | None
) -> list[AttemptVisit]:
    """The viewer's visits of the video, of one attempt (None: of every attempt), newest
    first (last seen, then started, then session id, all descending)."""
    conditions = [
        visits.c.tenant_id == tenant_id,
        visits.c.user_id == user_id,
        visits.c.asset_id + "" == asset_id,  # among the viewer's own (store.insights._off_index)
    ]
    if attempt_id is not None:
        conditions.append(visits.c.attempt_id == attempt_id)
    rows = conn.execute(
        select(
            visits.c.session_id,
            visits.c.attempt_id,
            visits.c.started_at_ms,
            visits.c.last_seen_at_ms,
            visits.c.watch_ms,
            visits.c.refused_ms,
            visits.c.coverage,
            visits.c.attention,
            visits.c.position_ms,
        ).where(*conditions)
    ).all()
    found = [
        AttemptVisit(
            row.session_id,
            row.attempt_id,
            row.started_at_ms,
            row.last_seen_at_ms,
            row.watch_ms,
            row.refused_ms,
            decode_intervals(row.coverage),
            decode_attention(row.attention),
            row.position_ms,
        )
        for row in rows
    ]
    found.sort(key=lambda v: (v.last_seen_at_ms, v.started_at_ms, v.session_id), reverse=True)
    return found
