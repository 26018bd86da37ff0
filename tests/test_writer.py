"""The group-commit writer: concurrent requests share transactions and each gets its own
answer; whatever goes wrong (an exception in a group, a full queue, a database that is gone or
full), no request waits forever, and the writer goes on once the cause is gone."""

import asyncio
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, func, select

from tests.conftest import add_tenant
from vodwatch.beacon.model import Beacon, Viewing
from vodwatch.errors import InternalError, InvalidParameter, Overloaded, Unavailable
from vodwatch.ingest import writer as writer_module
from vodwatch.ingest.apply import store_requests
from vodwatch.ingest.batch import IngestRequest, IngestResult
from vodwatch.ingest.health import WriteHealth
from vodwatch.ingest.writer import IngestWriter
from vodwatch.store.database import Database
from vodwatch.store.migrate import upgrade
from vodwatch.store.schema import visits

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: another test's event loop (Playwright's, in the
    browser tests) may be running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def beacon_request(
    tenant_id: int, session: str, seq: int, user: str = "u1", ranges: int = 1
) -> IngestRequest:
    beacon = Beacon(
        session_id=session,
        seq=seq,
        viewing=Viewing(user_id=user, user_name=None, asset_id="a1"),
        segments=tuple((2000 * n, 2000 * n + 1000) for n in range(ranges)),
        played_ms=1000,
    )
    return IngestRequest(tenant_id, [beacon], 1_764_000_000_000, True)


