"""The insights benchmark's tenant: its star video has exactly the viewers asked for, it loads
on top of the query part's dataset, and the analytics over the loaded rows count them."""

from collections import Counter

from bench.dataset import load_dataset
from bench.viewing import (
    asset_id,
    generate_star_visits,
    generate_visits,
    insights_tenant,
    make_tenants,
)
from vodwatch.attention import Defaults
from vodwatch.report.insights import RetentionQuery, VideosQuery, build_retention, build_videos
from vodwatch.store.database import Database
from vodwatch.store.insights import TimeRange


def test_the_star_video_has_exactly_the_viewers_asked_for() -> None:
    tenant = insights_tenant(7, 50)
    visits = list(generate_star_visits(tenant, 400, 50))
    star = asset_id(7, 0)
    assert len(visits) == 400
    assert len({visit.session_id for visit in visits}) == 400
    assert len({visit.user_id for visit in visits if visit.asset_id == star}) == 50
    assert Counter(visit.asset_id for visit in visits).most_common(1)[0][1] < 400
    assert all(visit.segments for visit in visits)


def test_it_loads_on_top_of_the_query_dataset(db: Database) -> None:
    tenants = make_tenants(3, 40, 10)
    base = load_dataset(db, tenants, generate_visits(tenants, 300))
    tenant = insights_tenant(len(tenants) + 1, 30)
    loaded = load_dataset(db, [tenant], list(generate_star_visits(tenant, 200, 30)))
    assert loaded.visits == 200
    assert loaded.largest_tenant == tenant.tenant_id
    star = asset_id(tenant.tenant_id, 0)
    with db.engine.connect() as conn:
        retention = build_retention(conn, tenant.tenant_id, RetentionQuery(star, 10, TimeRange()))
        videos = build_videos(
            conn, tenant.tenant_id, Defaults(90), VideosQuery(TimeRange(), page_size=100)
        )
        other = build_videos(conn, base.largest_tenant, Defaults(90), VideosQuery(TimeRange()))
    assert retention["totalViewers"] == 30
    assert retention["duration"] > 0  # the duration is in the catalog
    assert sum(row["visits"] for row in videos["data"]) == 200
    assert other["total"] > 0  # the tenants underneath are untouched
