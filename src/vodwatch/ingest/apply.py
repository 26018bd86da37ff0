"""Store one request's beacons: register videos and viewers, then update each visit under a
row lock. Runs inside one write transaction: every beacon of the request is stored, or none."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from vodwatch.beacon.model import Beacon
from vodwatch.ingest.visit import Visit, apply_beacon, start_visit
from vodwatch.store.catalog import AssetClaim, ViewerName, record_viewer_names, register_assets
from vodwatch.store.visits import insert_visits, lock_visits, save_visits

ACCEPTED = "accepted"
DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class IngestResult:
    statuses: list[str]  # ACCEPTED or DUPLICATE, one per beacon in request order

    @property
    def accepted(self) -> int:
        return self.statuses.count(ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.statuses.count(DUPLICATE)


def ingest_beacons(
    conn: Connection, tenant_id: int, beacons: Sequence[Beacon], now_ms: int, *, is_trusted: bool
) -> IngestResult:
    """Apply validated beacons; idempotent per ``(sessionId, seq)``.

    Raises ``InvalidParameter`` (and the caller's transaction rolls back) when a beacon names
    another viewer or video than its session's first beacon.
    """
    register_assets(conn, tenant_id, _asset_claims(beacons), now_ms)
    record_viewer_names(conn, tenant_id, _viewer_names(beacons, now_ms))

    by_session: dict[str, list[int]] = defaultdict(list)
    for index, beacon in enumerate(beacons):
        by_session[beacon.session_id].append(index)
    statuses = [DUPLICATE] * len(beacons)

    def apply_all(visit: Visit) -> bool:
        is_changed = False
        for index in by_session[visit.session_id]:
            is_new = apply_beacon(visit, beacons[index], now_ms, is_trusted=is_trusted)
            statuses[index] = ACCEPTED if is_new else DUPLICATE
            is_changed = is_changed or is_new
        return is_changed

    stored = lock_visits(conn, tenant_id, by_session)
    fresh = []
    for session_id, indexes in by_session.items():
        if session_id not in stored:
            visit = start_visit(beacons[indexes[0]], now_ms)
            apply_all(visit)
            fresh.append(visit)
    inserted = insert_visits(conn, tenant_id, fresh)
    # A session that a concurrent request created since our first look: apply on top of it.
    stored.update(
        lock_visits(conn, tenant_id, [v.session_id for v in fresh if v.session_id not in inserted])
    )
    changed = [visit for visit in stored.values() if apply_all(visit)]
    save_visits(conn, tenant_id, changed)
    return IngestResult(statuses)


def _asset_claims(beacons: Sequence[Beacon]) -> list[AssetClaim]:
    """One claim per video: the first title and duration any beacon of the request gives."""
    titles: dict[str, str] = {}
    durations: dict[str, int | None] = {}
    for beacon in beacons:
        asset_id = beacon.viewing.asset_id
        if not titles.get(asset_id) and beacon.viewing.title:
            titles[asset_id] = beacon.viewing.title
        titles.setdefault(asset_id, "")
        duration = beacon.viewing.duration_ms or beacon.duration_ms
        if durations.get(asset_id) is None:
            durations[asset_id] = duration
    return [AssetClaim(asset_id, titles[asset_id], durations[asset_id]) for asset_id in titles]


def _viewer_names(beacons: Sequence[Beacon], now_ms: int) -> list[ViewerName]:
    """One name per viewer: the one reported for the latest time in the request."""
    latest: dict[str, ViewerName] = {}
    for beacon in beacons:
        viewing = beacon.viewing
        at_ms = beacon.started_at_ms if beacon.started_at_ms is not None else now_ms
        known = latest.get(viewing.user_id)
        if known is None or (viewing.user_name and (not known.user_name or at_ms >= known.at_ms)):
            latest[viewing.user_id] = ViewerName(viewing.user_id, viewing.user_name, at_ms)
    return list(latest.values())
