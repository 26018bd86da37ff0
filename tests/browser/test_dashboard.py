"""The dashboard in headless Chromium, against the real ``vodwatch serve`` of the browser tests:
signing in (and a wrong password), each page in English and Chinese with its figures checked
against the API's, the charts drawn, a CSV download, a form posted without its CSRF token,
another tenant's video. A full-page screenshot of each page goes to ``test-output/dashboard/``
(with data and empty, in both languages) for someone to look at.
"""

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from tests.browser.conftest import Stage
from tests.helpers import new_session_id, server_beacon
from vodwatch.client import VodwatchClient

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).parents[2] / "test-output" / "dashboard"
PASSWORD = "browser test password"
LANGUAGES = ("en", "zh")
MATH, PHYSICS, UNWATCHED = "dash-math", "dash-physics", "dash-unwatched"
VIEWER = "dash-u1"
# Who watched what, in seconds of media: (user, name, asset, segments).
VIEWING: list[tuple[str, str, str, list[list[float]]]] = [
    (VIEWER, "张三", MATH, [[0, 540]]),
    (VIEWER, "张三", MATH, [[300, 600]]),
    ("dash-u2", "Li Si", MATH, [[0, 120], [400, 460]]),
    ("dash-u3", "Zoë Martin", MATH, [[0, 360]]),
    ("dash-u4", "王五", MATH, [[0, 30]]),
    (VIEWER, "张三", PHYSICS, [[0, 900], [1200, 1500]]),
    ("dash-u2", "Li Si", PHYSICS, [[0, 1800]]),
]


@dataclass
class Accounts:
    """Two tenants' accounts: one with viewing, one without any."""

    email: str
    empty_email: str


