"""Interval arithmetic against a per-millisecond set model."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tests.model import ms_set, runs
from vodwatch.intervals import (
    clamp,
    contains,
    measure,
    normalize,
    subtract,
    take_first,
    union,
)

points = st.integers(min_value=0, max_value=400)
pairs = st.tuples(points, points)  # may be reversed or empty: those cover nothing
interval_lists = st.lists(pairs, max_size=12)


def model(intervals: list[tuple[int, int]]) -> set[int]:
    return ms_set((start, end) for start, end in intervals if start < end)


@given(interval_lists)
def test_normalize_covers_exactly_the_same_milliseconds(intervals):
    normal = normalize(intervals)
    assert normal == runs(model(intervals))
    assert measure(normal) == len(model(intervals))


@given(interval_lists)
def test_normal_form_is_sorted_disjoint_and_not_touching(intervals):
    normal = normalize(intervals)
    assert all(start < end for start, end in normal)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(normal))
    assert normalize(normal) == normal


@given(interval_lists, interval_lists)
def test_union_is_set_union_and_order_free(a, b):
    assert union(normalize(a), b) == runs(model(a) | model(b))
    assert union(normalize(a), b) == union(normalize(b), a)


@given(interval_lists)
def test_rewatching_does_not_grow_the_union(intervals):
    normal = normalize(intervals)
    assert union(normal, intervals) == normal


@given(interval_lists, points, points)
def test_clamp_is_intersection_with_the_duration(intervals, low, high):
    expected = {ms for ms in model(intervals) if low <= ms < high}
    assert clamp(normalize(intervals), low, high) == runs(expected)


@given(interval_lists, interval_lists)
def test_subtract_is_set_difference(a, b):
    assert subtract(a, normalize(b)) == runs(model(a) - model(b))


@given(st.lists(st.tuples(points, points).map(sorted).map(tuple), max_size=8), st.integers(-5, 900))
def test_take_first_keeps_the_budget_in_the_given_order(intervals, budget):
    kept = take_first(intervals, budget)
    # Model: walk the intervals in order, one millisecond at a time.
    expected: set[int] = set()
    left = max(budget, 0)
    for start, end in intervals:
        for ms in range(start, end):
            if left == 0:
                break
            expected.add(ms)
            left -= 1
    assert kept == runs(expected)


@given(interval_lists, points)
def test_contains_is_membership(intervals, point):
    assert contains(normalize(intervals), point) == (point in model(intervals))


def test_seek_forward_does_not_cover_the_skipped_part():
    # Played 0-10 s, seeked to 60 s, played to 70 s: 20 s covered, not 70.
    assert measure(normalize([(0, 10_000), (60_000, 70_000)])) == 20_000
