"""The dashboard, in process on both backends: signing in and out (CSRF, rate limits, cookie
flags, sessions that end), tenant isolation, the figures of each page against the API's for
the same data, the export, empty states, languages and their catalogs, and ``vodwatch user``."""

import gettext
import io
import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import openpyxl
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from starlette.testclient import TestClient

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import new_session_id, run, server_beacon
from tests.test_insights import csv_rows, export
from vodwatch.api.app import create_app
from vodwatch.client import VodwatchClient
from vodwatch.dashboard.languages import LOCALE_DIRECTORY, negotiate_language
from vodwatch.dashboard.present import json_script
from vodwatch.dashboard.sessions import safe_next
from vodwatch.rate_limits import Rate
from vodwatch.settings import ServiceSettings
from vodwatch.store.accounts import create_account, delete_account, set_password
from vodwatch.store.database import Database
from vodwatch.store.tenants import Tenant, create_tenant, set_disabled

PASSWORD = "correct horse battery"
EMAIL = "ana@example.org"
TEMPLATES = Path(__file__).parent.parent / "src/vodwatch/dashboard/templates"


# -- helpers -----------------------------------------------------------------------------------


def add_account(db: Database, tenant: Tenant, email: str = EMAIL, password: str = PASSWORD):
    with db.write() as conn:
        return create_account(conn, tenant.tenant_id, email, password, 1_000)


def form_token(http: TestClient, path: str = "/dashboard/login") -> str:
    page = http.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


def sign_in(
    http: TestClient, email: str = EMAIL, password: str = PASSWORD, next_path: str = ""
) -> Any:
    token = form_token(http)
    return http.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf_token": token, "next": next_path},
        follow_redirects=False,
    )


def signed_in(db: Database, tenant: Tenant, http: TestClient) -> TestClient:
    add_account(db, tenant)
    answer = sign_in(http)
    assert answer.status_code == 303, answer.text
    return http


def logout_token(http: TestClient) -> str:
    page = http.get("/dashboard").text
    token = re.search(r'action="/dashboard/logout".*?value="([^"]+)"', page, re.S)
    assert token is not None
    return token.group(1)


