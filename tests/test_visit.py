"""How beacons change a visit (pure): order-free and idempotent, against a brute-force model,
and the clock bounds that keep a browser honest."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.model import ms_set, runs
from vodwatch.beacon.bounds import CLOCK_SLACK_MS, MAX_PLAYBACK_RATE, MIN_RATE_DIVISOR
from vodwatch.beacon.model import Beacon, Viewing
from vodwatch.errors import InvalidParameter
from vodwatch.ingest.viewer_videos import ViewerVideo, start_pair
from vodwatch.ingest.visit import Visit, apply_beacon, start_visit
from vodwatch.intervals import measure

VIEWING = Viewing(user_id="李四", user_name="张三", asset_id="860")
T0 = 1_764_000_000_000


def beacon(seq: int, segments=(), played_ms: int = 0, **fields) -> Beacon:
    return Beacon(
        session_id="session01",
        seq=seq,
        viewing=fields.pop("viewing", VIEWING),
        segments=tuple(segments),
        played_ms=played_ms,
        **fields,
    )


segment = st.tuples(st.integers(0, 5_000), st.integers(0, 2_000)).map(lambda p: (p[0], p[0] + p[1]))
beacon_bodies = st.fixed_dictionaries(
    {
        "segments": st.lists(segment, max_size=4),
        "played_ms": st.integers(0, 50_000),
        "started_at_ms": st.one_of(st.none(), st.integers(T0 - 10**9, T0)),
        "position_ms": st.one_of(st.none(), st.integers(0, 10_000)),
        "is_ended": st.booleans(),
    }
)


@st.composite
def deliveries(draw, max_played_ms: int = 50_000):
    """Distinct beacons (seq 1..n), delivered shuffled with some sent again."""
    bodies = draw(st.lists(beacon_bodies, min_size=1, max_size=8))
    bodies = [{**body, "played_ms": min(body["played_ms"], max_played_ms)} for body in bodies]
    beacons = [beacon(seq, **body) for seq, body in enumerate(bodies, start=1)]
    resent = draw(st.lists(st.sampled_from(beacons), max_size=4))
    return beacons, draw(st.permutations(beacons + resent))


PAIRS: dict[int, ViewerVideo] = {}  # the pair of each visit ``replay`` opened, by id(visit)


def apply(visit: Visit, item: Beacon, now_ms: int, *, is_trusted: bool) -> bool:
    """``apply_beacon`` with the visit's own pair (a viewer with this one visit)."""
    return apply_beacon(visit, PAIRS[id(visit)], item, now_ms, is_trusted=is_trusted)


def replay(stream, *, is_trusted: bool, step_ms: int = 0) -> Visit:
    now = T0
    visit = start_visit(stream[0], now)
    PAIRS[id(visit)] = start_pair((1, visit.user_id, visit.asset_id), visit.started_at_ms, now)
    for item in stream:
        apply(visit, item, now, is_trusted=is_trusted)
        now += step_ms
    return visit


@given(deliveries())
def test_server_beacons_in_any_order_any_number_of_times(delivery):
    beacons, stream = delivery
    visit = replay(stream, is_trusted=True)
    assert visit.watch_ms == sum(b.played_ms for b in beacons)
    assert visit.coverage == runs(ms_set(s for b in beacons for s in b.segments))
    assert visit.seqs == [(1, len(beacons) + 1)]
    assert visit.beacon_count == len(beacons)
    given_starts = [b.started_at_ms for b in beacons if b.started_at_ms is not None]
    assert visit.started_at_ms == min([T0, *given_starts])
    # Where to resume: the highest-seq beacon's position, else the end of its last segment.
    positioned = [b for b in beacons if b.position_ms is not None or b.segments]
    latest = max(positioned, key=lambda b: b.seq) if positioned else None
    assert visit.position_ms == (
        None
        if latest is None
        else latest.position_ms
        if latest.position_ms is not None
        else latest.segments[-1][1]
    )
    assert visit.is_ended == any(b.is_ended for b in beacons)
    assert replay(list(reversed(stream)), is_trusted=True) == visit


@given(deliveries(max_played_ms=CLOCK_SLACK_MS))
def test_player_beacons_in_any_order_when_the_clock_allows_them(delivery):
    beacons, stream = delivery
    # An hour between deliveries, and the first within the slack: only the media bound can
    # cut (4x the media played).
    visit = replay(stream, is_trusted=False, step_ms=3_600_000)
    assert visit.watch_ms == sum(min(b.played_ms, MIN_RATE_DIVISOR * b.media_ms) for b in beacons)
    assert visit.coverage == runs(ms_set(s for b in beacons for s in b.segments))


def test_a_normal_heartbeat_is_never_cut_even_when_late():
    visit = replay([beacon(1, [(0, 0)])], is_trusted=False)
    apply(visit, beacon(2, [(0, 25_000)], 25_000), T0 + 20_000, is_trusted=False)
    assert visit.watch_ms == 25_000
    assert measure(visit.coverage) == 25_000


def test_a_laptop_asleep_for_an_hour_does_not_gain_an_hour():
    visit = replay([beacon(1, [(0, 10_000)], 10_000)], is_trusted=False)
    # The tracker's wall clock says an hour of "playing"; the media moved 2 s.
    apply(visit, beacon(2, [(10_000, 12_000)], 3_600_000), T0 + 3_600_000, is_trusted=False)
    assert visit.watch_ms == 10_000 + 2_000 * MIN_RATE_DIVISOR


def test_a_paused_tab_gains_nothing():
    visit = replay([beacon(1, [(0, 5_000)], 5_000)], is_trusted=False)
    for seq in range(2, 10):
        apply(visit, beacon(seq, [], 15_000), T0 + seq * 15_000, is_trusted=False)
    assert visit.watch_ms == 5_000


def test_seeking_to_the_end_does_not_cover_the_video():
    visit = replay([beacon(1, [(0, 3_600_000)], 10_000)], is_trusted=False)
    assert measure(visit.coverage) == CLOCK_SLACK_MS * MAX_PLAYBACK_RATE


def test_a_burst_of_beacons_cannot_spend_the_slack_twice():
    stream = [beacon(seq, [(seq * 10_000, seq * 10_000 + 10_000)], 10_000) for seq in range(1, 50)]
    visit = replay(stream, is_trusted=False)  # all in the same instant
    assert visit.watch_ms == CLOCK_SLACK_MS


def test_watch_time_never_exceeds_the_server_clock():
    visit = replay([beacon(1)], is_trusted=False)
    for seq in range(2, 200):
        now = T0 + seq * 1_000  # a beacon a second, each claiming 10 s
        apply(
            visit,
            beacon(seq, [(seq * 10_000, seq * 10_000 + 10_000)], 10_000),
            now,
            is_trusted=False,
        )
        assert visit.watch_ms <= now - T0 + CLOCK_SLACK_MS


def test_server_beacons_are_not_bounded():
    visit = replay([beacon(1, [(0, 3_600_000)], 3_600_000)], is_trusted=True)
    assert (visit.watch_ms, measure(visit.coverage)) == (3_600_000, 3_600_000)


def test_a_session_belongs_to_one_viewer_and_video():
    visit = replay([beacon(1)], is_trusted=True)
    other = Viewing(user_id="王五", user_name=None, asset_id="860")
    with pytest.raises(InvalidParameter, match="belongs to another viewer"):
        apply(visit, beacon(2, viewing=other), T0, is_trusted=True)
