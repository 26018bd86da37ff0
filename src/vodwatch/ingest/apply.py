"""Store a group of ingest requests in one write transaction.

Locks every visit the group touches (in key order), applies each request all or nothing
(``ingest.batch``), registers new videos and viewers, writes the visits and the per viewer and
video totals. Requests that fail are answered with their error and leave no trace; the others
are durable once the transaction commits.
"""

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence

from sqlalchemy import Connection

from vodwatch.beacon.model import Beacon
from vodwatch.errors import ReplayedRequest
from vodwatch.ingest.batch import AppliedGroup, IngestRequest, IngestResult, Outcome, VisitKey
from vodwatch.ingest.batch import apply_requests as apply_to_visits
from vodwatch.ingest.completion import RulesCache, emit_completions
from vodwatch.ingest.viewer_videos import PairKey, ViewerVideo
from vodwatch.ingest.visit import Visit
from vodwatch.signing import Signature
from vodwatch.store.catalog import AssetClaim, ViewerName, record_viewer_names, register_assets
from vodwatch.store.signed_requests import PurgeSchedule, claim, purge_claims, unclaim
from vodwatch.store.viewer_videos import (
    lock_viewer_videos,
    recount_latest_start,
    save_viewer_videos,
)
from vodwatch.store.visits import insert_visits, lock_visits, save_visits


