"""vodwatch.js in a real browser: headless Chromium plays a real video from a page served by a
real ``vodwatch serve``, and the report must agree with what the browser itself measured.

For each scenario the report's ``coveredMs`` is compared with the browser's ``video.played``
ranges (their total length, clamped to the duration) and its ``watchMs`` with the page's own
count of playing time (from media events, not the tracker's polling), each within one
heartbeat. The figures are printed (``pytest -s``).
"""

import time
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import Stage
from tests.browser.pages import (
    TOLERANCE_MS,
    check,
    finish,
    measured,
    open_demo,
    open_page,
    play,
    queued,
    report_row,
    wait_until,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.browser

# At most this much lost per seek on average (trackers that stop at the last poll lose 125 ms).
SEEK_COVERAGE_MS = 30
SEEK_WATCH_MS = 60


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


# Seeks `count` times, each 3 s forward (into media not played yet), 300-700 ms after the
# previous one is done: at random moments between two of the tracker's polls.
SEEK_QUICKLY = """async (count) => {
  const { video } = window.vodwatchDemo;
  for (let i = 0; i < count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 400));
    const seeked = new Promise((resolve) => {
      video.addEventListener("seeked", resolve, { once: true });
    });
    video.currentTime += 3;
    await seeked;
  }
}"""


def test_quick_seeks_lose_no_time(stage: Stage, browser_context: "BrowserContext") -> None:
    """What played between the tracker's last poll and a seek counts: `currentTime` already
    holds the target at `seeking`, so the tracker credits the time since that poll (up to
    250 ms, lost by trackers that stopped at the last poll)."""
    seeks = 10
    page = open_demo(stage, browser_context, "quick-seeker", heartbeat=60)
    play(page, 1)
    page.evaluate(SEEK_QUICKLY, seeks)
    page.wait_for_timeout(500)
    browser = finish(page)
    row = check(stage, f"{seeks} quick seeks", "quick-seeker", browser)
    assert len(browser.ranges) == seeks + 1, "the seeks did not happen"
    # Coverage is media time: within a few ms per seek. Watch time is compared with the page's
    # count from `seeked`, which also holds the ~0.1 s before the media moves again after a
    # seek, and which the tracker credits only as far as the media then advances.
    assert abs(row["coveredMs"] - browser.played_ms) < SEEK_COVERAGE_MS * seeks
    assert browser.playing_ms - row["watchMs"] < SEEK_WATCH_MS * seeks


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
    waiting = len(queued(page))
    page.unroute("**/vod/webapi/beacon")
    # ... and go out once the backoff (1 s, 2 s, 4 s: at most 6 s from now) lets them.
    is_empty = wait_until(page, lambda: not queued(page), timeout=8)
    browser = finish(page)
    print(f"\nqueued while offline: {waiting} beacons; queue emptied after: {is_empty}")
    assert waiting >= 2
    assert is_empty
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
    refused.evaluate("""async () => {
      const { video, handle } = window.vodwatchDemo;
      video.pause();
      await handle.flush();
    }""")
    refused_queue = len(queued(refused))
    refused.close()
    browser = finish(allowed)
    check(stage, f"page on allowed origin {stage.media.origin}", "allowed-origin", browser)
    assert not [line for line in allowed_console if "vodwatch" in line]
    # The server refused them (403, no CORS headers): the page cannot tell that from a network
    # failure, so it keeps them queued, in case the origin is allowed later.
    print(f"page on {stage.other.origin}: nothing stored, {refused_queue} beacons kept queued")
    assert stage.rows("other-origin") == []
    assert refused_queue >= 2
