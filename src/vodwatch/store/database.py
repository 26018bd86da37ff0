"""One place that opens the database and runs transactions, for SQLite and PostgreSQL alike.

Everything that touches the database goes through ``Database.read()`` or ``Database.write()``
and a query function in ``vodwatch.store`` that takes the connection explicitly. The rest of the
service never sees a dialect: ``upsert`` picks the dialect's ``INSERT ... ON CONFLICT``.
"""

import errno
import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    create_engine,
    event,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError

from vodwatch.keyring import SecretBox
from vodwatch.private_files import open_private, tighten, touch_private
from vodwatch.settings import key_source
from vodwatch.store.secret_key import load_secret_box

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_SECONDS = 5
WRITE_ATTEMPTS = 6
_WRITE_OPTION = "vodwatch_write"
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected


class ConcurrentInsert(Exception):
    """Another transaction created a row this one meant to create: retry the transaction."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long the service waits for PostgreSQL, so that a slow or stuck database makes
    requests fail instead of piling up (SQLite waits ``SQLITE_BUSY_TIMEOUT_SECONDS`` for a
    lock held by a program other than vodwatch)."""

    connect_seconds: float = 5.0  # to open a connection
    pool_seconds: float = 10.0  # for a free connection of the pool
    lock_ms: int = 5_000  # for a row lock (lock_timeout)
    statement_ms: int = 30_000  # for one statement (statement_timeout)
    idle_in_transaction_ms: int = 60_000  # a transaction left open (a bug) is ended


# The SQLite messages and PostgreSQL SQLSTATE classes that mean the database cannot serve
# writes at all, as opposed to one request it refused: what an operator should hear about.
_SQLITE_OUTAGES = (
    ("database or disk is full", "disk full"),
    ("disk i/o error", "disk I/O error"),
    ("readonly database", "database is read-only"),
    ("unable to open database", "database file cannot be opened"),
    ("database is locked", "database is locked by another program"),
)
_POSTGRESQL_OUTAGES = (
    ("53100", "disk full"),
    ("53200", "database out of memory"),
    ("53300", "too many database connections"),
    ("53", "database out of resources"),
    ("08", "database unreachable"),
    ("57P", "database shutting down or starting"),
    ("25006", "database is read-only"),
    ("55P03", "database lock timeout"),
    ("57014", "database statement timeout"),
    ("40P01", "database deadlock"),
)


