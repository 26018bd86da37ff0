"""The state of one visit and how a beacon changes it: pure, no I/O.

Applying the same beacons in any order, any number of times, gives the same state (except where
the clock bounds of player beacons cut a claim, which depends on when it arrived): watch time
is a sum over distinct ``seq`` values, coverage a union, ``startedAt`` a minimum.
"""

from dataclasses import dataclass, field

from vodwatch.beacon.bounds import bound_new_coverage, bound_watch_ms
from vodwatch.beacon.model import Beacon
from vodwatch.errors import InvalidParameter
from vodwatch.intervals import IntervalSet, contains, union


@dataclass(slots=True)
class Visit:
    session_id: str
    user_id: str
    asset_id: str
    started_at_ms: int
    last_seen_at_ms: int
    watch_ms: int = 0
    coverage: IntervalSet = field(default_factory=list)
    seqs: IntervalSet = field(default_factory=list)  # seen seq numbers n, as ranges [n, n+1)
    beacon_count: int = 0
    position_seq: int = 0  # seq of the beacon that gave position_ms
    position_ms: int | None = None
    is_ended: bool = False


def copy_visit(visit: Visit) -> Visit:
    """A shallow copy (faster than ``copy.copy``): interval lists are replaced, never changed
    in place, so they may be shared."""
    return Visit(
        visit.session_id,
        visit.user_id,
        visit.asset_id,
        visit.started_at_ms,
        visit.last_seen_at_ms,
        visit.watch_ms,
        visit.coverage,
        visit.seqs,
        visit.beacon_count,
        visit.position_seq,
        visit.position_ms,
        visit.is_ended,
    )


def start_visit(beacon: Beacon, now_ms: int) -> Visit:
    """A visit with no beacon applied yet, opened by ``beacon`` at server time ``now_ms``."""
    return Visit(
        session_id=beacon.session_id,
        user_id=beacon.viewing.user_id,
        asset_id=beacon.viewing.asset_id,
        started_at_ms=now_ms if beacon.started_at_ms is None else beacon.started_at_ms,
        last_seen_at_ms=now_ms,
    )


def apply_beacon(visit: Visit, beacon: Beacon, now_ms: int, *, is_trusted: bool) -> bool:
    """Apply one beacon in place; False (and no change) when its ``seq`` was seen before.

    Raises ``InvalidParameter`` when the beacon names another viewer or video than the
    visit's first beacon did: a session belongs to one viewer watching one video.
    """
    if (beacon.viewing.user_id, beacon.viewing.asset_id) != (visit.user_id, visit.asset_id):
        raise InvalidParameter(
            f"sessionId {beacon.session_id!r} belongs to another viewer or video; "
            "use a new sessionId for each visit"
        )
    if contains(visit.seqs, beacon.seq):
        return False
    if is_trusted:
        visit.watch_ms += beacon.played_ms
        visit.coverage = union(visit.coverage, beacon.segments)
        if beacon.started_at_ms is not None:
            visit.started_at_ms = min(visit.started_at_ms, beacon.started_at_ms)
    else:
        # A fresh visit has no previous beacon: only the slack is allowed.
        since_previous = now_ms - visit.last_seen_at_ms if visit.beacon_count else 0
        since_first = now_ms - visit.started_at_ms
        visit.watch_ms += bound_watch_ms(
            beacon.played_ms,
            beacon.media_ms,
            since_previous_ms=since_previous,
            since_first_ms=since_first,
            credited_ms=visit.watch_ms,
        )
        visit.coverage = union(
            visit.coverage,
            bound_new_coverage(
                beacon.segments,
                visit.coverage,
                since_previous_ms=since_previous,
                since_first_ms=since_first,
            ),
        )
    visit.seqs = union(visit.seqs, [(beacon.seq, beacon.seq + 1)])
    visit.beacon_count += 1
    visit.last_seen_at_ms = max(visit.last_seen_at_ms, now_ms)
    visit.is_ended = visit.is_ended or beacon.is_ended
    if beacon.position_ms is not None and beacon.seq > visit.position_seq:
        visit.position_seq = beacon.seq
        visit.position_ms = beacon.position_ms
    return True
