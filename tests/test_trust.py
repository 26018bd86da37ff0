"""What an attacker with a playback token, or with a copy of a signed request, tried (issue 8),
each as it was reported, on both backends: none of it works any more."""

import dataclasses
import json
import time
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import raw_post, report_rows, server_beacon, snapshot, stalling_beacons
from vodwatch.api.app import create_app
from vodwatch.beacon.bounds import CLOCK_SLACK_MS, MAX_PLAYBACK_RATE
from vodwatch.beacon.model import parse_beacons
from vodwatch.client import MAX_TIMESTAMP_LEAD_SECONDS, VodwatchAPIError, VodwatchClient
from vodwatch.ingest.apply import store_requests
from vodwatch.ingest.batch import IngestRequest
from vodwatch.playback_token import PlaybackClaims
from vodwatch.rate_limits import Rate
from vodwatch.settings import ServiceSettings
from vodwatch.store.database import Database
from vodwatch.store.tenants import Tenant

ASSET = "8602268011035296205"


def forged_sessions(token: str) -> list[dict[str, Any]]:
    """17 beacons, each a new session claiming 60 s of a 1000 s video and 15 s of play."""
    return [
        {
            "token": token,
            "sessionId": f"forged-session-{n:03d}",
            "seq": 1,
            "segments": [[60 * n, 60 * n + 60]],
            "playedMs": 15_000,
        }
        for n in range(17)
    ]


def test_seventeen_sessions_in_one_request_do_not_make_100_percent(
    http: TestClient, client: VodwatchClient
):
    client.put_media(ASSET, "Compliance 101", duration=1000)
    token = client.playback_token("mallory", ASSET)
    assert raw_post(http, forged_sessions(token)).status_code == 200
    (row,) = report_rows(client, groupBy="userVideo")
    # What one playhead at 4x covers in the slack: 60 s of 1000.
    assert row["coveredMs"] == MAX_PLAYBACK_RATE * CLOCK_SLACK_MS
    assert row["visitRadio"] == "6%"


def test_a_viewer_cannot_outrun_the_clock_with_sessions_over_time(
    http: TestClient, client: VodwatchClient, clock: FakeClock
):
    """Every 10 s, 17 new sessions each claiming a fresh minute: coverage grows as one
    playhead at 4x would (40 s per 10 s), not 17 times as fast."""
    client.put_media(ASSET, "Compliance 101", duration=1000)
    token = client.playback_token("mallory", ASSET)
    for round_ in range(5):
        beacons = [
            {**beacon, "sessionId": f"r{round_}-{beacon['sessionId']}"}
            for beacon in forged_sessions(token)
        ]
        raw_post(http, beacons)
        clock.advance(10)
    (row,) = report_rows(client, groupBy="userVideo")
    elapsed_ms = 4 * 10_000  # the last request came 40 s after the first
    assert row["coveredMs"] <= MAX_PLAYBACK_RATE * (elapsed_ms + CLOCK_SLACK_MS)
    assert row["visitRadio"] != "100%"


def test_honest_sittings_in_several_sessions_are_not_cut(
    http: TestClient, client: VodwatchClient, clock: FakeClock
):
    """Two sittings a day apart, a rewatch, and two tabs at once: all of it counts."""
    client.put_media(ASSET, "Compliance 101", duration=1000)

    def play(session: str, start: int, seconds: int, heartbeat: int = 10) -> None:
        token = client.playback_token("alice", ASSET)
        raw_post(http, {"token": token, "sessionId": session, "seq": 1})
        for seq, at in enumerate(range(start, start + seconds, heartbeat), start=2):
            clock.advance(heartbeat)
            beacon = {
                "token": token,
                "sessionId": session,
                "seq": seq,
                "segments": [[at, at + heartbeat]],
                "playedMs": heartbeat * 1000,
            }
            assert raw_post(http, beacon).status_code == 200

    play("sitting-one", 0, 300)
    clock.advance(86_400)
    play("sitting-two", 250, 400)  # 250-300 again, then on to 650
    (row,) = report_rows(client, groupBy="userVideo")
    assert (row["coveredMs"], row["watchMs"]) == (650_000, 700_000)


