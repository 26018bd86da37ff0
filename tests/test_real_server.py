"""The real server, as users run it: no update lost under concurrency (several processes on
one database), no acknowledged beacon lost across kill -9."""

import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from tests.conftest import add_tenant
from tests.helpers import server_beacon
from vodwatch.client import VodwatchClient
from vodwatch.store.database import Database

pytestmark = pytest.mark.slow


def test_concurrent_beacons_for_one_session_lose_no_update(db: Database, servers):
    tenant = add_tenant(db)
    # Two separate server processes on one database, each with two workers.
    urls = [servers(workers=2).url, servers(workers=2).url]
    session, threads, per_thread = "concurrent-session", 16, 12

    def post(thread: int) -> list[str]:
        client = VodwatchClient(urls[thread % 2], tenant.authkey, tenant.secret)
        statuses = []
        with client:
            for n in range(per_thread):
                seq = thread * per_thread + n + 1
                start = (seq - 1) * 2
                body = server_beacon(
                    session, seq, asset_id="a", segments=[[start, start + 1]], played_ms=seq
                )
                statuses += client.send_beacons(body)["data"]["statuses"]
        return statuses

    with ThreadPoolExecutor(threads) as pool:
        statuses = [s for result in pool.map(post, range(threads)) for s in result]
    total = threads * per_thread
    assert statuses == ["accepted"] * total
    with VodwatchClient(urls[0], tenant.authkey, tenant.secret) as client:
        client.put_media("a", "A", duration=2 * total)
        (row,) = client.watch_report()["data"]["data"]
    assert row["watchMs"] == total * (total + 1) // 2  # every playedMs (1 + 2 + ... + total)
    assert row["coveredMs"] == total * 1000  # every one-second segment
    assert row["visitRadio"] == "50%"


def test_no_acknowledged_beacon_is_lost_across_kill_9(db: Database, servers):
    tenant = add_tenant(db)
    server = servers()
    acknowledged: dict[tuple[str, int], int] = {}
    sent: dict[tuple[str, int], int] = {}
    killed = threading.Event()
    rng = random.Random(7)

    def stream() -> None:
        client = VodwatchClient(server.url, tenant.authkey, tenant.secret, timeout=5)
        seq: defaultdict[str, int] = defaultdict(int)
        while not killed.is_set():
            batch = []
            for _ in range(5):
                session = f"durable-{rng.randrange(8)}"
                seq[session] += 1
                played = rng.randrange(1, 10_000)
                sent[(session, seq[session])] = played
                batch.append(server_beacon(session, seq[session], asset_id="a", played_ms=played))
            try:
                client.send_beacons(batch)
            except httpx2.HTTPError:
                return  # the server is gone mid-request: this batch was not acknowledged
            for beacon in batch:
                acknowledged[(beacon["sessionId"], beacon["seq"])] = beacon["playedMs"]

    writer = threading.Thread(target=stream)
    writer.start()
    while len(acknowledged) < 400:
        threading.Event().wait(0.01)
    server.kill()  # SIGKILL to the whole process group, mid-stream
    killed.set()
    writer.join(timeout=30)
    assert len(sent) > len(acknowledged) >= 400

    server.start()
    with VodwatchClient(server.url, tenant.authkey, tenant.secret) as client:
        resent = client.send_beacons(
            [server_beacon(s, q, asset_id="a", played_ms=p) for (s, q), p in acknowledged.items()]
        )
        assert resent["data"]["accepted"] == 0, "an acknowledged beacon was lost"
        stored_watch = {row["sessionId"]: row["watchMs"] for row in client.iter_report()}
    for session in {s for s, _ in sent}:
        acked = sum(p for (s, _), p in acknowledged.items() if s == session)
        in_flight = sum(
            p for key, p in sent.items() if key[0] == session and key not in acknowledged
        )
        assert acked <= stored_watch.get(session, 0) <= acked + in_flight