def stored_beacons(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(visits.c.beacon_count), 0))).one()[0])


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_requests_share_transactions_and_each_gets_its_answer(db: Database):
    tenant = add_tenant(db)
    requests = [
        beacon_request(tenant.tenant_id, f"session-{n % 10:03d}", n // 10 + 1) for n in range(200)
    ]
    # One refused request among them: its session belongs to another viewer.
    requests.insert(100, beacon_request(tenant.tenant_id, "session-000", 99, user="intruder"))
    writer = IngestWriter(db)

    async def send_all() -> list[IngestResult | BaseException]:
        return await asyncio.gather(*map(writer.submit, requests), return_exceptions=True)

    try:
        answers = run(send_all())
    finally:
        writer.close()
    assert isinstance(answers.pop(100), InvalidParameter)
    assert all(isinstance(answer, IngestResult) for answer in answers)
    assert [answer.statuses for answer in answers] == [["accepted"]] * 200  # type: ignore[union-attr]
    assert writer.transactions < 200  # they shared transactions
    assert stored_beacons(db) == 200


def test_what_one_loop_iteration_submits_is_one_group_up_to_its_bound(db: Database):
    """Handed over one by one, the writer thread would start a group with the first request
    while the event loop was still submitting the others."""
    tenant = add_tenant(db)
    requests = [beacon_request(tenant.tenant_id, f"session-{n:03d}", 1) for n in range(120)]
    writer = IngestWriter(db, max_group_beacons=50)

    async def send(request: IngestRequest) -> IngestResult:
        busy_until = time.perf_counter() + 0.001  # as parsing a request keeps the loop busy
        while time.perf_counter() < busy_until:
            pass
        return await writer.submit(request)

    async def send_all() -> list[IngestResult]:
        return await asyncio.gather(*map(send, requests))

    try:
        answers = run(send_all())
        assert [answer.statuses for answer in answers] == [["accepted"]] * 120
        assert writer.transactions == 3  # 50, 50 and the 20 carried over
        writer._max_group_beacons = 5_000
        assert len(run(send_all())) == 120  # all duplicates now, in one group
        assert writer.transactions == 4
    finally:
        writer.close()
    assert stored_beacons(db) == 120


def test_an_exception_in_a_group_fails_only_its_culprit_and_the_writer_goes_on(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    """A request the database cannot take (here: a bug that raises for one session) is found by
    halving its group; the others of the group are stored."""
    tenant = add_tenant(db)
    store = store_requests

    def store_unless_poisoned(conn: Any, requests: Any, *args: Any) -> Any:
        if any(r.beacons[0].session_id == "session-poison" for r in requests):
            raise RuntimeError("a bug")
        return store(conn, requests, *args)

    monkeypatch.setattr(writer_module, "store_requests", store_unless_poisoned)
    writer = IngestWriter(db)
    requests = [beacon_request(tenant.tenant_id, f"session-{n:04d}", 1) for n in range(40)]
    requests.insert(17, beacon_request(tenant.tenant_id, "session-poison", 1))

    async def send_all() -> list[IngestResult | BaseException]:
        return await asyncio.gather(*map(writer.submit, requests), return_exceptions=True)

    try:
        answers = run(send_all())
        assert isinstance(answers.pop(17), InternalError)
        assert all(isinstance(answer, IngestResult) for answer in answers)
        assert stored_beacons(db) == 40
        # The writer thread is alive and well.
        assert run(writer.submit(beacon_request(tenant.tenant_id, "session-later", 1)))
    finally:
        writer.close()


def test_an_exception_outside_the_store_does_not_kill_the_writer(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    tenant = add_tenant(db)
    writer = IngestWriter(db)
    real_store = writer._store
    calls = []

    def broken_once(group: Any, locked: Any) -> None:
        calls.append(len(group))
        if len(calls) == 1:
            raise KeyError("something no one expected")
        real_store(group, locked)

    monkeypatch.setattr(writer, "_store", broken_once)
    try:
        with pytest.raises(InternalError):
            run(writer.submit(beacon_request(tenant.tenant_id, "session-first", 1)))
        answer = run(writer.submit(beacon_request(tenant.tenant_id, "session-second", 1)))
        assert answer.statuses == ["accepted"]
    finally:
        writer.close()


def test_a_full_queue_answers_at_once_and_a_deadline_ends_every_wait(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    """While the writer is stuck, requests past the queue's bound are refused at once (503,
    42900), queued ones are answered 503 at their deadline and never stored afterwards."""
    tenant = add_tenant(db)
    stuck = threading.Event()
    store = store_requests

    def slow_store(conn: Any, requests: Any, *args: Any) -> Any:
        stuck.wait(30)
        return store(conn, requests, *args)

    monkeypatch.setattr(writer_module, "store_requests", slow_store)
    writer = IngestWriter(db, max_queued_beacons=5, deadline_seconds=0.5)

    async def scenario() -> list[IngestResult | BaseException]:
        # The first is taken by the writer (and stuck); five wait in the queue; the rest
        # find it full.
        first = asyncio.ensure_future(writer.submit(beacon_request(tenant.tenant_id, "s-0000", 1)))
        await asyncio.sleep(0.2)
        rest = [
            asyncio.ensure_future(writer.submit(beacon_request(tenant.tenant_id, f"s-{n:04d}", 1)))
            for n in range(1, 11)
        ]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        answers = run(scenario())
        overloaded = [a for a in answers if isinstance(a, Overloaded)]
        timed_out = [a for a in answers if isinstance(a, Unavailable)]
        assert len(overloaded) == 5
        assert len(timed_out) == 6
        assert all(error.retry_after == 1 for error in overloaded + timed_out)
        stuck.set()
        # The writer is free again: the queued requests were dropped, the stuck one was
        # in its transaction when its client gave up (it may be stored: sending it again is
        # a harmless duplicate).
        answer = run(writer.submit(beacon_request(tenant.tenant_id, "s-0099", 1)))
        assert answer.statuses == ["accepted"]
        assert stored_beacons(db) <= 2
    finally:
        stuck.set()
        writer.close()


def test_a_full_disk_fails_fast_is_told_once_and_recovers(
    tmp_path, caplog: pytest.LogCaptureFixture
):
    """SQLite says "database or disk is full" (here: no page may be added, and each visit needs
    new ones): the group is refused with 503 naming the cause, the requests after it are
    refused without a write being tried, the log says so once, and writes go on once there is
    room."""
    db = Database(f"sqlite:///{tmp_path / 'vodwatch.db'}")
    upgrade(db)
    tenant = add_tenant(db)
    limit = {"pages": 0}

    @event.listens_for(db.engine, "begin")
    def _cap(conn: Any) -> None:
        if limit["pages"]:
            page_count = conn.exec_driver_sql("PRAGMA page_count").scalar()
            conn.exec_driver_sql(f"PRAGMA max_page_count = {page_count}")
        else:
            conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")

    clock = ManualClock()
    writer = IngestWriter(db, health=WriteHealth(clock=clock))
    attempts = []
    real_run_write = db.run_write

    def counted_run_write(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        return real_run_write(*args, **kwargs)

    db.run_write = counted_run_write  # type: ignore[method-assign]

    async def send_many(prefix: str, count: int) -> list[IngestResult | BaseException]:
        return await asyncio.gather(
            *(
                writer.submit(beacon_request(tenant.tenant_id, f"{prefix}-{n:04d}", 1, ranges=500))
                for n in range(count)
            ),
            return_exceptions=True,
        )

    try:
        limit["pages"] = 1
        caplog.set_level("INFO", logger="vodwatch.storage")
        answers = run(send_many("full", 50))
        assert all(isinstance(answer, Unavailable) for answer in answers), answers
        assert all("disk full" in answer.message for answer in answers)  # type: ignore[union-attr]
        assert len(attempts) <= 2  # not one attempt per request
        more = run(send_many("still", 20))
        assert all(isinstance(answer, Unavailable) for answer in more)
        assert len(attempts) <= 2  # refused without trying
        failing = [r for r in caplog.records if "writes failing" in r.getMessage()]
        assert len(failing) == 1
        limit["pages"] = 0
        clock.now += 60
        answers = run(send_many("room", 20))
        assert all(isinstance(answer, IngestResult) for answer in answers), answers
        assert any("writes recovered" in r.getMessage() for r in caplog.records)
        assert stored_beacons(db) == 20
    finally:
        writer.close()
        db.dispose()


@pytest.mark.postgres
def test_a_database_that_is_gone_fails_fast(tenantless_gone_url: str):
    """PostgreSQL unreachable: every request of the group gets 503 at once, in one attempt."""
    db = Database(tenantless_gone_url)
    writer = IngestWriter(db, health=WriteHealth(clock=ManualClock()))

    async def send_many() -> list[IngestResult | BaseException]:
        return await asyncio.gather(
            *(writer.submit(beacon_request(1, f"gone-{n:04d}", 1)) for n in range(30)),
            return_exceptions=True,
        )

    try:
        answers = run(send_many())
        assert all(isinstance(answer, Unavailable) for answer in answers), answers
        assert all("unreachable" in answer.message for answer in answers)  # type: ignore[union-attr]
    finally:
        writer.close()
        db.dispose()


@pytest.fixture
def tenantless_gone_url() -> str:
    """A PostgreSQL URL where nothing listens."""
    from tests.conftest import POSTGRES_URL
    from tests.servers import free_port

    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need VODWATCH_TEST_POSTGRES_URL")
    return f"postgresql://postgres@127.0.0.1:{free_port()}/test"
