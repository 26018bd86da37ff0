"""Counted coverage (SPEC §10) against a brute-force model: per-millisecond sets of the beacons
that played each millisecond, with their rate, visibility and the SPEC's too-fast test written
out as SPEC says it (``rate > M or L > M·P + 1000``), in exact fractions."""

from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from vodwatch.attention import (
    Attention,
    Rules,
    beacon_speed,
    counted,
    decode,
    encode,
    is_complete,
    merge,
    played,
    uncounted,
)
from vodwatch.intervals import IntervalSet, measure, normalize, union

UNIT = 100  # ms: segment bounds and playedMs in steps of 0.1 s, so speeds vary widely
MEDIA_UNITS = 40
MAX_RATES: tuple[float | None, ...] = (None, 1.0, 1.25, 1.5, 2.0, 2.5, 4.0, 16.0)


@dataclass(frozen=True)
class ModelBeacon:
    segments: tuple[tuple[int, int], ...]
    played_ms: int
    rate: float
    hidden: bool

    @property
    def union_ms(self) -> int:
        return measure(normalize(self.segments))

    def too_fast(self, max_rate: float | None) -> bool:
        if max_rate is None:
            return False
        limit = Fraction(max_rate)
        return Fraction(self.rate) > limit or self.union_ms > limit * self.played_ms + 1000


segment = st.tuples(st.integers(0, MEDIA_UNITS), st.integers(0, MEDIA_UNITS)).map(
    lambda pair: (min(pair) * UNIT, max(pair) * UNIT)
)
beacon = st.builds(
    ModelBeacon,
    segments=st.lists(segment, min_size=0, max_size=3).map(tuple),
    played_ms=st.integers(0, 60).map(lambda n: n * UNIT),
    rate=st.sampled_from([0.5, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 16.0, 20.0]),
    hidden=st.booleans(),
)


def model_counted(
    beacons: list[ModelBeacon], max_rate: float | None, visible_only: bool
) -> set[int]:
    return {
        ms
        for b in beacons
        if not b.too_fast(max_rate) and not (visible_only and b.hidden)
        for start, end in b.segments
        for ms in range(start, end)
    }


def model_covered(beacons: list[ModelBeacon]) -> set[int]:
    return {ms for b in beacons for start, end in b.segments for ms in range(start, end)}


def points(intervals: IntervalSet) -> set[int]:
    return {ms for start, end in intervals for ms in range(start, end)}


def apply(beacons: list[ModelBeacon]) -> tuple[IntervalSet, Attention]:
    coverage: IntervalSet = []
    attention: Attention = []
    for b in beacons:
        segments = normalize(b.segments)
        speed = beacon_speed(b.rate, measure(segments), b.played_ms)
        attention = merge(coverage, attention, segments, played(segments, speed, b.hidden))
        coverage = union(coverage, segments)
    return coverage, attention


@settings(max_examples=150, deadline=None)
@given(st.lists(beacon, max_size=12))
def test_counted_coverage_matches_the_model(beacons: list[ModelBeacon]) -> None:
    coverage, attention = apply(beacons)
    assert points(coverage) == model_covered(beacons)
    assert decode(encode(attention)) == attention
    for max_rate in MAX_RATES:
        for visible_only in (False, True):
            rules = Rules(threshold=90, max_rate=max_rate, visible_only=visible_only)
            expected = model_counted(beacons, max_rate, visible_only)
            assert points(counted(coverage, attention, rules)) == expected
            hidden, too_fast = uncounted(attention, rules)
            left_out = model_covered(beacons) - expected
            # too fast: no segment that played it passes the rate test, visible or not
            fast = {
                ms
                for ms in left_out
                if all(
                    b.too_fast(max_rate)
                    for b in beacons
                    for start, end in b.segments
                    if start <= ms < end
                )
            }
            assert points(too_fast) == fast
            assert points(hidden) == left_out - fast


@settings(max_examples=100, deadline=None)
@given(st.lists(beacon, max_size=8), st.lists(beacon, max_size=8))
def test_merging_two_visits_is_playing_both(
    first: list[ModelBeacon], second: list[ModelBeacon]
) -> None:
    """A viewer's counted coverage over two visits: merge the visits' own attention."""
    coverage_a, attention_a = apply(first)
    coverage_b, attention_b = apply(second)
    merged = merge(coverage_a, attention_a, coverage_b, attention_b)
    both = union(coverage_a, coverage_b)
    for max_rate in MAX_RATES:
        for visible_only in (False, True):
            rules = Rules(threshold=90, max_rate=max_rate, visible_only=visible_only)
            assert points(counted(both, merged, rules)) == model_counted(
                first + second, max_rate, visible_only
            )


def test_honest_viewing_keeps_nothing() -> None:
    beacons = [ModelBeacon(((n * 15_000, (n + 1) * 15_000),), 15_000, 1.0, False) for n in range(8)]
    coverage, attention = apply(beacons)
    assert attention == []
    assert coverage == [(0, 120_000)]


def test_speed_is_the_rate_or_what_the_clock_allows() -> None:
    assert beacon_speed(1.0, 15_000, 15_000) == 1.0
    assert beacon_speed(2.5, 15_000, 6_000) == 2.5
    assert beacon_speed(1.0, 31_000, 15_000) == 2.0  # (31,000 - 1,000) / 15,000
    assert beacon_speed(1.0, 900, 0) == 1.0  # within the 1 s slack
    assert beacon_speed(1.0, 1_001, 0) == 1000.0


@given(
    st.lists(segment, max_size=6),
    st.integers(1, 100),
    st.lists(segment, max_size=3),
    st.integers(1, MEDIA_UNITS),
)
def test_completion_needs_the_threshold_and_every_required_range(
    segments: list[tuple[int, int]],
    threshold: int,
    required: list[tuple[int, int]],
    duration_units: int,
) -> None:
    duration = duration_units * UNIT
    required_ranges = tuple(r for r in normalize(required) if r[1] <= duration)
    rules = Rules(threshold=threshold, required_ranges=required_ranges)
    coverage = normalize(segments)
    covered = {ms for ms in points(coverage) if ms < duration}
    expected = len(covered) * 100 // duration >= threshold and all(
        set(range(start, end)) <= covered for start, end in required_ranges
    )
    assert is_complete(coverage, duration, rules) == expected
    assert not is_complete(coverage, None, rules)
