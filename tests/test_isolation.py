"""Tenant isolation: no endpoint lets one tenant read or change another's data."""

import jwt
import pytest

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import raw_post, report_rows, server_beacon
from vodwatch.client import VodwatchAPIError, VodwatchClient
from vodwatch.store.database import Database

SHARED_ASSET = "8602268011035296205"
SHARED_SESSION = "shared-session-id"


def test_no_endpoint_crosses_tenants(db: Database, http, clock: FakeClock, client: VodwatchClient):
    alice = client
    bob = client_for(http, add_tenant(db, "bob"), clock)
    alice.put_media(SHARED_ASSET, "Alice's video", duration=100)
    alice.send_beacons(
        server_beacon(
            SHARED_SESSION,
            1,
            user_id="李四",
            asset_id=SHARED_ASSET,
            segments=[[0, 50]],
            played_ms=50_000,
            userName="张三",
        )
    )
    alice_before = alice.watch_report(groupBy="visit")
    assert alice_before["data"]["total"] == 1

    # Bob reads: nothing of Alice's, whatever the filter.
    for params in (
        {},
        {"userId": "李四"},
        {"videoInfo": SHARED_ASSET},
        {"videoInfo": "Alice"},
        {"groupBy": "userVideo"},
    ):
        assert bob.watch_report(**params)["data"]["total"] == 0
    with pytest.raises(VodwatchAPIError) as missing:
        bob.get_media(SHARED_ASSET)
    assert missing.value.status == 404

    # Bob writes under the same ids: his own rows, Alice's untouched.
    bob.put_media(SHARED_ASSET, "Bob's video", duration=10)
    bob.send_beacons(
        server_beacon(
            SHARED_SESSION,
            1,
            user_id="李四",
            asset_id=SHARED_ASSET,
            segments=[[0, 10]],
            played_ms=1_000,
            userName="Bob's name",
        )
    )
    bob_token = bob.playback_token("李四", SHARED_ASSET, user_name="Bob's player")
    bob.send_player_beacons(
        {
            "token": bob_token,
            "sessionId": SHARED_SESSION,
            "seq": 2,
            "segments": [[0, 5]],
            "playedMs": 5_000,
        }
    )
    assert alice.watch_report(groupBy="visit") == alice_before
    assert alice.get_media(SHARED_ASSET)["data"]["videoTitle"] == "Alice's video"
    bob_rows = report_rows(bob)
    assert [(r["videoTitle"], r["userName"], r["visitRadio"]) for r in bob_rows] == [
        ("Bob's video", "Bob's player", "100%")
    ]

    # Bob cannot act as Alice: neither by her authkey with his secret, nor by a token he signs.
    impostor = VodwatchClient(
        "http://testserver", alice.authkey, bob.secret, http=http, clock=clock
    )
    with pytest.raises(VodwatchAPIError) as refused:
        impostor.watch_report()
    assert refused.value.result == 40003
    forged = jwt.encode(
        {"iss": alice.authkey, "sub": "李四", "aid": SHARED_ASSET, "exp": int(clock()) + 600},
        bob.secret,
        algorithm="HS256",
    )
    answer = raw_post(
        http,
        {
            "token": forged,
            "sessionId": SHARED_SESSION,
            "seq": 3,
            "segments": [[50, 100]],
            "playedMs": 50_000,
        },
    )
    assert answer.status_code == 401
    assert alice.watch_report(groupBy="visit") == alice_before
