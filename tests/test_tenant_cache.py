"""The cache of tenants: a tenant in use never drops out of it (so a busy worker does not send
every request in flight to the database at once), a change is still seen within its lifetime,
and lookups that miss together read the database once."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection

from tests.conftest import add_tenant
from vodwatch.api.auth import TENANT_CACHE_SECONDS, TenantDirectory, TenantNotCached
from vodwatch.store.database import Database
from vodwatch.store.tenants import set_disabled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountedReads:
    """Counts the directory's reads of the database; each read first waits ``delay``."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch, delay: float = 0) -> None:
        self.count = 0
        self.fail_next = 0
        real_read = db.read
        lock = threading.Lock()

        @contextmanager
        def read() -> Iterator[Connection]:
            with lock:
                self.count += 1
                fail = self.fail_next > 0
                self.fail_next -= fail
            time.sleep(delay)
            if fail:
                raise ConnectionError("database unreachable (a test)")
            with real_read() as conn:
                yield conn

        monkeypatch.setattr(db, "read", read)


def wait_for_refreshes() -> None:
    deadline = time.monotonic() + 10
    while any(t.name == "vodwatch-tenant-refresh" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a refresh did not end"
        time.sleep(0.01)


def test_a_tenant_in_use_is_read_again_ahead_of_time(db: Database, monkeypatch: pytest.MonkeyPatch):
    tenant = add_tenant(db)
    clock = Clock()
    directory = TenantDirectory(db, clock=clock)
    reads = CountedReads(db, monkeypatch)
    with pytest.raises(TenantNotCached):
        directory.find(tenant.authkey, cached_only=True)
    assert directory.find(tenant.authkey) == tenant
    assert reads.count == 1
    # Younger than half its lifetime: used as it is.
    clock.now += TENANT_CACHE_SECONDS / 2 - 0.1
    assert directory.find(tenant.authkey, cached_only=True) == tenant
    wait_for_refreshes()
    assert reads.count == 1
    # Older: still used, and read again in the background, once however many ask meanwhile.
    clock.now += 0.2
    for _ in range(20):
        assert directory.find(tenant.authkey, cached_only=True) == tenant
    wait_for_refreshes()
    assert reads.count == 2
    # So it is still there past the lifetime of the first read.
    clock.now += TENANT_CACHE_SECONDS / 2 + 1
    assert directory.find(tenant.authkey, cached_only=True) == tenant
    wait_for_refreshes()


def test_a_change_is_seen_within_the_lifetime_of_an_entry(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    tenant = add_tenant(db)
    clock = Clock()
    directory = TenantDirectory(db, clock=clock)
    assert directory.find(tenant.authkey) == tenant
    with db.write() as conn:
        set_disabled(conn, tenant.authkey, int(time.time() * 1000), is_disabled=True)
    clock.now += TENANT_CACHE_SECONDS - 0.1
    assert directory.find(tenant.authkey, cached_only=True) == tenant  # not yet
    wait_for_refreshes()  # the read this started is as old as its start: it saw the change
    assert directory.find(tenant.authkey, cached_only=True) is None
    clock.now += 0.2
    # An entry past its lifetime is never used, even on the event loop.
    directory = TenantDirectory(db, clock=clock)
    assert directory.find(tenant.authkey) is None
    clock.now += TENANT_CACHE_SECONDS
    with pytest.raises(TenantNotCached):
        directory.find(tenant.authkey, cached_only=True)


def test_lookups_that_miss_together_read_once(db: Database, monkeypatch: pytest.MonkeyPatch):
    tenant = add_tenant(db)
    directory = TenantDirectory(db)
    reads = CountedReads(db, monkeypatch, delay=0.3)
    start = threading.Barrier(20)

    def look_up() -> object:
        start.wait()
        return directory.find(tenant.authkey)

    with ThreadPoolExecutor(20) as pool:
        found = list(pool.map(lambda _: look_up(), range(20)))
    assert found == [tenant] * 20
    assert reads.count == 1


def test_when_the_shared_read_fails_a_waiting_lookup_reads_itself(
    db: Database, monkeypatch: pytest.MonkeyPatch
):
    tenant = add_tenant(db)
    directory = TenantDirectory(db)
    reads = CountedReads(db, monkeypatch, delay=0.3)
    reads.fail_next = 1
    start = threading.Barrier(5)

    def look_up() -> object:
        start.wait()
        try:
            return directory.find(tenant.authkey)
        except ConnectionError as error:
            return error

    with ThreadPoolExecutor(5) as pool:
        found = list(pool.map(lambda _: look_up(), range(5)))
    assert sum(isinstance(answer, ConnectionError) for answer in found) == 1
    assert found.count(tenant) == 4
    assert reads.count == 2
