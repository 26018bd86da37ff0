"""Completion rules (SPEC §10): tenant defaults and per-video overrides, what a beacon says about
attention, counted coverage in the analytics, attempts, and the learner's own progress."""

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.conftest import FakeClock
from tests.helpers import new_session_id, run, server_beacon
from tests.test_attention import MAX_RATES, ModelBeacon, model_counted
from vodwatch.client import VodwatchAPIError, VodwatchClient
from vodwatch.playback_token import mint_playback_token
from vodwatch.store.database import Database
from vodwatch.store.schema import completion_events, visits
from vodwatch.store.tenants import Tenant

VIDEOS = "/vod/webapi/statistics/vod/videos"
VIEWER = "/vod/webapi/statistics/vod/viewer"


def viewer(client: VodwatchClient, user: str, asset: str) -> dict[str, Any]:
    data: dict[str, Any] = client.call("GET", VIEWER, params={"userId": user, "assetId": asset})[
        "data"
    ]
    return data


def refused(call: Any) -> tuple[int, int, str]:
    with pytest.raises(VodwatchAPIError) as error:
        call()
    return error.value.status, error.value.result, error.value.message


def test_tenant_set_rules_cli(database_url: str, tenant: Tenant) -> None:
    def listed() -> dict[str, Any]:
        (row,) = json.loads(run("tenant", "list", "--json", "--database-url", database_url))
        return {k: row[k] for k in ("completionThreshold", "maxRate", "visibleOnly")}

    out = run(
        "tenant", "set-rules", tenant.authkey, "--threshold", "80", "--max-rate", "2",
        "--visible-only", "--database-url", database_url,
    )  # fmt: skip
    assert "completion threshold 80%, max rate 2x, visible only yes" in out
    assert listed() == {"completionThreshold": 80, "maxRate": 2.0, "visibleOnly": True}
    run("tenant", "set-rules", tenant.authkey, "--no-max-rate", "--database-url", database_url)
    assert listed() == {"completionThreshold": 80, "maxRate": None, "visibleOnly": True}
    for bad in (["--max-rate", "0.5"], ["--max-rate", "17"], ["--threshold", "0"],
                ["--max-rate", "2", "--no-max-rate"]):  # fmt: skip
        run("tenant", "set-rules", tenant.authkey, *bad, "--database-url", database_url, ok=False)
    assert listed() == {"completionThreshold": 80, "maxRate": None, "visibleOnly": True}
    assert "no tenant with the authkey" in run(
        "tenant", "set-rules", "tk_nobody", "--threshold", "50", "--database-url", database_url,
        ok=False,
    ).lower()  # fmt: skip


def test_media_rules_set_kept_cleared_and_effective(client: VodwatchClient, db: Database) -> None:
    media = client.put_media(
        "a1", "Safety", duration=600, requiredRanges=[[0, 120], [300.5, 540]], maxRate=2,
        visibleOnly=True,
    )["data"]  # fmt: skip
    assert (media["requiredRanges"], media["maxRate"], media["visibleOnly"]) == (
        [[0, 120], [300.5, 540]],
        2,
        True,
    )
    assert media["effectiveRules"] == {
        "threshold": 90,
        "requiredRanges": [[0, 120], [300.5, 540]],
        "maxRate": 2,
        "visibleOnly": True,
    }
    client.put_media("a1", "Safety v2", duration=600)  # absent: kept
    assert client.get_media("a1")["data"]["effectiveRules"]["maxRate"] == 2
    client.put_media("a1", "Safety", duration=600, maxRate=None, requiredRanges=None)
    got = client.get_media("a1")["data"]
    assert (got["maxRate"], got["requiredRanges"], got["visibleOnly"]) == (None, None, True)
    assert got["effectiveRules"] == {
        "threshold": 90,
        "requiredRanges": [],
        "maxRate": None,
        "visibleOnly": True,
    }


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("requiredRanges", [[10, 5]], "requiredRanges[0]"),
        ("requiredRanges", [[5, 5]], "requiredRanges[0]"),
        ("requiredRanges", [[0, 50], [40, 60]], "requiredRanges[1]"),
        ("requiredRanges", [[50, 60], [0, 10]], "requiredRanges[1]"),
        ("requiredRanges", [[0, 700]], "duration"),
        ("requiredRanges", [[-1, 10]], "requiredRanges[0][0]"),
        ("requiredRanges", "0-10", "requiredRanges"),
        ("requiredRanges", [[0, 10, 20]], "requiredRanges[0]"),
        ("maxRate", 0.5, "maxRate"),
        ("maxRate", 17, "maxRate"),
        ("maxRate", "2", "maxRate"),
        ("maxRate", True, "maxRate"),
        ("visibleOnly", "yes", "visibleOnly"),
        ("visibleOnly", 1, "visibleOnly"),
    ],
)
def test_bad_rules_are_refused_and_change_nothing(
    client: VodwatchClient, field: str, value: Any, named: str
) -> None:
    client.put_media("a1", "Safety", duration=600, maxRate=3)
    before = client.get_media("a1")["data"]
    status, result, message = refused(
        lambda: client.put_media("a1", "Renamed", duration=600, **{field: value})
    )
    assert (status, result) == (400, 40010)
    assert named in message
    assert client.get_media("a1")["data"] == before


