"""Brute-force models the real code is checked against: sets of milliseconds."""

from collections.abc import Iterable


def ms_set(intervals: Iterable[tuple[int, int]]) -> set[int]:
    """Every millisecond an interval list covers."""
    return {ms for start, end in intervals for ms in range(start, end)}


def runs(points: set[int]) -> list[tuple[int, int]]:
    """A millisecond set back to sorted, disjoint, non-touching half-open intervals."""
    result: list[tuple[int, int]] = []
    for point in sorted(points):
        if result and result[-1][1] == point:
            result[-1] = (result[-1][0], point + 1)
        else:
            result.append((point, point + 1))
    return result


def percent(covered_points: set[int], duration_ms: int | None) -> str:
    """visitRadio by counting: the largest p <= 100 with p% of the duration covered."""
    if not duration_ms:
        return "0%"
    inside = sum(1 for point in covered_points if 0 <= point < duration_ms)
    p = 0
    while p < 100 and (p + 1) * duration_ms <= inside * 100:
        p += 1
    return f"{p}%"


def clock_text(watch_ms: int) -> str:
    """visitTime by counting seconds one by one into hours, minutes and seconds."""
    hours = minutes = seconds = 0
    for _ in range(watch_ms // 1000):
        seconds += 1
        if seconds == 60:
            seconds, minutes = 0, minutes + 1
        if minutes == 60:
            minutes, hours = 0, hours + 1
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"
