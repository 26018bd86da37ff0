"""How vodwatch.js delivers its beacons when the network or the server fails: the queue, the
backoff, pages that hide or close, and several tabs sharing one origin's localStorage.

Failures are made up by Playwright routes between the page and the real ``vodwatch serve``
(``BeaconRoute``), which also log every request; where a route cannot reach (a beacon sent
while the page closes) a test endpoint answers instead. Each scenario ends by comparing the
report with what the browser measured, as in test_tracking.py.
"""

import itertools
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import Stage
from tests.browser.pages import (
    BEACON_URLS,
    FINISH,
    SET_VISIBILITY,
    Answer,
    BeaconRoute,
    check,
    demo_url,
    fail_with,
    finish,
    measured,
    open_demo,
    play,
    queued,
    token_of,
    wait_until,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser


def route_beacons(page: "Page") -> BeaconRoute:
    beacons = BeaconRoute({token_of(page)})
    page.route(BEACON_URLS, beacons.handle)
    return beacons


def watch_ms(stage: Stage, user_id: str) -> int:
    rows = stage.rows(user_id)
    return int(rows[0]["watchMs"]) if rows else 0


def test_hidden_page_beacon_answered_5xx_is_delivered_later(
    stage: Stage, browser_context: "BrowserContext"
) -> None:
    """The beacon sent when the page becomes hidden goes with fetch (not sendBeacon), so a 503
    is seen: it stays queued and goes out after the backoff."""
    page = open_demo(stage, browser_context, "hidden-503", heartbeat=60)
    beacons = route_beacons(page)
    play(page, 4)
    beacons.answer = fail_with(503)
    page.evaluate(SET_VISIBILITY, "hidden")
    assert wait_until(page, lambda: len(beacons.attempts) >= 2, timeout=3)  # seq 1, then this
    hidden = beacons.attempts[-1]
    beacons.answer = lambda sent: None
    page.evaluate(SET_VISIBILITY, "visible")
    is_delivered = wait_until(page, lambda: not queued(page), timeout=5)
    browser = finish(page)
    print(f"\nhidden beacon {hidden.seqs} answered {hidden.status}; delivered: {is_delivered}")
    assert hidden.status == 503
    assert hidden.beacons[0]["playedMs"] > 3000
    assert is_delivered
    assert set(hidden.seqs) <= set(beacons.delivered(browser.session_id))
    check(stage, "hidden page, 503", "hidden-503", browser)


# Wraps navigator.sendBeacon: notes which beacons were queued when the tracker called it (in
# localStorage, to be read after the page is gone), then fails as `mode` says: "refused"
# (returns false, as when the browser's beacon quota is used up) or "answered 503" (sends it
# to a test endpoint that answers 503: a route cannot reach a beacon sent while the page
# closes).
SEND_BEACON_SPY = """(() => {
  const mode = %r, failUrl = %r;
  const sendBeacon = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => {
    const beacon = JSON.parse(data);
    const queued = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key.startsWith("vodwatch:queue")) continue;
      const value = JSON.parse(localStorage.getItem(key));
      for (const item of Array.isArray(value) ? value : value.items) {
        queued.push(item.b.sessionId + " " + item.b.seq);
      }
    }
    const seen = { beacon: beacon.sessionId + " " + beacon.seq, queued };
    localStorage.setItem("test:send-beacon", JSON.stringify(seen));
    return mode === "refused" ? false : sendBeacon(failUrl, data);
  };
})();"""


@pytest.mark.parametrize("mode", ["refused", "answered 503"])
def test_pagehide_beacon_is_queued_before_send_beacon(
    stage: Stage, browser_context: "BrowserContext", mode: str
) -> None:
    """At pagehide the beacon is queued first, then handed to sendBeacon, whose outcome the
    page never learns: the next page on the origin sends it again from the queue."""
    user_id = f"pagehide-{mode.split()[0]}"
    fail_url = f"{stage.media.origin}/answer/503"
    answered_before = len(stage.media.answered)
    spy = SEND_BEACON_SPY % (mode, fail_url)
    page = open_demo(stage, browser_context, user_id, heartbeat=60, init_script=spy)
    play(page, 4)
    browser = measured(page.evaluate("measure()"))
    page.close(run_before_unload=True)  # pagehide: the beacon with 4 s of playing
    after = open_demo(stage, browser_context, f"{user_id}-next")  # adopts the closed queue
    seen = after.evaluate("JSON.parse(localStorage.getItem('test:send-beacon'))")
    is_delivered = wait_until(after, lambda: watch_ms(stage, user_id) > 0, timeout=5)
    left = queued(after)
    after.close()
    print(f"\nsendBeacon {mode}: saw {seen}; delivered by the next page: {is_delivered}")
    assert seen["beacon"] in seen["queued"]
    if mode == "answered 503":
        assert len(stage.media.answered) == answered_before + 1  # it really went, and failed
    assert is_delivered
    assert left == []
    row = check(stage, f"page closed, sendBeacon {mode}", user_id, browser)
    assert row["watchMs"] > 3000


def test_live_beacons_do_not_resend_the_queue_each_time(
    stage: Stage, browser_context: "BrowserContext"
) -> None:
    """A beacon the server keeps answering 503 (any request holding it) while it takes the
    others: the queue goes again after each backoff (about 1, 2, 4 s), not after every live
    beacon that gets through."""
    page = open_demo(stage, browser_context, "no-storm", heartbeat=1)
    beacons = route_beacons(page)
    play(page, 1.5)
    poisoned: set[int] = set()

    def answer(sent: list[dict[str, Any]]) -> Answer:
        if not poisoned:
            poisoned.add(sent[0]["seq"])
        return (503, {}) if poisoned & {beacon["seq"] for beacon in sent} else None

    beacons.answer = answer
    assert wait_until(page, lambda: bool(poisoned), timeout=3)
    started = time.monotonic()
    page.wait_for_timeout(7500)
    attempts = [a for a in beacons.attempts if a.at >= started]
    page.close()
    times = [round(attempt.at - started, 1) for attempt in attempts]
    print(f"\n7.5 s with seq {poisoned} refused: requests at {times} s")
    assert len(attempts) <= 4  # after 1 + 2 + 4 s of backoff, with jitter [0.75, 1]


def test_retry_after_is_honoured(stage: Stage, browser_context: "BrowserContext") -> None:
    """429 with Retry-After: 4: no request at all for 4 s (live beacons wait in the queue),
    then everything goes through."""
    page = open_demo(stage, browser_context, "retry-after", heartbeat=1)
    beacons = route_beacons(page)
    play(page, 1.5)
    limited: list[float] = []

    def answer(sent: list[dict[str, Any]]) -> Answer:
        if limited:
            return None
        limited.append(time.monotonic())
        return (429, {"Retry-After": "4"})

    beacons.answer = answer
    assert wait_until(page, lambda: bool(limited), timeout=3)
    page.wait_for_timeout(5000)
    gaps = [round(a.at - limited[0], 2) for a in beacons.attempts if a.at > limited[0]]
    is_delivered = wait_until(page, lambda: not queued(page), timeout=3)
    browser = finish(page)
    print(f"\n429 at 0 s; next requests at {gaps} s")
    assert gaps
    assert gaps[0] >= 3.9
    assert is_delivered
    check(stage, "429 Retry-After 4", "retry-after", browser)


def test_backoff_doubles_on_repeated_5xx(stage: Stage, browser_context: "BrowserContext") -> None:
    """Every request answered 503: the tracker waits about 1 s, 2 s, 4 s between tries (with
    jitter within [0.75, 1] of each), not one try per heartbeat."""
    page = open_demo(stage, browser_context, "backoff", heartbeat=1)
    beacons = route_beacons(page)
    play(page, 1.5)
    started = time.monotonic()
    beacons.answer = fail_with(503)
    page.wait_for_timeout(7500)
    times = [a.at for a in beacons.attempts if a.at >= started]
    gaps = [round(later - earlier, 2) for earlier, later in itertools.pairwise(times)]
    page.close()
    print(f"\nall answered 503 for 7.5 s: {len(times)} requests, gaps {gaps} s")
    assert 3 <= len(times) <= 5
    for tries, gap in enumerate(gaps):
        assert gap >= 0.7 * 2**tries


def test_queues_of_pages_gone_are_adopted(stage: Stage, browser_context: "BrowserContext") -> None:
    """A tracker starting on a page adopts the queue of a page not heard of for 10 minutes (a
    crash) and the shared queue of earlier versions, and leaves alone the queue of a page
    that is still there."""
    url = f"{stage.vodwatch.url}/vod/webapi/beacon"

    def item(user_id: str) -> dict[str, Any]:
        beacon = {
            "token": stage.token(user_id),
            "sessionId": secrets.token_urlsafe(16),
            "seq": 1,
            "segments": [[0, 2]],
            "playedMs": 2000,
            "position": 2,
            "ended": False,
        }
        return {"u": url, "b": beacon}

    now_ms = time.time() * 1000
    living = item("queue-living")
    seeded = {
        "vodwatch:queue:crashed": {
            "at": now_ms - 11 * 60_000,
            "closed": False,
            "items": [item("queue-crashed")],
        },
        "vodwatch:queue:living": {"at": now_ms, "closed": False, "items": [living]},
        "vodwatch:queue": [item("queue-legacy")],
    }
    page = browser_context.new_page()
    page.goto(f"{stage.vodwatch.url}/static/demo.html")  # no token: no tracker
    for key, value in seeded.items():
        page.evaluate(
            "([key, value]) => localStorage.setItem(key, value)", [key, json.dumps(value)]
        )
    page.goto(demo_url(stage, "queue-adopter"))  # a tracker starts: it adopts, then re-sends
    adopted = ["queue-crashed", "queue-legacy"]
    is_delivered = wait_until(page, lambda: all(watch_ms(stage, u) == 2000 for u in adopted), 5)
    left = queued(page)
    page.close()
    assert is_delivered
    assert left == [f"{living['b']['sessionId']} 1"]
    assert stage.rows("queue-living") == []


# Blocks the page's main thread from 150 ms before `until` (epoch ms) to `until`: answers that
# arrive meanwhile are handled when it ends, at the same moment in every page so blocked.
BLOCK_UNTIL = """(until) => {
  setTimeout(() => { while (Date.now() < until) {} }, Math.max(0, until - 150 - Date.now()));
}"""


def answer_together(pages: list["Page"], beacons: BeaconRoute) -> None:
    """Answers the held requests so that every page handles its answer at the same instant
    (each page runs in its own process): their queue writes coincide."""
    until = time.time() * 1000 + 300
    for page in pages:
        page.evaluate(BLOCK_UNTIL, until)
    pages[0].wait_for_timeout(until - 100 - time.time() * 1000)
    beacons.release()
    pages[0].wait_for_timeout(max(0.0, until - time.time() * 1000) + 50)


def test_two_tabs_flapping_server(stage: Stage, browser_context: "BrowserContext") -> None:
    """Two tabs of one origin track at once while the server fails and recovers, and handle
    each answer at the same moment, so their queue writes coincide. Every beacon of each tab
    arrives (duplicates are harmless), and each report agrees with its page."""
    users = ["tab-a", "tab-b"]
    pages = [open_demo(stage, browser_context, user, heartbeat=1) for user in users]
    beacons = BeaconRoute({token_of(page) for page in pages})
    browser_context.route(BEACON_URLS, beacons.handle)
    try:
        for page in pages:
            page.evaluate("window.vodwatchDemo.video.play()")
        beacons.is_holding = True
        for failing in [True, False] * 4:
            beacons.answer = fail_with(503) if failing else lambda sent: None
            wait_until(pages[0], beacons.is_holding_every_token, timeout=1.5)
            answer_together(pages, beacons)
        beacons.is_holding = False
        beacons.release()
        results = [measured(page.evaluate(FINISH)) for page in pages]  # pages stay open
        is_drained = wait_until(pages[0], lambda: not queued(pages[0]), timeout=10)
    finally:
        browser_context.unroute(BEACON_URLS, beacons.handle)
    for page in pages:
        page.close()
    failed = sum(1 for a in beacons.attempts if a.status == 503)
    print(f"\ntwo tabs: {len(beacons.attempts)} requests, {failed} answered 503")
    assert failed >= 4
    assert is_drained
    for user, browser in zip(users, results, strict=True):
        delivered = beacons.delivered(browser.session_id)
        sent = beacons.sent_seqs(browser.session_id)
        print(f"{user}: seqs sent {sorted(sent)}, delivered {sorted(delivered)}")
        assert sorted(delivered) == list(range(1, max(sent) + 1))
        row = check(stage, f"two tabs, {user}", user, browser)
        assert row["watchMs"] == sum(beacon["playedMs"] for beacon in delivered.values())
