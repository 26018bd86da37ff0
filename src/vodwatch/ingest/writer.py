"""Group commit: each process stores the ingest requests that wait together, in one
transaction, and answers each when that transaction has committed.

Under load many requests share a commit (one fsync, one lock acquisition) instead of queueing
for the database one by one; with a single request waiting, it is stored alone at once. A
request is answered only after its transaction committed: an acknowledged beacon is durable.

Where the group is stored depends on what the database makes it wait for:
- PostgreSQL: a writer thread, so the event loop goes on serving while the thread waits for
  the server's round trips;
- SQLite: the event loop itself, once a helper thread has waited for the file's write lock.
  The store is all CPU; in a second thread it would fight the event loop for the GIL while
  holding the lock that every other worker process is waiting for.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from vodwatch.errors import InternalError, Unavailable, VodwatchError
from vodwatch.ingest.apply import KnownFacts, store_requests
from vodwatch.ingest.batch import IngestRequest, IngestResult, Outcome
from vodwatch.store.database import Database, WriteLock

log = logging.getLogger(__name__)
MAX_GROUP_BEACONS = 5_000


@dataclass(frozen=True, slots=True)
class _Pending:
    request: IngestRequest
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[Outcome]"


class IngestWriter:
    def __init__(self, db: Database, max_group_beacons: int = MAX_GROUP_BEACONS) -> None:
        self._db = db
        self._max_group_beacons = max_group_beacons
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._known = KnownFacts()
        self.transactions = 0  # committed groups, for tests and curious operators
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # SQLite: requests waiting for the event loop's next group, and who waits for the lock.
        self._on_loop = db.is_sqlite and not __import__("os").environ.get("VW_THREAD")
        self._waiting: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock_waiter = ThreadPoolExecutor(1, thread_name_prefix="vodwatch-write-lock")

    async def submit(self, request: IngestRequest) -> IngestResult:
        """Store one request; its result once durable, or its error (nothing stored)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        pending = _Pending(request, loop, future)
        if self._on_loop:
            self._waiting.append(pending)
            if self._flusher is None:
                self._flusher = loop.create_task(self._flush_on_loop())
        else:
            self._ensure_started()
            self._queue.put(pending)
        outcome = await future
        if isinstance(outcome, VodwatchError):
            raise outcome
        return outcome

    def close(self) -> None:
        """Store what is queued, then stop the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        self._lock_waiter.shutdown(wait=True)

    async def _flush_on_loop(self) -> None:
        """Until no request waits: take the write lock (waiting in a thread), then store what
        waits by then as one group, here on the event loop."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                try:
                    locked = await loop.run_in_executor(self._lock_waiter, self._db.lock_writes)
                except Exception as error:
                    log.error("ingest failed: cannot take the write lock", exc_info=error)
                    failed, self._waiting[:] = list(self._waiting), []
                    for pending in failed:
                        _answer(pending, InternalError("cannot write; the service log says why"))
                    return
                try:
                    group = _take_group(self._waiting, self._max_group_beacons)
                    self._store(group, locked)
                finally:
                    locked.release()
        finally:
            self._flusher = None

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="vodwatch-ingest-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, size = [first], len(first.request.beacons)
            while size < self._max_group_beacons:
                try:
                    pending = self._queue.get_nowait()
                except queue.Empty:
                    break
                if pending is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(pending)
                size += len(pending.request.beacons)
            self._store(group)

    def _store(self, group: list[_Pending], locked: WriteLock | None = None) -> None:
        requests = [pending.request for pending in group]
        try:
            outcomes, facts = self._db.run_write(
                lambda conn: store_requests(conn, requests, self._known), locked=locked
            )
        except Exception as error:  # noqa: BLE001 - every request must get an answer
            if len(group) > 1:
                # Find the request the database refused: each alone, the others still stored.
                for pending in group:
                    self._store([pending], locked)
                return
            outcomes = [_failure(error)]
        else:
            self.transactions += 1
            self._known.remember(facts)
        for pending, outcome in zip(group, outcomes, strict=True):
            _answer(pending, outcome)


def _take_group(waiting: list[_Pending], max_beacons: int) -> list[_Pending]:
    """The first requests of ``waiting`` (removed from it), up to ``max_beacons`` beacons."""
    count, size = 0, 0
    while count < len(waiting) and (count == 0 or size < max_beacons):
        size += len(waiting[count].request.beacons)
        count += 1
    group = waiting[:count]
    del waiting[:count]
    return group


def _answer(pending: _Pending, outcome: Outcome) -> None:
    try:
        is_same_loop = asyncio.get_running_loop() is pending.loop
    except RuntimeError:  # no loop in this thread: the writer thread
        is_same_loop = False
    if is_same_loop:
        _settle(pending.future, outcome)
        return
    # RuntimeError: the event loop is gone (shutdown), nobody waits for the answer.
    with contextlib.suppress(RuntimeError):
        pending.loop.call_soon_threadsafe(_settle, pending.future, outcome)


def _failure(error: Exception) -> VodwatchError:
    if isinstance(error, VodwatchError):
        return error
    if isinstance(error, OperationalError):
        log.warning("ingest failed: database unavailable: %s", type(error).__name__)
        return Unavailable("database unavailable; try again shortly")
    log.error("ingest failed", exc_info=error)
    return InternalError("internal error; the service log has the details")


def _settle(future: "asyncio.Future[Outcome]", outcome: Outcome) -> None:
    if not future.done():  # the client may have gone away
        future.set_result(outcome)
