"""``vodwatch demo``: the plan (pure, reproducible, with the behaviour it promises), the load
through the service (the stored figures are exactly what the plan's players sent, on both
backends), the analytics it makes, and the command: --if-empty, one demo at most, --remove."""

import itertools
import json
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from tests.conftest import add_tenant
from tests.helpers import run, server_beacon
from vodwatch.attention import Defaults
from vodwatch.cli.serve import create_first_tenant
from vodwatch.client import VodwatchClient
from vodwatch.demo import (
    DAY_MS,
    HEARTBEAT_MS,
    PERIOD_DAYS,
    VIDEOS,
    DemoPlan,
    plan_demo,
    sitting_beacons,
    viewer_beacons,
)
from vodwatch.demo_loader import (
    DASHBOARD_URL,
    DEMO_EMAIL,
    DEMO_TENANT_NAME,
    DemoExists,
    create_demo_tenant,
    load_demo,
    remove_demo,
)
from vodwatch.intervals import clamp, measure, normalize
from vodwatch.report.insights import (
    RetentionQuery,
    VideosQuery,
    build_retention,
    build_videos,
    percent,
)
from vodwatch.store.accounts import create_account, verify_password
from vodwatch.store.database import Database
from vodwatch.store.insights import TimeRange, find_pairs
from vodwatch.store.schema import metadata, visits
from vodwatch.store.tenants import Tenant, find_demo_tenant, list_tenants

END_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: the plans here end then
NOW_MS = END_MS + 60_000
LOADED_VIEWERS = 60  # small enough to load in a few seconds, large enough for every behaviour
SEED = 3


@pytest.fixture(scope="module")
def full_plan() -> DemoPlan:
    return plan_demo(300, 1, END_MS)


def loaded(db: Database, plan: DemoPlan) -> Tenant:
    login = create_demo_tenant(db, plan, NOW_MS)
    assert login is not None
    assert load_demo(db, login.tenant, plan) == sum(map(len, viewer_beacons(plan).values()))
    return login.tenant


def pair_coverage(plan: DemoPlan) -> dict[tuple[str, str], list[tuple[int, int]]]:
    covered: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for sitting in plan.sittings:
        key = (sitting.user_id, sitting.asset_id)
        covered[key] = normalize([*covered[key], *((p.start_ms, p.end_ms) for p in sitting.plays)])
    return covered


def percents(plan: DemoPlan) -> dict[tuple[str, str], int]:
    return {
        (user_id, asset_id): measure(clamp(coverage, 0, plan.video(asset_id).duration_ms))
        * 100
        // plan.video(asset_id).duration_ms
        for (user_id, asset_id), coverage in pair_coverage(plan).items()
    }


# -- the plan ------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_plan():
    assert plan_demo(40, 7, END_MS) == plan_demo(40, 7, END_MS)
    assert plan_demo(40, 7, END_MS).sittings != plan_demo(40, 8, END_MS).sittings

    def viewing(plan: DemoPlan) -> list[tuple[object, ...]]:
        return sorted((s.session_id, s.user_id, s.asset_id, s.plays) for s in plan.sittings)

    # Run at another time of day: the same sittings, at other instants.
    later = plan_demo(40, 7, END_MS + 5 * 3_600_000 + 1_234)
    assert later.viewers == plan_demo(40, 7, END_MS).viewers
    assert viewing(later) == viewing(plan_demo(40, 7, END_MS))