def test_a_request_of_ten_thousand_tiny_segments_costs_the_writer_little(
    db: Database, tenant: Tenant
):
    """The reported stall: one text/plain POST of 10 beacons of one session, each with 1,000
    segments of 1 ms. It is refused (the visit would hold more separate ranges than a visit
    may), and what it costs the writer to find that out is bounded."""
    claims = PlaybackClaims(tenant.authkey, "mallory", None, ASSET, None, None, 2**40)
    payload = stalling_beacons("t")
    assert len(json.dumps(payload)) > 100_000
    now = time.time()
    beacons = parse_beacons(payload, claims_for=lambda _: claims, now_seconds=now)
    request = IngestRequest(tenant.tenant_id, beacons, int(now * 1000), is_trusted=False)
    costs = []
    for _ in range(3):
        started = time.process_time()
        outcomes, _facts = db.run_write(lambda conn: store_requests(conn, [request]))
        costs.append(time.process_time() - started)
        assert "separate ranges" in outcomes[0].message  # type: ignore[union-attr]
    assert min(costs) <= 0.050, costs


def test_a_signed_request_is_accepted_once(
    http: TestClient, client: VodwatchClient, clock: FakeClock
):
    """The reported replay: a signed PUT sent again 2 minutes later, after the owner changed
    the duration, must not revert the catalog; a signed GET cannot be replayed either."""
    path = f"/vod/webapi/media/{ASSET}"
    body = json.dumps({"videoTitle": "Math 101", "duration": 1000}).encode()
    headers = client.signed_headers("PUT", path, [], body)
    assert http.put(path, content=body, headers=headers).status_code == 200
    clock.advance(60)
    client.put_media(ASSET, "Math 101", duration=269)
    clock.advance(60)
    again = http.put(path, content=body, headers=headers)
    assert (again.status_code, again.json()["result"]) == (401, 40004)
    assert "accepted before" in again.json()["msg"]
    assert client.get_media(ASSET)["data"]["duration"] == "269"
    report = "/vod/webapi/statistics/vod/watch"
    headers = client.signed_headers("GET", report, [], b"")
    assert http.get(report, headers=headers).status_code == 200
    assert http.get(report, headers=headers).json()["result"] == 40004


def test_the_client_never_sends_the_same_signature_twice(client: VodwatchClient):
    """Identical requests in the same second: the client signs the later ones with the next
    second, so none of them is taken for a replay."""
    for _ in range(5):
        assert client.watch_report(userId="nobody")["result"] == 0


def test_the_client_waits_for_the_clock_when_every_second_it_may_use_is_spent(
    client: VodwatchClient, http: TestClient, clock: FakeClock
):
    """More identical requests than seconds it may sign ahead (240): the client waits for the
    next second rather than send a copy the service would refuse."""
    started = clock()
    path = "/vod/webapi/statistics/vod/watch"
    signed = [
        client.signed_headers("GET", path, [], b"") for _ in range(MAX_TIMESTAMP_LEAD_SECONDS + 2)
    ]
    assert len({headers["Tk-token"] for headers in signed}) == len(signed)
    assert clock() == started + 1  # waited once, for one second
    assert (
        max(int(headers["Timestamp"]) for headers in signed) <= clock() + MAX_TIMESTAMP_LEAD_SECONDS
    )
    for headers in signed[-3:]:
        assert http.get(path, headers=headers).json()["result"] == 0


def test_replays_are_refused_by_every_process_sharing_the_database(
    db: Database, tenant: Tenant, clock: FakeClock
):
    """Two apps on one database stand for two worker processes or servers."""
    with (
        TestClient(create_app(db, clock=clock)) as first,
        TestClient(create_app(Database(db.url), clock=clock)) as second,
    ):
        signer = client_for(first, tenant, clock)
        path = "/vod/webapi/statistics/vod/watch"
        headers = signer.signed_headers("GET", path, [], b"")
        assert first.get(path, headers=headers).json()["result"] == 0
        assert second.get(path, headers=headers).json()["result"] == 40004


