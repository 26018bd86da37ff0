"""Service plumbing: health, the OpenAPI document, the access log."""

import logging

import pytest
from starlette.testclient import TestClient

from vodwatch.api.app import create_app
from vodwatch.client import VodwatchClient
from vodwatch.store.database import Database


def test_healthz(http: TestClient):
    assert http.get("/healthz").json() == {
        "result": 0,
        "msg": "成功",
        "data": {"status": "ok", "database": http.app.state.services.db.dialect},  # type: ignore[attr-defined]
    }


def test_healthz_is_503_when_the_database_is_unreachable():
    db = Database("postgresql://nobody@127.0.0.1:1/nothing")
    with TestClient(create_app(db)) as http:
        answer = http.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"result": 50300, "msg": "database unavailable: database unreachable"}
    assert int(answer.headers["Retry-After"]) >= 1


def test_openapi_describes_every_endpoint(http: TestClient):
    document = http.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/vod/webapi/statistics/vod/watch",
        "/vod/webapi/media/{assetId}",
        "/vod/webapi/beacon",
        "/vod/webapi/progress",
        "/vod/webapi/statistics/vod/videos",
        "/vod/webapi/statistics/vod/retention",
        "/vod/webapi/statistics/vod/viewer",
        "/vod/webapi/statistics/vod/watch/export",
        "/vod/webapi/statistics/vod/audit",
        "/healthz",
    }
    export = document["paths"]["/vod/webapi/statistics/vod/watch/export"]["get"]
    assert {p["name"] for p in export["parameters"]} == {
        "startTime",
        "endTime",
        "userId",
        "videoInfo",
        "groupBy",
        "format",
    }
    report = document["paths"]["/vod/webapi/statistics/vod/watch"]["get"]
    assert {p["name"] for p in report["parameters"]} == {
        "startTime",
        "endTime",
        "userId",
        "videoInfo",
        "page",
        "pageSize",
        "groupBy",
    }


def test_access_log_has_one_line_per_request_without_secrets(
    client: VodwatchClient, caplog: pytest.LogCaptureFixture
):
    token = client.playback_token("李四", "860")
    with caplog.at_level(logging.INFO, logger="vodwatch.access"):
        client.watch_report(userId="李四")
        client.send_player_beacons({"token": token, "sessionId": "logged-session", "seq": 1})
    lines = [r for r in caplog.records if r.name == "vodwatch.access"]
    assert [(r.method, r.path, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("GET", "/vod/webapi/statistics/vod/watch", 200),
        ("POST", "/vod/webapi/beacon", 200),
    ]
    text = "\n".join(str(vars(r)) for r in lines)
    for secret in (client.secret, token, "李四"):
        assert secret not in text
