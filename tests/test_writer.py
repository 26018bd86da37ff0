"""The group-commit writer: concurrent requests share transactions and each gets its own
answer; a request the database refuses fails alone; a writer that cannot take the write lock
answers with an error instead of leaving requests waiting, and then recovers."""

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from tests.conftest import add_tenant
from vodwatch.beacon.model import Beacon, Viewing
from vodwatch.errors import InternalError, InvalidParameter
from vodwatch.ingest.batch import IngestRequest, IngestResult
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


def beacon_request(tenant_id: int, session: str, seq: int, user: str = "u1") -> IngestRequest:
    beacon = Beacon(
        session_id=session,
        seq=seq,
        viewing=Viewing(user_id=user, user_name=None, asset_id="a1"),
        segments=((0, 1000),),
        played_ms=1000,
    )
    return IngestRequest(tenant_id, [beacon], 1_764_000_000_000, True)


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
    with db.read() as conn:
        assert conn.execute(select(func.sum(visits.c.beacon_count))).scalar_one() == 200


def test_a_failing_write_lock_answers_an_error_and_the_writer_recovers(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    # Only a SQLite file has a write lock taken ahead of the transaction.
    db = Database(f"sqlite:///{tmp_path / 'vodwatch.db'}")
    upgrade(db)
    tenant = add_tenant(db)
    writer = IngestWriter(db)
    working = db.lock_writes

    def broken() -> None:
        raise OSError("no space left on device")

    async def send(session: str) -> IngestResult:
        return await writer.submit(beacon_request(tenant.tenant_id, session, 1))

    try:
        monkeypatch.setattr(db, "lock_writes", broken)
        with pytest.raises(InternalError):
            run(send("session-broken"))
        monkeypatch.setattr(db, "lock_writes", working)
        assert run(send("session-after")).statuses == ["accepted"]
    finally:
        writer.close()
        db.dispose()
