"""Signed requests seen, so that each is accepted once (replay protection, SPEC §5).

A request signed with Tk headers is valid while its ``Timestamp`` is within the window around
the server clock; without a record of what was accepted, anyone who saw it pass (a proxy log,
a shared network) could send it again in that window: a catalog change undone, a report read
again. Its ``Tk-token`` (the signature, which covers the authkey, ``Timestamp``, method, path,
query and body) is recorded in ``signed_requests`` until the window has passed, in the
database every process and server shares:

- a request that writes records it **in its own transaction** (``claim``, before its work): a
  beacon batch or a catalog change is stored together with its record, or neither is; a copy
  arriving at once in another process waits on the key until the first commits, and then
  finds it taken (the insert skips it) — one statement, one round trip, whoever wins;
- a request that only reads records it with ``ReplayGuard.claim``, in a small transaction of
  its own: on PostgreSQL in the same table, written without waiting for the WAL flush
  (``synchronous_commit = off``: a record lost to a power cut lets one request of that last
  moment be replayed, and costs reads nothing); on SQLite in a file of its own beside the
  database (``<file>-replay``), so that a read never waits for the ingest writer, in WAL mode
  without any fsync (a process killed with -9 loses nothing: the system has it).

A token names its method, so the two places never hold the same request.
"""

import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, delete
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from vodwatch.signing import Signature
from vodwatch.store.database import (
    ConcurrentInsert,
    Database,
    WriteLock,
    postgresql_engine,
    sqlite_engine,
    upsert,
)
from vodwatch.store.schema import metadata, signed_requests

PURGE_EVERY_SECONDS = 60.0


def claim(conn: Connection, signatures: Iterable[Signature]) -> set[Signature]:
    """Record ``signatures`` in this transaction; those that were recorded before (or by a
    transaction that committed meanwhile) are left as they are and returned: replays. A
    signature given twice is recorded once, and returned once (its copy is the replay)."""
    wanted = sorted(set(signatures), key=lambda s: (s.tenant_id, s.token))
    if not wanted:
        return set()
    inserted = conn.execute(
        upsert(conn, signed_requests)
        .on_conflict_do_nothing()
        .returning(signed_requests.c.tenant_id, signed_requests.c.token),
        [
            {"tenant_id": s.tenant_id, "token": s.token, "expires_at_ms": s.expires_at_ms}
            for s in wanted
        ],
    ).all()
    new = {(tenant_id, token) for tenant_id, token in inserted}
    return {s for s in wanted if (s.tenant_id, s.token) not in new}


def unclaim(conn: Connection, signatures: Iterable[Signature]) -> None:
    """Forget signatures ``claim`` recorded in this transaction for requests that failed after
    all: a request refused is not accepted, and may be sent again."""
    by_tenant: dict[int, list[str]] = {}
    for signature in signatures:
        by_tenant.setdefault(signature.tenant_id, []).append(signature.token)
    for tenant_id, tokens in sorted(by_tenant.items()):
        conn.execute(
            delete(signed_requests).where(
                signed_requests.c.tenant_id == tenant_id, signed_requests.c.token.in_(tokens)
            )
        )


def record_claims(conn: Connection, signatures: Iterable[Signature]) -> None:
    """Record ``signatures``, new ones; ``ConcurrentInsert`` when one of them was recorded
    before or meanwhile."""
    rows = [
        {"tenant_id": s.tenant_id, "token": s.token, "expires_at_ms": s.expires_at_ms}
        for s in sorted(set(signatures), key=lambda s: (s.tenant_id, s.token))
    ]
    if not rows:
        return
    inserted = conn.execute(
        upsert(conn, signed_requests).on_conflict_do_nothing().returning(signed_requests.c.token),
        rows,
    ).all()
    if len(inserted) != len(rows):
        raise ConcurrentInsert("signed_requests")


def purge_claims(conn: Connection, tenant_id: int, now_ms: int) -> None:
    """Forget ``tenant_id``'s signed requests whose window has passed."""
    conn.execute(
        delete(signed_requests).where(
            signed_requests.c.tenant_id == tenant_id,
            signed_requests.c.expires_at_ms < now_ms,
        )
    )


class PurgeSchedule:
    """When each tenant's old records were last purged by this process: once a minute."""

    def __init__(self) -> None:
        self._purged: dict[int, float] = {}
        self._lock = threading.Lock()

    def due(self, tenant_ids: Iterable[int]) -> list[int]:
        now = time.monotonic()
        with self._lock:
            due = [
                t for t in set(tenant_ids) if now - self._purged.get(t, 0.0) >= PURGE_EVERY_SECONDS
            ]
            for tenant_id in due:
                self._purged[tenant_id] = now
        return sorted(due)


class ReplayGuard:
    """Records the signed requests that only read. Thread-safe; blocks on the database, so
    call it off the event loop."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock_path: Path | None = None
        if db.is_sqlite:
            self._engine = _sqlite_replay_engine(db.url)
            path = replay_path(db.url)
            # Writers of several processes queue on a lock file, as on the database's.
            self._lock_path = None if path is None else Path(f"{path}-writelock")
        else:
            # Connections of their own, each claim one statement in its own transaction,
            # committed without waiting for the WAL flush.
            self._engine = postgresql_engine(
                db.url, 2, db.timeouts, session="SET synchronous_commit = off"
            ).execution_options(isolation_level="AUTOCOMMIT")
        self._purges = PurgeSchedule()

    def claim(self, signature: Signature, now_ms: int) -> bool:
        """Record a signed request; False when it was recorded before (a replay), here or
        in another process this instant (the key decides)."""
        locked = WriteLock(self._lock_path)
        try:
            with self._engine.begin() as conn:
                try:
                    record_claims(conn, [signature])  # one statement: the key decides
                except ConcurrentInsert:
                    return False
                for tenant_id in self._purges.due([signature.tenant_id]):
                    purge_claims(conn, tenant_id, now_ms)
            return True
        finally:
            locked.release()

    def dispose(self) -> None:
        self._engine.dispose()


def replay_path(database_url: str) -> Path | None:
    """The SQLite file of the signed reads seen, beside the database (None in memory)."""
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
            # Never an fsync, not even at a checkpoint (one every few hundred claims, which
            # a read would wait for): as on PostgreSQL, a power cut may forget the claims of
            # its last moment; a process killed with -9 forgets nothing.
            synchronous="OFF",
            companions=("-wal", "-shm", "-writelock"),
            is_always_immediate=True,
        )
    metadata.create_all(engine, tables=[signed_requests])
    return engine
