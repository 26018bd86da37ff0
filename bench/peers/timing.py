"""Query timings reported the same way by every peer."""

import math
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``share`` of ``values`` at or
    below it (so p99 of fewer than 100 values is their maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def time_runs(runs: int, answer: Callable[[], T]) -> tuple[dict[str, float | int], T]:
    """Call ``answer`` ``runs`` times, end to end; the timings in milliseconds (as the result
    keys ``query_runs``, ``query_ms_p50`` (median), ``query_ms_p99`` (nearest rank, so the
    maximum below 100 runs)) and the last answer."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        result = answer()
        durations.append((time.perf_counter() - started) * 1000)
    timings: dict[str, float | int] = {
        "query_runs": runs,
        "query_ms_p50": round(statistics.median(durations), 2),
        "query_ms_p99": round(percentile(durations, 0.99), 2),
    }
    return timings, result
