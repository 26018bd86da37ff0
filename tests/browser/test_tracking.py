"""vodwatch.js in a real browser: headless Chromium plays a real video from a page served by a
real ``vodwatch serve``, and the report must agree with what the browser itself measured.

For each scenario the report's ``coveredMs`` is compared with the browser's ``video.played``
ranges (their total length, clamped to the duration) and its ``watchMs`` with the page's own
count of playing time (from media events, not the tracker's polling), each within one
heartbeat. The figures are printed (``pytest -s``).
"""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

from tests.browser.conftest import HEARTBEAT_SECONDS, VIDEO_SECONDS, Stage

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

TOLERANCE_MS = HEARTBEAT_SECONDS * 1000

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


def open_page(context: "BrowserContext", url: str, console: list[str] | None = None) -> "Page":
    page = context.new_page()
    if console is not None:
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(url)
    page.wait_for_function("window.vodwatchDemo && window.vodwatchDemo.video.readyState >= 1")
    page.evaluate(MEASURE)
    return page


def open_demo(
    stage: Stage, context: "BrowserContext", user_id: str, heartbeat: float = HEARTBEAT_SECONDS
) -> "Page":
    """demo.html from the vodwatch server (the tracker as an ES module, same origin)."""
    query = urlencode(
        {"src": stage.video_url, "token": stage.token(user_id), "heartbeat": heartbeat}
    )
    return open_page(context, f"{stage.vodwatch.url}/static/demo.html?{query}")


def play(page: "Page", seconds: float) -> None:
    page.evaluate("window.vodwatchDemo.video.play()")  # resolves once playback has started
    page.wait_for_timeout(seconds * 1000)


def finish(page: "Page") -> Measured:
    result = measured(page.evaluate(FINISH))
    page.close()
    return result


def report_row(stage: Stage, user_id: str) -> dict[str, Any]:
    rows = stage.rows(user_id)
    assert len(rows) == 1, rows
    return rows[0]


def check(stage: Stage, name: str, user_id: str, browser: Measured) -> dict[str, Any]:
    """The report agrees with the browser within one heartbeat, for watch time and coverage."""
    row = report_row(stage, user_id)
    print(
        f"\n{name}: watchMs {row['watchMs']} vs playing {browser.playing_ms} ms "
        f"(diff {row['watchMs'] - browser.playing_ms:+d}); coveredMs {row['coveredMs']} vs "
        f"played ranges {browser.played_ms} ms (diff {row['coveredMs'] - browser.played_ms:+d}); "
        f"ranges {[[round(s, 3), round(e, 3)] for s, e in browser.ranges]}"
    )
    assert row["sessionId"] == browser.session_id
    assert abs(row["watchMs"] - browser.playing_ms) <= TOLERANCE_MS
    assert abs(row["coveredMs"] - browser.played_ms) <= TOLERANCE_MS
    return row


def test_plain_playback(stage: Stage, browser_context: "BrowserContext") -> None:
    page = open_demo(stage, browser_context, "plain")
    play(page, 9)
    browser = finish(page)
    check(stage, "1x", "plain", browser)
    assert browser.playing_ms > 8000
    assert abs(browser.played_ms - browser.playing_ms) <= TOLERANCE_MS  # played at 1x


def test_double_speed(stage: Stage, browser_context: "BrowserContext") -> None:
    page = open_demo(stage, browser_context, "double")
    page.evaluate("window.vodwatchDemo.video.playbackRate = 2")
    play(page, 9)
    browser = finish(page)
    row = check(stage, "2x", "double", browser)
    # 2x: the media covered is twice the time spent playing.
    assert browser.played_ms > 1.8 * browser.playing_ms
    assert row["coveredMs"] > 1.8 * row["watchMs"]


