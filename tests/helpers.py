"""Small helpers shared by API tests."""

import json
import uuid
from typing import Any

from sqlalchemy import select

from vodwatch.client import VodwatchClient
from vodwatch.store.database import Database
from vodwatch.store.schema import metadata


def new_session_id() -> str:
    return uuid.uuid4().hex[:16]


def snapshot(db: Database, exclude: set[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order: equal snapshots mean nothing was stored."""
    with db.read() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
            if table.name not in (exclude or set())
        }


def server_beacon(
    session_id: str,
    seq: int,
    *,
    user_id: str = "李四",
    asset_id: str = "8602268011035296205",
    segments: list[list[float]] | None = None,
    played_ms: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "sessionId": session_id,
        "seq": seq,
        "userId": user_id,
        "assetId": asset_id,
        "segments": segments or [],
        "playedMs": played_ms,
        **extra,
    }


def report_rows(client: VodwatchClient, **params: Any) -> list[dict[str, Any]]:
    return list(client.iter_report(**params))


def raw_post(http: Any, body: Any, content_type: str = "text/plain;charset=UTF-8") -> Any:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post("/vod/webapi/beacon", content=payload, headers={"Content-Type": content_type})
