"""What a viewer's coverage was worth: how fast and whether visibly each part was played, and
which parts count toward completion under a video's rules (SPEC §10). Pure, integer
milliseconds.

Every beacon has a *speed* ``s = max(rate, (L - 1000) / P)``, where ``L`` is the length of the
union of its segments and ``P`` its credited ``playedMs`` (``s`` is at least ``SPEED_CAP`` when
``P`` is 0 and ``L`` > 1000). Its segments are *too fast* under ``maxRate`` ``M`` exactly when
``s > M`` — the same as SPEC's ``rate > M or L > M·P + 1000`` — so one number per beacon
decides for every ``M`` at once.

A millisecond of coverage ``U`` counts when some segment that played it counts: not too fast,
and (with ``visibleOnly``) not hidden. For each millisecond it is enough to keep the lowest
speed of any segment that played it, and the lowest of the visible ones. A *plain* segment
(visible, ``s`` ≤ 1) counts under every rule (``maxRate`` is at least 1), so what is kept is an
``Attention``: pieces ``(start, end, any_speed, visible_speed)`` over the parts of ``U`` that no
plain segment played (``visible_speed`` None: none of them was visible). Honest viewing in a
visible tab at normal speed keeps none.
"""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from vodwatch.formats import seconds_to_ms
from vodwatch.intervals import (
    Interval,
    IntervalSet,
    clamp,
    measure,
    normalize,
    subtract,
    subtract_tagged,
    union,
)

SPEED_CAP = 1000.0  # beyond any maxRate (at most 16): speeds are stored up to this
MIN_RATE, MAX_RATE = 1.0, 16.0  # what a maxRate rule may be
Piece = tuple[int, int, float, float | None]  # (start, end, any speed, visible speed or None)
Attention = list[Piece]  # sorted, disjoint, neighbours with the same speeds merged


@dataclass(frozen=True, slots=True)
class Rules:
    """What completion asks for (SPEC §10), as in force for one video."""

    threshold: int  # percent, 1..100
    required_ranges: tuple[Interval, ...] = ()  # media ms, sorted, disjoint
    max_rate: float | None = None  # None: any speed counts
    visible_only: bool = False

    @property
    def is_plain(self) -> bool:
        """Whether every played millisecond counts (counted coverage = coverage)."""
        return self.max_rate is None and not self.visible_only

    def counts(self, piece: Piece) -> bool:
        speed = piece[3] if self.visible_only else piece[2]
        if speed is None:
            return False
        return self.max_rate is None or speed <= self.max_rate


@dataclass(frozen=True, slots=True)
class Defaults:
    """A tenant's rules for videos without their own (``vodwatch tenant set-rules``)."""

    threshold: int = 90
    max_rate: float | None = None
    visible_only: bool = False

    @property
    def is_plain(self) -> bool:
        return self.max_rate is None and not self.visible_only


def rules_for(
    defaults: Defaults,
    threshold: int | None = None,
    required_ranges_s: Sequence[Sequence[float]] | None = None,
    max_rate: float | None = None,
    visible_only: bool | None = None,
) -> Rules:
    """A video's rules in force: its own overrides (None: not set), else the tenant's;
    required ranges given in seconds, as written in the PUT."""
    return Rules(
        threshold=defaults.threshold if threshold is None else threshold,
        required_ranges=tuple(
            (seconds_to_ms(start), seconds_to_ms(end)) for start, end in required_ranges_s or ()
        ),
        max_rate=defaults.max_rate if max_rate is None else max_rate,
        visible_only=defaults.visible_only if visible_only is None else visible_only,
    )


def beacon_speed(rate: float, union_ms: int, played_ms: int) -> float:
    """``s`` of a beacon whose segments' union is ``union_ms`` long, credited ``played_ms``."""
    speed = rate
    if union_ms > 1000:
        speed = SPEED_CAP if played_ms <= 0 else max(speed, (union_ms - 1000) / played_ms)
    return min(speed, SPEED_CAP)


def is_plain(speed: float, is_hidden: bool) -> bool:
    return not is_hidden and speed <= 1.0


def played(segments: IntervalSet, speed: float, is_hidden: bool) -> Attention:
    """The attention of one beacon's played ``segments`` (normal form)."""
    if is_plain(speed, is_hidden):
        return []
    return [(start, end, speed, None if is_hidden else speed) for start, end in segments]


def merge(
    coverage: IntervalSet, attention: Attention, added: IntervalSet, added_attention: Attention
) -> Attention:
    """The attention of ``coverage ∪ added`` from both parts' own: a millisecond of either is
    plain when it is plain in one of them; else it keeps the lower speeds of the two."""
    if not added_attention:
        if not attention or not added:
            return attention
        return _without(attention, added)  # what ``added`` played plainly is plain now
    if not attention and not coverage:
        return list(added_attention)
    if (  # the usual non-plain beacon: one range at or after the end of the pieces so far
        len(added_attention) == 1
        and len(added) == 1
        and (not coverage or added[0][0] >= coverage[-1][1])
    ):
        piece = added_attention[0]
        if attention and attention[-1][1] == piece[0] and attention[-1][2:] == piece[2:]:
            return [*attention[:-1], (attention[-1][0], piece[1], piece[2], piece[3])]
        return [*attention, piece]
    return _windowed(coverage, attention, added, added_attention)


