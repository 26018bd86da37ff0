"""Fixtures for the browser tests: a real ``vodwatch serve``, a test video on a second (and a
third) origin, and headless Chromium driven by Playwright.

Everything is made once per session: the ~60 s WebM (ffmpeg), the servers, the browser. Each
test opens its own page and uses its own viewer id, so their report rows never mix.

Without Debian's ``chromium`` and ``ffmpeg`` (or the PyPI ``playwright``) the tests are skipped
with a message naming what to install; with ``VODWATCH_TEST_BROWSER=required`` (``.ci/run``
sets it) they fail instead, so CI never skips them silently.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.servers import Server, free_port
from vodwatch.client import VodwatchClient

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

MISSING_PACKAGES = (
    "browser tests need the Debian packages chromium and ffmpeg (apt-get install chromium ffmpeg)"
)
MISSING_PLAYWRIGHT = (
    "browser tests need the PyPI package playwright (it is in the dev extras: "
    "pip install -c constraints.txt -e '.[dev]'; never run 'playwright install')"
)
REQUIRE_ENV = "VODWATCH_TEST_BROWSER"
ASSET_ID = "browser-clip"
VIDEO_SECONDS = 60
HEARTBEAT_SECONDS = 2
CHROMIUM_FLAGS = [
    "--autoplay-policy=no-user-gesture-required",
    # Keep the browser off the network: it tries Google hosts despite every disable flag.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def missing_reason() -> str | None:
    if chromium_path() is None or shutil.which("ffmpeg") is None:
        return MISSING_PACKAGES
    if importlib.util.find_spec("playwright") is None:
        return MISSING_PLAYWRIGHT
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    reason = missing_reason()
    if reason is None or not browser_items:
        return
    if os.environ.get(REQUIRE_ENV) == "required":
        raise pytest.UsageError(f"{REQUIRE_ENV}=required, but {reason}")
    for item in browser_items:
        item.add_marker(pytest.mark.skip(reason=reason))


class StaticServer:
    """A directory over HTTP with range requests (Starlette's FileResponse): without them a
    browser cannot seek (``seekable`` is empty and ``currentTime`` snaps back to 0).

    ``POST /answer/503`` (any status) answers with that status and keeps the request body in
    ``answered``: a stand-in for a failing vodwatch where a test cannot route the request."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.answered: list[bytes] = []
        app = Starlette(
            routes=[
                Route("/answer/{status:int}", self.answer, methods=["POST"]),
                Mount("/", StaticFiles(directory=directory)),
            ]
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def answer(self, request: Request) -> Response:
        self.answered.append(await request.body())
        return Response(status_code=request.path_params["status"])

    def start(self) -> "StaticServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"static server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# A page on another origin that loads the tracker from the vodwatch server as a classic script
# and measures playing time from the media events, as demo.html does.
CROSS_ORIGIN_PAGE = """<!doctype html>
<meta charset="utf-8">
<video id="video" controls src="clip.webm"></video>
<script src="{vodwatch}/static/vodwatch.js"></script>
<script>
  const video = document.getElementById("video");
  const token = new URLSearchParams(location.search).get("token");
  const handle = vodwatch.track(video, {{endpoint: "{vodwatch}", token, heartbeatSeconds: 2}});
  let since = null, before = 0;
  const start = () => {{ if (since === null && !video.paused) since = performance.now(); }};
  const stop = () => {{ if (since !== null) before += performance.now() - since; since = null; }};
  video.addEventListener("playing", start);
  video.addEventListener("seeked", start);
  for (const name of ["pause", "waiting", "seeking", "ended"]) video.addEventListener(name, stop);
  const playingMs = () => Math.round(before + (since === null ? 0 : performance.now() - since));
  window.vodwatchDemo = {{video, handle, playingMs}};
</script>
"""


@dataclass
class Stage:
    """What the scenarios play on."""

    vodwatch: Server
    client: VodwatchClient
    authkey: str
    media: StaticServer  # the video, and a page on an origin the tenant allows
    other: StaticServer  # the same files on an origin nobody allows

    @property
    def video_url(self) -> str:
        return f"{self.media.origin}/clip.webm"

    def token(self, user_id: str) -> str:
        return self.client.playback_token(user_id, ASSET_ID, user_name=f"viewer {user_id}")

    def rows(self, user_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.client.watch_report(userId=user_id)["data"]["data"]
        return rows


def vodwatch_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "vodwatch", *args], check=True, capture_output=True, text=True
    )
    return done.stdout


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60 s WebM (VP8/Opus, 320x180 at 10 fps, ~1.4 MB; about a second to encode)."""
    directory = tmp_path_factory.mktemp("media")
    encode = (
        "ffmpeg -loglevel error -y"
        " -f lavfi -i testsrc2=size=320x180:rate=10"
        " -f lavfi -i sine=frequency=440:sample_rate=48000"
        f" -t {VIDEO_SECONDS}"
        " -c:v libvpx -deadline realtime -cpu-used 8 -b:v 150k"
        " -g 20"  # a keyframe every 2 s: seeks land quickly
        " -c:a libopus -b:a 24k"
    )
    subprocess.run([*encode.split(), str(directory / "clip.webm")], check=True)
    return directory


@pytest.fixture(scope="session")
def stage(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    media = StaticServer(media_dir).start()
    other = StaticServer(media_dir).start()
    work = tmp_path_factory.mktemp("vodwatch")
    database_url = f"sqlite:///{work / 'vodwatch.db'}"
    tenant = json.loads(
        vodwatch_cli("tenant", "create", "browser", "--json", "--database-url", database_url)
    )
    # Before the server starts, so it needs no cache expiry to see the allowance.
    vodwatch_cli(
        "tenant", "set-origins", tenant["authkey"], media.origin, "--database-url", database_url
    )
    vodwatch = Server(database_url, work)
    (media_dir / "page.html").write_text(CROSS_ORIGIN_PAGE.format(vodwatch=vodwatch.url))
    vodwatch.start()
    client = VodwatchClient(vodwatch.url, tenant["authkey"], tenant["secret"])
    client.put_media(ASSET_ID, "Browser test clip", duration=VIDEO_SECONDS)
    try:
        yield Stage(vodwatch, client, tenant["authkey"], media, other)
    finally:
        client.close()
        vodwatch.stop()
        media.stop()
        other.stop()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator["BrowserContext"]:
    """Debian's Chromium, headless, through Playwright's bundled driver (no download)."""
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("chromium-home")  # its crash and pulse folders go here
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(home / "profile"),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_FLAGS,
            env={**os.environ, "HOME": str(home)},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(autouse=True)
def fresh_storage(stage: Stage, browser_context: "BrowserContext") -> None:
    """Each test starts with an empty localStorage on the vodwatch origin: no queue and no
    backoff left by another test's pages (demo.html without a token starts no tracker)."""
    page = browser_context.new_page()
    page.goto(f"{stage.vodwatch.url}/static/demo.html")
    page.evaluate("localStorage.clear()")
    page.close()
