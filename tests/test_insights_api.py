"""Completion thresholds (tenant default, per-video override) and the analytics endpoints'
edges: bad input, unknown videos and viewers, other tenants, the export's file formats."""

import csv
import io
import json
from typing import Any

import openpyxl
import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import new_session_id, run, server_beacon
from tests.test_insights import csv_rows, export
from vodwatch.api.app import create_app
from vodwatch.client import VodwatchAPIError, VodwatchClient
from vodwatch.store.database import Database

VIDEOS = "/vod/webapi/statistics/vod/videos"
RETENTION = "/vod/webapi/statistics/vod/retention"
VIEWER = "/vod/webapi/statistics/vod/viewer"


def refused(client: VodwatchClient, path: str, **params: Any) -> tuple[int, int, str]:
    with pytest.raises(VodwatchAPIError) as error:
        client.call("GET", path, params=params)
    return error.value.status, error.value.result, error.value.message


def watch(client: VodwatchClient, user: str, asset: str, seconds: float, **extra: Any) -> None:
    client.send_beacons(
        server_beacon(
            new_session_id(),
            1,
            user_id=user,
            asset_id=asset,
            segments=[[0, seconds]],
            played_ms=int(seconds * 1000),
            **extra,
        )
    )


def test_thresholds_tenant_default_video_override_and_completion(client: VodwatchClient):
    media = client.put_media("a1", "Safety", duration=100)["data"]
    assert (media["completionThreshold"], media["effectiveCompletionThreshold"]) == (None, 90)
    watch(client, "u1", "a1", 89.99)
    watch(client, "u2", "a1", 90)
    row = client.call("GET", VIDEOS)["data"]["data"][0]
    assert (row["completedViewers"], row["completionRate"], row["completionThreshold"]) == (
        1,
        "50%",
        90,
    )
    client.put_media("a1", "Safety", duration=100, completionThreshold=89)
    assert client.get_media("a1")["data"]["effectiveCompletionThreshold"] == 89
    assert client.call("GET", VIDEOS)["data"]["data"][0]["completedViewers"] == 2
    client.put_media("a1", "Safety v2", duration=100)  # absent: left as it is
    assert client.get_media("a1")["data"]["completionThreshold"] == 89
    viewer = client.call("GET", VIEWER, params={"userId": "u1", "assetId": "a1"})["data"]
    assert (viewer["completed"], viewer["completionThreshold"]) == (True, 89)
    client.put_media("a1", "Safety", duration=100, completionThreshold=None)  # null: cleared
    assert client.get_media("a1")["data"]["completionThreshold"] is None
    assert (
        client.call("GET", VIEWER, params={"userId": "u1", "assetId": "a1"})["data"]["completed"]
        is False
    )


@pytest.mark.parametrize("value", [50.0, "50", True, 0, 101, -1, [50]])
def test_a_threshold_is_a_json_integer_1_to_100(client: VodwatchClient, value: Any):
    client.put_media("a1", "Safety", duration=100, completionThreshold=70)
    with pytest.raises(VodwatchAPIError) as error:
        client.put_media("a1", "Other", duration=50, completionThreshold=value)
    assert (error.value.status, error.value.result) == (400, 40010)
    assert "completionThreshold" in error.value.message
    media = client.get_media("a1")["data"]  # nothing half-applied
    assert (media["videoTitle"], media["duration"], media["completionThreshold"]) == (
        "Safety",
        "100",
        70,
    )