def describe_outage(error: BaseException) -> str | None:
    """What makes the database unable to write, in a few words ("disk full", "database
    unreachable"), or None when ``error`` is not such a failure (a bug, one bad request)."""
    if isinstance(error, SATimeoutError):
        return "no free database connection (pool exhausted)"
    if isinstance(error, OSError):  # the SQLite write-lock file
        return "disk full" if error.errno == errno.ENOSPC else f"write lock file: {error}"
    if not isinstance(error, DBAPIError):
        return None
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate:
        return next(
            (cause for prefix, cause in _POSTGRESQL_OUTAGES if sqlstate.startswith(prefix)), None
        )
    message = str(error.orig).lower()
    for needle, cause in _SQLITE_OUTAGES:
        if needle in message:
            return cause
    if isinstance(error, OperationalError):  # PostgreSQL: no connection, so no SQLSTATE
        return "database unreachable"
    return None


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; SQLite URLs pass unchanged."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def describe_url(url: str) -> str:
    """The URL without its password, fit for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is described, not raised
        return "<unparsable database URL>"


class WriteLock:
    """The write lock of a SQLite file, taken ahead of a write (``Database.lock_writes``)."""

    def __init__(self, path: Path | None) -> None:
        self._handle = (
            open(path, "a", opener=open_private)  # noqa: SIM115
            if path is not None
            else None
        )
        if self._handle is not None:
            try:
                fcntl.flock(self._handle, fcntl.LOCK_EX)
            except BaseException:
                self._handle.close()
                raise

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class Database:
    """An engine with the service's settings: WAL and full sync on SQLite, psycopg 3 on
    PostgreSQL, and write transactions that take their locks up front; and the key of the
    tenant secrets stored in it (``secret_box``).

    A SQLite file and its companions (``-wal``, ``-shm``, ``-writelock``) are private to the
    user: created with mode 0600, made so (with a warning) when found open to others.
    ``key_file``: the ``--key-file`` flag (see ``settings.key_source``).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        key_file: str | None = None,
        timeouts: Timeouts = Timeouts(),
    ) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self._lock_path: Path | None = None
        self._key_file = key_file
        self.timeouts = timeouts
        self._secret_box: SecretBox | None = None
        self._secret_box_lock = threading.Lock()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                self._lock_path = Path(parsed.database + "-writelock")
            self.engine = sqlite_engine(self.url, pool_size)
            self._reader = self.engine
        elif self.dialect == "postgresql":
            self.engine = postgresql_engine(self.url, pool_size, timeouts)
            # Every statement of a read sees one snapshot: a report's count, page and
            # coverage agree even while ingest commits.
            self._reader = self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            raise ValueError(
                f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///FILE "
                "or postgresql://USER@HOST:PORT/DBNAME"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def secret_box(self) -> SecretBox:
        """What encrypts and decrypts the tenant secrets stored here: the key is found (or
        created) on first use and checked against the secrets stored (``KeyringError``)."""
        with self._secret_box_lock:
            if self._secret_box is None:
                source = key_source(self.url, self._key_file)
                self._secret_box = load_secret_box(self.engine, source)
            return self._secret_box

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection whose statements share one snapshot until the block ends (a deferred
        transaction on SQLite, REPEATABLE READ on PostgreSQL), for reading only."""
        with self._reader.connect() as conn:
            yield conn

    @contextmanager
    def write(self, *, locked: WriteLock | None = None) -> Iterator[Connection]:
        """One transaction, committed when the block ends and rolled back if it raises.

        On SQLite it begins IMMEDIATE, so writers queue for the lock at the start instead of
        failing at commit; committed means synced to disk (WAL, synchronous=FULL). ``locked``:
        the caller holds the write lock already (``lock_writes``).
        """
        process_lock = nullcontext() if locked is not None else self._process_lock()
        with process_lock, self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        """On a SQLite file, one writer at a time across threads and processes, queued by
        the kernel: SQLite's own busy handler polls with sleeps of up to 100 ms, which under
        contention costs more than the writes themselves."""
        locked = self.lock_writes()
        try:
            yield
        finally:
            locked.release()

    def lock_writes(self) -> WriteLock:
        """Wait for the write lock of a SQLite file (a no-op lock on PostgreSQL); pass it to
        ``write`` or ``run_write`` and release it after. Blocks: call it off the event loop."""
        return WriteLock(self._lock_path)

    def run_write(self, work: Callable[[Connection], T], *, locked: WriteLock | None = None) -> T:
        """Run ``work`` in a write transaction, again when the database asks for a retry
        (a PostgreSQL deadlock or serialization failure, a SQLite lock that timed out)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.write(locked=locked) as conn:
                    return work(conn)
            except ConcurrentInsert:
                if attempt == WRITE_ATTEMPTS:
                    raise
            except DBAPIError as error:
                if attempt == WRITE_ATTEMPTS or not self._is_retryable(error):
                    raise
                log.info("write retried", extra={"attempt": attempt})
                time.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def probe_write(self) -> None:
        """Raise unless the database can commit a write that reaches its files (a full disk
        answers a SELECT but not this): one tenant row rewritten as it is."""
        with self.write() as conn:
            conn.execute(
                text(
                    "UPDATE tenants SET name = name "
                    "WHERE tenant_id = (SELECT MIN(tenant_id) FROM tenants)"
                )
            )

    def dispose(self) -> None:
        self.engine.dispose()

    def _is_retryable(self, error: DBAPIError) -> bool:
        if self.is_sqlite:
            return isinstance(error, OperationalError) and "locked" in str(error.orig)
        return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def upsert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_new(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows whose primary keys are not stored yet; ``ConcurrentInsert`` when another
    transaction stored one of them first (the caller retries, and then finds it stored)."""
    if not rows:
        return
    key = list(table.primary_key.columns)
    inserted = conn.execute(
        upsert(conn, table).on_conflict_do_nothing(index_elements=key).returning(key[0]), rows
    ).all()
    if len(inserted) != len(rows):
        raise ConcurrentInsert(table.name)


class UpdateByKey:
    """``UPDATE table SET <every other column> WHERE <primary key>``, built once, for many
    rows at a time (``executemany``)."""

    def __init__(self, table: Table) -> None:
        self._key = [column.name for column in table.primary_key.columns]
        self._statement = (
            update(table)
            .where(and_(*(table.c[name] == bindparam(f"key_{name}") for name in self._key)))
            .values(
                {
                    column.name: bindparam(column.name)
                    for column in table.columns
                    if column.name not in self._key
                }
            )
        )

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` (whole rows, key included) over the stored rows of the same keys."""
        if not rows:
            return
        conn.execute(
            self._statement,
            [
                {f"key_{name}" if name in self._key else name: value for name, value in row.items()}
                for row in rows
            ],
        )


PING_IDLE_SECONDS = 1.0  # a pooled PostgreSQL connection unused this long is pinged first


def postgresql_engine(url: str, pool_size: int, timeouts: Timeouts, *, session: str = "") -> Engine:
    """An engine whose connections have ``timeouts`` set, and the ``SET`` statements of
    ``session``."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeouts.pool_seconds,
        connect_args={"connect_timeout": max(1, round(timeouts.connect_seconds))},
    )
    settings = (
        f"SET lock_timeout = {int(timeouts.lock_ms)}; "
        f"SET statement_timeout = {int(timeouts.statement_ms)}; "
        f"SET idle_in_transaction_session_timeout = {int(timeouts.idle_in_transaction_ms)}"
        + (f"; {session}" if session else "")
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(settings)
        dbapi_connection.commit()

    # A connection that sat in the pool a while may have been cut (server restart, proxy
    # idle timeout): ping it before use, and take a new one if it does not answer. One in
    # use all the time (the ingest writer's, under load) is not pinged: a round trip saved
    # per transaction. (A cut noticed mid-transaction fails that transaction, as ever.)
    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is not None and time.monotonic() - returned_at < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError(f"pooled connection is gone: {error}") from error

    @event.listens_for(engine, "checkin")
    def _note_return(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    return engine


def sqlite_engine(
    url: str,
    pool_size: int,
    *,
    synchronous: str = "FULL",
    companions: tuple[str, ...] = ("-wal", "-shm", "-writelock"),
    is_always_immediate: bool = False,
) -> Engine:
    """An engine on a SQLite file in WAL mode, the file and its ``companions`` private.
    Transactions begin IMMEDIATE when they write (``Database.write``), or always with
    ``is_always_immediate``; ``synchronous=FULL`` makes a commit durable across a power cut,
    NORMAL across a crash of the process only."""
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        # SQLite creates -wal and -shm with the mode of the database file: create it private.
        touch_private(Path(database))
        tighten(Path(database + suffix) for suffix in ("", *companions))
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 3,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        is_write = is_always_immediate or conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if is_write else "BEGIN")

    return engine
