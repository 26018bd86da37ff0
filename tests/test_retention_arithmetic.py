"""Retention's arithmetic against its definition in SPEC §9, by counting milliseconds: a set
watches bucket ``i`` when ``2·|U ∩ bucket| ≥ |bucket|`` and an empty bucket (``D < B``) is
watched by nobody (``count_watched_buckets``); ``|U|`` is the coverage inside ``[0, D)``
(``united_ms``)."""

from hypothesis import given
from hypothesis import strategies as st

from tests.model import ms_set
from vodwatch.report.insights import bucket_bounds, count_watched_buckets, united_ms


def watched_by_counting(
    coverages: list[list[tuple[int, int]]], duration: int, buckets: int
) -> list[int]:
    bounds = [index * duration // buckets for index in range(buckets + 1)]  # SPEC §9
    counts = [0] * buckets
    for coverage in coverages:
        covered = ms_set(coverage)
        for index in range(buckets):
            low, high = bounds[index], bounds[index + 1]
            inside = sum(1 for ms in range(low, high) if ms in covered)
            if low < high and 2 * inside >= high - low:
                counts[index] += 1
    return counts


@st.composite
def coverage_sets(draw: st.DrawFn) -> tuple[int, int, list[list[tuple[int, int]]]]:
    """D ms in B buckets (often D < B: empty buckets), and sets that are sorted and
    disjoint (touching at times, as two visits' pieces can), their ends often exactly on a
    bound, sometimes outside ``[0, D)`` (clamped by the counting)."""
    duration = draw(st.integers(1, 60))
    buckets = draw(st.integers(1, 40))
    bounds = bucket_bounds(duration, buckets)
    point = st.sampled_from(bounds) | st.integers(-3, duration + 3)
    coverages = []
    for _ in range(draw(st.integers(0, 6))):
        cuts = sorted(draw(st.lists(point, max_size=8)))
        pairs = zip(cuts[::2], cuts[1::2], strict=False)
        coverages.append([(start, end) for start, end in pairs if start < end])
    return duration, buckets, coverages


@given(coverage_sets())
def test_counts_equal_the_definition_by_milliseconds(case):
    duration, buckets, coverages = case
    expected = watched_by_counting(coverages, duration, buckets)
    assert count_watched_buckets(coverages, duration, buckets) == expected


def test_edges_on_bounds_and_empty_buckets():
    assert bucket_bounds(10, 4) == [0, 2, 5, 7, 10]
    assert count_watched_buckets([[(0, 10)]], 10, 4) == [1, 1, 1, 1]
    assert count_watched_buckets([[(2, 5)], [(1, 2), (2, 4)]], 10, 4) == [1, 2, 0, 0]
    assert count_watched_buckets([[(1, 2), (3, 4)]], 10, 4) == [1, 0, 0, 0]  # 1 of 2: half
    assert count_watched_buckets([[(3, 4), (6, 8)]], 10, 4) == [0, 0, 1, 0]  # 1 of 2, 1 of 3
    assert count_watched_buckets([[(-5, 1), (9, 99)]], 10, 4) == [1, 0, 0, 0]
    assert bucket_bounds(3, 10) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3]  # D < B: 7 empty buckets
    assert count_watched_buckets([[(0, 3)]], 3, 10) == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]


@given(coverage_sets())
def test_united_ms_counts_the_milliseconds_inside_the_duration(case):
    duration, _, coverages = case
    for coverage in coverages:
        inside = {ms for ms in ms_set(coverage) if 0 <= ms < duration}
        assert united_ms(coverage, duration) == len(inside)
        assert united_ms(coverage, None) == len(ms_set(coverage))  # D unknown: not clamped
