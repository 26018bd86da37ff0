"""The seed endpoint: shape, numbers, paging, filters, grouping (both backends)."""

import json
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from tests.helpers import new_session_id, report_rows, server_beacon
from vodwatch.client import VodwatchAPIError, VodwatchClient

SEED = json.loads((Path(__file__).parent / "data" / "seed_example.json").read_text())["example"]
ASSET = "8602268011035296205"


def type_shape(value):
    """The JSON types of a value, recursively: what a client's parser depends on."""
    if isinstance(value, dict):
        return {key: type_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [type_shape(value[0])] if value else []
    return type(value).__name__


def test_answers_in_the_seeds_exact_shape(client: VodwatchClient):
    client.put_media(ASSET, "999999", duration=1000)
    for _ in range(5):  # five visits of 60 s each over the first 60 s: the seed's rows
        client.send_beacons(
            server_beacon(
                new_session_id(), 1, userName="张三", segments=[[0, 60]], played_ms=60_000
            )
        )
    body = client.watch_report()
    ours, seed = type_shape(body), type_shape(SEED)
    assert ours.keys() == seed.keys()
    assert ours["data"].keys() == seed["data"].keys()
    assert {k: v for k, v in ours["data"].items() if k != "data"} == {
        k: v for k, v in seed["data"].items() if k != "data"
    }
    six = list(seed["data"]["data"][0])
    for row in body["data"]["data"]:
        assert list(row)[:6] == six  # the seed's fields first, in its order
        assert {key: type(row[key]).__name__ for key in six} == seed["data"]["data"][0]
    assert body["result"] == 0
    assert body["msg"] == "成功"
    assert body["data"]["total"] == 5
    assert body["data"]["last_page"] == 1
    assert {
        (r["userId"], r["userName"], r["assetId"], r["videoTitle"], r["visitTime"], r["visitRadio"])
        for r in body["data"]["data"]
    } == {("李四", "张三", ASSET, "999999", "00:01:00", "6%")}


def test_pages_never_repeat_or_skip_rows_even_with_equal_start_times(client: VodwatchClient):
    sessions = [new_session_id() for _ in range(45)]
    for index, session in enumerate(sessions):  # three share each startedAt second
        client.send_beacons(server_beacon(session, 1, startedAt=1_764_000_000 + index // 3))
    pages = [client.watch_report(page=page)["data"] for page in (1, 2, 3, 4)]
    assert [p["last_page"] for p in pages] == [3, 3, 3, 3]
    assert [len(p["data"]) for p in pages] == [20, 20, 5, 0]
    assert all(p["total"] == 45 for p in pages)
    seen = [row["sessionId"] for p in pages for row in p["data"]]
    assert sorted(seen) == sorted(sessions)
    started = [row["startedAt"] for p in pages for row in p["data"]]
    assert started == sorted(started, reverse=True)
    assert (
        client.watch_report(page=2, pageSize=7)["data"]["data"]
        == (client.watch_report(pageSize=21)["data"]["data"][7:14])
    )
    # Filtered, the same order (on SQLite few matches are sorted, not walked in index order).
    everything = client.watch_report(pageSize=100)["data"]["data"]
    for filters in ({"userId": "李四"}, {"videoInfo": "8602268011035296205"}):
        filtered = [
            row
            for p in (1, 2, 3)
            for row in client.watch_report(page=p, pageSize=20, **filters)["data"]["data"]
        ]
        assert filtered == everything


@pytest.mark.parametrize("listed", [1000, 0], ids=["assets-listed", "assets-joined"])
def test_filters(client: VodwatchClient, listed: int, monkeypatch: pytest.MonkeyPatch):
    # Matching videos are looked up first and listed, or (past the limit) joined in SQL.
    monkeypatch.setattr("vodwatch.store.reports.MAX_LISTED_ASSETS", listed)
    client.put_media("a1", "数学 101: Limits", duration=100)
    client.put_media("a2", "STRASSE 50%_off", duration=100)
    client.put_media("a3", "Physics", duration=100)
    rows = [
        ("李四", "a1", 1_764_000_000),
        ("李四", "a2", 1_764_000_100),
        ("王五", "a3", 1_764_000_200),
        ("王五", "a1", 1_764_000_300),
    ]
    for user, asset, started in rows:
        client.send_beacons(
            server_beacon(new_session_id(), 1, user_id=user, asset_id=asset, startedAt=started)
        )

    def pick(**params):
        return [(r["userId"], r["assetId"]) for r in report_rows(client, **params)]

    assert pick(userId="李四") == [("李四", "a2"), ("李四", "a1")]
    assert pick(userId="李") == []  # exact match only
    assert pick(videoInfo="a3") == [("王五", "a3")]  # assetId
    assert pick(videoInfo="数学") == [("王五", "a1"), ("李四", "a1")]  # title substring
    assert pick(videoInfo="limits") == pick(videoInfo="LIMITS") == pick(videoInfo="数学")
    assert pick(videoInfo="straße") == [("李四", "a2")]  # Unicode case folding
    assert pick(videoInfo="50%_") == [("李四", "a2")]
    assert pick(videoInfo="%") == [("李四", "a2")]  # literal, not a wildcard
    assert pick(videoInfo="_") == [("李四", "a2")]
    assert pick(startTime=1_764_000_100, endTime=1_764_000_200) == [("王五", "a3"), ("李四", "a2")]
    assert pick(startTime=1_764_000_300) == [("王五", "a1")]
    assert pick(endTime=1_764_000_000) == [("李四", "a1")]
    assert pick(userId="王五", videoInfo="a1", startTime=1_764_000_000) == [("王五", "a1")]


def test_end_time_includes_the_whole_last_second(client: VodwatchClient, clock: FakeClock):
    client.send_beacons(server_beacon(new_session_id(), 1))  # startedAt = now, with its ms
    now = int(clock())
    assert len(report_rows(client, startTime=now, endTime=now)) == 1
    assert report_rows(client, endTime=now - 1) == []


def test_group_by_viewer_and_video(client: VodwatchClient):
    client.put_media(ASSET, "Math", duration=100)
    first, second = new_session_id(), new_session_id()
    client.send_beacons(
        [
            server_beacon(first, 1, segments=[[0, 30]], played_ms=30_000, startedAt=1_764_000_000),
            server_beacon(
                second, 1, segments=[[20, 50]], played_ms=30_000, startedAt=1_764_000_500
            ),
            server_beacon(
                new_session_id(),
                1,
                user_id="王五",
                segments=[[0, 10]],
                played_ms=10_000,
                startedAt=1_764_000_100,
            ),
        ]
    )
    rows = report_rows(client, groupBy="userVideo")
    assert [(r["userId"], r["visitTime"], r["visitRadio"], r["visits"]) for r in rows] == [
        ("李四", "00:01:00", "50%", 2),  # union of 0-30 and 20-50; latest visit first
        ("王五", "00:00:10", "10%", 1),
    ]
    in_range = report_rows(client, groupBy="userVideo", startTime=1_764_000_400)
    assert [(r["userId"], r["visitRadio"], r["visits"]) for r in in_range] == [
        ("李四", "30%", 1)  # only the visit in range counts
    ]
    body = client.watch_report(groupBy="userVideo", pageSize=1, page=2)["data"]
    assert (body["total"], body["last_page"], len(body["data"])) == (2, 2, 1)


def test_parameters_in_a_json_body_and_the_query_wins(client: VodwatchClient):
    client.send_beacons(server_beacon(new_session_id(), 1, user_id="a"))
    client.send_beacons(server_beacon(new_session_id(), 1, user_id="b"))
    body_only = client.call("GET", "/vod/webapi/statistics/vod/watch", body={"userId": "a"})
    assert [r["userId"] for r in body_only["data"]["data"]] == ["a"]
    both = client.call(
        "GET",
        "/vod/webapi/statistics/vod/watch",
        params={"userId": "b"},
        body={"userId": "a", "pageSize": 5},
    )
    assert [r["userId"] for r in both["data"]["data"]] == ["b"]
    assert both["data"]["per_page"] == 5
    typed = client.call("GET", "/vod/webapi/statistics/vod/watch", body={"page": 1, "startTime": 0})
    assert typed["data"]["total"] == 2


def test_blank_parameters_mean_not_given(client: VodwatchClient):
    client.send_beacons(server_beacon(new_session_id(), 1))
    body = client.watch_report(userId="", videoInfo="", startTime="", page="")
    assert body["data"]["total"] == 1


def test_fixing_a_duration_fixes_every_report(client: VodwatchClient):
    client.send_beacons(
        server_beacon(new_session_id(), 1, segments=[[0, 50]], played_ms=50_000, duration=1000)
    )
    assert report_rows(client)[0]["visitRadio"] == "5%"  # registered from the beacon
    client.put_media(ASSET, "Now in the catalog", duration=100)
    row = report_rows(client)[0]
    assert (row["visitRadio"], row["videoTitle"]) == ("50%", "Now in the catalog")
    client.put_media(ASSET, "Now in the catalog", duration=40)
    assert report_rows(client)[0]["visitRadio"] == "100%"  # clamped to the duration


def test_unknown_duration_reads_zero_percent(client: VodwatchClient):
    client.send_beacons(server_beacon(new_session_id(), 1, segments=[[0, 50]], played_ms=50_000))
    row = report_rows(client)[0]
    assert (row["visitRadio"], row["visitTime"], row["videoTitle"]) == ("0%", "00:00:50", "")


def test_the_latest_user_name_is_shown(client: VodwatchClient, clock: FakeClock):
    session = new_session_id()
    client.send_beacons(server_beacon(session, 1, userName="old name"))
    clock.advance(10)
    client.send_beacons(server_beacon(new_session_id(), 1, userName="new name"))
    client.send_beacons(server_beacon(new_session_id(), 1))  # no name: keeps the last
    assert {r["userName"] for r in report_rows(client)} == {"new name"}


def test_media_detail_shape(client: VodwatchClient):
    created = client.put_media(ASSET, "Math 101", duration=269.4)
    assert created["data"] == {
        "assetId": ASSET,
        "videoTitle": "Math 101",
        "duration": "269",
        "completionThreshold": None,
        "effectiveCompletionThreshold": 90,
        "requiredRanges": None,
        "maxRate": None,
        "visibleOnly": None,
        "effectiveRules": {
            "threshold": 90,
            "requiredRanges": [],
            "maxRate": None,
            "visibleOnly": False,
        },
        "created": True,
    }
    assert client.put_media(ASSET, "Math 101", duration=269)["data"]["created"] is False
    assert client.get_media(ASSET) == {
        "result": 0,
        "msg": "成功",
        "data": {
            "assetId": ASSET,
            "videoTitle": "Math 101",
            "duration": "269",
            "completionThreshold": None,
            "effectiveCompletionThreshold": 90,
            "requiredRanges": None,
            "maxRate": None,
            "visibleOnly": None,
            "effectiveRules": {
                "threshold": 90,
                "requiredRanges": [],
                "maxRate": None,
                "visibleOnly": False,
            },
        },
    }
    with pytest.raises(VodwatchAPIError) as missing:
        client.get_media("nope")
    assert (missing.value.status, missing.value.result) == (404, 40400)


def test_version_header(client: VodwatchClient):
    path = "/vod/webapi/statistics/vod/watch"
    http = client._http
    headers = client.signed_headers("GET", path, [], b"")
    assert http.get(path, headers=headers).json()["result"] == 0
    headers = client.signed_headers("GET", path, [], b"")
    del headers["version"]
    assert http.get(path, headers=headers).json()["result"] == 0
    headers = client.signed_headers("GET", path, [], b"")
    headers["version"] = "v3"
    answer = http.get(path, headers=headers)
    assert answer.status_code == 400
    assert "version" in answer.json()["msg"]
