"""The videos summary with no time range, summed in SQL from the ``viewer_videos`` rollup
(``store.insights.sum_videos``), against the brute-force model of ``test_insights`` and against
the pairs grouped from the visits (what a time range reads): after the catalog changed under the
visits (a duration shortened below what was watched, or lengthened; thresholds set and
cleared), and with rows whose coverage end is not known."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import new_session_id, server_beacon
from tests.test_insights import SETTINGS, SORTS, Model, build, durations, thresholds, worlds
from vodwatch.attention import Defaults
from vodwatch.client import VodwatchClient
from vodwatch.report.audience import build_video_summary
from vodwatch.store.database import Database
from vodwatch.store.insights import TimeRange
from vodwatch.store.schema import tenants, viewer_videos

EVER = {"startTime": 0, "endTime": 2**33}  # every visit, through the pairs grouped from visits


def video_rows(client: VodwatchClient, **params: Any) -> list[dict[str, Any]]:
    """Every row of the videos summary, page by page."""
    rows, page = [], 1
    while True:
        data = client.videos(**params, page=page, pageSize=3)["data"]
        rows += data["data"]
        if page >= data["last_page"]:
            return rows
        page += 1


changes = st.dictionaries(
    st.sampled_from(["v0", "v1", "v2"]),
    st.tuples(durations, st.none() | thresholds),
    max_size=3,
)


@given(world=worlds(), changed=changes, sort=st.sampled_from(SORTS))
@SETTINGS
def test_the_summary_follows_the_catalog_as_it_is_at_query_time(
    db, http, clock, world, changed, sort
):
    videos, visits, tenant_threshold, _ = world
    world = (videos, visits, tenant_threshold, None)
    client, _ = build(db, http, clock, world)
    for asset, (duration_ms, threshold) in changed.items():
        if asset in videos:
            title = videos[asset]["title"]
            client.put_media(asset, title, duration_ms / 1000, completionThreshold=threshold)
            videos[asset] = {"title": title, "duration_ms": duration_ms, "threshold": threshold}
    expected = Model(world, {}).video_rows()
    summed = video_rows(client, sort=sort)
    assert {row["assetId"]: row for row in summed} == expected
    grouped = video_rows(client, sort=sort, **EVER)
    assert summed == grouped  # the same rows in the same order
    with db.read() as conn:
        tenant_id = conn.execute(
            select(tenants.c.tenant_id).where(tenants.c.authkey == client.authkey)
        ).scalar_one()
    for asset, row in expected.items():
        with db.read() as conn:
            assert (
                build_video_summary(conn, tenant_id, Defaults(tenant_threshold), asset, TimeRange())
                == row
            )


def watch(client: VodwatchClient, user: str, asset: str, *segments: list[float]) -> None:
    client.send_beacons(
        server_beacon(
            new_session_id(), 1, user_id=user, asset_id=asset, segments=list(segments), played_ms=1
        )
    )


def test_a_duration_shortened_below_what_was_watched(db: Database, http, clock: FakeClock):
    """李四 watched all of a 10 s video, 王五 its first 3 s; the video is then cut to 4 s: 李四
    has covered all of it (4 s, not 10 s: ``U`` is clamped), 王五 75%."""
    tenant = add_tenant(db)
    client = client_for(http, tenant, clock)
    client.put_media("a1", "Safety", 10)
    watch(client, "李四", "a1", [0, 6], [5, 10])
    watch(client, "王五", "a1", [0, 3])
    watch(client, "赵六", "a2", [0, 20])  # duration never known: no coverage counts
    before = {row["assetId"]: row for row in video_rows(client)}
    assert (before["a1"]["meanCoverage"], before["a1"]["completedViewers"]) == ("65%", 1)

    client.put_media("a1", "Safety", 4)
    rows = {row["assetId"]: row for row in video_rows(client)}
    assert rows["a1"] | {"lastVisit": 0} == {
        "assetId": "a1",
        "videoTitle": "Safety",
        "duration": "4",
        "viewers": 2,
        "visits": 2,
        "watchTimeMs": 2,
        "visitTime": "00:00:00",
        "meanCoverage": "87%",  # (4000 + 3000) / (2 · 4000)
        "meanCountedCoverage": "87%",
        "completedViewers": 1,
        "completionRate": "50%",
        "completionThreshold": 90,
        "lastVisit": 0,
    }
    assert (rows["a2"]["duration"], rows["a2"]["meanCoverage"]) == ("0", "0%")
    assert rows["a2"]["completedViewers"] == 0
    assert video_rows(client, sort="coverage") == video_rows(client, sort="coverage", **EVER)
    client.put_media("a1", "Safety", 4, completionThreshold=75)
    assert client.videos(videoInfo="a1")["data"]["data"][0]["completedViewers"] == 2

    # Rows whose coverage end is not known (written without it) are clamped like the others.
    with db.write() as conn:
        conn.execute(update(viewer_videos).values(coverage_end_ms=None))
    assert video_rows(client, sort="coverage") == video_rows(client, sort="coverage", **EVER)
    assert client.videos(videoInfo="a1")["data"]["data"][0]["meanCoverage"] == "87%"
