"""The state of one visit and how a beacon changes it: pure, no I/O.

Applying the same beacons in any order, any number of times, gives the same state (except where
the clock bounds of player beacons cut a claim, which depends on when it arrived): watch time
is a sum over distinct ``seq`` values, coverage a union, ``startedAt`` a minimum.
"""

from dataclasses import dataclass, field

from vodwatch.attention import Attention, beacon_speed, merge, played
from vodwatch.beacon.bounds import Clocks, bound_new_coverage, bound_watch_ms
from vodwatch.beacon.model import Beacon
from vodwatch.errors import InvalidParameter
from vodwatch.ingest.viewer_videos import ViewerVideo
from vodwatch.intervals import (
    IntervalSet,
    clamp,
    contains,
    intersect,
    measure,
    normalize,
    union_gain,
    union_into,
)

# What one visit and one viewer-and-video pair may hold, so that no stored row grows without
# bound and every beacon costs the writer a few milliseconds at most. Honest viewing stays far
# below: a range ends only at a seek that skips ahead.
MAX_VISIT_RANGES = 1_000  # separate played ranges of one visit
MAX_SEQ_RANGES = 1_000  # runs of seen seq numbers of one visit (beacons far out of order)
MAX_PAIR_RANGES = 2_000  # separate played ranges of one viewer on one video, all visits
MAX_VISIT_PIECES = 2_000  # parts of one visit played at another rate or visibility
MAX_PAIR_PIECES = 4_000  # the same over all visits of one viewer on one video


@dataclass(slots=True)
class Visit:
    session_id: str
    user_id: str
    asset_id: str
    started_at_ms: int
    last_seen_at_ms: int
    watch_ms: int = 0
    coverage: IntervalSet = field(default_factory=list)
    covered_ms: int = 0  # measure of coverage
    seqs: IntervalSet = field(default_factory=list)  # seen seq numbers n, as ranges [n, n+1)
    beacon_count: int = 0
    position_seq: int = 0  # seq of the beacon that gave position_ms
    position_ms: int | None = None  # its position, else the end of its last segment
    is_ended: bool = False
    attempt_id: str = ""  # of the lowest-seq beacon
    attention: Attention = field(default_factory=list)  # vodwatch.attention: what rules weigh
    refused_ms: int = 0  # claimed watch time the clock bounds refused


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
        visit.covered_ms,
        visit.seqs,
        visit.beacon_count,
        visit.position_seq,
        visit.position_ms,
        visit.is_ended,
        visit.attempt_id,
        visit.attention,
        visit.refused_ms,
    )


def start_visit(beacon: Beacon, now_ms: int) -> Visit:
    """A visit with no beacon applied yet, opened by ``beacon`` at server time ``now_ms``."""
    return Visit(
        session_id=beacon.session_id,
        user_id=beacon.viewing.user_id,
        asset_id=beacon.viewing.asset_id,
        started_at_ms=now_ms if beacon.started_at_ms is None else beacon.started_at_ms,
        last_seen_at_ms=now_ms,
        attempt_id=beacon.viewing.attempt_id,
    )