class Cells(HTMLParser):
    """The text of each element with a ``data-field`` attribute, grouped by the nearest
    enclosing element carrying ``key`` (``data-asset-id``, ``data-user-id``)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.rows: dict[str, dict[str, str]] = {}
        self.stack: list[tuple[str, str | None, str | None]] = []  # tag, row key, field
        self.texts: dict[tuple[str, str], list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        row = found.get(self.key) or (self.stack[-1][1] if self.stack else None)
        field = found.get("data-field")
        if row is not None and field is not None:
            if (row, field) in self.texts:  # the first one counts (a visit's, inside, not)
                field = None
            else:
                self.texts[row, field] = []
        elif self.stack and self.stack[-1][2] is not None:
            field = self.stack[-1][2]
        self.stack.append((tag, row, field))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][1] is not None and self.stack[-1][2] is not None:
            self.texts.setdefault((self.stack[-1][1], self.stack[-1][2]), []).append(data)

    @classmethod
    def of(cls, html: str, key: str) -> dict[str, dict[str, str]]:
        parser = cls(key)
        parser.feed(html)
        rows: dict[str, dict[str, str]] = {}
        for (row, field), texts in parser.texts.items():
            rows.setdefault(row, {})[field] = " ".join("".join(texts).split())
        return rows


def page_cells(html: str, key: str = "data-asset-id") -> dict[str, dict[str, str]]:
    return Cells.of(html, key)


def chart_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def watch(
    client: VodwatchClient,
    user: str,
    asset: str,
    segments: list[list[float]],
    name: str = "",
) -> None:
    played = int(sum(end - start for start, end in segments) * 1000)
    client.send_beacons(
        server_beacon(
            new_session_id(),
            1,
            user_id=user,
            asset_id=asset,
            segments=segments,
            played_ms=played,
            userName=name,
        )
    )


def some_viewing(client: VodwatchClient, clock: FakeClock) -> None:
    """Three videos (one with its own threshold, one never watched), four viewers."""
    client.put_media("a1", "数学 101", duration=100)
    client.put_media("a2", "Physics <b>II</b>", duration=200, completionThreshold=50)
    client.put_media("a3", "Unwatched", duration=60)
    watch(client, "u1", "a1", [[0, 95]], "张三")
    clock.advance(60)
    watch(client, "u2", "a1", [[0, 30]], "Li Si")
    clock.advance(60)
    watch(client, "u2", "a1", [[20, 60]], "Li Si")
    clock.advance(1)
    watch(client, "u2", "a2", [[0, 120]], "Li Si")
    clock.advance(60)
    watch(client, "u3", "a2", [[10, 20], [150, 170]])
    watch(client, "用户 4?#%", "a1", [[50, 100]], "Zoë")


# -- signing in and out ------------------------------------------------------------------------


def test_signed_out_pages_redirect_to_sign_in_and_come_back(
    db: Database, tenant: Tenant, http: TestClient
):
    add_account(db, tenant)
    for path in ("/dashboard", "/dashboard/videos/a1?sort=name", "/dashboard/viewers/u1"):
        answer = http.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/login?next=" + quote(path, safe="")
    answer = sign_in(http, next_path="/dashboard/videos/a1?sort=name")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/videos/a1?sort=name"
    # Signed in, the sign-in page sends on.
    assert http.get("/dashboard/login", follow_redirects=False).headers["location"] == "/dashboard"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard/videos/x?sort=name", "/dashboard/videos/x?sort=name"),
        ("/dashboard", "/dashboard"),
        ("//evil.example/dashboard", "/dashboard"),
        ("https://evil.example/dashboard", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("/dashboard\\..\\x", "/dashboard"),
        ("/dashboardevil", "/dashboard"),
        ("/vod/webapi/beacon", "/dashboard"),
        ("/dashboard/\nSet-Cookie:x", "/dashboard"),
        ("", "/dashboard"),
    ],
)
def test_only_dashboard_paths_are_followed_after_sign_in(target: str, expected: str):
    assert safe_next(target) == expected


def test_sign_in_with_the_right_and_wrong_passwords(db: Database, tenant: Tenant, http: TestClient):
    add_account(db, tenant)
    wrong = sign_in(http, password="wrong password")
    unknown = sign_in(http, email="nobody@example.org")
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "Wrong e-mail address or password." in answer.text
        assert "vodwatch_session" not in answer.headers.get("set-cookie", "")
    assert 'value="nobody@example.org"' in unknown.text  # kept in the form; never the password
    assert "wrong password" not in wrong.text
    assert sign_in(http, password="").status_code == 400
    right = sign_in(http, email="  ANA@Example.org ")
    assert right.status_code == 303
    page = http.get("/dashboard")
    assert page.status_code == 200
    assert EMAIL in page.text
    assert tenant.name in page.text


def test_session_cookie_flags(db: Database, tenant: Tenant, clock: FakeClock):
    add_account(db, tenant)
    app = create_app(db, clock=clock)
    with TestClient(app, base_url="https://testserver") as https:
        form = https.get("/dashboard/login?lang=zh").headers["set-cookie"]
        assert "vodwatch_form=" in form
        assert "Secure" in form
        assert "HttpOnly" in form
        cookie = sign_in(https).headers["set-cookie"]
        session = next(part for part in cookie.split(", vodwatch") if "session=" in part)
        assert "HttpOnly" in session
        assert "Secure" in session
        assert "SameSite=lax" in session
        assert "Path=/dashboard" in session
        assert "Max-Age=43200" in session
    with TestClient(app) as plain:
        cookie = sign_in(plain).headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "Secure" not in cookie


def test_forms_without_the_right_csrf_token_are_refused(
    db: Database, tenant: Tenant, http: TestClient
):
    add_account(db, tenant)
    form_token(http)  # the form's cookie is set
    credentials = {"email": EMAIL, "password": PASSWORD}
    for fields in (credentials, {**credentials, "csrf_token": "forged"}):
        answer = http.post("/dashboard/login", data=fields, follow_redirects=False)
        assert answer.status_code == 403
        assert "This form cannot be sent" in answer.text
    http.cookies.clear()  # a token without its cookie: a form from elsewhere
    answer = http.post("/dashboard/login", data={**credentials, "csrf_token": "x" * 32})
    assert answer.status_code == 403
    assert sign_in(http).status_code == 303
    with TestClient(http.app) as other:  # the token of another session is no good here
        assert sign_in(other).status_code == 303
        elsewhere = logout_token(other)
    for fields in ({}, {"csrf_token": "forged"}, {"csrf_token": elsewhere}):
        answer = http.post("/dashboard/logout", data=fields, follow_redirects=False)
        assert answer.status_code == 403
        assert http.get("/dashboard", follow_redirects=False).status_code == 200
    answer = http.post("/dashboard/logout", data={"csrf_token": logout_token(http)})
    assert answer.url.path == "/dashboard/login"
    assert http.get("/dashboard", follow_redirects=False).status_code == 303
    assert http.post("/dashboard/login", content=b"\xff", headers={}).status_code == 400


def test_sign_in_attempts_are_rate_limited_per_account_and_address(
    db: Database, tenant: Tenant, clock: FakeClock
):
    add_account(db, tenant)
    add_account(db, tenant, "bo@example.org")
    settings = ServiceSettings(dashboard_login_rate=Rate(3, 60.0))
    with TestClient(create_app(db, clock=clock, settings=settings)) as http:
        for _ in range(3):
            assert sign_in(http, password="guess guess").status_code == 401
        refused = sign_in(http)  # the right password, too late
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 60
        assert f"Try again in {refused.headers['Retry-After']} second" in refused.text
        assert "vodwatch_session" not in refused.headers.get("set-cookie", "")
        # The address is spent as well: another account from it waits too.
        assert sign_in(http, email="bo@example.org").status_code == 429
    with TestClient(
        create_app(db, clock=clock, settings=settings), client=("192.0.2.7", 50000)
    ) as elsewhere:
        assert sign_in(elsewhere, email="bo@example.org").status_code == 303


def test_a_new_password_a_deleted_account_or_a_disabled_tenant_ends_sessions(
    db: Database, tenant: Tenant, http: TestClient, clock: FakeClock
):
    signed_in(db, tenant, http)
    assert http.get("/dashboard", follow_redirects=False).status_code == 200
    with db.write() as conn:
        set_password(conn, EMAIL, "another long password", 2_000)
    assert http.get("/dashboard", follow_redirects=False).status_code == 303
    assert sign_in(http, password="another long password").status_code == 303
    with db.write() as conn:
        delete_account(conn, EMAIL)
    assert http.get("/dashboard", follow_redirects=False).status_code == 303

    add_account(db, tenant)
    assert sign_in(http).status_code == 303
    with db.write() as conn:
        set_disabled(conn, tenant.authkey, 3_000, is_disabled=True)
    assert http.get("/dashboard", follow_redirects=False).status_code == 303
    refused = sign_in(http)
    assert refused.status_code == 403
    assert "Your organization is disabled" in refused.text
    with db.write() as conn:
        set_disabled(conn, tenant.authkey, 3_000, is_disabled=False)
    assert http.get("/dashboard", follow_redirects=False).status_code == 200
    clock.advance(12 * 3600 + 1)  # the session's lifetime
    assert http.get("/dashboard", follow_redirects=False).status_code == 303


def test_another_tenants_videos_and_viewers_are_not_found(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    other = add_tenant(db, "other")
    theirs = client_for(http, other, clock)
    theirs.put_media("their-video", "Secret", duration=10)
    watch(theirs, "their-viewer", "their-video", [[0, 5]])
    client.put_media("a1", "Mine", duration=10)
    signed_in(db, tenant, http)
    for path in (
        "/dashboard/videos/their-video",
        "/dashboard/videos/their-video/export?format=csv",
        "/dashboard/viewers/their-viewer",
        "/dashboard/videos/nothing-at-all",
        "/dashboard/viewers/nobody",
        "/dashboard/videos/%00",
        "/dashboard/no-such-page",
    ):
        answer = http.get(path)
        assert answer.status_code == 404, path
        assert "There is no such video, viewer or page in your organization." in answer.text
        assert "Secret" not in answer.text
    assert 'id="no-match"' in http.get("/dashboard?q=Secret").text


def test_bad_parameters_are_answered_with_a_400_page(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    some_viewing(client, clock)
    signed_in(db, tenant, http)
    for path in (
        "/dashboard?sort=bogus",
        "/dashboard?order=sideways",
        "/dashboard?page=0",
        "/dashboard?page=x",
        "/dashboard/videos/a1?sort=percent&order=up",
        "/dashboard/videos/a1?page=-1",
        "/dashboard/viewers/u1?page=99999999999",
        "/dashboard/videos/a1/export?format=pdf",
    ):
        answer = http.get(path)
        assert answer.status_code == 400, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "the page cannot show" in answer.text


def test_pages_carry_the_security_headers(db: Database, tenant: Tenant, http: TestClient):
    signed_in(db, tenant, http)
    for path in ("/dashboard", "/dashboard/login", "/dashboard/nothing"):
        headers = http.get(path).headers
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "script-src 'self';" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"
    page = http.get("/dashboard").text
    assert re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))", page) is None
    assert "/dashboard" not in json.dumps(http.get("/openapi.json").json()["paths"])


def test_nothing_secret_is_logged(
    db: Database, tenant: Tenant, http: TestClient, caplog: pytest.LogCaptureFixture
):
    add_account(db, tenant)
    with caplog.at_level(logging.INFO, logger="vodwatch.access"):
        sign_in(http)
        http.get("/dashboard/viewers/%E6%9D%8E%E5%9B%9B")
    text = "\n".join(str(vars(record)) for record in caplog.records)
    assert "/dashboard/login" in text
    assert "/dashboard/viewers/…" in text
    for secret in (PASSWORD, http.cookies["vodwatch_session"], "李四", "csrf"):
        assert secret not in text


# -- the figures -------------------------------------------------------------------------------


def test_the_videos_page_shows_the_apis_figures(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    some_viewing(client, clock)
    signed_in(db, tenant, http)
    for sort in ("lastVisit", "viewers", "title", "completionRate", "coverage"):
        for order in ("asc", "desc"):
            page = http.get(f"/dashboard?sort={sort}&order={order}").text
            api = client.videos(sort=sort, order=order)["data"]
            cells = page_cells(page)
            assert list(cells) == [row["assetId"] for row in api["data"]], (sort, order)
            for row in api["data"]:
                shown = cells[row["assetId"]]
                assert shown["videoTitle"] == row["videoTitle"]
                assert shown["viewers"] == str(row["viewers"])
                assert shown["visits"] == str(row["visits"])
                assert shown["visitTime"] == row["visitTime"]
                assert shown["meanCoverage"] == row["meanCoverage"]
                assert shown["completionRate"].startswith(row["completionRate"])
                assert (
                    f"{row['completedViewers']} of {row['viewers']} reached"
                    in shown["completionRate"]
                )
    page = http.get("/dashboard?q=phys").text
    assert list(page_cells(page)) == ["a2"]
    assert "Physics &lt;b&gt;II&lt;/b&gt;" in page  # escaped
    # The header of the sorted column sorts the other way round; the others start high.
    assert 'href="/dashboard?q=phys&amp;sort=title&amp;order=asc"' in page
    assert 'aria-sort="descending"' in page
    sorted_page = http.get("/dashboard?sort=viewers&order=desc").text
    assert 'href="/dashboard?sort=viewers&amp;order=asc"' in sorted_page


def test_the_video_page_shows_the_apis_figures(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    some_viewing(client, clock)
    signed_in(db, tenant, http)
    page = http.get("/dashboard/videos/a1").text
    summary = next(row for row in client.videos()["data"]["data"] if row["assetId"] == "a1")
    shown = page_cells(page, "id")["summary"]
    for field in ("viewers", "visits", "visitTime", "meanCoverage", "completionRate"):
        assert shown[field] == str(summary[field]), field
    retention = client.retention("a1")["data"]
    data = chart_data(page)
    assert (data["viewers"], data["views"], data["distribution"]) == (
        retention["viewers"],
        retention["views"],
        retention["distribution"],
    )
    assert data["x"] == [i * 100 // 100 for i in range(100)]  # bucket starts, seconds
    assert 'id="threshold" data-value="90"' in page
    assert "Completed at 90%" in page
    viewers = page_cells(page, "data-user-id")
    assert set(viewers) == {"u1", "u2", "用户 4?#%"}
    for user_id, row in viewers.items():
        api = client.viewer(user_id, "a1")["data"]
        assert (row["visitRadio"], row["visitTime"], row["visits"]) == (
            api["visitRadio"],
            api["visitTime"],
            str(len(api["visits"])),
        )
    assert f'href="/dashboard/viewers/{quote("用户 4?#%", safe="")}"' in page
    # Sorted by percent, most first; by name, in code point order.
    by_percent = page_cells(
        http.get("/dashboard/videos/a1?sort=percent&order=desc").text, "data-user-id"
    )
    assert list(by_percent) == ["u1", "u2", "用户 4?#%"]  # 95 %, 60 %, 50 %
    by_name = page_cells(http.get("/dashboard/videos/a1?sort=name&order=asc").text, "data-user-id")
    assert list(by_name) == ["u2", "用户 4?#%", "u1"]  # Li Si, Zoë, 张三
    assert 'data-intervals="1"' in page  # a heatmap strip drew a covered interval
    other = http.get("/dashboard/videos/a2").text
    assert "Completed at 50%" in other


def test_the_viewer_page_shows_the_apis_figures(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    some_viewing(client, clock)
    signed_in(db, tenant, http)
    page = http.get("/dashboard/viewers/u2").text
    assert "Li Si" in page
    cells = page_cells(page)
    assert list(cells) == ["a2", "a1"]  # latest visit first
    for asset_id, shown in cells.items():
        api = client.viewer("u2", asset_id)["data"]
        assert shown["visitRadio"] == api["visitRadio"]
        assert shown["visitTime"] == api["visitTime"]
        assert shown["visits"] == str(len(api["visits"]))
        completed = re.search(
            rf'data-asset-id="{asset_id}".*?data-completed="(true|false)"', page, re.S
        )
        assert completed is not None
        assert completed.group(1) == str(api["completed"]).lower()
    sessions = re.findall(r'data-session-id="([^"]+)"', page)
    assert len(sessions) == 3
    summary = page_cells(page, "id")["summary"]
    assert summary["videos"] == "2"
    quoted = http.get("/dashboard/viewers/" + quote("用户 4?#%", safe=""))
    assert quoted.status_code == 200
    assert "Zoë" in quoted.text


def test_the_export_is_the_apis_export_of_that_video(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    some_viewing(client, clock)
    client.put_media("a1-sequel", "About a1", duration=10)  # its title contains "a1"
    watch(client, "u9", "a1-sequel", [[0, 10]])
    signed_in(db, tenant, http)
    answer = http.get("/dashboard/videos/a1/export?format=csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="vodwatch-a1-')
    assert answer.headers["cache-control"] == "no-store"
    rows = csv_rows(answer)
    api = csv_rows(export(client, videoInfo="a1", groupBy="userVideo"))
    assert rows[0] == api[0]
    assert rows[1:] == [row for row in api[1:] if row[2] == "a1"]
    assert len(rows) == 4
    xlsx = http.get("/dashboard/videos/a1/export?format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    cells = [
        [str(cell).lower() if isinstance(cell, bool) else str(cell) for cell in row]
        for row in sheet.iter_rows(values_only=True)
    ]
    assert cells == rows
    signed_out = TestClient(http.app)
    assert signed_out.get("/dashboard/videos/a1/export", follow_redirects=False).status_code == 303


def test_empty_states_say_what_to_do(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    signed_in(db, tenant, http)
    page = http.get("/dashboard").text
    assert 'id="empty-videos"' in page
    assert "PUT http://testserver/vod/webapi/media/ASSET_ID" in page
    assert "http://testserver/static/vodwatch.js" in page
    client.put_media("a3", "Unwatched", duration=60)
    page = http.get("/dashboard/videos/a3").text
    assert 'id="no-viewers"' in page
    assert "/vod/webapi/media/a3" in page
    watch(client, "u1", "a1", [[0, 5]])
    page = http.get("/dashboard?q=nothing like it").text
    assert 'id="no-match"' in page
    assert "No video matches “nothing like it”" in page
    # A video whose duration is unknown: no curve, but the distribution.
    page = http.get("/dashboard/videos/a1").text
    assert 'id="retention-unknown"' in page
    assert 'id="distribution-chart"' in page


def test_the_demo_tenant_says_its_data_is_made_up(db: Database, http: TestClient):
    with db.write() as conn:
        demo = create_tenant(conn, db.secret_box, "Demo", 1_000, is_demo=True)
    signed_in(db, demo, http)
    for path in ("/dashboard", "/dashboard/nothing"):
        page = http.get(path).text
        assert 'id="demo-banner"' in page
        assert "vodwatch demo --remove" in page


def test_the_chart_data_cannot_end_its_element():
    block = str(json_script("d", {"title": "</script><script>alert(1)</script>&"}))
    assert block.count("</script>") == 1
    inner = block.removeprefix('<script type="application/json" id="d">').removesuffix("</script>")
    assert json.loads(inner) == {"title": "</script><script>alert(1)</script>&"}


# -- languages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_Hans"),
        ("zh-Hans", "zh_Hans"),
        ("zh-TW", "zh_Hans"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, zh;q=0.5", "zh_Hans"),
        ("en;q=0.3, zh;q=0.8", "zh_Hans"),
        ("zh;q=0, en", "en"),
        ("de, fr", "en"),
        ("*", "en"),
        ("", "en"),
        ("zh;q=bogus, en", "en"),
    ],
)
def test_the_language_follows_accept_language(header: str, expected: str):
    assert negotiate_language(header).catalog == expected


def test_pages_speak_chinese_or_english_and_the_switch_is_remembered(
    db: Database, tenant: Tenant, http: TestClient, client: VodwatchClient, clock: FakeClock
):
    some_viewing(client, clock)
    login = http.get("/dashboard/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert '<html lang="zh-Hans">' in login
    assert "登录 vodwatch" in login
    assert "邮箱地址或密码错误" in sign_in_wrong(http, {"Accept-Language": "zh-CN"})
    signed_in(db, tenant, http)
    chinese = {"Accept-Language": "zh-CN"}
    for path, text in (
        ("/dashboard", "平均完整度"),
        ("/dashboard/videos/a1", "完整度分布"),
        ("/dashboard/viewers/u2", "看过的视频"),
        ("/dashboard/nothing", "未找到"),
    ):
        page = http.get(path, headers=chinese).text
        assert '<html lang="zh-Hans">' in page, path
        assert text in page, path
        assert 'href="' + path + '?lang=en"' in page  # the switch, on every page
    english = http.get("/dashboard?lang=en", headers=chinese)
    assert '<html lang="en">' in english.text
    assert "Mean coverage" in english.text
    assert "vodwatch_lang=en" in english.headers["set-cookie"]
    assert '<html lang="en">' in http.get("/dashboard/videos/a1", headers=chinese).text
    assert '<html lang="zh-Hans">' in http.get("/dashboard?lang=zh").text
    assert '<html lang="zh-Hans">' in http.get("/dashboard").text
    switch = http.get("/dashboard?sort=title&order=asc").text
    assert 'href="/dashboard?sort=title&amp;order=asc&amp;lang=en"' in switch


def sign_in_wrong(http: TestClient, headers: dict[str, str]) -> str:
    token = form_token(http)
    answer = http.post(
        "/dashboard/login",
        data={"email": EMAIL, "password": "wrong wrong", "csrf_token": token},
        headers=headers,
    )
    return answer.text


def catalog_files() -> list[Path]:
    return sorted(LOCALE_DIRECTORY.glob("*/LC_MESSAGES/messages.po"))


def test_every_compiled_catalog_matches_its_po_file():
    """``make messages`` compiles them; a .po edited without it fails here."""
    assert [path.parent.parent.name for path in catalog_files()] == ["en", "zh_Hans"]
    for po_path in catalog_files():
        with po_path.open("rb") as po:
            catalog = read_po(po)
        expected: dict[object, str] = {}
        for message in catalog:
            message_id: Any = message.id
            strings: Any = message.string
            if not message_id or message.fuzzy:
                continue
            if isinstance(message_id, str):
                if strings:
                    expected[message_id] = strings
            else:  # as babel compiles them: a missing plural form falls back to the msgid
                for index, text in enumerate(strings):
                    expected[(message_id[0], index)] = text or message_id[min(index, 1)]
        with po_path.with_suffix(".mo").open("rb") as mo:
            compiled = gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]
        compiled = {key: value for key, value in compiled.items() if key != ""}
        assert compiled == expected, f"{po_path.with_suffix('.mo')} is stale: run make messages"


def test_every_text_of_the_templates_has_a_chinese_translation():
    with (TEMPLATES.parent / "babel.cfg").open() as config:
        method_map, options = parse_mapping_cfg(config)
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(
            TEMPLATES.parent, method_map=method_map, options_map=options
        )
    }
    assert len(extracted) > 50
    with (LOCALE_DIRECTORY / "zh_Hans/LC_MESSAGES/messages.po").open("rb") as po:
        catalog = read_po(po)
    for message_id in extracted:
        key = message_id if isinstance(message_id, str) else message_id[0]
        message = catalog.get(key)
        assert message is not None, f"{message_id!r} is not in the zh_Hans catalog"
        assert not message.fuzzy, f"{message_id!r} is fuzzy"
        translated: Any = message.string
        strings = [translated] if isinstance(translated, str) else translated
        assert all(strings), f"{message_id!r} has no zh_Hans translation"


# -- vodwatch user -----------------------------------------------------------------------------


def test_the_user_command(database_url: str, db: Database, tenant: Tenant, clock: FakeClock):
    url = ("--database-url", database_url)
    out = run(
        "user",
        "create",
        "--tenant",
        tenant.authkey,
        "Ana@Example.org",
        "--password-stdin",
        *url,
        input=PASSWORD + "\n",
    )
    assert "ana@example.org" in out
    assert tenant.name in out
    taken = run(
        "user",
        "create",
        "--tenant",
        tenant.authkey,
        EMAIL,
        "--password-stdin",
        *url,
        input=PASSWORD + "\n",
        ok=False,
    )
    assert "exists already" in taken
    assert "at least 8 characters" in run(
        "user",
        "create",
        "--tenant",
        tenant.authkey,
        "b@example.org",
        "--password-stdin",
        *url,
        input="short\n",
        ok=False,
    )
    assert "no tenant with the authkey" in run(
        "user",
        "create",
        "--tenant",
        "tk_nope",
        "b@example.org",
        "--password-stdin",
        *url,
        input=PASSWORD + "\n",
        ok=False,
    )
    assert "not an e-mail address" in run(
        "user", "create", "--tenant", tenant.authkey, "not-an-address", *url, ok=False
    )
    assert "no password" in run(
        "user",
        "create",
        "--tenant",
        tenant.authkey,
        "b@example.org",
        "--password-stdin",
        *url,
        input="\n",
        ok=False,
    )
    prompted = run(
        "user",
        "create",
        "--tenant",
        tenant.authkey,
        "c@example.org",
        *url,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert PASSWORD not in prompted
    listed = json.loads(run("user", "list", "--json", *url, stdout_only=True))
    assert [(row["email"], row["tenant"]) for row in listed] == [
        ("ana@example.org", tenant.authkey),
        ("c@example.org", tenant.authkey),
    ]
    other = add_tenant(db, "other")
    assert (
        json.loads(run("user", "list", "--tenant", other.authkey, "--json", *url, stdout_only=True))
        == []
    )
    assert "no tenant" in run("user", "list", "--tenant", "tk_nope", *url, ok=False)
    assert "ana@example.org\t" in run("user", "list", *url)

    with TestClient(create_app(db, clock=clock)) as http:
        assert sign_in(http).status_code == 303
        run("user", "set-password", EMAIL, "--password-stdin", *url, input="a new long password\n")
        assert http.get("/dashboard", follow_redirects=False).status_code == 303
        assert sign_in(http, password="a new long password").status_code == 303
        assert "no account" in run(
            "user",
            "set-password",
            "x@example.org",
            "--password-stdin",
            *url,
            input=PASSWORD + "\n",
            ok=False,
        )
        run("user", "delete", EMAIL, *url)
        assert http.get("/dashboard", follow_redirects=False).status_code == 303
    assert "no account" in run("user", "delete", EMAIL, *url, ok=False)