def test_rate_and_visibility_decide_what_counts(client: VodwatchClient, tenant: Tenant) -> None:
    """100 s: 0-40 played at 1x, 40-70 at 2.5x, 70-100 in a hidden tab. maxRate 2 leaves out
    40-70; visibleOnly leaves out 70-100."""
    client.put_media("a1", "Safety", duration=100, completionThreshold=60)
    session = new_session_id()
    client.send_beacons(
        [
            server_beacon(session, 1, user_id="u1", asset_id="a1", segments=[[0, 40]],
                          played_ms=40_000),
            server_beacon(session, 2, user_id="u1", asset_id="a1", segments=[[40, 70]],
                          played_ms=12_000, rate=2.5),
            server_beacon(session, 3, user_id="u1", asset_id="a1", segments=[[70, 100]],
                          played_ms=30_000, hidden=True),
        ]
    )  # fmt: skip
    plain = viewer(client, "u1", "a1")
    assert (plain["coveredMs"], plain["countedMs"], plain["completed"]) == (100_000, 100_000, True)
    client.put_media("a1", "Safety", duration=100, maxRate=2)
    fast = viewer(client, "u1", "a1")
    assert (fast["countedMs"], fast["countedIntervals"]) == (
        70_000,
        [[0, 40_000], [70_000, 100_000]],
    )
    assert (fast["countedRadio"], fast["visitRadio"], fast["completed"]) == ("70%", "100%", True)
    client.put_media("a1", "Safety", duration=100, visibleOnly=True)
    both = viewer(client, "u1", "a1")
    assert (both["countedMs"], both["completed"]) == (40_000, False)
    assert both["visits"][0]["countedIntervals"] == [[0, 40_000]]
    row = client.call("GET", VIDEOS)["data"]["data"][0]
    assert (row["meanCoverage"], row["meanCountedCoverage"], row["completedViewers"]) == (
        "100%",
        "40%",
        0,
    )
    # Watched again at 1x in a visible tab: counted now.
    client.send_beacons(
        server_beacon(new_session_id(), 1, user_id="u1", asset_id="a1", segments=[[40, 100]],
                      played_ms=60_000)
    )  # fmt: skip
    again = viewer(client, "u1", "a1")
    assert (again["countedMs"], again["completed"]) == (100_000, True)
    assert client.call("GET", VIDEOS)["data"]["data"][0]["completedViewers"] == 1


def test_required_ranges_must_be_counted(client: VodwatchClient) -> None:
    client.put_media("a1", "Safety", duration=100, completionThreshold=50,
                     requiredRanges=[[80, 90]])  # fmt: skip
    client.send_beacons(server_beacon(new_session_id(), 1, user_id="u1", asset_id="a1",
                                      segments=[[0, 70]], played_ms=70_000))  # fmt: skip
    assert viewer(client, "u1", "a1")["completed"] is False
    assert client.call("GET", VIDEOS)["data"]["data"][0]["completedViewers"] == 0
    client.send_beacons(server_beacon(new_session_id(), 1, user_id="u1", asset_id="a1",
                                      segments=[[80, 90]], played_ms=10_000))  # fmt: skip
    assert viewer(client, "u1", "a1")["completed"] is True
    assert client.call("GET", VIDEOS)["data"]["data"][0]["completedViewers"] == 1


