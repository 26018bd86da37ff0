"""Signed requests seen, so that each is accepted once (replay protection, SPEC §5).

A request signed with Tk headers is valid while its ``Timestamp`` is within the window around
the server clock; without a record of what was seen, anyone who saw it pass (a proxy log, a
shared network) could send it again in that window: a catalog change undone, a report read
again. ``ReplayGuard.claim`` records its ``Tk-token`` (the signature, which covers the
authkey, ``Timestamp``, method, path, query and body) until the window has passed, in the
database that every process and server shares, and says whether it was new.

- PostgreSQL: table ``signed_requests`` (migration 0005), written without waiting for the
  WAL flush (``synchronous_commit = off``): a record lost to a power cut lets one request of the
  last moment be replayed, and costs every signed request nothing.
- SQLite: the same table in a file of its own beside the database (``<file>-replay``), so that
  recording a request never waits for the ingest writer's lock; written in WAL mode without
  fsync at commit, so a process killed with -9 loses nothing (the operating system has it).
"""

import threading
import time
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from vodwatch.store.database import Database, sqlite_engine

PURGE_EVERY_SECONDS = 60.0

replay_metadata = MetaData()
signed_requests = Table(
    "signed_requests",
    replay_metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("token", String(64), primary_key=True),  # the Tk-token: base64 of 32 bytes
    Column("expires_at_ms", BigInteger, nullable=False),
)
Index(
    "ix_signed_requests_tenant_id_expires_at_ms",
    signed_requests.c.tenant_id,
    signed_requests.c.expires_at_ms,
)


class ReplayGuard:
    """Thread-safe; blocks on the database, so call it off the event loop."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._engine = db.engine if not db.is_sqlite else _sqlite_replay_engine(db.url)
        self._purged: dict[int, float] = {}  # tenant_id -> monotonic time of its last purge
        self._lock = threading.Lock()

    def claim(self, tenant_id: int, token: str, expires_at_ms: int, now_ms: int) -> bool:
        """Record a signed request; False when it was recorded before (a replay)."""
        insert = (postgresql if not self._db.is_sqlite else sqlite).insert(signed_requests)
        statement = (
            insert.values(tenant_id=tenant_id, token=token[:64], expires_at_ms=expires_at_ms)
            .on_conflict_do_nothing()
            .returning(signed_requests.c.tenant_id)
        )
        with self._engine.connect() as conn, conn.begin():
            if not self._db.is_sqlite:
                conn.execute(text("SET LOCAL synchronous_commit = off"))
            is_new = conn.execute(statement).first() is not None
            if self._is_purge_due(tenant_id):
                _purge(conn, tenant_id, now_ms)
        return is_new

    def dispose(self) -> None:
        if self._engine is not self._db.engine:
            self._engine.dispose()

    def _is_purge_due(self, tenant_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._purged.get(tenant_id, 0.0) < PURGE_EVERY_SECONDS:
                return False
            self._purged[tenant_id] = now
            return True


def _purge(conn: Connection, tenant_id: int, now_ms: int) -> None:
    conn.execute(
        delete(signed_requests).where(
            signed_requests.c.tenant_id == tenant_id,
            signed_requests.c.expires_at_ms < now_ms,
        )
    )


def replay_path(database_url: str) -> Path | None:
    """The SQLite file of the signed requests seen, beside the database (None in memory)."""
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return None
    return Path(database + "-replay")


def _sqlite_replay_engine(database_url: str) -> Engine:
    path = replay_path(database_url)
    if path is None:  # in memory, for one process (as its main database)
        engine = create_engine("sqlite://", poolclass=StaticPool)
    else:
        engine = sqlite_engine(
            f"sqlite:///{path}",
            pool_size=2,
            synchronous="NORMAL",
            companions=("-wal", "-shm"),
            is_always_immediate=True,
        )
    replay_metadata.create_all(engine)
    return engine
