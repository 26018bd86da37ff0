"""Per viewer and video totals, folded from the visits a group of requests changed: pure.

Kept next to the visits so the grouped report reads one row per pair instead of grouping every
visit: watch time is a sum (add the change of each visit), coverage a union (union each visit's
coverage again: a union is idempotent), the latest start a maximum.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from vodwatch.ingest.batch import AppliedGroup
from vodwatch.intervals import IntervalSet, union

PairKey = tuple[int, str, str]  # (tenant_id, user_id, asset_id)


@dataclass(slots=True)
class ViewerVideo:
    tenant_id: int
    user_id: str
    asset_id: str
    first_started_at_ms: int
    latest_started_at_ms: int
    last_seen_at_ms: int
    watch_ms: int = 0
    coverage: IntervalSet = field(default_factory=list)
    visit_count: int = 0

    def copy(self) -> "ViewerVideo":
        """A shallow copy (the coverage list is replaced, never changed in place)."""
        return ViewerVideo(
            self.tenant_id,
            self.user_id,
            self.asset_id,
            self.first_started_at_ms,
            self.latest_started_at_ms,
            self.last_seen_at_ms,
            self.watch_ms,
            self.coverage,
            self.visit_count,
        )

    @property
    def key(self) -> PairKey:
        return (self.tenant_id, self.user_id, self.asset_id)


@dataclass(frozen=True, slots=True)
class FoldedPairs:
    changed: dict[PairKey, ViewerVideo]
    # Pairs whose latest start may have moved earlier (an import gave an older startedAt to
    # the visit that was the latest): their latest start is read again from the visits.
    to_recount: set[PairKey]


def fold_visits(stored: Mapping[PairKey, ViewerVideo], applied: AppliedGroup) -> FoldedPairs:
    changed: dict[PairKey, ViewerVideo] = {}
    to_recount: set[PairKey] = set()
    for key, visit in applied.after.items():
        before = applied.before[key]
        if visit == before:
            continue
        pair_key = (key[0], visit.user_id, visit.asset_id)
        pair = changed.get(pair_key)
        if pair is None:
            found = stored.get(pair_key)
            pair = (
                found.copy()
                if found is not None
                else ViewerVideo(
                    tenant_id=key[0],
                    user_id=visit.user_id,
                    asset_id=visit.asset_id,
                    first_started_at_ms=visit.started_at_ms,
                    latest_started_at_ms=visit.started_at_ms,
                    last_seen_at_ms=visit.last_seen_at_ms,
                )
            )
            changed[pair_key] = pair
        pair.watch_ms += visit.watch_ms - (before.watch_ms if before is not None else 0)
        pair.coverage = union(pair.coverage, visit.coverage)
        pair.first_started_at_ms = min(pair.first_started_at_ms, visit.started_at_ms)
        pair.latest_started_at_ms = max(pair.latest_started_at_ms, visit.started_at_ms)
        pair.last_seen_at_ms = max(pair.last_seen_at_ms, visit.last_seen_at_ms)
        if before is None:
            pair.visit_count += 1
        elif visit.started_at_ms < before.started_at_ms:
            to_recount.add(pair_key)
    return FoldedPairs(changed=changed, to_recount=to_recount)
