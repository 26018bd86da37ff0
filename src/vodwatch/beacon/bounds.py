"""Reality bounds for player beacons (SPEC §6): what the server clock allows a browser to claim.

A browser holds only a playback token, so what it reports is checked against the one clock it
cannot move, the server's. For a player beacon arriving at server time ``now``:

- **Watch time** credited is at most
  - the time since the session's previous beacon, plus ``CLOCK_SLACK_MS`` (so a normal heartbeat
    is never cut, however late the network delivers it);
  - in total, the time since the session's first beacon plus ``CLOCK_SLACK_MS`` (so a burst of
    beacons cannot each spend the slack again);
  - ``MIN_RATE_DIVISOR`` times the media time the beacon says was played (playing slower than
    1/4 speed counts as 1/4 speed; a beacon with no played ranges gains nothing: a paused tab, or
    a laptop that slept an hour with a video "playing", gains no watch time).
- **Coverage** may grow by at most ``MAX_PLAYBACK_RATE`` times the same two clock allowances; the
  ranges a beacon reports first are kept and the rest is trimmed.

Server beacons (Tk headers) are the customer's own records and are not bounded.
"""

from vodwatch.intervals import IntervalSet, measure, subtract, take_first, union

CLOCK_SLACK_MS = 15_000
MIN_RATE_DIVISOR = 4
MAX_PLAYBACK_RATE = 4


def bound_watch_ms(
    played_ms: int,
    media_ms: int,
    *,
    since_previous_ms: int,
    since_first_ms: int,
    credited_ms: int,
) -> int:
    """Watch time to credit for one player beacon, given what the session already has."""
    allowance = min(
        max(since_previous_ms, 0) + CLOCK_SLACK_MS,
        max(since_first_ms, 0) + CLOCK_SLACK_MS - credited_ms,
        media_ms * MIN_RATE_DIVISOR,
    )
    return max(0, min(played_ms, allowance))


def bound_new_coverage(
    segments: tuple[tuple[int, int], ...],
    coverage: IntervalSet,
    *,
    since_previous_ms: int,
    since_first_ms: int,
) -> IntervalSet:
    """The ranges of ``segments`` not yet in ``coverage`` that the clock allows to add."""
    budget = min(
        (max(since_previous_ms, 0) + CLOCK_SLACK_MS) * MAX_PLAYBACK_RATE,
        (max(since_first_ms, 0) + CLOCK_SLACK_MS) * MAX_PLAYBACK_RATE - measure(coverage),
    )
    fresh: list[tuple[int, int]] = []
    seen = coverage
    for segment in segments:
        parts = subtract([segment], seen)
        fresh.extend(parts)
        seen = union(seen, parts)
    return take_first(fresh, budget)
