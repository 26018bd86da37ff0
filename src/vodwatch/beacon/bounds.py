"""Reality bounds for player beacons (SPEC §6): what the server clock allows a browser to claim.

A browser holds only a playback token, so what it reports is checked against the one clock it
cannot move, the server's. Two clocks run for a player beacon arriving at server time ``now``:
the **session**'s (since its first and its previous beacon) and the **pair**'s, the viewer and
video (since the first player beacon of that viewer on that video, in any session). Sessions
are free to open, so the pair's clock is what stops one viewer from adding up many sessions.

- **Watch time** credited is at most
  - the time since the session's previous beacon, plus ``CLOCK_SLACK_MS`` (so a normal heartbeat
    is never cut, however late the network delivers it);
  - in total for the session, the time since its first beacon plus ``CLOCK_SLACK_MS`` (so a
    burst of beacons cannot each spend the slack again);
  - in total for the pair, ``CONCURRENT_SESSIONS`` times the time since the pair's first player
    beacon plus ``CLOCK_SLACK_MS`` (two tabs or devices may really play at once; a seventeenth
    session adds nothing);
  - ``MIN_RATE_DIVISOR`` times the media time the beacon says was played (playing slower than
    1/4 speed counts as 1/4 speed; a beacon with no played ranges gains nothing: a paused tab, or
    a laptop that slept an hour with a video "playing", gains no watch time).
- **Coverage** of the session may grow by at most ``MAX_PLAYBACK_RATE`` times the session's two
  clock allowances, and the coverage of the pair (the union over all its sessions) by at most
  ``MAX_PLAYBACK_RATE`` times the pair's clock plus slack: one playhead at 4x, however many
  sessions. The ranges a beacon lists first are kept and the rest is trimmed; ranges another
  session of the pair already covered cost only the session's allowance.

Every bound costs O(k log n) for k segments against n stored ranges. Server beacons (Tk headers)
are the customer's own records and are not bounded.
"""

from dataclasses import dataclass

from vodwatch.intervals import Interval, IntervalSet, first_claims, normalize, partition

CLOCK_SLACK_MS = 15_000
MIN_RATE_DIVISOR = 4
MAX_PLAYBACK_RATE = 4
CONCURRENT_SESSIONS = 2


@dataclass(frozen=True, slots=True)
class Clocks:
    """Server time that has passed for one player beacon, in milliseconds."""

    since_previous_ms: int  # since the session's previous beacon (0 for its first)
    since_first_ms: int  # since the session's first beacon
    since_pair_first_ms: int  # since the viewer's first player beacon on this video


def bound_watch_ms(
    played_ms: int,
    media_ms: int,
    clocks: Clocks,
    *,
    credited_ms: int,
    pair_credited_ms: int,
) -> int:
    """Watch time to credit for one player beacon, given what the session (``credited_ms``)
    and the pair's player beacons (``pair_credited_ms``) already have."""
    allowance = min(
        max(clocks.since_previous_ms, 0) + CLOCK_SLACK_MS,
        max(clocks.since_first_ms, 0) + CLOCK_SLACK_MS - credited_ms,
        CONCURRENT_SESSIONS * (max(clocks.since_pair_first_ms, 0) + CLOCK_SLACK_MS)
        - pair_credited_ms,
        media_ms * MIN_RATE_DIVISOR,
    )
    return max(0, min(played_ms, allowance))


def bound_new_coverage(
    segments: tuple[Interval, ...],
    coverage: IntervalSet,
    pair_coverage: IntervalSet,
    clocks: Clocks,
    *,
    covered_ms: int,
    pair_gained_ms: int,
) -> tuple[IntervalSet, int]:
    """The ranges of ``segments`` not yet in the session's ``coverage`` that the clocks allow
    to add, and how many of their milliseconds are new to the pair (``pair_coverage``, which
    holds ``coverage``). ``covered_ms`` is the measure of ``coverage``; ``pair_gained_ms`` what
    the pair's player beacons have added to it so far."""
    budget = min(
        (max(clocks.since_previous_ms, 0) + CLOCK_SLACK_MS) * MAX_PLAYBACK_RATE,
        (max(clocks.since_first_ms, 0) + CLOCK_SLACK_MS) * MAX_PLAYBACK_RATE - covered_ms,
    )
    pair_budget = (
        max(clocks.since_pair_first_ms, 0) + CLOCK_SLACK_MS
    ) * MAX_PLAYBACK_RATE - pair_gained_ms
    if budget <= 0 or not segments:
        return [], 0
    _, fresh = partition(first_claims(segments), coverage)
    seen_by_pair, new_to_pair = partition(fresh, pair_coverage)
    # In the order the beacon lists its segments, each from its start.
    pieces = sorted(
        [(owner, start, end, False) for start, end, owner in seen_by_pair]
        + [(owner, start, end, True) for start, end, owner in new_to_pair]
    )
    kept: list[Interval] = []
    gained = 0
    for _, start, end, is_new_to_pair in pieces:
        length = min(end - start, budget)
        if is_new_to_pair:
            length = min(length, pair_budget - gained)
        if length <= 0:
            if budget <= 0:
                break
            continue
        kept.append((start, start + length))
        budget -= length
        if is_new_to_pair:
            gained += length
    return normalize(kept), gained
