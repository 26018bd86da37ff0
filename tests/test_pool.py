"""PostgreSQL connections in the pool: pinged only after they sat unused a while, so that a
busy writer saves a round trip per transaction and a connection cut while idle is replaced."""

import time
from typing import Any

import pytest
from sqlalchemy import text

from vodwatch.store import database
from vodwatch.store.database import Database


def test_a_connection_cut_while_idle_is_replaced(postgres_database_url: str) -> None:
    db = Database(postgres_database_url, pool_size=1)
    killer = Database(postgres_database_url, pool_size=1)
    try:
        with db.write() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with killer.write() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(database.PING_IDLE_SECONDS + 0.1)
        with db.write() as conn:  # pinged, found gone, replaced: no error
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        db.dispose()
        killer.dispose()


def test_a_connection_in_use_is_not_pinged(
    postgres_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(postgres_database_url, pool_size=1)
    pings: list[Any] = []
    real_ping = db.engine.dialect.do_ping

    def counted_ping(dbapi: Any) -> bool:
        pings.append(dbapi)
        return bool(real_ping(dbapi))

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted_ping)
    try:
        for _ in range(5):
            with db.write() as conn:
                conn.execute(text("SELECT 1"))
        assert len(pings) == 1  # the first checkout only: the connection was never idle
    finally:
        db.dispose()