def test_the_plan_has_what_the_demo_promises(full_plan: DemoPlan):
    plan = full_plan
    assert 4 <= len(plan.videos) <= 6
    assert all(5 * 60_000 <= v.duration_ms <= 45 * 60_000 for v in plan.videos)
    assert any(v.completion_threshold is not None for v in plan.videos)
    assert len(plan.viewers) == 300
    assert len({v.user_id for v in plan.viewers}) == 300
    names = [v.user_name for v in plan.viewers]
    assert any(" " in name for name in names)  # Western
    assert any(all(ord(c) > 0x4E00 for c in name) for name in names)  # Chinese
    # Over the three weeks before the end, all of it over by then.
    starts = [s.starts_at_ms for s in plan.sittings]
    assert plan.starts_at_ms < min(starts) < END_MS - (PERIOD_DAYS - 2) * DAY_MS
    assert max(s.starts_at_ms + s.wall_ms for s in plan.sittings) <= END_MS
    assert max(starts) > END_MS - DAY_MS
    # About one viewer and video in seven completed (per the video's threshold).
    shares = percents(plan)
    completed = sum(
        percent >= (plan.video(asset).completion_threshold or 90)
        for (_, asset), percent in shares.items()
    )
    assert 0.10 <= completed / len(shares) <= 0.20
    assert any(percent == 100 for percent in shares.values())
    # A few only pressed play; most stop before the end.
    assert 0.02 <= sum(p == 0 for p in shares.values()) / len(shares) <= 0.10
    assert sum(p < 50 for p in shares.values()) > len(shares) / 2
    by_pair = defaultdict(list)
    for sitting in plan.sittings:
        by_pair[(sitting.user_id, sitting.asset_id)].append(sitting)
    # Resumed sittings: a later visit starting where an earlier one stopped, hours or days on.
    resumed = [
        (a, b)
        for sittings in by_pair.values()
        for a, b in itertools.pairwise(sittings)
        if 0 < b.plays[0].start_ms <= a.plays[-1].end_ms
    ]
    assert len(resumed) > 100
    assert all(b.starts_at_ms - (a.starts_at_ms + a.wall_ms) >= 3_600_000 for a, b in resumed)
    # Seeks: back (the hard part again) and forward (the intro, skimming); several rates.
    runs = [(a, b) for s in plan.sittings for a, b in itertools.pairwise(s.plays)]
    assert sum(b.start_ms < a.end_ms for a, b in runs) > 100
    assert sum(b.start_ms > a.end_ms for a, b in runs) > 200
    assert {p.rate for s in plan.sittings for p in s.plays} >= {1.0, 1.5, 2.0}
    assert any(p.pause_ms for s in plan.sittings for p in s.plays)
    # The hard part of every video: more viewers come back to it than to a minute before
    # or after it.
    for video in plan.videos:
        low, high = video.hard_part
        pairs = [ss for ss in by_pair.values() if ss[0].asset_id == video.asset_id]
        again = [
            sum(
                sum(any(p.start_ms <= at < p.end_ms for p in s.plays) for s in ss) > 1
                for ss in pairs
            )
            for at in ((low + high) // 2, low - 60_000, high + 60_000)
        ]
        assert again[0] > max(5, *again[1:])


def test_beacons_are_what_the_tracker_sends_and_within_the_bounds(full_plan: DemoPlan):
    for sitting in full_plan.sittings:
        duration = full_plan.video(sitting.asset_id).duration_ms
        beacons = sitting_beacons(sitting, duration)
        assert [b.seq for b in beacons] == list(range(1, len(beacons) + 1))
        first = beacons[0]
        assert (first.at_ms, first.segments, first.played_ms) == (sitting.starts_at_ms, (), 0)
        played = [(start, end) for b in beacons for start, end in b.segments]
        assert normalize(played) == normalize((p.start_ms, p.end_ms) for p in sitting.plays)
        assert sum(b.played_ms for b in beacons) == sitting.wall_ms - sum(
            p.pause_ms for p in sitting.plays
        )
        for before, beacon in itertools.pairwise(beacons):
            # What the server clock allows: never more playing than time passed, and media
            # at most at the rate (the bounds' 4x is never approached).
            assert 0 < beacon.played_ms <= beacon.at_ms - before.at_ms
            assert beacon.played_ms <= HEARTBEAT_MS
            media = sum(end - start for start, end in beacon.segments)
            assert media <= beacon.played_ms * 2 + 1
        assert beacons[-1].is_ended == (sitting.plays[-1].end_ms == duration)


# -- the load ------------------------------------------------------------------------------


def test_the_demo_goes_through_the_service_unchanged(db: Database):
    """Every visit is stored exactly as its player reported it: the clock bounds cut nothing
    (honest viewing), and the server clock moved as the viewing did (startedAt)."""
    plan = plan_demo(LOADED_VIEWERS, SEED, END_MS)
    tenant = loaded(db, plan)
    expected = {}
    for sitting in plan.sittings:
        beacons = sitting_beacons(sitting, plan.video(sitting.asset_id).duration_ms)
        coverage = normalize((p.start_ms, p.end_ms) for p in sitting.plays)
        expected[sitting.session_id] = (
            sitting.user_id,
            sitting.asset_id,
            sitting.starts_at_ms,
            beacons[-1].at_ms,
            sum(b.played_ms for b in beacons),
            measure(coverage),
            len(beacons),
        )
    with db.read() as conn:
        rows = conn.execute(
            select(
                visits.c.session_id,
                visits.c.user_id,
                visits.c.asset_id,
                visits.c.started_at_ms,
                visits.c.last_seen_at_ms,
                visits.c.watch_ms,
                visits.c.covered_ms,
                visits.c.beacon_count,
            ).where(visits.c.tenant_id == tenant.tenant_id)
        ).all()
    assert {row[0]: tuple(row[1:]) for row in rows} == expected


def test_the_analytics_show_drop_off_skipped_intros_rewatching_and_completions(db: Database):
    tenant = loaded(db, plan_demo(LOADED_VIEWERS, SEED, END_MS))
    durations = {video.asset_id: video.duration_ms for video in VIDEOS}
    with db.read() as conn:
        page = build_videos(
            conn, tenant.tenant_id, Defaults(90), VideosQuery(TimeRange(), page_size=100)
        )
        curves = {
            video.asset_id: build_retention(
                conn, tenant.tenant_id, RetentionQuery(video.asset_id, 100, TimeRange())
            )
            for video in VIDEOS
        }
        stored_percents = [
            percent(
                measure(clamp(pair.coverage, 0, durations[pair.asset_id])), durations[pair.asset_id]
            )
            for pair in find_pairs(conn, tenant.tenant_id, TimeRange())
        ]
    rows = {row["assetId"]: row for row in page["data"]}
    assert set(rows) == {video.asset_id for video in VIDEOS}
    assert rows["demo-compliance-2025"]["completionThreshold"] == 80
    # Some completed, fewer than a third; someone saw all of a video, a few nothing.
    completed = sum(row["completedViewers"] for row in rows.values())
    assert 0 < completed < sum(row["viewers"] for row in rows.values()) / 3
    assert 100 in stored_percents
    assert 0 in stored_percents
    for video in VIDEOS:
        curve = curves[video.asset_id]
        viewers = curve["viewers"]
        assert curve["totalViewers"] == rows[video.asset_id]["viewers"]
        # Drop-off: many more at the start than at the end; skipped intros and credits.
        assert max(viewers[:10]) > 2 * viewers[95]
        in_intro = video.intro_ms * 100 // video.duration_ms - 1  # a bucket inside it
        if in_intro >= 0:
            assert viewers[in_intro] < viewers[in_intro + 2] / 2
        if max(viewers[90:97]) >= 3:  # enough got near the end to tell
            assert viewers[99] < max(viewers[90:97])
    # Rewatching days later: more visits than viewers in the hard part of the training.
    compliance = curves["demo-compliance-2025"]
    low, high = next(v.hard_part for v in VIDEOS if v.asset_id == "demo-compliance-2025")
    hard = range(low * 100 // 1_200_000 + 1, high * 100 // 1_200_000)
    assert all(compliance["views"][i] > compliance["viewers"][i] for i in hard)


def test_the_same_seed_loads_the_same_numbers(db: Database):
    def stored(tenant: Tenant) -> list[tuple[object, ...]]:
        with db.read() as conn:
            rows = conn.execute(
                select(visits)
                .where(visits.c.tenant_id == tenant.tenant_id)
                .order_by(visits.c.session_id)
            ).all()
        return [tuple(row)[1:] for row in rows]  # all but the tenant

    first = stored(loaded(db, plan_demo(20, SEED, END_MS)))
    remove_demo(db)
    assert stored(loaded(db, plan_demo(20, SEED, END_MS))) == first


def test_the_account_signs_in_with_the_password(db: Database):
    login = create_demo_tenant(db, plan_demo(5, SEED, END_MS), NOW_MS)
    assert login is not None
    assert login.email == DEMO_EMAIL
    assert login.tenant.name == DEMO_TENANT_NAME
    assert login.tenant.is_demo
    with db.read() as conn:
        account = verify_password(conn, DEMO_EMAIL, login.password)
        assert account is not None
        assert account.tenant_id == login.tenant.tenant_id
        assert verify_password(conn, DEMO_EMAIL, login.password + "x") is None


def test_there_is_never_a_second_demo_tenant(db: Database):
    plan = plan_demo(5, SEED, END_MS)
    first = create_demo_tenant(db, plan, NOW_MS)
    assert first is not None
    with pytest.raises(DemoExists, match="--remove"):
        create_demo_tenant(db, plan, NOW_MS)
    with db.read() as conn:
        assert [t.authkey for t in list_tenants(conn, db.secret_box) if t.is_demo] == [
            first.tenant.authkey
        ]


def test_serve_first_tenant_does_not_count_the_demo_and_adds_no_demo(db: Database):
    assert create_demo_tenant(db, plan_demo(5, SEED, END_MS), NOW_MS) is not None
    created = create_first_tenant(db, "sandbox", "127.0.0.1", 8000)
    assert created is not None
    assert not created.is_demo
    assert create_first_tenant(db, "again", "127.0.0.1", 8000) is None
    with db.read() as conn:
        assert [t.is_demo for t in list_tenants(conn, db.secret_box)] == [True, False]


# -- the command ---------------------------------------------------------------------------


def test_the_command_loads_prints_the_login_and_refuses_a_second(database_url: str, db: Database):
    out = run("demo", "--viewers", "8", "--json", "--database-url", database_url, stdout_only=True)
    shown = json.loads(out)
    assert shown["loaded"] is True
    assert (shown["url"], shown["email"], shown["viewers"]) == (DASHBOARD_URL, DEMO_EMAIL, 8)
    with db.read() as conn:
        assert verify_password(conn, DEMO_EMAIL, shown["password"]) is not None
        tenant = find_demo_tenant(conn, db.secret_box)
        assert tenant is not None
        assert tenant.authkey == shown["authkey"]
        assert (
            conn.execute(select(func.count()).select_from(visits)).scalar_one() == shown["visits"]
        )
    again = run("demo", "--viewers", "8", "--database-url", database_url, ok=False)
    assert "a demo tenant exists already" in again
    assert "vodwatch demo --remove" in again


def test_the_command_prints_how_to_sign_in(database_url: str):
    out = run("demo", "--viewers", "3", "--if-empty", "--database-url", database_url)
    assert DASHBOARD_URL in out
    assert f"e-mail:   {DEMO_EMAIL}" in out
    assert "password: " in out
    assert "Sent " in out  # on stderr, with the progress


def test_if_empty_loads_nothing_into_a_database_with_a_tenant(database_url: str, db: Database):
    add_tenant(db)
    out = run("demo", "--if-empty", "--database-url", database_url)
    assert out.strip() == "the database has tenants already: no demo data loaded"
    with db.read() as conn:
        assert find_demo_tenant(conn, db.secret_box) is None


def count_rows(db: Database, tenant_id: int) -> dict[str, int]:
    with db.read() as conn:
        return {
            table.name: conn.execute(
                select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)
            ).scalar_one()
            for table in metadata.sorted_tables
            if "tenant_id" in table.c
        }


def test_remove_deletes_the_demo_and_nothing_else(database_url: str, db: Database, http, clock):
    other = add_tenant(db, "Acme")
    client = VodwatchClient(
        "http://testserver", other.authkey, other.secret, http=http, clock=clock
    )
    client.put_media("860", "数学 101", duration=100)
    client.send_beacons(server_beacon("acme-session", 1, asset_id="860", segments=[[0, 42]]))
    with db.write() as conn:
        create_account(conn, other.tenant_id, "teacher@acme.example", "long enough", NOW_MS)
    demo = loaded(db, plan_demo(10, SEED, END_MS))
    others_before = count_rows(db, other.tenant_id)
    demo_before = count_rows(db, demo.tenant_id)
    # delete_tenant reaches every table through its tenant_id.
    assert all("tenant_id" in table.c for table in metadata.sorted_tables)
    core = ("tenants", "accounts", "assets", "viewers", "visits", "viewer_videos")
    assert all(demo_before[name] and others_before[name] for name in core)
    assert demo_before["signed_requests"]  # the catalog's PUTs

    out = run("demo", "--remove", "--database-url", database_url)
    assert f"Removed the demo tenant 'Demo school' ({demo.authkey})" in out
    assert f"visits {demo_before['visits']:,}, " in out
    assert count_rows(db, demo.tenant_id) == dict.fromkeys(demo_before, 0)
    assert count_rows(db, other.tenant_id) == others_before
    with db.read() as conn:
        assert [t.name for t in list_tenants(conn, db.secret_box)] == ["Acme"]
    assert "There is no demo tenant: nothing removed." in run(
        "demo", "--remove", "--database-url", database_url
    )
    assert json.loads(run("demo", "--remove", "--json", "--database-url", database_url)) == []
