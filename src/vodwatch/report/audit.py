"""The evidence behind a completion (SPEC §10): per attempt of one viewer on one video, the
rules in force, whether it is completed, and per visit what counted, what did not and why
(hidden, too fast), and the watch time the clock bounds refused."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from vodwatch.attention import (
    Defaults,
    Rules,
    counted,
    is_completed_by,
    uncounted,
    unite,
)
from vodwatch.errors import InvalidParameter, NotFound
from vodwatch.intervals import clamp
from vodwatch.playback_token import ATTEMPT_ID_RULE, is_attempt_id
from vodwatch.report.params import merge_parameters
from vodwatch.store.attempts import AttemptVisit, find_attempt_visits
from vodwatch.store.catalog import effective_rules, get_asset, rules_json
from vodwatch.store.events import completions_of
from vodwatch.validation import require_identifier

AUDIT_PARAMETERS = ("userId", "assetId", "attemptId")


@dataclass(frozen=True, slots=True)
class AuditQuery:
    user_id: str
    asset_id: str
    attempt_id: str | None  # None: every attempt


def parse_audit_query(
    query: list[tuple[str, str]], body: Mapping[str, object] | None = None
) -> AuditQuery:
    """``attemptId=`` (empty) is the attempt "", an absent one means every attempt."""
    given = merge_parameters(query, body, AUDIT_PARAMETERS)
    raw = dict(body or {}) | dict(query)
    for name in ("userId", "assetId"):
        if name not in given:
            raise InvalidParameter(f"{name} is required")
    attempt = raw.get("attemptId")
    if attempt is not None and (
        not isinstance(attempt, str) or (attempt and not is_attempt_id(attempt))
    ):
        raise InvalidParameter(f"attemptId must be empty or {ATTEMPT_ID_RULE}")
    return AuditQuery(
        user_id=require_identifier("userId", given["userId"]),
        asset_id=require_identifier("assetId", given["assetId"]),
        attempt_id=attempt,
    )


def build_audit(
    conn: Connection, tenant_id: int, defaults: Defaults, query: AuditQuery
) -> dict[str, Any]:
    """The ``data`` of ``GET /vod/webapi/statistics/vod/audit``."""
    found = find_attempt_visits(conn, tenant_id, query.user_id, query.asset_id, query.attempt_id)
    if not found:
        attempt = "" if query.attempt_id is None else f" in attempt {query.attempt_id!r}"
        raise NotFound(
            f"userId {query.user_id!r} has no visit of assetId {query.asset_id!r}{attempt}"
        )
    asset = get_asset(conn, tenant_id, query.asset_id)
    duration = asset.duration_ms if asset else None
    rules = effective_rules(asset, defaults)
    shown_rules = rules_json(asset, defaults)
    done = completions_of(conn, tenant_id, query.user_id, query.asset_id)
    by_attempt: dict[str, list[AttemptVisit]] = {}
    for visit in found:  # newest first, as found
        by_attempt.setdefault(visit.attempt_id, []).append(visit)
    attempts = []
    for attempt_id in sorted(by_attempt):
        visits = by_attempt[attempt_id]
        coverage, attention = unite((visit.coverage, visit.attention) for visit in visits)
        attempts.append(
            {
                "attemptId": attempt_id,
                "rules": shown_rules,
                "completed": is_completed_by(coverage, attention, duration, rules),
                "completedAt": None if attempt_id not in done else done[attempt_id] // 1000,
                "visits": [_visit(visit, duration, rules) for visit in visits],
            }
        )
    return {"userId": query.user_id, "assetId": query.asset_id, "attempts": attempts}


def _visit(visit: AttemptVisit, duration: int | None, rules: Rules) -> dict[str, Any]:
    coverage = clamp(visit.coverage, 0, duration) if duration else visit.coverage
    hidden, too_fast = uncounted(visit.attention, rules)
    if duration:
        hidden, too_fast = clamp(hidden, 0, duration), clamp(too_fast, 0, duration)
    return {
        "sessionId": visit.session_id,
        "startTime": visit.started_at_ms // 1000,
        "lastSeen": visit.last_seen_at_ms // 1000,
        "watchTimeMs": visit.watch_ms,
        "counted": [list(i) for i in counted(coverage, visit.attention, rules)],
        "uncounted": {
            "hidden": [list(i) for i in hidden],
            "tooFast": [list(i) for i in too_fast],
        },
        "clockBoundMs": visit.refused_ms,
    }
