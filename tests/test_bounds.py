"""Clock bounds across a viewer's sessions (pure): what the pair of viewer and video may gain,
against a millisecond model, and the forgeries the bounds exist to stop."""

from hypothesis import given
from hypothesis import strategies as st

from tests.model import ms_set, runs
from vodwatch.beacon.bounds import (
    CLOCK_SLACK_MS,
    CONCURRENT_SESSIONS,
    MAX_PLAYBACK_RATE,
    Clocks,
    bound_new_coverage,
)
from vodwatch.beacon.model import Beacon, Viewing
from vodwatch.ingest.batch import IngestRequest, VisitKey, apply_requests
from vodwatch.ingest.viewer_videos import PairKey, ViewerVideo
from vodwatch.ingest.visit import Visit
from vodwatch.intervals import measure, normalize, union

T0 = 1_764_000_000_000
VIEWING = Viewing(user_id="李四", user_name=None, asset_id="860")
points = st.integers(0, 300)
segments = st.lists(st.tuples(points, points).map(sorted).map(tuple), max_size=6)


def model_bound(listed, coverage, pair, budget, pair_budget):
    """Walk the listed segments a millisecond at a time: a millisecond new to the visit costs
    the session's budget, and the pair's too when no session of the pair has covered it."""
    taken: set[int] = set()
    gained = 0
    for start, end in listed:
        for ms in range(start, end):
            if budget <= 0:
                return runs(taken), gained
            if ms in coverage or ms in taken:
                continue
            if ms not in pair:
                if gained >= pair_budget:
                    continue
                gained += 1
            taken.add(ms)
            budget -= 1
    return runs(taken), gained


@given(
    segments,
    segments,
    segments,
    st.integers(0, 20_000),
    st.integers(0, 20_000),
    st.integers(0, 20_000),
    st.integers(-50, 400),
    st.integers(-50, 400),
)
def test_coverage_bound_against_a_millisecond_model(
    listed, stored, others, since_previous, since_first, since_pair, first_left, pair_left
):
    """Budgets left near the size of the segments (``first_left``, ``pair_left`` ms), so that
    the session's and the pair's bounds both cut."""
    coverage = normalize(stored)
    pair = union(coverage, others)
    clocks = Clocks(
        since_previous_ms=since_previous - 1_000,
        since_first_ms=since_first - 1_000,
        since_pair_first_ms=since_pair - 1_000,
    )
    first_budget = (max(clocks.since_first_ms, 0) + CLOCK_SLACK_MS) * MAX_PLAYBACK_RATE
    pair_budget = (max(clocks.since_pair_first_ms, 0) + CLOCK_SLACK_MS) * MAX_PLAYBACK_RATE
    covered, gained = first_budget - first_left, pair_budget - pair_left
    budget = min(
        (max(clocks.since_previous_ms, 0) + CLOCK_SLACK_MS) * MAX_PLAYBACK_RATE, first_left
    )
    added, new_to_pair = bound_new_coverage(
        tuple(listed), coverage, pair, clocks, covered_ms=covered, pair_gained_ms=gained
    )
    assert (added, new_to_pair) == model_bound(
        listed, ms_set(coverage), ms_set(pair), budget, pair_left
    )


def player_beacon(session: str, seq: int, listed, played_ms: int) -> Beacon:
    return Beacon(
        session_id=session,
        seq=seq,
        viewing=VIEWING,
        segments=tuple(listed),
        played_ms=played_ms,
    )


media = st.integers(0, 1_000_000)
claims = st.lists(
    st.tuples(
        st.integers(0, 16),  # session
        st.integers(0, 120_000),  # ms after the first request
        st.lists(st.tuples(media, st.integers(0, 200_000)), max_size=3),  # (start, length)
        st.integers(0, 120_000),  # played ms
    ),
    min_size=1,
    max_size=30,
)


@given(claims)
def test_a_viewer_gains_what_the_clock_allows_however_many_sessions(claimed):
    """Whatever sessions a browser opens and whatever it claims, the viewer's coverage of the
    video and watch time stay within one playhead at 4x and two concurrent sessions."""
    claimed = sorted(claimed, key=lambda claim: claim[1])
    seqs: dict[int, int] = {}
    stored_visits: dict[VisitKey, Visit] = {}
    stored_pairs: dict[PairKey, ViewerVideo] = {}
    for session, at_ms, listed, played_ms in claimed:
        seqs[session] = seqs.get(session, 0) + 1
        beacon = player_beacon(
            f"session-{session:04d}",
            seqs[session],
            [(start, start + length) for start, length in listed],
            played_ms,
        )
        request = IngestRequest(1, [beacon], T0 + at_ms, is_trusted=False)
        applied = apply_requests(stored_visits, stored_pairs, [request])
        stored_visits.update(applied.after)
        stored_pairs.update(applied.pairs_after)
        (pair,) = stored_pairs.values()
        elapsed = at_ms - claimed[0][1]
        assert measure(pair.coverage) <= MAX_PLAYBACK_RATE * (elapsed + CLOCK_SLACK_MS)
        assert pair.watch_ms <= CONCURRENT_SESSIONS * (elapsed + CLOCK_SLACK_MS)
        # The pair is the sum and union of its visits.
        assert pair.watch_ms == sum(visit.watch_ms for visit in stored_visits.values())
        everything = [r for visit in stored_visits.values() for r in visit.coverage]
        assert pair.coverage == normalize(everything)
        assert pair.player_gain_ms == measure(pair.coverage)
        for visit in stored_visits.values():
            assert visit.covered_ms == measure(visit.coverage)


def test_seventeen_sessions_in_one_request_do_not_cover_the_video():
    """The reported forgery: 17 new sessions of 60 s each, 15 s of play claimed by each, in one
    request, for a 1000 s video: together they may cover what one playhead at 4x covers in the
    slack (60 s), not the whole video."""
    beacons = [
        player_beacon(f"forged-{n:04d}", 1, [(60_000 * n, 60_000 * n + 60_000)], 15_000)
        for n in range(17)
    ]
    applied = apply_requests({}, {}, [IngestRequest(1, beacons, T0, is_trusted=False)])
    (pair,) = applied.pairs_after.values()
    assert measure(pair.coverage) == MAX_PLAYBACK_RATE * CLOCK_SLACK_MS
    assert pair.watch_ms == CONCURRENT_SESSIONS * CLOCK_SLACK_MS


def test_a_rewatch_in_a_new_session_costs_only_that_session():
    """A second sitting that replays what the first covered is not cut by the pair's clock."""
    first = player_beacon("sitting-0001", 1, [(0, 60_000)], 15_000)
    applied = apply_requests({}, {}, [IngestRequest(1, [first], T0, is_trusted=False)])
    again = player_beacon("sitting-0002", 1, [(0, 60_000)], 15_000)
    # Still within the pair's first 15 s: the pair has no budget left for new media.
    applied = apply_requests(
        applied.after, applied.pairs_after, [IngestRequest(1, [again], T0, is_trusted=False)]
    )
    assert applied.after[(1, "sitting-0002")].coverage == [(0, 60_000)]