def test_failed_authentication_is_rate_limited(db: Database, tenant: Tenant, clock: FakeClock):
    """The report: 6,000 wrong signatures in 2 s all got 401. Now an address gets 401 for a
    while, then 429 with Retry-After for everything, while other addresses are served; and
    failures with one authkey from many addresses hit that authkey's limit, while its valid
    requests still pass."""
    settings = ServiceSettings(
        failed_auth_per_address=Rate(20, 60.0), failed_auth_per_authkey=Rate(50, 60.0)
    )
    path = "/vod/webapi/statistics/vod/watch"
    app = create_app(db, clock=clock, settings=settings)
    with TestClient(app) as http:
        signer = client_for(http, tenant, clock)

        def from_address(address: str, headers: dict[str, str]) -> Any:
            return TestClient(app, client=(address, 40000)).get(path, headers=headers)

        def forged(address: str) -> Any:
            headers = {
                "Tk-authkey": tenant.authkey,
                "Timestamp": str(int(clock())),
                "Tk-token": "bm90IHRoZSByaWdodCBzaWduYXR1cmUgYXQgYWxsIQ==",
            }
            return from_address(address, headers)

        codes = [forged("203.0.113.7").json()["result"] for _ in range(60)]
        assert codes[:20] == [40003] * 20
        assert set(codes[20:]) == {42900}
        refused = forged("203.0.113.7")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        # The same address is refused even with a valid signature...
        blocked = from_address("203.0.113.7", signer.signed_headers("GET", path, [], b""))
        assert blocked.status_code == 429
        # ... another is served.
        served = from_address("198.51.100.1", signer.signed_headers("GET", path, [], b""))
        assert served.json()["result"] == 0
        # Spread over many addresses, the authkey's limit stops the guessing...
        codes = [forged(f"192.0.2.{n}").json()["result"] for n in range(40)]
        assert codes.count(42900) >= 5  # (the budget refills a little as the test runs)
        # ... but not its owner.
        assert signer.watch_report()["result"] == 0


def test_beacons_per_playback_token_are_rate_limited(
    db: Database, tenant: Tenant, clock: FakeClock
):
    settings = ServiceSettings(beacons_per_token=Rate(100, 60.0))
    with TestClient(create_app(db, clock=clock, settings=settings)) as http:
        client = client_for(http, tenant, clock)
        token = client.playback_token("u1", ASSET, title="A", duration=100)
        burst = [{"token": token, "sessionId": "busy-session", "seq": n} for n in range(1, 101)]
        assert raw_post(http, burst).status_code == 200
        refused = raw_post(http, {"token": token, "sessionId": "busy-session", "seq": 101})
        assert (refused.status_code, refused.json()["result"]) == (429, 42900)
        assert int(refused.headers["Retry-After"]) >= 1
        other = client.playback_token("u2", ASSET)
        assert (
            raw_post(http, {"token": other, "sessionId": "other-session", "seq": 1}).status_code
            == 200
        )


def test_two_authkey_headers_are_refused(http: TestClient, client: VodwatchClient, db: Database):
    other = add_tenant(db, "other")
    path = "/vod/webapi/statistics/vod/watch"
    headers = list(client.signed_headers("GET", path, [], b"").items())
    headers.append(("Tk-authkey", other.authkey))
    answer = http.get(path, headers=headers)
    assert (answer.status_code, answer.json()["result"]) == (401, 40001)
    assert "Tk-authkey" in answer.json()["msg"] or "tk-authkey" in answer.json()["msg"]


def test_a_name_changed_through_another_process_is_not_undone(
    db: Database, tenant: Tenant, clock: FakeClock
):
    """Alice through worker A, Bob through worker B, Alice through A again: "Alice"."""
    with (
        TestClient(create_app(db, clock=clock)) as worker_a,
        TestClient(create_app(Database(db.url), clock=clock)) as worker_b,
    ):
        a, b = client_for(worker_a, tenant, clock), client_for(worker_b, tenant, clock)
        for n, (worker, name) in enumerate([(a, "Alice"), (b, "Bob"), (a, "Alice")]):
            clock.advance(1)
            worker.send_beacons(
                {
                    "userId": "u1",
                    "userName": name,
                    "assetId": ASSET,
                    "sessionId": f"s-{n:06d}",
                    "seq": 1,
                }
            )
        assert {row["userName"] for row in report_rows(a)} == {"Alice"}


def test_asset_ids_that_need_encoding_work_through_the_client(client: VodwatchClient):
    # (Not "%": the in-process test client decodes a path twice, where a real server does not.)
    for asset_id in ("a?b", "a#b", "a b", "数学 101", "a+b"):
        client.put_media(asset_id, "Odd", duration=10)
        assert client.get_media(asset_id)["data"]["assetId"] == asset_id


def test_reads_see_one_snapshot(db: Database):
    with db.read() as conn:
        if db.is_sqlite:
            return  # a deferred transaction: one snapshot from its first read
        level = conn.execute(text("SHOW transaction_isolation")).scalar_one()
        read_only = conn.execute(text("SHOW transaction_read_only")).scalar_one()
    assert (level, read_only) == ("repeatable read", "on")


