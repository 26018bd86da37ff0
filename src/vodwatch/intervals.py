"""Interval arithmetic on integer milliseconds.

An interval is a half-open pair ``(start, end)`` with ``start < end``; ``(0, 1000)`` is the first
second of a video. A *set* is a list of intervals in normal form: sorted, disjoint and not
touching (``[(0, 10), (10, 20)]`` normalises to ``[(0, 20)]``). Every function here is pure and
returns a set in normal form, so two sets are equal exactly when they cover the same
milliseconds.
"""

from collections.abc import Iterable

Interval = tuple[int, int]
IntervalSet = list[Interval]


def normalize(intervals: Iterable[Interval]) -> IntervalSet:
    """Union of ``intervals`` in normal form; empty and reversed pairs cover nothing.

    >>> normalize([(10, 20), (0, 5), (5, 8), (15, 30), (40, 40)])
    [(0, 8), (10, 30)]
    """
    ordered = sorted((start, end) for start, end in intervals if start < end)
    merged: IntervalSet = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def union(a: IntervalSet, b: Iterable[Interval]) -> IntervalSet:
    """Union of two sets (``b`` need not be normal)."""
    return normalize([*a, *b])


def measure(intervals: IntervalSet) -> int:
    """Total length of a set in normal form."""
    return sum(end - start for start, end in intervals)


def clamp(intervals: IntervalSet, low: int, high: int) -> IntervalSet:
    """The part of a normal set inside ``[low, high)``.

    >>> clamp([(0, 10), (20, 30)], 5, 25)
    [(5, 10), (20, 25)]
    """
    clamped: IntervalSet = []
    for start, end in intervals:
        start, end = max(start, low), min(end, high)
        if start < end:
            clamped.append((start, end))
    return clamped


def subtract(intervals: Iterable[Interval], removed: IntervalSet) -> IntervalSet:
    """The part of ``intervals`` not in the normal set ``removed``.

    >>> subtract([(0, 100)], [(10, 20), (50, 60)])
    [(0, 10), (20, 50), (60, 100)]
    """
    remaining: IntervalSet = []
    for start, end in normalize(intervals):
        cursor = start
        for cut_start, cut_end in removed:
            if cut_end <= cursor:
                continue
            if cut_start >= end:
                break
            if cut_start > cursor:
                remaining.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
            if cursor >= end:
                break
        if cursor < end:
            remaining.append((cursor, end))
    return remaining


def take_first(intervals: Iterable[Interval], budget: int) -> IntervalSet:
    """The first ``budget`` milliseconds of ``intervals``, in the order given.

    Used to trim a beacon's new coverage to what the clock allows: the ranges a player
    reports first are kept, the rest is cut.

    >>> take_first([(50, 60), (0, 30)], 25)
    [(0, 15), (50, 60)]
    """
    kept: list[Interval] = []
    left = max(budget, 0)
    for start, end in intervals:
        if left <= 0:
            break
        length = min(end - start, left)
        if length > 0:
            kept.append((start, start + length))
            left -= length
    return normalize(kept)


def contains(intervals: IntervalSet, point: int) -> bool:
    """Whether ``point`` lies in the normal set (binary search)."""
    low, high = 0, len(intervals)
    while low < high:
        middle = (low + high) // 2
        start, end = intervals[middle]
        if point < start:
            high = middle
        elif point >= end:
            low = middle + 1
        else:
            return True
    return False