def vodwatch(database_url: str, *args: str, password: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "vodwatch", *args, "--database-url", database_url],
        input=password,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def accounts(stage: Stage) -> Iterator[Accounts]:
    url = stage.vodwatch.database_url
    client = stage.client
    client.put_media(MATH, "数学 101 · 函数与图像", duration=600)
    client.put_media(PHYSICS, "Physics: waves and sound", duration=1800, completionThreshold=75)
    client.put_media(UNWATCHED, "Chemistry 1", duration=900)
    for user_id, name, asset_id, segments in VIEWING:
        played = int(sum(end - start for start, end in segments) * 1000)
        client.send_beacons(
            server_beacon(
                new_session_id(),
                1,
                user_id=user_id,
                asset_id=asset_id,
                segments=segments,
                played_ms=played,
                userName=name,
            )
        )
    email = "dashboard@example.org"
    vodwatch(
        url,
        "user",
        "create",
        "--tenant",
        stage.authkey,
        email,
        "--password-stdin",
        password=PASSWORD + "\n",
    )
    empty = json.loads(vodwatch(url, "tenant", "create", "Empty school", "--json"))
    empty_email = "empty@example.org"
    vodwatch(
        url,
        "user",
        "create",
        "--tenant",
        empty["authkey"],
        empty_email,
        "--password-stdin",
        password=PASSWORD + "\n",
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield Accounts(email, empty_email)
    for address in (email, empty_email):
        vodwatch(url, "user", "delete", address)


def sign_in(page: "Page", stage: Stage, email: str, language: str) -> None:
    page.goto(f"{stage.vodwatch.url}/dashboard/login?lang={language}")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form.stacked button[type=submit]")
    assert page.url == f"{stage.vodwatch.url}/dashboard"


def sign_out(page: "Page") -> None:
    with page.expect_navigation():
        page.click("form.sign-out button")
    assert page.url.endswith("/dashboard/login")


def shoot(page: "Page", name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def field(page: "Page", row: str, name: str) -> str:
    return " ".join(page.locator(f'{row} [data-field="{name}"]').first.inner_text().split())


def painted_pixels(page: "Page", chart_id: str) -> int:
    """How many pixels of the chart's canvas are not transparent."""
    return int(
        page.evaluate(
            """(id) => {
                const canvas = document.querySelector(`#${id} canvas`);
                const data = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
                return painted;
            }""",
            chart_id,
        )
    )


def new_page(browser_context: "BrowserContext") -> "Page":
    """A page signed out (whatever an earlier test left), its script errors collected."""
    browser_context.clear_cookies()
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.errors = errors  # type: ignore[attr-defined]
    return page


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_shows_the_apis_figures(
    stage: Stage, browser_context: "BrowserContext", accounts: Accounts, language: str
) -> None:
    page = new_page(browser_context)
    client = stage.client
    page.goto(f"{stage.vodwatch.url}/dashboard/login?lang={language}")
    shoot(page, f"login-{language}")
    sign_in(page, stage, accounts.email, language)
    expected_lang = "zh-Hans" if language == "zh" else "en"
    assert page.get_attribute("html", "lang") == expected_lang

    # The videos.
    for row in client.videos(pageSize=100)["data"]["data"]:
        selector = f'tr[data-asset-id="{row["assetId"]}"]'
        for name in ("viewers", "visits", "visitTime"):
            assert field(page, selector, name) == str(row[name])
        assert field(page, selector, "meanCoverage") == row["meanCoverage"]
        assert field(page, selector, "completionRate").startswith(row["completionRate"])
    assert page.locator("time[data-local]").count() > 0  # shown in the browser's time zone
    shoot(page, f"videos-{language}")

    # One video: its figures, its charts, its viewers.
    with page.expect_navigation():
        page.click(f'tr[data-asset-id="{MATH}"] a')
    summary = next(r for r in client.videos()["data"]["data"] if r["assetId"] == MATH)
    for name in ("viewers", "visits", "visitTime", "meanCoverage", "completionRate"):
        assert field(page, "#summary", name) == str(summary[name])
    retention = client.retention(MATH)["data"]
    page.wait_for_selector("#retention-chart[data-points] canvas")
    page.wait_for_selector("#distribution-chart[data-points] canvas")
    assert page.get_attribute("#retention-chart", "data-points") == str(len(retention["viewers"]))
    assert page.get_attribute("#distribution-chart", "data-points") == "10"
    assert painted_pixels(page, "retention-chart") > 1000
    assert painted_pixels(page, "distribution-chart") > 1000
    for user_id in ("dash-u1", "dash-u2", "dash-u3", "dash-u4"):
        api = client.viewer(user_id, MATH)["data"]
        selector = f'tr[data-user-id="{user_id}"]'
        assert field(page, selector, "visitRadio") == api["visitRadio"]
        assert field(page, selector, "visitTime") == api["visitTime"]
    shoot(page, f"video-{language}")

    # One viewer: every video they watched.
    with page.expect_navigation():
        page.click(f'tr[data-user-id="{VIEWER}"] a')
    assert page.url.endswith("/dashboard/viewers/" + quote(VIEWER, safe=""))
    for asset_id in (MATH, PHYSICS):
        api = client.viewer(VIEWER, asset_id)["data"]
        selector = f'section[data-asset-id="{asset_id}"]'
        assert field(page, selector, "visitRadio") == api["visitRadio"]
        assert field(page, selector, "visitTime") == api["visitTime"]
        assert field(page, selector, "visits") == str(len(api["visits"]))
    shoot(page, f"viewer-{language}")
    assert page.errors == []  # type: ignore[attr-defined]
    sign_out(page)
    page.close()


def test_a_wrong_password_a_forged_form_and_another_tenants_video(
    stage: Stage, browser_context: "BrowserContext", accounts: Accounts
) -> None:
    page = new_page(browser_context)
    page.goto(f"{stage.vodwatch.url}/dashboard/login?lang=en")
    page.fill("#email", accounts.email)
    page.fill("#password", "not the password")
    with page.expect_response(lambda answer: answer.request.method == "POST") as answered:
        page.click("form.stacked button[type=submit]")
    assert answered.value.status == 401
    assert "Wrong e-mail address or password." in page.inner_text("#sign-in-problem")
    shoot(page, "login-wrong-password-en")

    sign_in(page, stage, accounts.email, "en")
    forged = page.request.post(f"{stage.vodwatch.url}/dashboard/logout", form={"x": "1"})
    assert forged.status == 403
    page.reload()
    assert page.locator("form.sign-out").count() == 1  # still signed in
    sign_out(page)

    sign_in(page, stage, accounts.empty_email, "en")
    answer = page.goto(f"{stage.vodwatch.url}/dashboard/videos/{MATH}")
    assert answer is not None
    assert answer.status == 404
    assert "There is no such video" in page.inner_text("#error")
    sign_out(page)
    page.close()


def test_a_csv_download(
    stage: Stage, browser_context: "BrowserContext", accounts: Accounts
) -> None:
    page = new_page(browser_context)
    sign_in(page, stage, accounts.email, "en")
    page.goto(f"{stage.vodwatch.url}/dashboard/videos/{MATH}")
    with page.expect_download() as download:
        page.click('a[href$="format=csv"]')
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(path).read_text("utf-8-sig"), newline="")))
    api = export_rows(stage.client, MATH)
    assert rows == api
    assert len(rows) == 5  # the header and four viewers
    sign_out(page)
    page.close()


def export_rows(client: VodwatchClient, asset_id: str) -> list[list[str]]:
    text = client.export("csv", videoInfo=asset_id, groupBy="userVideo").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [rows[0], *(row for row in rows[1:] if row[2] == asset_id)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_empty_pages(
    stage: Stage, browser_context: "BrowserContext", accounts: Accounts, language: str
) -> None:
    page = new_page(browser_context)
    sign_in(page, stage, accounts.empty_email, language)
    assert page.locator("#empty-videos").count() == 1
    assert f"{stage.vodwatch.url}/static/vodwatch.js" in page.inner_text("#empty-videos")
    shoot(page, f"videos-empty-{language}")
    page.goto(f"{stage.vodwatch.url}/dashboard?q=nothing")
    assert page.locator("#no-match").count() == 1
    sign_out(page)
    sign_in(page, stage, accounts.email, language)
    page.goto(f"{stage.vodwatch.url}/dashboard?q=no+such+title")
    assert page.locator("#no-match").count() == 1
    shoot(page, f"videos-no-match-{language}")
    page.goto(f"{stage.vodwatch.url}/dashboard/videos/{UNWATCHED}")
    assert page.locator("#no-viewers").count() == 1
    shoot(page, f"video-empty-{language}")
    sign_out(page)
    page.close()
