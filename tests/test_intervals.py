"""Interval arithmetic against a per-millisecond set model."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tests.model import ms_set, runs
from vodwatch.intervals import (
    clamp,
    contains,
    first_claims,
    measure,
    normalize,
    partition,
    union,
    union_gain,
    union_into,
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


ordered_lists = st.lists(st.tuples(points, points).map(sorted).map(tuple), max_size=10)


@given(ordered_lists)
def test_first_claims_label_each_millisecond_with_its_first_interval(intervals):
    claims = first_claims(intervals)
    owner: dict[int, int] = {}
    for index, (start, end) in enumerate(intervals):
        for ms in range(start, end):
            owner.setdefault(ms, index)
    assert {ms: index for start, end, index in claims for ms in range(start, end)} == owner
    assert all(start < end for start, end, _ in claims)
    assert all(  # sorted, disjoint, and neighbours with one owner merged
        a[1] <= b[0] and (a[1] < b[0] or a[2] != b[2]) for a, b in itertools.pairwise(claims)
    )


@given(ordered_lists, interval_lists)
def test_partition_splits_claims_by_membership_keeping_labels(intervals, inside):
    claims = first_claims(intervals)
    within, without = partition(claims, normalize(inside))
    members = model(inside)
    labelled = {ms: index for start, end, index in claims for ms in range(start, end)}
    assert {ms: i for s, e, i in within for ms in range(s, e)} == {
        ms: i for ms, i in labelled.items() if ms in members
    }
    assert {ms: i for s, e, i in without for ms in range(s, e)} == {
        ms: i for ms, i in labelled.items() if ms not in members
    }
    for part in (within, without):
        assert all(s < e for s, e, _ in part)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(part))


@given(interval_lists, st.lists(pairs, max_size=40))
def test_union_into_is_union(a, b):
    normal_a = normalize(a)
    assert union_into(normal_a, normalize(b)) == runs(model(a) | model(b))
    assert normal_a == normalize(a)  # not changed in place


@given(interval_lists, st.one_of(st.lists(pairs, max_size=1), st.lists(pairs, max_size=40)))
def test_union_gain_is_union_and_what_it_adds(a, b):
    # One range (the usual beacon) takes a shortcut: covered apart, as are many ranges.
    normal_a = normalize(a)
    merged, gained = union_gain(normal_a, normalize(b))
    assert merged == runs(model(a) | model(b))
    assert gained == len(model(b) - model(a))
    assert normal_a == normalize(a)  # not changed in place


@given(interval_lists, points)
def test_contains_is_membership(intervals, point):
    assert contains(normalize(intervals), point) == (point in model(intervals))


def test_seek_forward_does_not_cover_the_skipped_part():
    # Played 0-10 s, seeked to 60 s, played to 70 s: 20 s covered, not 70.
    assert measure(normalize([(0, 10_000), (60_000, 70_000)])) == 20_000