def test_seeks_back_and_forward(stage: Stage, browser_context: "BrowserContext") -> None:
    page = open_demo(stage, browser_context, "seeker")
    play(page, 3)
    page.evaluate("window.vodwatchDemo.video.currentTime = 1")  # back: rewatches 1-3 s
    page.wait_for_timeout(3000)
    page.evaluate("window.vodwatchDemo.video.currentTime = 40")  # forward: skips 4-40 s
    page.wait_for_timeout(3000)
    browser = finish(page)
    row = check(stage, "seeks", "seeker", browser)
    assert len(browser.ranges) == 2, "the seeks did not happen (is the video server ranged?)"
    # Rewatching counts in watch time, once in coverage; the skipped part counts nowhere.
    assert row["coveredMs"] < row["watchMs"] - 1000
    assert row["coveredMs"] < 9000


def test_pause_does_not_count(stage: Stage, browser_context: "BrowserContext") -> None:
    page = open_demo(stage, browser_context, "pauser")
    started = time.monotonic()
    play(page, 4)
    page.evaluate("window.vodwatchDemo.video.pause()")
    page.wait_for_timeout(4000)
    play(page, 4)
    browser = finish(page)
    elapsed_ms = (time.monotonic() - started) * 1000
    row = check(stage, "pause", "pauser", browser)
    assert row["watchMs"] < elapsed_ms - 3000  # the 4 s pause is not in it


def test_page_closed_mid_play(stage: Stage, browser_context: "BrowserContext") -> None:
    # A heartbeat longer than the scenario: all the playing reaches the server in the beacon
    # sent at page hide (navigator.sendBeacon), or not at all.
    page = open_demo(stage, browser_context, "closer", heartbeat=60)
    play(page, 8)
    browser = measured(page.evaluate("measure()"))
    page.close(run_before_unload=True)  # pagehide, as when a viewer closes the tab
    deadline = time.monotonic() + 10
    while report_row(stage, "closer")["watchMs"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    row = check(stage, "page closed", "closer", browser)
    assert row["watchMs"] > 6000


def test_failed_beacons_are_queued_and_resent(
    stage: Stage, browser_context: "BrowserContext"
) -> None:
    page = open_demo(stage, browser_context, "offline")
    play(page, 2)
    # The network fails for a while: beacons go to the localStorage queue ...
    page.route("**/vod/webapi/beacon", lambda route: route.abort("internetdisconnected"))
    page.wait_for_timeout(4500)
    queued = page.evaluate("JSON.parse(localStorage.getItem('vodwatch:queue') || '[]').length")
    page.unroute("**/vod/webapi/beacon")
    # ... and go out with the next beacon that gets through.
    page.wait_for_timeout(3000)
    left = page.evaluate("localStorage.getItem('vodwatch:queue')")
    browser = finish(page)
    print(f"\nqueued while offline: {queued} beacons; left in the queue after: {left}")
    assert queued >= 2
    assert left is None
    check(stage, "network down 4.5 s", "offline", browser)


def test_page_on_another_origin(stage: Stage, browser_context: "BrowserContext") -> None:
    """A customer page on its own origin loads vodwatch.js from the vodwatch server (classic
    script): beacons are stored when the tenant allows that origin (tenant set-origins), and
    nothing is stored from an origin it does not allow."""
    allowed_console: list[str] = []
    allowed = open_page(
        browser_context,
        f"{stage.media.origin}/page.html?token={stage.token('allowed-origin')}",
        allowed_console,
    )
    refused = open_page(
        browser_context, f"{stage.other.origin}/page.html?token={stage.token('other-origin')}"
    )
    for page in (allowed, refused):
        page.evaluate("window.vodwatchDemo.video.play()")
    allowed.wait_for_timeout(5000)
    refused_queue = refused.evaluate("""async () => {
      const { video, handle } = window.vodwatchDemo;
      video.pause();
      await handle.flush();
      return JSON.parse(localStorage.getItem("vodwatch:queue") || "[]").length;
    }""")
    refused.close()
    browser = finish(allowed)
    check(stage, f"page on allowed origin {stage.media.origin}", "allowed-origin", browser)
    assert not [line for line in allowed_console if "vodwatch" in line]
    # The server refused them (403, no CORS headers): the page cannot tell that from a network
    # failure, so it keeps them queued, in case the origin is allowed later.
    print(f"page on {stage.other.origin}: nothing stored, {refused_queue} beacons kept queued")
    assert stage.rows("other-origin") == []
    assert refused_queue >= 2