def test_tenant_default_rules_apply_to_videos_without_their_own(
    client: VodwatchClient, http: TestClient, database_url: str, tenant: Tenant
) -> None:
    client.put_media("a1", "Safety", duration=100, completionThreshold=50)
    client.send_beacons(server_beacon(new_session_id(), 1, user_id="u1", asset_id="a1",
                                      segments=[[0, 60]], played_ms=20_000))  # fmt: skip
    assert viewer(client, "u1", "a1")["completed"] is True  # 3x: no rule yet
    run("tenant", "set-rules", tenant.authkey, "--max-rate", "2", "--database-url", database_url)
    http.app.state.services.directory.clear()  # type: ignore[attr-defined]  # (serve: 10 s)
    assert viewer(client, "u1", "a1")["completed"] is False
    client.put_media("a1", "Safety", duration=100, maxRate=4)  # the video's own wins
    assert viewer(client, "u1", "a1")["completed"] is True


def player_token(tenant: Tenant, user: str, asset: str, clock: FakeClock, **claims: Any) -> str:
    return mint_playback_token(tenant.authkey, tenant.secret, user, asset, now=clock(), **claims)


def test_progress_of_the_tokens_attempt(
    client: VodwatchClient, tenant: Tenant, clock: FakeClock
) -> None:
    client.put_media("a1", "Safety", duration=60, completionThreshold=50)
    first = player_token(tenant, "u1", "a1", clock, attempt_id="2026-spring")
    session = new_session_id()
    for seq in range(1, 4):
        clock.advance(10)
        client.send_player_beacons(
            {"token": first, "sessionId": session, "seq": seq,
             "segments": [[(seq - 1) * 10, seq * 10]], "playedMs": 10_000}
        )  # fmt: skip
    completed_at = int(clock())  # the third beacon completed the attempt (50 %)
    progress = client.progress(first)["data"]
    assert progress == {
        "userId": "u1",
        "assetId": "a1",
        "attemptId": "2026-spring",
        "duration": 60_000,
        "coveredMs": 30_000,
        "countedMs": 30_000,
        "percent": 50,
        "completed": True,
        "completedAt": completed_at,
        "intervals": [[0, 30_000]],
        "countedIntervals": [[0, 30_000]],
        "resumeAt": 30_000,
    }
    # A re-assigned course: a new attempt starts with nothing counted; the old one stays.
    second = player_token(tenant, "u1", "a1", clock, attempt_id="2026-autumn")
    fresh = client.progress(second)["data"]
    assert (fresh["attemptId"], fresh["coveredMs"], fresh["completed"], fresh["resumeAt"]) == (
        "2026-autumn",
        0,
        False,
        0,
    )
    clock.advance(10)
    client.send_player_beacons(
        {"token": second, "sessionId": new_session_id(), "seq": 1, "segments": [[40, 50]],
         "playedMs": 10_000, "position": 50}
    )  # fmt: skip
    assert client.progress(second)["data"]["resumeAt"] == 50_000
    assert client.progress(first)["data"]["coveredMs"] == 30_000
    # The analytics unite the attempts, as before.
    assert viewer(client, "u1", "a1")["coveredMs"] == 40_000


def test_progress_needs_a_valid_token(client: VodwatchClient) -> None:
    http = client._http
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nonsense"},
                    {"Authorization": "Basic dTpw"}):  # fmt: skip
        response = http.get(client.base_url + "/vod/webapi/progress", headers=headers)
        assert (response.status_code, response.json()["result"]) == (401, 40003)


def test_an_attempt_is_the_one_of_the_lowest_seq(client: VodwatchClient, db: Database) -> None:
    session = new_session_id()
    client.send_beacons(
        [
            server_beacon(session, 2, user_id="u1", asset_id="a1", segments=[[10, 20]],
                          played_ms=10_000, attemptId="later"),
            server_beacon(session, 1, user_id="u1", asset_id="a1", segments=[[0, 10]],
                          played_ms=10_000, attemptId="first"),
        ]
    )  # fmt: skip
    with db.read() as conn:
        stored = conn.execute(
            select(visits.c.attempt_id).where(visits.c.session_id == session)
        ).scalar_one()
    assert stored == "first"
    assert viewer(client, "u1", "a1")["coveredMs"] == 20_000


