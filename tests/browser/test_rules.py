"""Completion rules in a real browser (SPEC §10): the tracker says how each part played (rate,
hidden page), the server leaves out what the rules say, a required range counts once watched,
and a reload resumes where the attempt stopped, with ``onProgress`` reporting all along.

The page's visibility is emulated (``document.visibilityState`` overridden before any script
runs, and ``visibilitychange`` dispatched): headless Chromium never hides a page by itself.
"""

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

from tests.browser.conftest import HEARTBEAT_SECONDS, Stage
from tests.browser.pages import TOLERANCE_MS, finish, open_page, play, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

VISIBILITY = """
  window.__visibility = "visible";
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get() { return window.__visibility; } });
  Object.defineProperty(Document.prototype, "hidden", {
    configurable: true, get() { return window.__visibility === "hidden"; } });
"""
SET_VISIBILITY = """(state) => {
  window.__visibility = state;
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def open_rules_page(
    stage: Stage,
    context: "BrowserContext",
    user_id: str,
    asset_id: str,
    *,
    attempt: str = "a1",
    resume: bool = False,
) -> "Page":
    token = stage.client.playback_token(user_id, asset_id, attempt_id=attempt)
    query = {"src": stage.video_url, "token": token, "heartbeat": HEARTBEAT_SECONDS}
    if resume:
        query["resume"] = "1"
    url = f"{stage.vodwatch.url}/static/demo.html?{urlencode(query)}"
    return open_page(context, url, init_script=VISIBILITY)


def viewer(stage: Stage, user_id: str, asset_id: str) -> dict[str, Any]:
    data: dict[str, Any] = stage.client.viewer(user_id, asset_id)["data"]
    return data


def test_hidden_and_too_fast_parts_do_not_count(
    stage: Stage, browser_context: "BrowserContext"
) -> None:
    asset = "rules-attention"
    stage.client.put_media(asset, "Rules", duration=60, maxRate=2, visibleOnly=True)
    page = open_rules_page(stage, browser_context, "attentive", asset)
    play(page, 3)  # 1x, visible: counts
    page.evaluate(SET_VISIBILITY, "hidden")
    page.wait_for_timeout(3000)  # hidden: does not count
    page.evaluate(SET_VISIBILITY, "visible")
    page.evaluate("window.vodwatchDemo.video.playbackRate = 2.5")
    page.wait_for_timeout(3000)  # 2.5x: too fast
    finish(page)
    got = viewer(stage, "attentive", asset)
    audit = stage.client.audit("attentive", asset)["data"]["attempts"][0]["visits"][0]
    hidden = sum(e - s for s, e in audit["uncounted"]["hidden"])
    too_fast = sum(e - s for s, e in audit["uncounted"]["tooFast"])
    print(
        f"\ncovered {got['coveredMs']} ms, counted {got['countedMs']} ms, hidden {hidden} ms, "
        f"too fast {too_fast} ms; counted {got['countedIntervals']}"
    )
    assert abs(got["countedMs"] - 3000) <= TOLERANCE_MS
    assert abs(hidden - 3000) <= TOLERANCE_MS
    assert abs(too_fast - 7500) <= TOLERANCE_MS * 2.5
    assert got["coveredMs"] > got["countedMs"] + 8000
    # What counted is the start, played at 1x in a visible page.
    assert got["countedIntervals"][0][0] < 500


def test_required_range_resume_and_progress(
    stage: Stage, browser_context: "BrowserContext"
) -> None:
    asset = "rules-required"
    stage.client.put_media(
        asset, "Rules", duration=60, completionThreshold=10, requiredRanges=[[20, 23]]
    )
    page = open_rules_page(stage, browser_context, "learner", asset)
    page.evaluate("window.vodwatchDemo.video.currentTime = 30")  # skips the required range
    play(page, 7)
    page.evaluate("window.vodwatchDemo.video.pause()")
    page.wait_for_timeout(500)
    page.evaluate("window.vodwatchDemo.handle.flush()")
    assert wait_until(
        page,
        lambda: page.evaluate("window.vodwatchDemo.progressSeen.length") >= 2,
        timeout=5,
    ), "onProgress did not fire after the beacons were answered"
    seen = page.evaluate("window.vodwatchDemo.progressSeen")
    assert seen[-1]["percent"] >= 10
    assert seen[-1]["completed"] is False
    resume_at = seen[-1]["resumeAt"]
    finish(page)
    assert 36_000 <= resume_at <= 38_500

    # A reload resumes where the attempt stopped.
    again = open_rules_page(stage, browser_context, "learner", asset, resume=True)
    assert wait_until(
        again,
        lambda: again.evaluate("window.vodwatchDemo.video.currentTime") > 30,
        timeout=5,
    ), "resume: true did not seek"
    position = again.evaluate("window.vodwatchDemo.video.currentTime")
    print(f"\nresumeAt {resume_at} ms; the reloaded page starts at {position:.3f} s")
    assert abs(position * 1000 - resume_at) < 300
    # Then the required range is watched: completed.
    again.evaluate("window.vodwatchDemo.video.currentTime = 19.5")
    play(again, 4)
    again.evaluate("window.vodwatchDemo.video.pause()")
    again.evaluate("window.vodwatchDemo.handle.flush()")
    assert wait_until(
        again,
        lambda: bool(
            again.evaluate("(window.vodwatchDemo.progressSeen.slice(-1)[0] || {}).completed")
        ),
        timeout=5,
    ), "onProgress never said completed"
    finish(again)
    assert viewer(stage, "learner", asset)["completed"] is True
    progress = stage.client.progress(
        stage.client.playback_token("learner", asset, attempt_id="a1")
    )["data"]
    assert progress["completed"] is True
    # Another attempt starts from nothing.
    fresh = stage.client.progress(stage.client.playback_token("learner", asset, attempt_id="a2"))[
        "data"
    ]
    assert (fresh["coveredMs"], fresh["completed"], fresh["resumeAt"]) == (0, False, 0)
