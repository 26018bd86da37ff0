"""Group commit: one writer thread per process stores the ingest requests that wait for it
together, in one transaction, and answers each when that transaction has committed.

Under load many requests share a commit (one fsync, one lock acquisition) instead of queueing
for the database one by one; with a single request waiting, it is stored alone at once. A
request is answered only after its transaction committed: an acknowledged beacon is durable.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from vodwatch.errors import InternalError, Unavailable, VodwatchError
from vodwatch.ingest.apply import KnownFacts, store_requests
from vodwatch.ingest.batch import IngestRequest, IngestResult, Outcome
from vodwatch.store.database import Database

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
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def submit(self, request: IngestRequest) -> IngestResult:
        """Store one request; its result once durable, or its error (nothing stored)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._ensure_started()
        self._queue.put(_Pending(request, loop, future))
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

    def _store(self, group: list[_Pending]) -> None:
        requests = [pending.request for pending in group]
        try:
            outcomes, facts = self._db.run_write(
                lambda conn: store_requests(conn, requests, self._known)
            )
        except Exception as error:  # noqa: BLE001 - every request must get an answer
            if len(group) > 1:
                # Find the request the database refused: each alone, the others still stored.
                for pending in group:
                    self._store([pending])
                return
            outcomes = [_failure(error)]
        else:
            self._known.remember(facts)
        for pending, outcome in zip(group, outcomes, strict=True):
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