beacon_strategy = st.builds(
    ModelBeacon,
    segments=st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30)).map(
            lambda p: (min(p) * 1000, max(p) * 1000)
        ),
        min_size=1,
        max_size=2,
    ).map(tuple),
    played_ms=st.integers(0, 30).map(lambda n: n * 1000),
    rate=st.sampled_from([1.0, 1.5, 2.0, 2.5, 4.0]),
    hidden=st.booleans(),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    visits=st.lists(st.lists(beacon_strategy, min_size=1, max_size=4), min_size=1, max_size=3),
    max_rate=st.sampled_from(MAX_RATES),
    visible_only=st.booleans(),
)
def test_counted_coverage_through_the_service_matches_the_model(
    client: VodwatchClient,
    visits: list[list[ModelBeacon]],
    max_rate: float | None,
    visible_only: bool,
) -> None:
    """Server beacons through the API, stored, read back by the viewer endpoint: against the
    per-millisecond model, on both backends."""
    user, asset = new_session_id(), new_session_id()
    client.put_media(asset, "Model", duration=30, maxRate=max_rate, visibleOnly=visible_only)
    sessions = []
    for beacons in visits:
        session = new_session_id()
        sessions.append(session)
        client.send_beacons(
            [
                server_beacon(
                    session, seq, user_id=user, asset_id=asset,
                    segments=[[s / 1000, e / 1000] for s, e in b.segments],
                    played_ms=b.played_ms, rate=b.rate, hidden=b.hidden,
                )
                for seq, b in enumerate(beacons, 1)
            ]
        )  # fmt: skip
    everything = [b for beacons in visits for b in beacons]
    expected = model_counted(everything, max_rate, visible_only)
    got = viewer(client, user, asset)
    counted = {ms for s, e in got["countedIntervals"] for ms in range(s, e)}
    assert counted == expected
    assert got["countedMs"] == len(expected)
    by_session = {visit["sessionId"]: visit for visit in got["visits"]}
    for session, beacons in zip(sessions, visits, strict=True):
        shown = by_session[session]["countedIntervals"]
        assert {ms for s, e in shown for ms in range(s, e)} == model_counted(
            beacons, max_rate, visible_only
        )


def test_audit_shows_what_counted_and_why_not(
    client: VodwatchClient, tenant: Tenant, clock: FakeClock
) -> None:
    """Two attempts; in the second, a part played at 3x, a part hidden, a part both, and a
    claim the clock bounds cut."""
    client.put_media("a1", "Safety", duration=100, completionThreshold=30, maxRate=2,
                     visibleOnly=True)  # fmt: skip
    client.send_beacons(
        server_beacon(new_session_id(), 1, user_id="u1", asset_id="a1", segments=[[0, 30]],
                      played_ms=30_000, attemptId="spring")
    )  # fmt: skip
    session = new_session_id()
    client.send_beacons(
        [
            server_beacon(session, 1, user_id="u1", asset_id="a1", segments=[[0, 10]],
                          played_ms=10_000, attemptId="autumn"),
            server_beacon(session, 2, user_id="u1", asset_id="a1", segments=[[10, 40]],
                          played_ms=10_000, attemptId="autumn"),
            server_beacon(session, 3, user_id="u1", asset_id="a1", segments=[[40, 50]],
                          played_ms=10_000, hidden=True, attemptId="autumn"),
            server_beacon(session, 4, user_id="u1", asset_id="a1", segments=[[50, 60]],
                          played_ms=1_000, hidden=True, attemptId="autumn"),
        ]
    )  # fmt: skip
    token = player_token(tenant, "u1", "a1", clock, attempt_id="autumn")
    clock.advance(5)
    player_session = new_session_id()
    client.send_player_beacons(  # 60 s claimed 5 s after the pair's first player beacon...
        {"token": token, "sessionId": player_session, "seq": 1, "segments": [[60, 61]],
         "playedMs": 1_000}
    )  # fmt: skip
    clock.advance(5)
    client.send_player_beacons(
        {"token": token, "sessionId": player_session, "seq": 2, "segments": [[61, 62]],
         "playedMs": 60_000}
    )  # fmt: skip
    data = client.audit("u1", "a1")["data"]
    assert [a["attemptId"] for a in data["attempts"]] == ["autumn", "spring"]
    autumn, spring = data["attempts"]
    assert autumn["rules"] == {
        "threshold": 30,
        "requiredRanges": [],
        "maxRate": 2,
        "visibleOnly": True,
    }
    assert (spring["completed"], autumn["completed"]) == (True, False)  # autumn: 10 s counted
    by_session = {v["sessionId"]: v for v in autumn["visits"]}
    visit = by_session[session]
    assert visit["counted"] == [[0, 10_000]]
    assert visit["uncounted"] == {
        "hidden": [[40_000, 50_000]],
        "tooFast": [[10_000, 40_000], [50_000, 60_000]],  # 50-60: hidden and too fast
    }
    assert (visit["watchTimeMs"], visit["clockBoundMs"]) == (31_000, 0)
    player = by_session[player_session]
    assert player["clockBoundMs"] > 0
    assert player["watchTimeMs"] + player["clockBoundMs"] == 61_000
    only = client.audit("u1", "a1", attempt_id="spring")["data"]["attempts"]
    assert [a["attemptId"] for a in only] == ["spring"]
    status, result, _ = refused(lambda: client.audit("u1", "a1", attempt_id=""))
    assert (status, result) == (404, 40400)  # no visit without an attempt id
    status, result, _ = refused(lambda: client.audit("u2", "a1"))
    assert (status, result) == (404, 40400)
    status, result, message = refused(lambda: client.audit("u1", "a1", attempt_id="x" * 65))
    assert (status, result) == (400, 40010)
    assert "attemptId" in message


