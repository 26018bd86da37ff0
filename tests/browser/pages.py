"""Driving the tracker's pages in the browser tests: open a page, play, measure what the
browser saw, compare with the report; and the network between the pages and vodwatch
(``BeaconRoute``), answered by the real server or with a failure the test chooses."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tests.browser.conftest import HEARTBEAT_SECONDS, VIDEO_SECONDS, Stage

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Route

TOLERANCE_MS = HEARTBEAT_SECONDS * 1000
BEACON_URLS = "**/vod/webapi/beacon"

# Pauses the video (the tracker and the page both stop counting at the `pause` event), waits
# until every beacon in flight has been answered, then reads what the browser measured.
FINISH = """async () => {
  const { video, handle, playingMs } = window.vodwatchDemo;
  if (!video.paused) {
    const paused = new Promise((resolve) => {
      video.addEventListener("pause", resolve, { once: true });
    });
    video.pause();
    await paused;
  }
  await handle.flush();
  return measure();
}"""

# What the browser says was played: `video.played` and the page's own playing time.
MEASURE = """() => {
  window.measure = () => {
    const { video, handle, playingMs } = window.vodwatchDemo;
    const ranges = [];
    for (let i = 0; i < video.played.length; i++) {
      ranges.push([video.played.start(i), video.played.end(i)]);
    }
    return { ranges, playingMs: playingMs(), sessionId: handle.sessionId };
  };
}"""

# The beacons in the tracker's localStorage queues (one per page, or the shared array of
# earlier versions) on the page's origin, as "sessionId seq".
QUEUED = """() => {
  const queued = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key !== "vodwatch:queue" && !key.startsWith("vodwatch:queue:")) continue;
    const value = JSON.parse(localStorage.getItem(key));
    for (const item of Array.isArray(value) ? value : value.items) {
      queued.push(item.b.sessionId + " " + item.b.seq);
    }
  }
  return queued;
}"""

# What makes the tracker see a hidden (or visible again) page: headless pages stay visible,
# so the state is overridden on the document and the event dispatched as the browser would.
SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@dataclass
class Measured:
    ranges: list[list[float]]
    playing_ms: int
    session_id: str

    @property
    def played_ms(self) -> int:
        """Total length of the played ranges, clamped to the catalog duration."""
        return round(
            sum(max(0.0, min(end, VIDEO_SECONDS) - start) for start, end in self.ranges) * 1000
        )


def measured(value: dict[str, Any]) -> Measured:
    return Measured(value["ranges"], value["playingMs"], value["sessionId"])


def open_page(
    context: "BrowserContext",
    url: str,
    console: list[str] | None = None,
    init_script: str | None = None,
) -> "Page":
    page = context.new_page()
    if console is not None:
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    if init_script is not None:
        page.add_init_script(init_script)
    page.goto(url)
    page.wait_for_function("window.vodwatchDemo && window.vodwatchDemo.video.readyState >= 1")
    page.evaluate(MEASURE)
    return page


def demo_url(stage: Stage, user_id: str, heartbeat: float = HEARTBEAT_SECONDS) -> str:
    """demo.html from the vodwatch server (the tracker as an ES module, same origin)."""
    query = urlencode(
        {"src": stage.video_url, "token": stage.token(user_id), "heartbeat": heartbeat}
    )
    return f"{stage.vodwatch.url}/static/demo.html?{query}"


def open_demo(
    stage: Stage,
    context: "BrowserContext",
    user_id: str,
    heartbeat: float = HEARTBEAT_SECONDS,
    init_script: str | None = None,
) -> "Page":
    return open_page(context, demo_url(stage, user_id, heartbeat), init_script=init_script)


def token_of(page: "Page") -> str:
    token: str = page.evaluate("new URLSearchParams(location.search).get('token')")
    return token


def play(page: "Page", seconds: float) -> None:
    page.evaluate("window.vodwatchDemo.video.play()")  # resolves once playback has started
    page.wait_for_timeout(seconds * 1000)


def finish(page: "Page") -> Measured:
    result = measured(page.evaluate(FINISH))
    page.close()
    return result


def queued(page: "Page") -> list[str]:
    beacons: list[str] = page.evaluate(QUEUED)
    return beacons


def wait_until(page: "Page", condition: Callable[[], bool], timeout: float) -> bool:
    """Polls ``condition`` for up to ``timeout`` seconds, letting the page's events (and
    route handlers) run meanwhile: Playwright's sync API runs them only while it waits."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(100)
    return True