def test_set_threshold_command(database_url: str, db: Database, http, clock: FakeClock):
    tenant = add_tenant(db)
    client = client_for(http, tenant, clock)
    client.put_media("a1", "Safety", duration=100)
    output = run("tenant", "set-threshold", tenant.authkey, "75", "--database-url", database_url)
    assert "75%" in output
    listed = json.loads(run("tenant", "list", "--json", "--database-url", database_url))
    assert listed[0]["completionThreshold"] == 75
    # A service reads tenants again within 10 s (tests/test_tenant_cache.py); a new one at once.
    with TestClient(create_app(db, clock=clock)) as fresh:
        media = client_for(fresh, tenant, clock).get_media("a1")["data"]
    assert media["effectiveCompletionThreshold"] == 75
    for bad in ("0", "101", "x"):
        assert "N" in run(
            "tenant", "set-threshold", tenant.authkey, bad, "--database-url", database_url, ok=False
        )
    assert "no tenant" in run(
        "tenant", "set-threshold", "tk_nobody", "50", "--database-url", database_url, ok=False
    )


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        (VIDEOS, {"sort": "duration"}, "sort"),
        (VIDEOS, {"order": "up"}, "order"),
        (VIDEOS, {"pageSize": "101"}, "pageSize"),
        (VIDEOS, {"page": "0"}, "page"),
        (VIDEOS, {"startTime": "20", "endTime": "10"}, "startTime"),
        (VIDEOS, {"colour": "red"}, "colour"),
        (RETENTION, {}, "assetId"),
        (RETENTION, {"assetId": "a1", "buckets": "9"}, "buckets"),
        (RETENTION, {"assetId": "a1", "buckets": "1001"}, "buckets"),
        (RETENTION, {"assetId": "a1", "buckets": "ten"}, "buckets"),
        (VIEWER, {"assetId": "a1"}, "userId"),
        (VIEWER, {"userId": "u1"}, "assetId"),
        (VIEWER, {"userId": "u/1", "assetId": "a1"}, "userId"),
    ],
)
def test_bad_parameters_are_named(
    client: VodwatchClient, path: str, params: dict[str, Any], named: str
):
    client.put_media("a1", "Safety", duration=100)
    status, result, message = refused(client, path, **params)
    assert (status, result) == (400, 40010)
    assert named in message


def test_unknown_videos_and_viewers(client: VodwatchClient):
    assert refused(client, RETENTION, assetId="nothing")[:2] == (404, 40400)
    client.put_media("a1", "Safety", duration=100)  # in the catalog, never watched: zeros
    data = client.call("GET", RETENTION, params={"assetId": "a1", "buckets": 10})["data"]
    assert (data["totalViewers"], data["viewers"], data["distribution"]) == (0, [0] * 10, [0] * 10)
    assert refused(client, VIEWER, userId="u1", assetId="a1")[:2] == (404, 40400)
    assert client.call("GET", VIDEOS)["data"] == {
        "total": 0,
        "per_page": 20,
        "current_page": 1,
        "last_page": 1,
        "data": [],
    }


def test_another_tenants_videos_and_viewers_are_not_there(
    db: Database, http, clock: FakeClock, client: VodwatchClient
):
    client.put_media("a1", "Safety", duration=100)
    watch(client, "u1", "a1", 50)
    other = client_for(http, add_tenant(db, "other"), clock)
    assert other.call("GET", VIDEOS)["data"]["total"] == 0
    assert refused(other, RETENTION, assetId="a1")[:2] == (404, 40400)
    assert refused(other, VIEWER, userId="u1", assetId="a1")[:2] == (404, 40400)
    assert csv_rows(export(other)) == [
        [
            "userId",
            "userName",
            "assetId",
            "videoTitle",
            "visitTime",
            "visitRadio",
            "startTime",
            "watchTimeMs",
            "coveredMs",
            "completed",
        ]
    ]