@pytest.mark.parametrize(
    ("origin", "host", "public_url", "allowed"),
    [
        ("http://testserver", "testserver", "", True),  # the test client speaks http
        ("https://testserver", "testserver", "", False),  # another scheme is another origin
        ("http://evil.example", "testserver", "", False),
        ("http://testserver", "testserver", "https://stats.example.com", False),
        ("https://stats.example.com", "testserver", "https://stats.example.com", True),
        ("null", "testserver", "", False),
    ],
)
def test_same_origin_means_scheme_and_host_or_the_public_url(
    db: Database, tenant: Tenant, clock: FakeClock, origin, host, public_url, allowed
):
    settings = ServiceSettings(public_url=public_url)
    with TestClient(create_app(db, clock=clock, settings=settings)) as http:
        token = client_for(http, tenant, clock).playback_token("u1", ASSET, title="A")
        answer = http.post(
            "/vod/webapi/beacon",
            content=json.dumps({"token": token, "sessionId": "origin-check", "seq": 1}),
            headers={"Content-Type": "text/plain", "Origin": origin, "Host": host},
        )
    assert (answer.status_code == 200) == allowed, answer.json()


def test_a_full_disk_is_a_503_naming_it_in_healthz_too(
    http: TestClient, client: VodwatchClient, db: Database
):
    from sqlalchemy import event

    if not db.is_sqlite:
        pytest.skip("the page limit that stands for a full disk is SQLite's")
    token = client.playback_token("u1", ASSET, title="A", duration=100)
    assert raw_post(http, {"token": token, "sessionId": "before-full", "seq": 1}).status_code == 200

    @event.listens_for(db.engine, "begin")
    def _full(conn: Any) -> None:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")

    big = [[2 * n, 2 * n + 1] for n in range(900)]
    with pytest.raises(VodwatchAPIError) as refused:
        client.send_beacons(
            {"userId": "u2", "assetId": ASSET, "sessionId": "full-0001", "seq": 1, "segments": big}
        )
    assert (refused.value.status, refused.value.result) == (503, 50300)
    assert "disk full" in refused.value.message
    health = http.get("/healthz")
    assert health.status_code == 503
    assert "disk full" in health.json()["msg"]
    assert int(health.headers["Retry-After"]) >= 1


def test_a_signed_beacon_batch_is_stored_once(
    http: TestClient, client: VodwatchClient, db: Database
):
    """A server's batch sent again byte for byte: 40004, and nothing changes."""
    body = json.dumps(
        [
            server_beacon(
                "replayed-batch-session", 1, asset_id=ASSET, segments=[[0, 5]], played_ms=5000
            )
        ]
    ).encode()
    headers = client.signed_headers("POST", "/vod/webapi/beacon", [], body)
    first = http.post("/vod/webapi/beacon", content=body, headers=headers)
    assert first.json()["data"]["statuses"] == ["accepted"]
    before = snapshot(db)
    again = http.post("/vod/webapi/beacon", content=body, headers=headers)
    assert (again.status_code, again.json()["result"]) == (401, 40004)
    assert snapshot(db) == before


def test_two_copies_in_one_group_are_one_request(db: Database, tenant: Tenant):
    """Copies of one signed batch that reach the writer together: one is stored, the other
    refused, in the same transaction."""
    import asyncio

    from tests.test_writer import beacon_request, run, stored_beacons
    from vodwatch.errors import ReplayedRequest
    from vodwatch.ingest.writer import IngestWriter
    from vodwatch.signing import Signature

    signature = Signature.of(tenant.tenant_id, int(time.time()), "c2lnbmVkIG9uY2U=")
    request = beacon_request(tenant.tenant_id, "copied-session", 1)
    copies = [dataclasses.replace(request, signature=signature) for _ in range(3)]
    writer = IngestWriter(db)

    async def send() -> list[Any]:
        return await asyncio.gather(*map(writer.submit, copies), return_exceptions=True)

    try:
        answers = run(send())
    finally:
        writer.close()
    refused = [answer for answer in answers if isinstance(answer, ReplayedRequest)]
    assert len(refused) == 2
    assert refused[0] is not refused[1]  # each raised in its own request, with its own traceback
    assert stored_beacons(db) == 1
