"""Apply several requests' beacons to the visits they touch: pure, no I/O.

Requests are independent (each all or nothing): a request that fails leaves the visits exactly
as the requests before it left them, so a group of requests can share one transaction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vodwatch.beacon.model import Beacon
from vodwatch.errors import VodwatchError
from vodwatch.ingest.visit import Visit, apply_beacon, copy_visit, start_visit

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
VisitKey = tuple[int, str]  # (tenant_id, session_id)


@dataclass(frozen=True, slots=True)
class IngestRequest:
    tenant_id: int
    beacons: Sequence[Beacon]
    now_ms: int  # server time the request arrived
    is_trusted: bool  # server beacons (Tk headers): not bounded by the clock


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


def apply_requests(
    stored: Mapping[VisitKey, Visit], requests: Sequence[IngestRequest]
) -> AppliedGroup:
    """Apply each request in order to copies of the ``stored`` visits (and new ones)."""
    before: dict[VisitKey, Visit | None] = {}
    after: dict[VisitKey, Visit] = {}
    outcomes: list[Outcome] = []
    for request in requests:
        # Each visit as it was before this request; None for one this request creates.
        undo: dict[VisitKey, Visit | None] = {}
        try:
            statuses = []
            for beacon in request.beacons:
                key = (request.tenant_id, beacon.session_id)
                if key not in after:
                    found = stored.get(key)
                    before.setdefault(key, found)
                    if found is None:
                        after[key] = start_visit(beacon, request.now_ms)
                        undo.setdefault(key, None)
                    else:
                        after[key] = copy_visit(found)
                        undo.setdefault(key, copy_visit(found))
                else:
                    undo.setdefault(key, copy_visit(after[key]))
                is_new = apply_beacon(
                    after[key], beacon, request.now_ms, is_trusted=request.is_trusted
                )
                statuses.append(ACCEPTED if is_new else DUPLICATE)
            outcomes.append(IngestResult(statuses))
        except VodwatchError as error:
            for key, previous in undo.items():
                if previous is None:
                    del after[key]
                    if before[key] is None:
                        del before[key]
                else:
                    after[key] = previous
            outcomes.append(error)
    return AppliedGroup(outcomes=outcomes, before=before, after=after)
