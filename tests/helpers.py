"""Small helpers shared by API tests."""

import json
import stat
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import inspect, select, text

from vodwatch.cli import main
from vodwatch.client import VodwatchClient
from vodwatch.store.database import Database
from vodwatch.store.schema import metadata


def new_session_id() -> str:
    return uuid.uuid4().hex[:16]


# Not data: the record of signed requests accepted (replay protection). A signed read that was
# accepted and then answered 404, say, is recorded all the same.
BOOKKEEPING = {"signed_requests"}


def snapshot(
    db: Database, exclude: set[str] | None = None, *, columns: dict[str, list[str]] | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table, in key order: equal snapshots mean nothing was stored.
    ``columns`` names the columns to take per table (a schema before a migration has fewer):
    by default every column the table has now; tables not in it are left out."""
    exclude = (exclude or set()) | BOOKKEEPING
    with db.read() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(
                    select(*(table.c[name] for name in names)).order_by(*table.primary_key.columns)
                )
            ]
            for table in metadata.sorted_tables
            if table.name not in exclude
            for names in [list(table.c.keys()) if columns is None else columns.get(table.name)]
            if names is not None
        }


def table_columns(db: Database) -> dict[str, list[str]]:
    """The columns of each table the database has now (to snapshot them again later)."""
    with db.read() as conn:
        inspector = inspect(conn)
        return {
            name: [column["name"] for column in inspector.get_columns(name)]
            for name in inspector.get_table_names()
        }


def run(*args: str, ok: bool = True, stdout_only: bool = False, input: str | None = None) -> str:
    """The ``vodwatch`` command in-process, ``input`` on its standard input; what it printed
    (stdout and stderr, or only stdout). Checks the exit code: 0 when ``ok``, else not 0."""
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result.stdout if stdout_only else result.output


def stored_secrets(db: Database) -> dict[str, str]:
    """The ``secret`` column of every tenant by authkey, as stored."""
    with db.read() as conn:
        rows = conn.execute(text("SELECT authkey, secret FROM tenants"))
        return {authkey: secret for authkey, secret in rows}


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


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


def stalling_beacons(token: str) -> list[dict[str, Any]]:
    """The reported stall: 10 beacons of one session, each with 1,000 segments of 1 ms
    (150 KB as JSON)."""
    return [
        {
            "token": token,
            "sessionId": "stalling-session",
            "seq": k + 1,
            "segments": [
                [(1000 * k + i) * 0.002, (1000 * k + i) * 0.002 + 0.001] for i in range(1000)
            ],
            "playedMs": 1,
        }
        for k in range(10)
    ]