class KnownFacts:
    """Asset claims and viewers this process has already stored: storing them again changes
    nothing (claims only fill in what is missing, and nothing else changes them back; a
    viewer's row, once there, stays), so ingest skips those writes. Bounded.

    Viewer *names* are not remembered: another process may store a later name meanwhile, and
    only the database knows which is the latest (Alice through one worker, Bob through
    another, then Alice again must leave "Alice").
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._facts: set[Hashable] = set()

    def __contains__(self, fact: Hashable) -> bool:
        return fact in self._facts

    def remember(self, facts: Iterable[Hashable]) -> None:
        if len(self._facts) > self._limit:
            self._facts.clear()
        self._facts.update(facts)


def store_requests(
    conn: Connection,
    requests: Sequence[IngestRequest],
    known: KnownFacts | None = None,
    purges: PurgeSchedule | None = None,
    rules: RulesCache | None = None,
) -> tuple[list[Outcome], list[Hashable]]:
    """Apply ``requests`` in order; their outcomes, and the facts ``known`` may remember once
    the transaction has committed. A signed request accepted before is refused
    (``ReplayedRequest``); the signatures of the others that succeed are recorded in this
    transaction, with their beacons."""
    signatures = [r.signature for r in requests if r.signature is not None]
    # Recorded first (one statement): a signature recorded before, or twice in this group,
    # is a replay for every request but the first that carries it.
    replays = claim(conn, signatures) if signatures else set()
    is_replayed: list[bool] = []  # per request: recorded before, or a copy of one before it
    first_seen: set[Signature] = set()
    for request in requests:
        signature = request.signature
        is_replayed.append(
            signature is not None and (signature in replays or signature in first_seen)
        )
        if signature is not None:
            first_seen.add(signature)
    runnable = [r for r, replayed in zip(requests, is_replayed, strict=True) if not replayed]
    # Visits first, then pairs, each in key order: every writer locks in this order.
    stored_visits = _lock_visits(conn, runnable)
    applied = apply_to_visits(stored_visits, _lock_pairs(conn, runnable), runnable)
    succeeded = []
    failed_signatures = []
    for request, outcome in zip(runnable, applied.outcomes, strict=True):
        if isinstance(outcome, IngestResult):
            succeeded.append(request)
        elif request.signature is not None:
            failed_signatures.append(request.signature)
    if failed_signatures:
        unclaim(conn, failed_signatures)
    for tenant_id in (purges or PurgeSchedule()).due(s.tenant_id for s in signatures):
        purge_claims(conn, tenant_id, max(r.now_ms for r in requests))
    facts: list[Hashable] = []
    for tenant_id, (beacons, now_ms) in _beacons_by_tenant(succeeded).items():
        claims = [
            claim
            for claim in _asset_claims(beacons)
            if known is None or ("asset", tenant_id, claim) not in known
        ]
        # A name is written whenever a beacon carries one (only the database knows whether it
        # is the latest); a viewer with no name needs its row to exist, once.
        names = [
            name
            for name in _viewer_names(beacons, now_ms)
            if name.user_name or known is None or ("viewer", tenant_id, name.user_id) not in known
        ]
        register_assets(conn, tenant_id, claims, now_ms)
        record_viewer_names(conn, tenant_id, names)
        facts += [("asset", tenant_id, claim) for claim in claims]
        facts += [("viewer", tenant_id, name.user_id) for name in names]
    _write_visits(conn, applied)
    _write_viewer_videos(conn, applied)
    if succeeded:  # the attempts completed by these beacons get their event, with them
        group_ms = max(r.now_ms for r in succeeded)
        facts += emit_completions(conn, applied, group_ms, rules or RulesCache(0.0), known)
    outcomes = iter(applied.outcomes)
    return [ReplayedRequest() if replayed else next(outcomes) for replayed in is_replayed], facts


def _lock_visits(conn: Connection, requests: Sequence[IngestRequest]) -> dict[VisitKey, Visit]:
    sessions: dict[int, set[str]] = defaultdict(set)
    for request in requests:
        sessions[request.tenant_id].update(beacon.session_id for beacon in request.beacons)
    stored: dict[VisitKey, Visit] = {}
    for tenant_id in sorted(sessions):
        for session_id, visit in lock_visits(conn, tenant_id, sessions[tenant_id]).items():
            stored[(tenant_id, session_id)] = visit
    return stored


def _lock_pairs(conn: Connection, requests: Sequence[IngestRequest]) -> dict[PairKey, ViewerVideo]:
    return lock_viewer_videos(
        conn,
        {
            (request.tenant_id, beacon.viewing.user_id, beacon.viewing.asset_id)
            for request in requests
            for beacon in request.beacons
        },
    )


def _write_visits(conn: Connection, applied: AppliedGroup) -> None:
    inserted: dict[int, list[Visit]] = defaultdict(list)
    updated: dict[int, list[Visit]] = defaultdict(list)
    for key, visit in applied.after.items():
        before = applied.before[key]
        if before is None:
            inserted[key[0]].append(visit)
        elif visit != before:
            updated[key[0]].append(visit)
    for tenant_id in sorted(inserted.keys() | updated.keys()):
        insert_visits(conn, tenant_id, inserted[tenant_id])
        save_visits(conn, tenant_id, updated[tenant_id])


def _write_viewer_videos(conn: Connection, applied: AppliedGroup) -> None:
    changed = [
        pair for key, pair in applied.pairs_after.items() if pair != applied.pairs_before[key]
    ]
    save_viewer_videos(
        conn, changed, [key for key, pair in applied.pairs_before.items() if pair is not None]
    )
    recount_latest_start(conn, applied.to_recount)


def _beacons_by_tenant(
    requests: Sequence[IngestRequest],
) -> dict[int, tuple[list[Beacon], int]]:
    """Each tenant's beacons, and the latest arrival time among its requests."""
    by_tenant: dict[int, tuple[list[Beacon], int]] = {}
    for request in requests:
        beacons, now_ms = by_tenant.get(request.tenant_id, ([], request.now_ms))
        beacons.extend(request.beacons)
        by_tenant[request.tenant_id] = (beacons, max(now_ms, request.now_ms))
    return by_tenant


def _asset_claims(beacons: Sequence[Beacon]) -> list[AssetClaim]:
    """One claim per video: the first title and duration any beacon gives."""
    titles: dict[str, str] = {}
    durations: dict[str, int | None] = {}
    for beacon in beacons:
        asset_id = beacon.viewing.asset_id
        if not titles.get(asset_id) and beacon.viewing.title:
            titles[asset_id] = beacon.viewing.title
        titles.setdefault(asset_id, "")
        if durations.get(asset_id) is None:
            durations[asset_id] = beacon.viewing.duration_ms or beacon.duration_ms
    return [AssetClaim(asset_id, titles[asset_id], durations[asset_id]) for asset_id in titles]


def _viewer_names(beacons: Sequence[Beacon], now_ms: int) -> list[ViewerName]:
    """One name per viewer: the one reported for the latest time."""
    latest: dict[str, ViewerName] = {}
    for beacon in beacons:
        viewing = beacon.viewing
        at_ms = beacon.started_at_ms if beacon.started_at_ms is not None else now_ms
        seen = latest.get(viewing.user_id)
        if seen is None or (viewing.user_name and (not seen.user_name or at_ms >= seen.at_ms)):
            latest[viewing.user_id] = ViewerName(viewing.user_id, viewing.user_name, at_ms)
    return list(latest.values())
