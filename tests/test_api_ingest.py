"""Ingest through the API and the database: idempotent and order-free, property-tested against
the brute-force model, for server and player beacons, on both backends."""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import report_rows
from tests.model import ms_set, percent
from vodwatch.formats import format_visit_time

DURATION_S = 4
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
counter = itertools.count()

# Media times on a millisecond grid, so the model's milliseconds are exactly the service's.
media = st.integers(0, 5_000).map(lambda ms: ms / 1000)
segments = st.lists(st.tuples(media, media).map(sorted), max_size=3)
bodies = st.fixed_dictionaries({"segments": segments, "playedMs": st.integers(0, 15_000)})


@st.composite
def streams(draw):
    """Beacons of up to three sessions, shuffled, some sent twice, cut into requests."""
    sessions = [f"session-{n}-{next(counter)}" for n in range(draw(st.integers(1, 3)))]
    beacons = [
        {"sessionId": session, "seq": seq, **draw(bodies)}
        for session in sessions
        for seq in range(1, draw(st.integers(1, 5)) + 1)
    ]
    resent = draw(st.lists(st.sampled_from(beacons), max_size=4))
    stream = draw(st.permutations(beacons + resent))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=4)))
    requests = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=False)]
    return beacons, [r for r in requests if r]


def expected_rows(beacons):
    rows = {}
    for session in {b["sessionId"] for b in beacons}:
        mine = [b for b in beacons if b["sessionId"] == session]
        points = ms_set((round(s * 1000), round(e * 1000)) for b in mine for s, e in b["segments"])
        watch = sum(b["playedMs"] for b in mine)
        rows[session] = (format_visit_time(watch), percent(points, DURATION_S * 1000), watch)
    return rows


def observed_rows(client):
    return {
        r["sessionId"]: (r["visitTime"], r["visitRadio"], r["watchMs"])
        for r in report_rows(client, pageSize=100)
    }


@SETTINGS
@given(data=streams())
def test_server_beacons_any_order_any_number_of_times(db, http, clock: FakeClock, data):
    beacons, requests = data
    client = client_for(http, add_tenant(db, f"t{next(counter)}"), clock)
    client.put_media("a", "A", duration=DURATION_S)
    statuses = []
    for request in requests:
        body = [{**b, "userId": "u", "assetId": "a"} for b in request]
        statuses += client.send_beacons(body)["data"]["statuses"]
    assert statuses.count("accepted") == len(beacons)
    assert observed_rows(client) == expected_rows(beacons)
    # Everything again, in one request: all duplicates, nothing changes.
    again = client.send_beacons([{**b, "userId": "u", "assetId": "a"} for b in beacons])
    assert again["data"]["duplicates"] == len(beacons)
    assert observed_rows(client) == expected_rows(beacons)


@SETTINGS
@given(data=streams())
def test_player_beacons_any_order_any_number_of_times(db, http, clock: FakeClock, data):
    beacons, requests = data
    # At most five beacons of a session share a request, and so an instant: at 3 s each they
    # stay within the clock slack (15 s), so only the media bound can cut.
    beacons = [{**b, "playedMs": b["playedMs"] // 5} for b in beacons]
    requests = [[{**b, "playedMs": b["playedMs"] // 5} for b in r] for r in requests]
    client = client_for(http, add_tenant(db, f"t{next(counter)}"), clock)
    client.put_media("a", "A", duration=DURATION_S)
    token = client.playback_token("u", "a")
    for request in requests:
        client.send_player_beacons([{**b, "token": token} for b in request])
        clock.advance(3600)
    allowed = [
        {
            **b,
            "playedMs": min(
                b["playedMs"], 4 * sum(round(e * 1000) - round(s * 1000) for s, e in b["segments"])
            ),
        }
        for b in beacons
    ]
    assert observed_rows(client) == expected_rows(allowed)
