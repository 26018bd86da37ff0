"""Every error path: a clear 4xx in the one error shape, naming what is wrong, storing nothing.

Each case runs against a tenant that already has a video and a visit, and the whole database is
compared before and after: a case passes only if not one row changed.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import raw_post, server_beacon, snapshot
from vodwatch.client import VodwatchClient
from vodwatch.signing import sign_request
from vodwatch.store.database import Database
from vodwatch.store.tenants import Tenant

REPORT = "/vod/webapi/statistics/vod/watch"
MEDIA = "/vod/webapi/media/860"
ASSET = "860"
EXISTING_SESSION = "existing-session"


@dataclass
class World:
    http: TestClient
    client: VodwatchClient
    tenant: Tenant
    other: VodwatchClient  # a second tenant
    clock: FakeClock

    def token(self, **claims: Any) -> str:
        base = {
            "iss": self.tenant.authkey,
            "sub": "李四",
            "name": "张三",
            "aid": ASSET,
            "exp": int(self.clock()) + 600,
        }
        base.update(claims)
        return jwt.encode(
            {k: v for k, v in base.items() if v is not None}, self.tenant.secret, algorithm="HS256"
        )

    def beacon(self, **fields: Any) -> dict[str, Any]:
        base = {
            "token": self.token(),
            "sessionId": "new-session-1",
            "seq": 1,
            "segments": [[0, 5]],
            "playedMs": 5000,
        }
        base.update(fields)
        return {k: v for k, v in base.items() if v is not None}

    def signed(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        **header_overrides: str | None,
    ) -> Any:
        pairs = params or []
        headers = self.client.signed_headers(method, path, pairs, body)
        for name, value in header_overrides.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        query = "&".join(f"{n}={v}" for n, v in pairs)
        return self.http.request(
            method, path + (f"?{query}" if query else ""), content=body, headers=headers
        )

    def report(self, params: list[tuple[str, str]] | None = None, body: bytes = b"") -> Any:
        return self.signed("GET", REPORT, params=params, body=body)

    def put_media(self, body: Any, path: str = MEDIA) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.signed("PUT", path, body=raw)

    def post_server(self, body: Any) -> Any:
        raw = json.dumps(body).encode()
        return self.signed("POST", "/vod/webapi/beacon", body=raw)


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[World], Any]
    status: int
    code: int
    needle: str  # the message must name this


def bad_signature(world: World) -> Any:
    return world.signed("GET", REPORT, Tk_token="bm90IHRoZSByaWdodCBzaWduYXR1cmU=")


def signed_then_tampered(world: World) -> Any:
    headers = world.client.signed_headers("GET", REPORT, [("userId", "李四")], b"")
    return world.http.get(REPORT + "?userId=%E7%8E%8B%E4%BA%94", headers=headers)


def body_tampered(world: World) -> Any:
    signed_body = b'{"videoTitle":"A","duration":10}'
    headers = world.client.signed_headers("PUT", MEDIA, [], signed_body)
    return world.http.put(MEDIA, content=b'{"videoTitle":"B","duration":10}', headers=headers)


def unknown_authkey(world: World) -> Any:
    timestamp = str(int(world.clock()))
    token = sign_request(world.tenant.secret, "tk_nobody", timestamp, "GET", REPORT)
    return world.signed("GET", REPORT, Tk_authkey="tk_nobody", Tk_token=token)


def stale(offset: int) -> Callable[[World], Any]:
    def send(world: World) -> Any:
        timestamp = str(int(world.clock()) + offset)
        token = sign_request(world.tenant.secret, world.tenant.authkey, timestamp, "GET", REPORT)
        return world.signed("GET", REPORT, Timestamp=timestamp, Tk_token=token)

    return send


def player(*beacons: Callable[[World], Any] | dict[str, Any]) -> Callable[[World], Any]:
    """Post beacons as a browser would (each item a dict, or built from the world)."""

    def send(world: World) -> Any:
        items = [item(world) if callable(item) else item for item in beacons]
        return raw_post(world.http, items[0] if len(items) == 1 else items)

    return send


def beacon(**fields: Any) -> Callable[[World], dict[str, Any]]:
    return lambda world: world.beacon(**fields)


def server(**fields: Any) -> Callable[[World], Any]:
    def send(world: World) -> Any:
        body = server_beacon("new-session-2", 1, asset_id=ASSET, segments=[[0, 5]], played_ms=5000)
        body.update(fields)
        return world.post_server({k: v for k, v in body.items() if v is not None})

    return send


def other_tenants_token(world: World) -> Any:
    mine = world.beacon(sessionId="mixed-tenant-1")
    theirs = world.beacon(sessionId="mixed-tenant-2", token=world.other.playback_token("u", "a"))
    return raw_post(world.http, [mine, theirs])


CASES = [
    # -- authentication (SPEC §5) --------------------------------------------------------
    Case("no auth headers", lambda w: w.http.get(REPORT), 401, 40001, "Tk-authkey"),
    Case(
        "no Timestamp", lambda w: w.signed("GET", REPORT, Timestamp=None), 401, 40001, "Timestamp"
    ),
    Case("no Tk-token", lambda w: w.signed("GET", REPORT, Tk_token=None), 401, 40001, "Tk-token"),
    Case(
        "malformed Timestamp",
        lambda w: w.signed("GET", REPORT, Timestamp="yesterday"),
        401,
        40001,
        "Timestamp",
    ),
    Case("stale Timestamp", stale(-301), 401, 40002, "Timestamp"),
    Case("future Timestamp", stale(+301), 401, 40002, "Timestamp"),
    Case("unknown authkey", unknown_authkey, 401, 40003, "invalid credentials"),
    Case("bad signature", bad_signature, 401, 40003, "invalid credentials"),
    Case("query changed after signing", signed_then_tampered, 401, 40003, "invalid credentials"),
    Case("body changed after signing", body_tampered, 401, 40003, "invalid credentials"),
    Case("version v3", lambda w: w.signed("GET", REPORT, version="v3"), 400, 40010, "version"),
    # -- report parameters (SPEC §3) -----------------------------------------------------
    Case("page 0", lambda w: w.report([("page", "0")]), 400, 40010, "page"),
    Case("page not a number", lambda w: w.report([("page", "two")]), 400, 40010, "page"),
    Case("pageSize 101", lambda w: w.report([("pageSize", "101")]), 400, 40010, "pageSize"),
    Case("pageSize 0", lambda w: w.report([("pageSize", "0")]), 400, 40010, "pageSize"),
    Case("negative startTime", lambda w: w.report([("startTime", "-1")]), 400, 40010, "startTime"),
    Case(
        "startTime after endTime",
        lambda w: w.report([("startTime", "20"), ("endTime", "10")]),
        400,
        40010,
        "startTime",
    ),
    Case("endTime a float", lambda w: w.report([("endTime", "1.5")]), 400, 40010, "endTime"),
    Case("groupBy unknown", lambda w: w.report([("groupBy", "day")]), 400, 40010, "groupBy"),
    Case("unknown parameter", lambda w: w.report([("userid", "x")]), 400, 40010, "userid"),
    Case(
        "repeated parameter",
        lambda w: w.report([("userId", "a"), ("userId", "b")]),
        400,
        40010,
        "userId",
    ),
    Case("query not UTF-8", lambda w: w.report([("userId", "%FF")]), 400, 40010, "UTF-8"),
    Case("body not JSON", lambda w: w.report(body=b"{userId:"), 400, 40010, "JSON"),
    Case("body an array", lambda w: w.report(body=b"[1]"), 400, 40010, "body"),
    Case("body unknown field", lambda w: w.report(body=b'{"user":"x"}'), 400, 40010, "user"),
    Case("body page a boolean", lambda w: w.report(body=b'{"page":true}'), 400, 40010, "page"),
    Case("body userId a number", lambda w: w.report(body=b'{"userId":7}'), 400, 40010, "userId"),
    # -- catalog (SPEC §8) ---------------------------------------------------------------
    Case(
        "duration 0",
        lambda w: w.put_media({"videoTitle": "A", "duration": 0}),
        400,
        40010,
        "duration",
    ),
    Case(
        "duration negative",
        lambda w: w.put_media({"videoTitle": "A", "duration": -3}),
        400,
        40010,
        "duration",
    ),
    Case(
        "duration a string",
        lambda w: w.put_media({"videoTitle": "A", "duration": "269"}),
        400,
        40010,
        "duration",
    ),
    Case(
        "duration absurd",
        lambda w: w.put_media({"videoTitle": "A", "duration": 1e12}),
        400,
        40010,
        "duration",
    ),
    Case(
        "duration NaN",
        lambda w: w.put_media(b'{"videoTitle":"A","duration":NaN}'),
        400,
        40010,
        "JSON",
    ),
    Case("no videoTitle", lambda w: w.put_media({"duration": 10}), 400, 40010, "videoTitle"),
    Case(
        "videoTitle a number",
        lambda w: w.put_media({"videoTitle": 5, "duration": 10}),
        400,
        40010,
        "videoTitle",
    ),
    Case(
        "media unknown field",
        lambda w: w.put_media({"videoTitle": "A", "duration": 1, "x": 1}),
        400,
        40010,
        "x",
    ),
    Case("media body an array", lambda w: w.put_media([1]), 400, 40010, "body"),
    Case(
        "media body too large",
        lambda w: w.put_media({"videoTitle": "A" * 1_100_000, "duration": 1}),
        413,
        41300,
        "body",
    ),
    Case(
        "assetId too long",
        lambda w: w.put_media(
            {"videoTitle": "A", "duration": 1}, path="/vod/webapi/media/" + "9" * 200
        ),
        400,
        40010,
        "assetId",
    ),
    Case("unknown asset", lambda w: w.signed("GET", "/vod/webapi/media/nope"), 404, 40400, "nope"),
    # -- player beacons (SPEC §6) --------------------------------------------------------
    Case("no token", player(beacon(token=None)), 401, 40001, "token"),
    Case("token not a JWT", player(beacon(token="abc")), 401, 40001, "token"),
    Case(
        "forged token",
        player(
            lambda w: w.beacon(
                token=jwt.encode(
                    {"iss": w.tenant.authkey, "sub": "u", "aid": "a", "exp": int(w.clock()) + 60},
                    "not-the-secret-not-the-secret-not-the-secret",
                    algorithm="HS256",
                )
            )
        ),
        401,
        40003,
        "token",
    ),
    Case(
        "expired token",
        player(lambda w: w.beacon(token=w.token(exp=int(w.clock()) - 3600))),
        401,
        40003,
        "token",
    ),
    Case(
        "token for 25 h",
        player(lambda w: w.beacon(token=w.token(exp=int(w.clock()) + 90000))),
        401,
        40003,
        "24 h",
    ),
    Case(
        "token of an unknown tenant",
        player(lambda w: w.beacon(token=w.token(iss="tk_x"))),
        401,
        40003,
        "token",
    ),
    Case("reversed segment", player(beacon(segments=[[27.5, 12.0]])), 400, 40010, "segments[0]"),
    Case("negative segment", player(beacon(segments=[[-1, 2]])), 400, 40010, "segments[0][0]"),
    Case("absurd segment", player(beacon(segments=[[0, 1e9]])), 400, 40010, "segments[0][1]"),
    Case("segment of three", player(beacon(segments=[[0, 1, 2]])), 400, 40010, "segments[0]"),
    Case("segment of strings", player(beacon(segments=[["0", "1"]])), 400, 40010, "segments[0][0]"),
    Case("segments not a list", player(beacon(segments="0-5")), 400, 40010, "segments"),
    Case(
        "NaN in a segment",
        lambda w: raw_post(
            w.http, json.dumps(w.beacon()).replace("[[0, 5]]", "[[0, NaN]]").encode()
        ),
        400,
        40010,
        "JSON",
    ),
    Case(
        "infinite number",
        lambda w: raw_post(
            w.http, json.dumps(w.beacon()).replace("[[0, 5]]", "[[0, 1e999]]").encode()
        ),
        400,
        40010,
        "JSON",
    ),
    Case("seq 0", player(beacon(seq=0)), 400, 40010, "seq"),
    Case("seq a string", player(beacon(seq="1")), 400, 40010, "seq"),
    Case("seq a float", player(beacon(seq=1.5)), 400, 40010, "seq"),
    Case("seq a boolean", player(beacon(seq=True)), 400, 40010, "seq"),
    Case("seq too large", player(beacon(seq=2**31)), 400, 40010, "seq"),
    Case("no seq", player(beacon(seq=None)), 400, 40010, "seq"),
    Case("playedMs negative", player(beacon(playedMs=-1)), 400, 40010, "playedMs"),
    Case("playedMs a float", player(beacon(playedMs=1.5)), 400, 40010, "playedMs"),
    Case("playedMs absurd", player(beacon(playedMs=10**13)), 400, 40010, "playedMs"),
    Case("sessionId short", player(beacon(sessionId="abc")), 400, 40010, "sessionId"),
    Case(
        "sessionId bad characters", player(beacon(sessionId="abc def ghi")), 400, 40010, "sessionId"
    ),
    Case("no sessionId", player(beacon(sessionId=None)), 400, 40010, "sessionId"),
    Case("unknown field", player(beacon(speed=2)), 400, 40010, "speed"),
    Case("rate 0", player(beacon(rate=0)), 400, 40010, "rate"),
    Case("rate above 16", player(beacon(rate=17)), 400, 40010, "rate"),
    Case("rate a string", player(beacon(rate="fast")), 400, 40010, "rate"),
    Case("hidden not a boolean", player(beacon(hidden=1)), 400, 40010, "hidden"),
    Case("player names an attempt", player(beacon(attemptId="a2")), 400, 40010, "attemptId"),
    Case("player names a userId", player(beacon(userId="someone-else")), 400, 40010, "userId"),
    Case("player sets startedAt", player(beacon(startedAt=1_700_000_000)), 400, 40010, "startedAt"),
    Case("ended not a boolean", player(beacon(ended="yes")), 400, 40010, "ended"),
    Case("duration 0 in a beacon", player(beacon(duration=0)), 400, 40010, "duration"),
    Case("position negative", player(beacon(position=-2)), 400, 40010, "position"),
    Case("beacon a number", lambda w: raw_post(w.http, 42), 400, 40010, "body"),
    Case("empty array", lambda w: raw_post(w.http, []), 400, 40010, "empty"),
    Case("array of numbers", lambda w: raw_post(w.http, [1, 2]), 400, 40010, "beacons[0]"),
    Case(
        "too many beacons",
        lambda w: raw_post(w.http, [w.beacon(seq=n) for n in range(1, 1002)]),
        413,
        41300,
        "1000",
    ),
    Case(
        "too many segments in one request",
        player(
            *(beacon(seq=n, segments=[[i, i + 0.001] for i in range(1000)]) for n in range(1, 12))
        ),
        413,
        41300,
        "10000",
    ),
    Case(
        "a visit of more than 1000 separate ranges",
        lambda w: w.post_server(
            [
                server_beacon("ragged-session", seq, asset_id=ASSET, segments=ranges)
                for seq, ranges in (
                    (1, [[2.0 * i, 2.0 * i + 1] for i in range(600)]),
                    (2, [[2.0 * i, 2.0 * i + 1] for i in range(600, 1200)]),
                )
            ]
        ),
        400,
        40010,
        "1000 separate ranges",
    ),
    Case(
        "body over 1 MiB", lambda w: raw_post(w.http, b" " * (1024 * 1024 + 1)), 413, 41300, "body"
    ),
    Case(
        "form content type",
        lambda w: raw_post(w.http, w.beacon(), "application/x-www-form-urlencoded"),
        400,
        40010,
        "Content-Type",
    ),
    Case(
        "second beacon bad: nothing stored",
        player(beacon(sessionId=EXISTING_SESSION, seq=2), beacon(seq=-1)),
        400,
        40010,
        "beacons[1].seq",
    ),
    Case(
        "a session of another viewer",
        lambda w: raw_post(
            w.http, w.beacon(sessionId=EXISTING_SESSION, seq=9, token=w.token(sub="王五"))
        ),
        400,
        40010,
        "sessionId",
    ),
    Case("tokens of two tenants", other_tenants_token, 400, 40010, "one tenant"),
    # -- server beacons ------------------------------------------------------------------
    Case("server beacon without userId", server(userId=None), 400, 40010, "userId"),
    Case("server beacon without assetId", server(assetId=None), 400, 40010, "assetId"),
    Case("server beacon with a token", server(token="x"), 400, 40010, "token"),
    Case("attemptId empty", server(attemptId=""), 400, 40010, "attemptId"),
    Case("attemptId too long", server(attemptId="a" * 65), 400, 40010, "attemptId"),
    Case("attemptId a number", server(attemptId=3), 400, 40010, "attemptId"),
    Case("startedAt before 2000", server(startedAt=900_000_000), 400, 40010, "startedAt"),
    Case("startedAt in the future", server(startedAt=4_000_000_000), 400, 40010, "startedAt"),
    Case("userId empty", server(userId=""), 400, 40010, "userId"),
    Case("userId with a slash", server(userId="a/b"), 400, 40010, "userId"),
    Case("userName too long", server(userName="x" * 600), 400, 40010, "userName"),
    Case(
        "server beacons unsigned",
        lambda w: w.signed("POST", "/vod/webapi/beacon", body=b"[]", Tk_token="AAAA"),
        401,
        40003,
        "invalid credentials",
    ),
    # -- routing -------------------------------------------------------------------------
    Case(
        "unknown endpoint",
        lambda w: w.http.get("/vod/webapi/nothing"),
        404,
        40400,
        "/vod/webapi/nothing",
    ),
    Case("wrong method", lambda w: w.http.delete(REPORT), 405, 40500, "DELETE"),
]


@pytest.fixture
def world(
    db: Database, http: TestClient, clock: FakeClock, client: VodwatchClient, tenant: Tenant
) -> World:
    client.put_media(ASSET, "Math 101", duration=269)
    token = client.playback_token("李四", ASSET, user_name="张三")
    client.send_player_beacons(
        {
            "token": token,
            "sessionId": EXISTING_SESSION,
            "seq": 1,
            "segments": [[0, 5]],
            "playedMs": 5000,
        }
    )
    other = client_for(http, add_tenant(db, "other"), clock)
    return World(http=http, client=client, tenant=tenant, other=other, clock=clock)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_error_path(case: Case, world: World, db: Database):
    before = snapshot(db)
    response = case.send(world)
    body = response.json()
    assert (response.status_code, body.get("result")) == (case.status, case.code), body
    assert set(body) == {"result", "msg"}
    assert isinstance(body["msg"], str)
    assert case.needle in body["msg"], body["msg"]
    assert snapshot(db) == before, "an error changed stored data"


def test_the_walk_covers_every_error_code():
    assert {case.code for case in CASES} >= {40001, 40002, 40003, 40010, 40400, 41300}