def apply_beacon(
    visit: Visit, pair: ViewerVideo, beacon: Beacon, now_ms: int, *, is_trusted: bool
) -> bool:
    """Apply one beacon in place, to its visit and to the visit's viewer-and-video ``pair``;
    False (and no change) when its ``seq`` was seen before.

    Raises ``InvalidParameter`` when the beacon names another viewer or video than the
    visit's first beacon did (a session belongs to one viewer watching one video), or when the
    visit or the pair would hold more separate ranges than they may; the caller then drops
    every change of the request.
    """
    if (beacon.viewing.user_id, beacon.viewing.asset_id) != (visit.user_id, visit.asset_id):
        raise InvalidParameter(
            f"sessionId {beacon.session_id!r} belongs to another viewer or video; "
            "use a new sessionId for each visit"
        )
    if contains(visit.seqs, beacon.seq):
        return False
    if not visit.seqs or beacon.seq < visit.seqs[0][0]:  # the lowest seq names the attempt
        visit.attempt_id = beacon.viewing.attempt_id
    played_normal = normalize(beacon.segments)
    if is_trusted:
        watch_ms = beacon.played_ms
        added = played_normal  # the part already covered changes nothing
        if beacon.started_at_ms is not None:
            visit.started_at_ms = min(visit.started_at_ms, beacon.started_at_ms)
    else:
        if pair.player_since_ms is None:
            pair.player_since_ms = now_ms
        clocks = Clocks(
            # A fresh visit has no previous beacon: only the slack is allowed.
            since_previous_ms=now_ms - visit.last_seen_at_ms if visit.beacon_count else 0,
            since_first_ms=now_ms - visit.started_at_ms,
            since_pair_first_ms=now_ms - pair.player_since_ms,
        )
        watch_ms = bound_watch_ms(
            beacon.played_ms,
            beacon.media_ms,
            clocks,
            credited_ms=visit.watch_ms,
            pair_credited_ms=pair.player_watch_ms,
        )
        added, gained_ms = bound_new_coverage(
            beacon.segments,
            visit.coverage,
            pair.coverage,
            clocks,
            covered_ms=visit.covered_ms,
            pair_gained_ms=pair.player_gain_ms,
        )
        pair.player_watch_ms += watch_ms
        pair.player_gain_ms += gained_ms
    visit.watch_ms += watch_ms
    visit.refused_ms += beacon.played_ms - watch_ms
    pair.watch_ms += watch_ms
    visit_coverage, pair_coverage = visit.coverage, pair.coverage
    if added:
        visit.coverage, gained = union_gain(visit.coverage, added)
        if gained:  # else all of it was in the visit's coverage, so in the pair's
            visit.covered_ms += gained
            pair.coverage = union_into(pair.coverage, added)
    if played_normal:
        # What of the segments is in coverage now (the clock bounds may have left some out).
        kept = played_normal if is_trusted else intersect(played_normal, visit.coverage)
        _weigh(visit, pair, beacon, played_normal, kept, watch_ms, visit_coverage, pair_coverage)
    visit.seqs = union_into(visit.seqs, [(beacon.seq, beacon.seq + 1)])
    visit.beacon_count += 1
    visit.last_seen_at_ms = max(visit.last_seen_at_ms, now_ms)
    pair.last_seen_at_ms = max(pair.last_seen_at_ms, visit.last_seen_at_ms)
    visit.is_ended = visit.is_ended or beacon.is_ended
    # Where to resume (SPEC §10): the highest-seq beacon's position, else where its last
    # segment ended.
    position_ms = beacon.position_ms
    if position_ms is None and beacon.segments:
        position_ms = beacon.segments[-1][1]
    if position_ms is not None and beacon.seq > visit.position_seq:
        visit.position_seq = beacon.seq
        visit.position_ms = position_ms
    _check_size(visit, pair)
    return True


def _weigh(
    visit: Visit,
    pair: ViewerVideo,
    beacon: Beacon,
    played_normal: IntervalSet,
    kept: IntervalSet,
    watch_ms: int,
    visit_coverage: IntervalSet,
    pair_coverage: IntervalSet,
) -> None:
    """Keep how fast and whether visibly the beacon's segments played (``vodwatch.attention``),
    in its visit's and pair's attention; coverage is already united (``*_coverage``: before)."""
    duration_ms = beacon.duration_ms or beacon.viewing.duration_ms
    if len(played_normal) == 1:  # (the usual beacon: one range, measured without a list)
        start, end = played_normal[0]
        union_ms = (min(end, duration_ms) if duration_ms else end) - start
    else:
        union_ms = measure(clamp(played_normal, 0, duration_ms) if duration_ms else played_normal)
    if (
        union_ms <= watch_ms + 1000  # speed ≤ 1 (and below): plain, nothing to keep
        and beacon.rate <= 1.0
        and not beacon.is_hidden
        and not visit.attention
        and not pair.attention
    ):
        return  # (nothing to keep, nothing to make plain: honest viewing)
    speed = beacon_speed(beacon.rate, max(0, union_ms), watch_ms)
    weighed = played(kept, speed, beacon.is_hidden)
    visit.attention = merge(visit_coverage, visit.attention, kept, weighed)
    pair.attention = merge(pair_coverage, pair.attention, kept, weighed)


def _check_size(visit: Visit, pair: ViewerVideo) -> None:
    if (
        len(visit.coverage) <= MAX_VISIT_RANGES
        and len(visit.seqs) <= MAX_SEQ_RANGES
        and len(pair.coverage) <= MAX_PAIR_RANGES
        and len(visit.attention) <= MAX_VISIT_PIECES
        and len(pair.attention) <= MAX_PAIR_PIECES
    ):
        return  # (every beacon: no message made for nothing)
    where = f"sessionId {visit.session_id!r}"
    if len(visit.coverage) > MAX_VISIT_RANGES:
        raise InvalidParameter(
            f"{where}: its played ranges would number {len(visit.coverage)}, more than "
            f"{MAX_VISIT_RANGES} separate ranges per visit; merge them or start a new session"
        )
    if len(visit.seqs) > MAX_SEQ_RANGES:
        raise InvalidParameter(
            f"{where}: seq numbers are too scattered (more than {MAX_SEQ_RANGES} gaps); "
            "number a session's beacons 1, 2, 3 ..."
        )
    if len(pair.coverage) > MAX_PAIR_RANGES:
        raise InvalidParameter(
            f"{where}: the viewer's played ranges of this video would number "
            f"{len(pair.coverage)}, more than {MAX_PAIR_RANGES} separate ranges"
        )
    raise InvalidParameter(
        f"{where}: the parts played at changing rates or visibility would number more than "
        f"{MAX_VISIT_PIECES} per visit or {MAX_PAIR_PIECES} per viewer and video; flush a "
        "beacon when the rate or visibility changes, not more often"
    )
