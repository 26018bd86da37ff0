"""Interval arithmetic on integer milliseconds.

An interval is a half-open pair ``(start, end)`` with ``start < end``; ``(0, 1000)`` is the first
second of a video. A *set* is a list of intervals in normal form: sorted, disjoint and not
touching (``[(0, 10), (10, 20)]`` normalises to ``[(0, 20)]``). Every function here is pure and
returns a set in normal form, so two sets are equal exactly when they cover the same
milliseconds.
"""

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

Interval = tuple[int, int]
IntervalSet = list[Interval]
TaggedT = TypeVar("TaggedT", bound=tuple[Any, ...])
Claim = tuple[int, int, int]  # (start, end, index of the interval that claims it first)
_FAR = 2**63  # beyond any millisecond: (point, _FAR) sorts after every interval starting there
_FEW = 16  # intervals placed one by one (binary search) unless they are many, and 1/16 of all


def normalize(intervals: Iterable[Interval]) -> IntervalSet:
    """Union of ``intervals`` in normal form; empty and reversed pairs cover nothing.

    >>> normalize([(10, 20), (0, 5), (5, 8), (15, 30), (40, 40)])
    [(0, 8), (10, 30)]
    """
    if isinstance(intervals, tuple | list) and len(intervals) == 1:  # a heartbeat's one range
        start, end = intervals[0]
        return [(start, end)] if start < end else []
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


def coverage_end(intervals: IntervalSet) -> int:
    """Where a set in normal form ends (the end of its last interval); 0 when empty.

    >>> coverage_end([(0, 10), (20, 30)]), coverage_end([])
    (30, 0)
    """
    return intervals[-1][1] if intervals else 0


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


def first_claims(intervals: Sequence[Interval]) -> list[Claim]:
    """Every millisecond of the union of ``intervals``, labelled with the index of the first
    interval (in the order given) that covers it: ``(start, end, index)`` pieces sorted by
    position, disjoint, neighbours with the same index merged. O(n log n) for n intervals.

    >>> first_claims([(10, 20), (0, 15), (30, 40)])
    [(0, 10, 1), (10, 20, 0), (30, 40, 2)]
    """
    events = sorted(
        (point, index)
        for index, (start, end) in enumerate(intervals)
        if start < end
        for point in (start, end)
    )
    claims: list[Claim] = []
    active: list[int] = []  # a heap of the indexes covering the sweep position
    ends = {index: end for index, (start, end) in enumerate(intervals) if start < end}
    position = None
    for point, index in events:
        while active and ends[active[0]] <= (position if position is not None else point):
            heapq.heappop(active)  # lazily: intervals that ended at or before the position
        if active and position is not None and point > position:
            owner = active[0]
            if claims and claims[-1][1] == position and claims[-1][2] == owner:
                claims[-1] = (claims[-1][0], point, owner)
            else:
                claims.append((position, point, owner))
        position = point
        if ends[index] > point:  # a start: the interval becomes active
            heapq.heappush(active, index)
    return claims


def partition(claims: Iterable[Claim], inside: IntervalSet) -> tuple[list[Claim], list[Claim]]:
    """Split position-sorted, disjoint ``claims`` into their parts inside the normal set
    ``inside`` and their parts outside it, labels kept. O(k log n + the parts made) for k
    claims: a claim finds its place in ``inside`` by binary search.

    >>> partition([(0, 10, 0), (20, 30, 1)], [(5, 25)])
    ([(5, 10, 0), (20, 25, 1)], [(0, 5, 0), (25, 30, 1)])
    """
    within: list[Claim] = []
    without: list[Claim] = []
    for start, end, owner in claims:
        # The first interval of ``inside`` that ends after ``start``.
        scan = bisect_right(inside, (start, _FAR))
        if scan and inside[scan - 1][1] > start:
            scan -= 1
        position = start
        while position < end:
            if scan < len(inside) and inside[scan][0] < end:
                cut_start, cut_end = inside[scan]
                if cut_start > position:
                    without.append((position, cut_start, owner))
                    position = cut_start
                stop = min(end, cut_end)
                within.append((position, stop, owner))
                position = stop
                scan += 1
            else:
                without.append((position, end, owner))
                position = end
    return within, without


