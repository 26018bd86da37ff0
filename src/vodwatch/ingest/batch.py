"""Apply several requests' beacons to the visits and viewer-and-video pairs they touch:
pure, no I/O.

Requests are independent (each all or nothing): a request that fails leaves the visits and
pairs exactly as the requests before it left them, so a group of requests can share one
transaction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vodwatch.beacon.model import Beacon
from vodwatch.errors import VodwatchError
from vodwatch.ingest.viewer_videos import PairKey, ViewerVideo, start_pair
from vodwatch.ingest.visit import Visit, apply_beacon, copy_visit, start_visit
from vodwatch.signing import Signature

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
VisitKey = tuple[int, str]  # (tenant_id, session_id)


@dataclass(frozen=True, slots=True)
class IngestRequest:
    tenant_id: int
    beacons: Sequence[Beacon]
    now_ms: int  # server time the request arrived
    is_trusted: bool  # server beacons (Tk headers): not bounded by the clock
    signature: Signature | None = None  # server beacons: accepted once (replay protection)


@dataclass(frozen=True, slots=True)
class IngestResult:
    statuses: list[str]  # ACCEPTED or DUPLICATE, one per beacon in request order

    @property
    def accepted(self) -> int:
        return self.statuses.count(ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.statuses.count(DUPLICATE)


Outcome = IngestResult | VodwatchError


@dataclass(frozen=True, slots=True)
class AppliedGroup:
    outcomes: list[Outcome]  # one per request, in order
    before: dict[VisitKey, Visit | None]  # as stored before the group (None: new)
    after: dict[VisitKey, Visit]  # every visit a successful request touched
    pairs_before: dict[PairKey, ViewerVideo | None]  # as stored before the group (None: new)
    pairs_after: dict[PairKey, ViewerVideo]  # the pairs of those visits
    # Pairs whose latest start may have moved earlier (an import gave an older startedAt to a
    # visit): their latest start is read again from the visits.
    to_recount: set[PairKey]


def apply_requests(
    stored: Mapping[VisitKey, Visit],
    stored_pairs: Mapping[PairKey, ViewerVideo],
    requests: Sequence[IngestRequest],
) -> AppliedGroup:
    """Apply each request in order to copies of the ``stored`` visits and pairs (and new ones);
    a request that fails leaves them as the requests before it left them."""
    group = _Group(stored, stored_pairs)
    outcomes: list[Outcome] = []
    for request in requests:
        group.begin()
        try:
            statuses = [
                ACCEPTED if group.apply(request, beacon) else DUPLICATE
                for beacon in request.beacons
            ]
        except VodwatchError as error:
            group.undo()
            outcomes.append(error)
        else:
            group.keep()
            outcomes.append(IngestResult(statuses))
    return AppliedGroup(
        outcomes=outcomes,
        before=group.before,
        after=group.after,
        pairs_before=group.pairs_before,
        pairs_after=group.pairs_after,
        to_recount=group.to_recount,
    )


class _Group:
    """The visits and pairs of a group as the requests so far left them, with what each
    looked like before the current request, to undo it."""

    def __init__(
        self, stored: Mapping[VisitKey, Visit], stored_pairs: Mapping[PairKey, ViewerVideo]
    ) -> None:
        self._stored = stored
        self._stored_pairs = stored_pairs
        self.before: dict[VisitKey, Visit | None] = {}
        self.after: dict[VisitKey, Visit] = {}
        self.pairs_before: dict[PairKey, ViewerVideo | None] = {}
        self.pairs_after: dict[PairKey, ViewerVideo] = {}
        self.to_recount: set[PairKey] = set()
        # Each visit and pair the current request touched as it was before (None: not in
        # ``after`` before it, so undoing removes it from there).
        self._undo: dict[VisitKey, Visit | None] = {}
        self._undo_pairs: dict[PairKey, ViewerVideo | None] = {}
        self._recount: set[PairKey] = set()

    def begin(self) -> None:
        self._undo, self._undo_pairs, self._recount = {}, {}, set()

    def apply(self, request: IngestRequest, beacon: Beacon) -> bool:
        key = (request.tenant_id, beacon.session_id)
        visit, is_new = self._visit(key, beacon, request.now_ms)
        pair = self._pair((request.tenant_id, visit.user_id, visit.asset_id), visit, request.now_ms)
        if is_new:
            pair.visit_count += 1
            pair.latest_started_at_ms = max(pair.latest_started_at_ms, visit.started_at_ms)
        started_at_ms = visit.started_at_ms
        is_fresh = apply_beacon(visit, pair, beacon, request.now_ms, is_trusted=request.is_trusted)
        pair.first_started_at_ms = min(pair.first_started_at_ms, visit.started_at_ms)
        if visit.started_at_ms < started_at_ms and started_at_ms >= pair.latest_started_at_ms:
            # The pair's latest visit started earlier than it said: with no other visit the
            # pair's latest start is this one's; else it is read again from the visits.
            if pair.visit_count == 1:
                pair.latest_started_at_ms = visit.started_at_ms
            else:
                self._recount.add(pair.key)
        return is_fresh

    def keep(self) -> None:
        """The current request succeeded."""
        self.to_recount |= self._recount

    def undo(self) -> None:
        """The current request failed: back to how the requests before it left things."""
        for key, previous in self._undo.items():
            if previous is None:  # first touched by this request: copied from stored again
                del self.after[key]
            else:
                self.after[key] = previous
        for pair_key, previous_pair in self._undo_pairs.items():
            if previous_pair is None:
                del self.pairs_after[pair_key]
            else:
                self.pairs_after[pair_key] = previous_pair

    def _visit(self, key: VisitKey, beacon: Beacon, now_ms: int) -> tuple[Visit, bool]:
        """The visit ``beacon`` goes to, and whether this beacon opens it."""
        visit = self.after.get(key)
        if visit is not None:
            if key not in self._undo:
                self._undo[key] = copy_visit(visit)
            return visit, False
        found = self._stored.get(key)  # copied before any change, never changed itself
        self.before.setdefault(key, found)
        self._undo.setdefault(key, None)
        visit = start_visit(beacon, now_ms) if found is None else copy_visit(found)
        self.after[key] = visit
        return visit, found is None

    def _pair(self, key: PairKey, visit: Visit, now_ms: int) -> ViewerVideo:
        pair = self.pairs_after.get(key)
        if pair is not None:
            if key not in self._undo_pairs:
                self._undo_pairs[key] = pair.copy()
            return pair
        found = self._stored_pairs.get(key)
        self.pairs_before.setdefault(key, found)
        self._undo_pairs.setdefault(key, None)
        pair = start_pair(key, visit.started_at_ms, now_ms) if found is None else found.copy()
        self.pairs_after[key] = pair
        return pair
