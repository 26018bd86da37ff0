"""CORS for player beacons: each tenant's allowed origins, and nothing stored from others."""

import json

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from tests.helpers import snapshot
from vodwatch.cli import main
from vodwatch.client import VodwatchClient
from vodwatch.origins import normalize_origin
from vodwatch.store.database import Database
from vodwatch.store.tenants import Tenant, set_allowed_origins

ALLOWED = "https://learn.example.com"


def allow(db: Database, http: TestClient, tenant: Tenant, *origins: str) -> None:
    with db.write() as conn:
        set_allowed_origins(conn, tenant.authkey, list(origins))
    http.app.state.services.directory.clear()  # type: ignore[attr-defined]


def post(http: TestClient, client: VodwatchClient, origin: str | None, seq: int = 1):
    body = {
        "token": client.playback_token("u", "a"),
        "sessionId": "cors-session",
        "seq": seq,
        "segments": [[0, 1]],
        "playedMs": 1000,
    }
    headers = {"Content-Type": "text/plain;charset=UTF-8"}
    if origin:
        headers["Origin"] = origin
    return http.post("/vod/webapi/beacon", content=json.dumps(body), headers=headers)


def test_allowed_origin_gets_cors_headers(db, http, tenant, client):
    allow(db, http, tenant, ALLOWED)
    answer = post(http, client, ALLOWED)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in answer.headers["vary"]


def test_other_origins_are_refused_and_nothing_is_stored(db, http, tenant, client):
    allow(db, http, tenant, ALLOWED)
    before = snapshot(db)
    answer = post(http, client, "https://evil.example.net")
    assert (answer.status_code, answer.json()["result"]) == (403, 40300)
    assert "access-control-allow-origin" not in answer.headers
    assert snapshot(db) == before


def test_no_origin_allowed_by_default_but_non_browser_clients_pass(db, http, client):
    assert post(http, client, ALLOWED).status_code == 403
    assert post(http, client, None).status_code == 200  # curl, a backend SDK: no Origin


def test_pages_served_by_vodwatch_itself_need_no_allowance(http, client):
    assert post(http, client, "http://testserver").status_code == 200


def test_any_origin(db, http, tenant, client):
    allow(db, http, tenant, "*")
    assert post(http, client, "http://localhost:5173").headers["access-control-allow-origin"] == (
        "http://localhost:5173"
    )


def test_error_answers_are_readable_by_an_allowed_page(db, http, tenant, client):
    allow(db, http, tenant, ALLOWED)
    answer = http.post("/vod/webapi/beacon", content=b"{", headers={"Origin": ALLOWED})
    assert answer.status_code == 400
    assert answer.headers["access-control-allow-origin"] == ALLOWED


def test_preflight(db, http, tenant):
    allow(db, http, tenant, ALLOWED)
    request = {
        "Origin": ALLOWED,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    answer = http.options("/vod/webapi/beacon", headers=request)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in answer.headers["access-control-allow-methods"]
    refused = http.options("/vod/webapi/beacon", headers={**request, "Origin": "https://x.org"})
    assert refused.status_code == 403


def test_set_origins_command(database_url: str, db: Database):
    runner = CliRunner()
    created = json.loads(
        runner.invoke(
            main, ["tenant", "create", "t", "--json", "--database-url", database_url]
        ).output
    )
    result = runner.invoke(
        main,
        [
            "tenant",
            "set-origins",
            created["authkey"],
            "https://Learn.Example.com:443/",
            "http://localhost:8080",
            "--database-url",
            database_url,
        ],
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(
        runner.invoke(main, ["tenant", "list", "--json", "--database-url", database_url]).output
    )
    assert listed[0]["allowedOrigins"] == ["http://localhost:8080", "https://learn.example.com"]
    bad = runner.invoke(
        main,
        [
            "tenant",
            "set-origins",
            created["authkey"],
            "learn.example.com",
            "--database-url",
            database_url,
        ],
    )
    assert bad.exit_code != 0
    assert "not an origin" in bad.output
    unknown = runner.invoke(
        main, ["tenant", "set-origins", "tk_nobody", "--database-url", database_url]
    )
    assert unknown.exit_code != 0
    assert "no tenant" in unknown.output


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://A.com/", "https://a.com"),
        ("http://a.com:80", "http://a.com"),
        ("https://a.com:8443", "https://a.com:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_normalize_origin(given: str, normal: str):
    assert normalize_origin(given) == normal


def test_static_tracker_is_served(http: TestClient):
    answer = http.get("/static/vodwatch.js")
    assert answer.status_code in (200, 404)  # the tracker itself arrives with its own tests


def test_progress_answers_cors_for_allowed_origins(db, http, tenant, client):
    allow(db, http, tenant, ALLOWED)
    preflight = http.options(
        "/vod/webapi/progress",
        headers={"Origin": ALLOWED, "Access-Control-Request-Headers": "authorization"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert preflight.headers["Access-Control-Allow-Headers"] == "Authorization"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    refused = http.options("/vod/webapi/progress", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers
    token = client.playback_token("u", "a")
    read = http.get(
        "/vod/webapi/progress", headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"}
    )
    assert (read.status_code, read.headers["Access-Control-Allow-Origin"]) == (200, ALLOWED)
    other = http.get(
        "/vod/webapi/progress",
        headers={"Origin": "https://evil.example", "Authorization": f"Bearer {token}"},
    )
    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other.headers