def test_unknown_duration_reads_zero(client: VodwatchClient):
    watch(client, "u1", "seen-only", 30)  # never cataloged: no duration
    row = client.call("GET", VIDEOS)["data"]["data"][0]
    assert (row["duration"], row["meanCoverage"], row["completedViewers"]) == ("0", "0%", 0)
    data = client.call("GET", RETENTION, params={"assetId": "seen-only"})["data"]
    assert (data["duration"], data["viewers"], data["views"]) == (0, [], [])
    assert data["distribution"] == [1] + [0] * 9
    viewer = client.call("GET", VIEWER, params={"userId": "u1", "assetId": "seen-only"})["data"]
    # Not clamped: the intervals still add up to coveredMs.
    assert (viewer["duration"], viewer["intervals"], viewer["coveredMs"]) == (
        0,
        [[0, 30_000]],
        30_000,
    )
    assert (viewer["visitRadio"], viewer["completed"]) == ("0%", False)


def test_export_guards_formulas_in_csv_and_keeps_xlsx_cells_as_values(client: VodwatchClient):
    client.put_media("a1", '=HYPERLINK("http://x")', duration=100)
    for user, name in (
        ("u1", "@SUM(A1)"),
        ("u2", "+1"),
        ("u3", "-2"),
        ("u4", "=1+1"),
        ("u5", "张三"),
    ):
        watch(client, user, "a1", 10, userName=name)
    rows = csv_rows(export(client))
    names = sorted(row[1] for row in rows[1:])
    assert names == sorted(["'@SUM(A1)", "'+1", "'-2", "'=1+1", "张三"])
    assert {row[3] for row in rows[1:]} == {'\'=HYPERLINK("http://x")'}
    response = export(client, format="xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    cells = list(sheet.iter_rows(values_only=True))
    assert sorted(row[1] for row in cells[1:]) == sorted(["@SUM(A1)", "+1", "-2", "=1+1", "张三"])
    assert {row[3] for row in cells[1:]} == {'=HYPERLINK("http://x")'}
    assert all(sheet.cell(row=r, column=4).data_type == "s" for r in range(2, len(cells) + 1))


def test_export_errors_are_json_before_any_byte(client: VodwatchClient):
    for params, named in (
        ({"format": "pdf"}, "format"),
        ({"groupBy": "day"}, "groupBy"),
        ({"startTime": "x"}, "startTime"),
        ({"colour": "red"}, "colour"),
    ):
        response = export(client, **params)
        assert response.status_code == 400
        body = response.json()
        assert body["result"] == 40010
        assert named in body["msg"]


def test_export_takes_a_json_body_and_ignores_paging(client: VodwatchClient):
    client.put_media("a1", "Safety", duration=100)
    for n in range(25):
        watch(client, f"u{n}", "a1", n)
    path = "/vod/webapi/statistics/vod/watch/export"
    body = json.dumps({"videoInfo": "safety", "pageSize": 5, "page": 3}).encode()
    headers = client.signed_headers("GET", path, [], body)
    response = client._http.request("GET", client.base_url + path, content=body, headers=headers)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert len(rows) == 26


def test_a_bucket_counts_a_viewer_from_half_of_it(client: VodwatchClient):
    client.put_media("a1", "Safety", duration=100)  # ten buckets of 10 s
    cases: list[tuple[str, list[list[float]]]] = [
        ("half", [[0, 5]]),  # half of bucket 0: counted
        ("less", [[10, 14.999]]),  # just under half of bucket 1: not counted
        ("split", [[20, 22.5], [27.5, 30]]),  # two quarters of bucket 2: half, counted
        ("twice", [[40, 50]]),
    ]
    for user, segments in cases:
        client.send_beacons(
            server_beacon(new_session_id(), 1, user_id=user, asset_id="a1", segments=segments)
        )
    client.send_beacons(  # a second visit of the same part: one viewer, two views
        server_beacon(new_session_id(), 1, user_id="twice", asset_id="a1", segments=[[40, 50]])
    )
    data = client.call("GET", RETENTION, params={"assetId": "a1", "buckets": 10})["data"]
    assert data["viewers"] == [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    assert data["views"] == [1, 0, 1, 0, 2, 0, 0, 0, 0, 0]
    assert data["distribution"] == [3, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert (data["totalViewers"], data["totalVisits"]) == (4, 5)
