"""``video.completed`` events (SPEC §10): at most one per viewer, video and attempt (the unique
key decides between two writers), stored in the transaction of the beacons that completed the
attempt, so that no completion is lost or invented, ``kill -9`` included."""

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select, tuple_

from vodwatch.store.database import upsert
from vodwatch.store.schema import completion_events

AttemptKey = tuple[int, str, str, str]  # (tenant_id, user_id, asset_id, attempt_id)


@dataclass(frozen=True, slots=True)
class CompletionEvent:
    tenant_id: int
    event_id: str
    user_id: str
    asset_id: str
    attempt_id: str
    completed_at_ms: int
    data: Mapping[str, Any]  # the event's ``data`` as delivered


def new_event_id() -> str:
    """``evt_`` and 24 hex digits (96 random bits): the ``webhook-id`` receivers dedupe on."""
    return "evt_" + secrets.token_hex(12)


def record_completion(conn: Connection, event: CompletionEvent) -> bool:
    """Store ``event`` unless its attempt has one already (then nothing changes): whether it
    was stored."""
    inserted = conn.execute(
        upsert(conn, completion_events)
        .values(
            tenant_id=event.tenant_id,
            event_id=event.event_id,
            user_id=event.user_id,
            asset_id=event.asset_id,
            attempt_id=event.attempt_id,
            completed_at_ms=event.completed_at_ms,
            data=orjson.dumps(dict(event.data)).decode(),
        )
        .on_conflict_do_nothing()
        .returning(completion_events.c.event_id)
    ).first()
    return inserted is not None


def find_completed(conn: Connection, keys: Iterable[AttemptKey]) -> dict[AttemptKey, int]:
    """When each of the attempts named completed (``completed_at_ms``), those that did."""
    by_tenant: dict[int, list[tuple[str, str, str]]] = {}
    for tenant_id, user_id, asset_id, attempt_id in set(keys):
        by_tenant.setdefault(tenant_id, []).append((user_id, asset_id, attempt_id))
    found: dict[AttemptKey, int] = {}
    table = completion_events.c
    for tenant_id, wanted in sorted(by_tenant.items()):
        rows = conn.execute(
            select(table.user_id, table.asset_id, table.attempt_id, table.completed_at_ms).where(
                table.tenant_id == tenant_id,
                tuple_(table.user_id, table.asset_id, table.attempt_id).in_(sorted(wanted)),
            )
        )
        for user_id, asset_id, attempt_id, at_ms in rows:
            found[(tenant_id, user_id, asset_id, attempt_id)] = at_ms
    return found


def completions_of(conn: Connection, tenant_id: int, user_id: str, asset_id: str) -> dict[str, int]:
    """Each completed attempt of a viewer on a video, with when it completed (ms)."""
    table = completion_events.c
    rows = conn.execute(
        select(table.attempt_id, table.completed_at_ms).where(
            table.tenant_id == tenant_id, table.user_id == user_id, table.asset_id == asset_id
        )
    )
    return {attempt_id: at_ms for attempt_id, at_ms in rows}