def events(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(completion_events).order_by(completion_events.c.completed_at_ms))
        return [{**row._mapping, "data": json.loads(row.data)} for row in rows]


def watch(client: VodwatchClient, user: str, start: float, end: float, **extra: Any) -> None:
    client.send_beacons(
        server_beacon(new_session_id(), 1, user_id=user, asset_id="a1", segments=[[start, end]],
                      played_ms=int((end - start) * 1000), **extra)
    )  # fmt: skip


def test_one_event_per_attempt_with_its_figures(
    client: VodwatchClient, db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    client.put_media("a1", "Safety", duration=100, completionThreshold=50)
    watch(client, "u1", 0, 40, attemptId="x", userName="Ada")
    assert events(db) == []
    clock.advance(60)
    watch(client, "u1", 40, 60, attemptId="x")
    (event,) = events(db)
    assert event["data"] == {
        "eventId": event["event_id"],
        "authkey": tenant.authkey,
        "userId": "u1",
        "userName": "Ada",
        "assetId": "a1",
        "videoTitle": "Safety",
        "attemptId": "x",
        "completedAt": int(clock()),
        "percent": 60,
        "countedMs": 60_000,
        "durationMs": 100_000,
        "threshold": 50,
        "watchTimeMs": 60_000,
    }
    assert event["event_id"].startswith("evt_")
    watch(client, "u1", 60, 100, attemptId="x")  # completed already: no second event
    watch(client, "u1", 0, 70, attemptId="y")  # a new attempt: its own event
    assert [(e["attempt_id"], e["user_id"]) for e in events(db)] == [("x", "u1"), ("y", "u1")]
    audit = {a["attemptId"]: a for a in client.audit("u1", "a1")["data"]["attempts"]}
    assert audit["x"]["completedAt"] == event["data"]["completedAt"]
    assert audit["y"]["completedAt"] is not None


def test_a_rule_change_emits_nothing_by_itself(client: VodwatchClient, db: Database) -> None:
    client.put_media("a1", "Safety", duration=100)  # 90 %
    watch(client, "u1", 0, 60)
    client.put_media("a1", "Safety", duration=100, completionThreshold=50)
    assert events(db) == []  # completed now, but no beacon has come since
    assert viewer(client, "u1", "a1")["completed"] is True
    watch(client, "u1", 10, 20)  # the attempt's next beacon (nothing new in it)
    assert [e["attempt_id"] for e in events(db)] == [""]


def test_a_refused_request_emits_nothing(client: VodwatchClient, db: Database) -> None:
    client.put_media("a1", "Safety", duration=100, completionThreshold=50)
    session = new_session_id()
    watch(client, "u2", 0, 10)
    with pytest.raises(VodwatchAPIError):
        client.send_beacons(
            [
                server_beacon(session, 1, user_id="u1", asset_id="a1", segments=[[0, 80]],
                              played_ms=80_000),
                server_beacon(session, 2, user_id="someone-else", asset_id="a1"),
            ]
        )  # fmt: skip
    assert events(db) == []


def test_tracked_rules_make_hidden_viewing_complete_nothing(
    client: VodwatchClient, db: Database
) -> None:
    client.put_media("a1", "Safety", duration=100, completionThreshold=50, visibleOnly=True)
    watch(client, "u1", 0, 80, hidden=True)
    assert events(db) == []
    watch(client, "u1", 0, 50)
    assert len(events(db)) == 1