def report_row(stage: Stage, user_id: str) -> dict[str, Any]:
    rows = stage.rows(user_id)
    assert len(rows) == 1, rows
    return rows[0]


def check(
    stage: Stage, name: str, user_id: str, browser: Measured, tolerance_ms: int = TOLERANCE_MS
) -> dict[str, Any]:
    """The report agrees with the browser within one heartbeat (unless told), for watch time
    and coverage."""
    row = report_row(stage, user_id)
    print(
        f"\n{name}: watchMs {row['watchMs']} vs playing {browser.playing_ms} ms "
        f"(diff {row['watchMs'] - browser.playing_ms:+d}); coveredMs {row['coveredMs']} vs "
        f"played ranges {browser.played_ms} ms (diff {row['coveredMs'] - browser.played_ms:+d}); "
        f"ranges {[[round(s, 3), round(e, 3)] for s, e in browser.ranges]}"
    )
    assert row["sessionId"] == browser.session_id
    assert abs(row["watchMs"] - browser.playing_ms) <= tolerance_ms
    assert abs(row["coveredMs"] - browser.played_ms) <= tolerance_ms
    return row


@dataclass
class Attempt:
    """One beacon request as it reached the network, and its answer."""

    at: float  # time.monotonic() when the browser sent it
    beacons: list[dict[str, Any]]
    is_batch: bool  # a JSON array: a re-send of the queue (live beacons go one by one)
    status: int

    @property
    def seqs(self) -> list[int]:
        return [beacon["seq"] for beacon in self.beacons]


# A made-up answer: status and headers. None lets the real server answer.
Answer = tuple[int, dict[str, str]] | None


@dataclass
class BeaconRoute:
    """The beacon requests carrying ``tokens``, logged and answered by the real server, or
    with the failure ``answer`` returns. With ``is_holding`` set, requests wait until
    ``release()`` answers them all at once (to make pages handle answers at the same moment).
    Requests with other tokens pass untouched."""

    tokens: set[str]
    answer: Callable[[list[dict[str, Any]]], Answer] = lambda beacons: None
    attempts: list[Attempt] = field(default_factory=list)
    is_holding: bool = False
    held: list[tuple[float, "Route", list[dict[str, Any]], bool]] = field(default_factory=list)

    def handle(self, route: "Route") -> None:
        at = time.monotonic()
        parsed = json.loads(route.request.post_data or "null")
        is_batch = isinstance(parsed, list)
        beacons = parsed if is_batch else [parsed]
        if not any(isinstance(b, dict) and b.get("token") in self.tokens for b in beacons):
            route.fallback()
            return
        if self.is_holding:
            self.held.append((at, route, beacons, is_batch))
            return
        self.respond(at, route, beacons, is_batch)

    def respond(
        self, at: float, route: "Route", beacons: list[dict[str, Any]], is_batch: bool
    ) -> None:
        made_up = self.answer(beacons)
        if made_up is None:
            response = route.fetch()
            status = response.status
            route.fulfill(response=response)
        else:
            status, headers = made_up
            route.fulfill(status=status, headers=headers, body='{"result": 50300}')
        self.attempts.append(Attempt(at, beacons, is_batch, status))

    def release(self) -> None:
        held, self.held = self.held, []
        for at, route, beacons, is_batch in held:
            self.respond(at, route, beacons, is_batch)

    def is_holding_every_token(self) -> bool:
        waiting = {beacon.get("token") for _, _, beacons, _ in self.held for beacon in beacons}
        return waiting >= self.tokens

    def delivered(self, session_id: str) -> dict[int, dict[str, Any]]:
        """The beacons of a session the server answered 2xx, by seq (duplicates once)."""
        return {
            beacon["seq"]: beacon
            for attempt in self.attempts
            if 200 <= attempt.status < 300
            for beacon in attempt.beacons
            if beacon["sessionId"] == session_id
        }

    def sent_seqs(self, session_id: str) -> set[int]:
        return {
            beacon["seq"]
            for attempt in self.attempts
            for beacon in attempt.beacons
            if beacon["sessionId"] == session_id
        }


def fail_with(status: int, headers: dict[str, str] | None = None) -> Callable[..., Answer]:
    return lambda beacons: (status, headers or {})
