"""The viewer-and-video rollup that ingest keeps (``viewer_videos``) against the visits it sums:
``groupBy=userVideo`` reads the rollup without a time range and groups the visits with one, and
both must give the same rows as a brute-force model, whatever order the beacons came in; and
each pair's stored coverage end (what the videos summary sums by) is where its coverage ends."""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import report_rows
from tests.model import ms_set, percent
from vodwatch.formats import format_visit_time
from vodwatch.store.schema import viewer_videos

DURATION_S = 4
EVERY_TIME = {"startTime": 0, "endTime": 4_000_000_000}  # a range: the rows grouped from visits
ROW_KEYS = ("visitTime", "visitRadio", "watchMs", "visits")
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
counter = itertools.count()
media = st.integers(0, 5_000).map(lambda ms: ms / 1000)
segments = st.lists(st.tuples(media, media).map(sorted), max_size=3)


@st.composite
def sessions(draw):
    """Sessions of two viewers on two videos, each with a start and a few beacons."""
    beacons = []
    for n in range(draw(st.integers(1, 6))):
        session = {
            "sessionId": f"session-{n}-{next(counter)}",
            "userId": draw(st.sampled_from(["u1", "u2"])),
            "assetId": draw(st.sampled_from(["a1", "a2"])),
            "startedAt": 1_764_000_000 + draw(st.integers(0, 3)) * 60,
        }
        for seq in range(1, draw(st.integers(1, 3)) + 1):
            played = draw(st.integers(0, 9_000))
            # A visit starts at its earliest startedAt: beacons may say later ones too.
            started = session["startedAt"] + draw(st.integers(0, 2)) * 60
            beacons.append(
                {
                    **session,
                    "seq": seq,
                    "segments": draw(segments),
                    "playedMs": played,
                    "startedAt": started,
                }
            )
    return draw(st.permutations(beacons)), draw(st.integers(1, 4))


def expected(beacons):
    pairs = {}
    for user, asset in {(b["userId"], b["assetId"]) for b in beacons}:
        mine = [b for b in beacons if (b["userId"], b["assetId"]) == (user, asset)]
        points = ms_set((round(s * 1000), round(e * 1000)) for b in mine for s, e in b["segments"])
        watch = sum(b["playedMs"] for b in mine)
        pairs[(user, asset)] = {
            "visitTime": format_visit_time(watch),
            "visitRadio": percent(points, DURATION_S * 1000),
            "watchMs": watch,
            "visits": len({b["sessionId"] for b in mine}),
            "latest": max(
                min(b["startedAt"] for b in mine if b["sessionId"] == session)
                for session in {b["sessionId"] for b in mine}
            ),
            "end": max(points) + 1 if points else 0,  # coverage_end_ms: not clamped
        }
    return pairs


def rows(client, **params):
    return [
        (r["userId"], r["assetId"], r["visitTime"], r["visitRadio"], r["watchMs"], r["visits"])
        for r in report_rows(client, groupBy="userVideo", pageSize=2, **params)
    ]


@SETTINGS
@given(data=sessions())
def test_rollup_and_grouped_visits_agree_with_the_model(db, http, clock: FakeClock, data):
    beacons, requests = data
    tenant = add_tenant(db, f"t{next(counter)}")
    client = client_for(http, tenant, clock)
    for asset in ("a1", "a2"):
        client.put_media(asset, f"Video {asset}", duration=DURATION_S)
    for n in range(min(requests, len(beacons))):
        client.send_beacons(beacons[n::requests])
    model = expected(beacons)
    newest_first = sorted(model, key=lambda key: (model[key]["latest"], key), reverse=True)
    want = [
        (user, asset, *(model[user, asset][k] for k in ROW_KEYS)) for user, asset in newest_first
    ]
    assert rows(client) == want
    assert rows(client, **EVERY_TIME) == want
    for user in ("u1", "u2"):
        mine = [row for row in want if row[0] == user]
        assert rows(client, userId=user) == rows(client, userId=user, **EVERY_TIME) == mine
    for asset in ("a1", "Video a2"):
        theirs = [row for row in want if row[1] == asset[-2:]]
        assert rows(client, videoInfo=asset) == rows(client, videoInfo=asset, **EVERY_TIME)
        assert rows(client, videoInfo=asset) == theirs
    stored = viewer_videos.c
    with db.read() as conn:
        rows_stored = conn.execute(
            select(stored.user_id, stored.asset_id, stored.coverage_end_ms).where(
                stored.tenant_id == tenant.tenant_id
            )
        )
        ends = {(user, asset): end for user, asset, end in rows_stored}
    assert ends == {key: pair["end"] for key, pair in model.items()}