def _windowed(
    coverage: IntervalSet, attention: Attention, added: IntervalSet, added_attention: Attention
) -> Attention:
    """``_sweep`` over the span of ``added`` only: outside it nothing changes (a long visit's
    or a viewer's many pieces are copied, not swept)."""
    low, high = added[0][0], added[-1][1]
    before: Attention = []
    inside: Attention = []
    after: Attention = []
    for piece in attention:
        start, end = piece[0], piece[1]
        if end <= low:
            before.append(piece)
        elif start >= high:
            after.append(piece)
        else:
            if start < low:
                before.append((start, low, piece[2], piece[3]))
            inside.append((max(start, low), min(end, high), piece[2], piece[3]))
            if end > high:
                after.append((high, end, piece[2], piece[3]))
    window = [
        (max(start, low), min(end, high)) for start, end in coverage if end > low and start < high
    ]
    return _merged(before + _sweep(window, inside, added, added_attention) + after)


def _without(attention: Attention, plain: IntervalSet) -> Attention:
    """``attention`` outside the normal set ``plain``."""
    return _merged(subtract_tagged(attention, plain))


def _sweep(
    coverage: IntervalSet, attention: Attention, added: IntervalSet, added_attention: Attention
) -> Attention:
    """``merge`` for any shapes: over every boundary of the four lists."""
    points = sorted(
        {p for start, end in coverage for p in (start, end)}
        | {p for start, end in added for p in (start, end)}
        | {p for start, end, _, _ in attention for p in (start, end)}
        | {p for start, end, _, _ in added_attention for p in (start, end)}
    )
    result: Attention = []
    cursors = [0, 0, 0, 0]
    lists: tuple[Sequence[Any], ...] = (coverage, added, attention, added_attention)
    for left, right in itertools.pairwise(points):
        found: list[Any] = []
        for which, items in enumerate(lists):
            index = cursors[which]
            while index < len(items) and items[index][1] <= left:
                index += 1
            cursors[which] = index
            found.append(items[index] if index < len(items) and items[index][0] <= left else None)
        in_old, in_added, old_piece, added_piece = found
        if in_old is None and in_added is None:
            continue  # a gap of both
        old_plain = in_old is not None and old_piece is None
        added_plain = in_added is not None and added_piece is None
        if old_plain or added_plain:
            continue
        speeds = [p for p in (old_piece, added_piece) if p is not None]
        any_speed = min(p[2] for p in speeds)
        visible = [p[3] for p in speeds if p[3] is not None]
        result.append((left, right, any_speed, min(visible) if visible else None))
    return _merged(result)


def _merged(pieces: Attention) -> Attention:
    merged: Attention = []
    for piece in pieces:
        if merged and merged[-1][1] == piece[0] and merged[-1][2:] == piece[2:]:
            merged[-1] = (merged[-1][0], piece[1], piece[2], piece[3])
        else:
            merged.append(piece)
    return merged


def uncounted(attention: Attention, rules: Rules) -> tuple[IntervalSet, IntervalSet]:
    """The parts of coverage not counted, by reason: ``(hidden, too_fast)``; a part that is
    both (every segment that played it was too fast) is under too fast."""
    hidden: IntervalSet = []
    too_fast: IntervalSet = []
    if rules.is_plain:
        return hidden, too_fast
    for piece in attention:
        if rules.counts(piece):
            continue
        fast_anyway = rules.max_rate is not None and piece[2] > rules.max_rate
        (too_fast if fast_anyway else hidden).append((piece[0], piece[1]))
    return normalize(hidden), normalize(too_fast)


def counted(coverage: IntervalSet, attention: Attention, rules: Rules) -> IntervalSet:
    """``C``: the part of ``coverage`` that counts under ``rules``."""
    if rules.is_plain or not attention:
        return coverage
    left_out = [(p[0], p[1]) for p in attention if not rules.counts(p)]
    return subtract(coverage, normalize(left_out)) if left_out else coverage


def is_complete(counted_coverage: IntervalSet, duration_ms: int | None, rules: Rules) -> bool:
    """``floor(100·|C|/D)`` ≥ the threshold and every required range inside ``C`` (``C``
    clamped to ``[0, D)``); never when ``D`` is unknown."""
    if not duration_ms:
        return False
    counted_coverage = clamp(counted_coverage, 0, duration_ms)
    if measure(counted_coverage) * 100 // duration_ms < rules.threshold:
        return False
    return all(_inside(required, counted_coverage) for required in rules.required_ranges)


def unite(parts: Iterable[tuple[IntervalSet, Attention]]) -> tuple[IntervalSet, Attention]:
    """The coverage and attention of several visits together, from each one's own."""
    coverage: IntervalSet = []
    attention: Attention = []
    for part_coverage, part_attention in parts:
        attention = merge(coverage, attention, part_coverage, part_attention)
        coverage = union(coverage, part_coverage)
    return coverage, attention


def counted_within(
    coverage: IntervalSet, attention: Attention, duration_ms: int | None, rules: Rules
) -> IntervalSet:
    """``C`` of ``coverage`` inside ``[0, D)`` (all of it when ``D`` is unknown)."""
    within = clamp(coverage, 0, duration_ms) if duration_ms else coverage
    return counted(within, attention, rules)


def is_completed_by(
    coverage: IntervalSet, attention: Attention, duration_ms: int | None, rules: Rules
) -> bool:
    """SPEC §10's completion of ``coverage`` (not clamped yet); never when ``D`` is unknown."""
    if not duration_ms:
        return False
    return is_complete(counted_within(coverage, attention, duration_ms, rules), duration_ms, rules)


def _inside(interval: Interval, normal: IntervalSet) -> bool:
    start, end = interval
    return any(left <= start and end <= right for left, right in normal)


def encode(attention: Attention) -> list[list[object]]:
    return [list(piece) for piece in attention]


def decode(value: Any) -> Attention:
    return [
        (int(start), int(end), float(any_speed), None if visible is None else float(visible))
        for start, end, any_speed, visible in value
    ]
