"""Completion events at ingest (SPEC §10): after a group's visits and pairs are written, in the
same transaction, each attempt the group touched that is now completed under the rules in
force, and has no event yet, gets its ``video.completed`` event.

Cheap for the usual group: a pair whose counted coverage does not complete its video cannot
hold a completed attempt (an attempt's coverage is part of its pair's), so only pairs past their
threshold read anything more; attempts known to have an event are remembered. A video's rules
and duration are read at most every ``RULES_SECONDS`` (a rule change applies within 10 s).
"""

import threading
import time
from collections.abc import Container, Hashable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from vodwatch.attention import (
    Defaults,
    Rules,
    counted_within,
    is_completed_by,
    unite,
)
from vodwatch.ingest.batch import AppliedGroup
from vodwatch.intervals import measure
from vodwatch.store.attempts import find_attempt_visits
from vodwatch.store.catalog import stored_rules
from vodwatch.store.events import (
    AttemptKey,
    CompletionEvent,
    find_completed,
    new_event_id,
    record_completion,
)
from vodwatch.store.schema import assets, tenants, viewers

RULES_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class VideoRules:
    rules: Rules
    duration_ms: int | None
    title: str
    authkey: str


class RulesCache:
    """Each video's rules, duration and title (and its tenant's authkey), read at most every
    ``RULES_SECONDS``; thread-safe. Bounded."""

    def __init__(self, seconds: float = RULES_SECONDS, limit: int = 100_000) -> None:
        self._seconds = seconds
        self._limit = limit
        self._cached: dict[tuple[int, str], tuple[float, VideoRules]] = {}
        self._lock = threading.Lock()

    def forget(self, tenant_id: int, asset_id: str | None = None) -> None:
        """A video's rules changed in this process (a tenant's, with no ``asset_id``): read
        them again next time."""
        with self._lock:
            if asset_id is not None:
                self._cached.pop((tenant_id, asset_id), None)
            else:
                self._cached = {k: v for k, v in self._cached.items() if k[0] != tenant_id}

    def get(
        self, conn: Connection, tenant_id: int, asset_ids: Iterable[str]
    ) -> dict[str, VideoRules]:
        now = time.monotonic()
        found: dict[str, VideoRules] = {}
        missing = []
        with self._lock:
            for asset_id in set(asset_ids):
                cached = self._cached.get((tenant_id, asset_id))
                if cached is not None and now - cached[0] < self._seconds:
                    found[asset_id] = cached[1]
                else:
                    missing.append(asset_id)
        if missing:
            read = _read_rules(conn, tenant_id, missing)
            with self._lock:
                if len(self._cached) > self._limit:
                    self._cached.clear()
                for asset_id, video in read.items():
                    self._cached[(tenant_id, asset_id)] = (now, video)
            found.update(read)
        return found


def _read_rules(conn: Connection, tenant_id: int, asset_ids: list[str]) -> dict[str, VideoRules]:
    video, tenant = assets.c, tenants.c
    rows = conn.execute(
        select(
            video.asset_id,
            video.title,
            video.duration_ms,
            video.completion_threshold,
            video.required_ranges,
            video.max_rate,
            video.visible_only,
            tenant.completion_threshold.label("tenant_threshold"),
            tenant.max_rate.label("tenant_max_rate"),
            tenant.visible_only.label("tenant_visible_only"),
            tenant.authkey,
        )
        .join_from(assets, tenants, tenant.tenant_id == video.tenant_id)
        .where(video.tenant_id == tenant_id, video.asset_id.in_(sorted(asset_ids)))
    )
    found = {}
    for row in rows:
        defaults = Defaults(
            row.tenant_threshold, row.tenant_max_rate, bool(row.tenant_visible_only)
        )
        rules = stored_rules(
            defaults, row.completion_threshold, row.required_ranges, row.max_rate, row.visible_only
        )
        found[row.asset_id] = VideoRules(rules, row.duration_ms, row.title, row.authkey)
    return found


def emit_completions(
    conn: Connection,
    applied: AppliedGroup,
    now_ms: int,
    rules: RulesCache,
    known: Container[Hashable] | None = None,
) -> list[Hashable]:
    """Record the ``video.completed`` events the group's beacons brought about; the facts to
    remember once the transaction has committed (attempts that have their event)."""
    touched: dict[tuple[int, str, str], set[str]] = {}
    for (tenant_id, _session), visit in applied.after.items():
        touched.setdefault((tenant_id, visit.user_id, visit.asset_id), set()).add(visit.attempt_id)
    candidates: list[AttemptKey] = []
    by_tenant: dict[int, list[tuple[str, str]]] = {}
    for tenant_id, user_id, asset_id in touched:
        by_tenant.setdefault(tenant_id, []).append((user_id, asset_id))
    videos: dict[tuple[int, str], VideoRules] = {}
    for tenant_id, pairs in by_tenant.items():
        for asset_id, video in rules.get(conn, tenant_id, {a for _, a in pairs}).items():
            videos[(tenant_id, asset_id)] = video
    for key, attempts in touched.items():
        pair_video = videos.get((key[0], key[2]))
        pair = applied.pairs_after.get(key)
        if pair_video is None or pair is None or not pair_video.duration_ms:
            continue
        if not is_completed_by(
            pair.coverage, pair.attention, pair_video.duration_ms, pair_video.rules
        ):
            continue  # (the usual pair: none of its attempts can be complete)
        tenant_id, user_id, asset_id = key
        candidates += [
            (tenant_id, user_id, asset_id, attempt)
            for attempt in attempts
            if known is None or ("completed", tenant_id, user_id, asset_id, attempt) not in known
        ]
    if not candidates:
        return []
    done = find_completed(conn, candidates)
    facts: list[Hashable] = [("completed", *key_done) for key_done in done]
    for attempt_key in candidates:
        if attempt_key in done:
            continue
        tenant_id, user_id, asset_id, attempt_id = attempt_key
        facts_of = videos[(tenant_id, asset_id)]
        visits = find_attempt_visits(conn, tenant_id, user_id, asset_id, attempt_id)
        coverage, attention = unite((seen.coverage, seen.attention) for seen in visits)
        duration = facts_of.duration_ms or 0
        if not is_completed_by(coverage, attention, duration, facts_of.rules):
            continue
        counted_ms = measure(counted_within(coverage, attention, duration, facts_of.rules))
        event_id = new_event_id()
        event = CompletionEvent(
            tenant_id,
            event_id,
            user_id,
            asset_id,
            attempt_id,
            now_ms,
            {
                "eventId": event_id,
                "authkey": facts_of.authkey,
                "userId": user_id,
                "userName": _user_name(conn, tenant_id, user_id),
                "assetId": asset_id,
                "videoTitle": facts_of.title,
                "attemptId": attempt_id,
                "completedAt": now_ms // 1000,
                "percent": min(100, counted_ms * 100 // duration),
                "countedMs": counted_ms,
                "durationMs": duration,
                "threshold": facts_of.rules.threshold,
                "watchTimeMs": sum(seen.watch_ms for seen in visits),
            },
        )
        record_completion(conn, event)
        facts.append(("completed", *attempt_key))
    return facts


def _user_name(conn: Connection, tenant_id: int, user_id: str) -> str:
    name = conn.execute(
        select(viewers.c.user_name).where(
            viewers.c.tenant_id == tenant_id, viewers.c.user_id == user_id
        )
    ).scalar_one_or_none()
    return name or ""
