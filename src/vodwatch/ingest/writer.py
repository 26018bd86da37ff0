"""Group commit: each process stores the ingest requests that wait together, in one
transaction, and answers each when that transaction has committed.

Under load many requests share a commit (one fsync, one lock acquisition) instead of queueing
for the database one by one; with a single request waiting, it is stored alone at once. A
request is answered only after its transaction committed: an acknowledged beacon is durable.

All database work happens in one writer thread per process, never on the event loop. What the
writer guarantees, whatever the database does:
- the queue is bounded: past ``max_queued_beacons`` a request is refused at once (503, 42900,
  ``Retry-After``) instead of waiting behind a backlog;
- a request waits at most ``deadline_seconds`` for its answer (503, 50300); one that is still
  queued by then is dropped, never stored later;
- an exception never kills the writer: the group it hit is answered with an error, and the
  writer goes on with the next;
- when the database cannot write at all (down, disk full), the group is answered 503 at once and
  the next requests for a short, growing while too (``WriteHealth``), without trying: no request
  is tried alone after its group failed for that reason;
- a group the database refuses for another reason (one request it cannot take) is split in
  halves until the request at fault is found; the others are stored.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass, field

from vodwatch.errors import InternalError, Overloaded, Unavailable, VodwatchError
from vodwatch.ingest.apply import KnownFacts, store_requests
from vodwatch.ingest.batch import IngestRequest, IngestResult, Outcome
from vodwatch.ingest.health import WriteHealth
from vodwatch.store.database import Database, describe_outage

log = logging.getLogger(__name__)
MAX_GROUP_BEACONS = 5_000
MAX_QUEUED_BEACONS = 50_000
DEADLINE_SECONDS = 10.0


@dataclass(slots=True)
class _Pending:
    request: IngestRequest
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[Outcome]"
    is_abandoned: bool = field(default=False)  # its deadline passed while it was queued
    is_queued: bool = field(default=True)  # counted in the queue's bound


class IngestWriter:
    def __init__(
        self,
        db: Database,
        *,
        health: WriteHealth | None = None,
        max_group_beacons: int = MAX_GROUP_BEACONS,
        max_queued_beacons: int = MAX_QUEUED_BEACONS,
        deadline_seconds: float = DEADLINE_SECONDS,
    ) -> None:
        self._db = db
        self.health = health or WriteHealth()
        self._max_group_beacons = max_group_beacons
        self._max_queued_beacons = max_queued_beacons
        self._deadline = deadline_seconds
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._queued_beacons = 0
        self._count_lock = threading.Lock()
        self._known = KnownFacts()
        self.transactions = 0  # committed groups, for tests and curious operators
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def submit(self, request: IngestRequest) -> IngestResult:
        """Store one request; its result once durable, or its error (nothing stored)."""
        retry_after = self.health.retry_after()
        if retry_after is not None:
            incident = self.health.incident
            cause = incident.cause if incident is not None else "database unavailable"
            raise Unavailable(f"cannot store now: {cause}; try again", retry_after=retry_after)
        size = len(request.beacons)
        with self._count_lock:
            if self._queued_beacons + size > self._max_queued_beacons:
                raise Overloaded(
                    f"ingest is busy: {self._queued_beacons} beacons are waiting to be stored; "
                    "try again shortly",
                    retry_after=1,
                )
            self._queued_beacons += size
        loop = asyncio.get_running_loop()
        pending = _Pending(request, loop, loop.create_future())
        self._ensure_started()
        self._queue.put(pending)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(pending.future), self._deadline)
        except TimeoutError:
            pending.is_abandoned = True
            self._release(pending)
            raise Unavailable(
                f"storage did not answer within {self._deadline:g} s; the beacons may not be "
                "stored: sending them again is safe",
                retry_after=1,
            ) from None
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
            group, is_stopping = self._take_group()
            if group:
                try:
                    self._store(group)
                except BaseException as error:
                    log.error("ingest writer: unexpected error; its group failed", exc_info=error)
                    for pending in group:
                        _answer(pending, InternalError("internal error; the log has details"))
            if is_stopping:
                return

    def _take_group(self) -> tuple[list[_Pending], bool]:
        """The next group (waiting for its first request), and whether to stop after it."""
        group: list[_Pending] = []
        size = 0
        first = self._queue.get()
        candidates = [first]
        while True:
            for pending in candidates:
                if pending is None:
                    return group, True
                self._release(pending)
                if pending.is_abandoned or pending.future.done():
                    continue  # its client was answered already: never store it
                group.append(pending)
                size += len(pending.request.beacons)
            if size >= self._max_group_beacons:
                return group, False
            try:
                candidates = [self._queue.get_nowait()]
            except queue.Empty:
                return group, False

    def _release(self, pending: _Pending) -> None:
        """``pending`` no longer waits in the queue (taken, or given up): once."""
        with self._count_lock:
            if pending.is_queued:
                pending.is_queued = False
                self._queued_beacons -= len(pending.request.beacons)

    def _store(self, group: list[_Pending]) -> None:
        retry_after = self.health.retry_after()
        if retry_after is not None:
            self._refuse(group, retry_after)
            return
        requests = [pending.request for pending in group]
        try:
            outcomes, facts = self._db.run_write(
                lambda conn: store_requests(conn, requests, self._known)
            )
        except Exception as error:
            cause = describe_outage(error)
            if cause is not None:
                self._refuse(group, self.health.failed(cause, len(group)))
            elif len(group) > 1:
                # One request the database refused: halves, until it is alone.
                middle = len(group) // 2
                self._store(group[:middle])
                self._store(group[middle:])
            else:
                log.error("ingest failed", exc_info=error)
                _answer(group[0], InternalError("internal error; the log has details"))
            return
        self.transactions += 1
        self.health.succeeded()
        self._known.remember(facts)
        for pending, outcome in zip(group, outcomes, strict=True):
            _answer(pending, outcome)

    def _refuse(self, group: list[_Pending], retry_after: int) -> None:
        incident = self.health.incident
        cause = incident.cause if incident is not None else "database unavailable"
        for pending in group:
            _answer(
                pending,
                Unavailable(f"cannot store now: {cause}; try again", retry_after=retry_after),
            )


def _answer(pending: _Pending, outcome: Outcome) -> None:
    # RuntimeError: the event loop is gone (shutdown), nobody waits for the answer.
    with contextlib.suppress(RuntimeError):
        pending.loop.call_soon_threadsafe(_settle, pending.future, outcome)


def _settle(future: "asyncio.Future[Outcome]", outcome: Outcome) -> None:
    if not future.done():  # the client may have gone away
        future.set_result(outcome)