def union_into(normal: IntervalSet, added: IntervalSet) -> IntervalSet:
    """``union(normal, added)`` for two normal sets, in O(k log n) steps (plus a copy) when
    ``added`` holds few intervals, or few next to ``normal``: each finds its place by binary
    search. Neither argument is changed (the result may be ``normal`` itself when ``added``
    adds nothing: sets are replaced, never changed in place).

    >>> union_into([(0, 10), (20, 30), (40, 50)], [(10, 20), (45, 60)])
    [(0, 30), (40, 60)]
    """
    return union_gain(normal, added)[0]


def union_gain(normal: IntervalSet, added: IntervalSet) -> tuple[IntervalSet, int]:
    """``union_into(normal, added)`` and the milliseconds it adds to ``normal``: the cost of
    ``union_into``, not of measuring either set.

    >>> union_gain([(0, 10), (20, 30)], [(5, 25), (40, 45)])
    ([(0, 30), (40, 45)], 15)
    """
    if not added:
        return normal, 0
    if not normal:
        return list(added), measure(added)
    if len(added) == 1:  # the usual beacon: one range, at or after the last one so far
        start, end = added[0]
        last_start, last_end = normal[-1]
        if start >= last_start:
            if start > last_end:
                return [*normal, (start, end)], end - start
            if end <= last_end:
                return normal, 0
            return [*normal[:-1], (last_start, end)], end - last_end
    if len(added) > _FEW and len(added) * _FEW > len(normal):
        merged = normalize([*normal, *added])
        return merged, measure(merged) - measure(normal)
    merged = list(normal)
    gained = 0
    for start, end in added:
        low = bisect_right(merged, (start, _FAR))
        if low and merged[low - 1][1] >= start:
            low -= 1  # touches or overlaps the interval before
        high = bisect_right(merged, (end, _FAR))  # the first that starts after ``end``
        if low < high:
            start = min(start, merged[low][0])
            end = max(end, merged[high - 1][1])
        gained += end - start - sum(right - left for left, right in merged[low:high])
        merged[low:high] = [(start, end)]
    return merged, gained


def subtract(normal: IntervalSet, removed: IntervalSet) -> IntervalSet:
    """The part of the normal set ``normal`` outside the normal set ``removed``.

    >>> subtract([(0, 10), (20, 30)], [(5, 22), (25, 26)])
    [(0, 5), (22, 25), (26, 30)]
    """
    return subtract_tagged(normal, removed)


def subtract_tagged(items: Sequence[TaggedT], removed: IntervalSet) -> list[TaggedT]:
    """``subtract`` for sorted, disjoint ``(start, end, *tags)`` tuples (they may touch): each
    part left keeps the tags of the item it is part of.

    >>> subtract_tagged([(0, 10, "a"), (10, 20, "b")], [(5, 15)])
    [(0, 5, 'a'), (15, 20, 'b')]
    """
    result: list[Any] = []
    index = 0
    for item in items:
        start, end = item[0], item[1]
        tags = item[2:]
        while index < len(removed) and removed[index][1] <= start:
            index += 1
        position = start
        probe = index
        while probe < len(removed) and removed[probe][0] < end:
            cut_start, cut_end = removed[probe]
            if cut_start > position:
                result.append((position, cut_start, *tags))
            position = max(position, cut_end)
            if cut_end >= end:
                break
            probe += 1
        if position < end:
            result.append((position, end, *tags))
    return result


def intersect(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    """The part two normal sets share.

    >>> intersect([(0, 10), (20, 30)], [(5, 25)])
    [(5, 10), (20, 25)]
    """
    result: IntervalSet = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            result.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result
