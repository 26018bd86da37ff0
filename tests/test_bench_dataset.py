"""The benchmark's dataset loader writes what ingest would have written: the report over the
loaded rows (visits and their viewer-and-video rollup) agrees with the generated visits, so the
query benchmark measures a database in the state the service keeps."""

from collections import defaultdict

from bench.dataset import authkey_of, load_dataset
from bench.viewing import generate_visits, make_tenants
from vodwatch.intervals import measure, normalize
from vodwatch.report.params import ReportQuery
from vodwatch.store.database import Database
from vodwatch.store.reports import page_viewer_videos, page_visits
from vodwatch.store.tenants import list_tenants


def test_loaded_rows_agree_with_the_generated_visits(db: Database):
    tenants = make_tenants(3, 40, 10)
    generated = list(generate_visits(tenants, 600))
    loaded = load_dataset(db, tenants, generated)
    assert loaded.visits == 600
    tenant_id = loaded.largest_tenant
    mine = [visit for visit in generated if visit.tenant_id == tenant_id]
    pairs = defaultdict(list)
    for visit in mine:
        pairs[(visit.user_id, visit.asset_id)].append(visit)
    with db.engine.connect() as conn:
        total, _ = page_visits(conn, tenant_id, ReportQuery(page_size=1))
        assert total == len(mine) == loaded.visits_per_tenant[tenant_id]
        every_pair = ReportQuery(group_by="userVideo", page_size=1000)
        total, rows = page_viewer_videos(conn, tenant_id, every_pair)
        grouped_now = page_viewer_videos(
            conn,
            tenant_id,
            ReportQuery(start_time=0, end_time=4_000_000_000, page_size=1000, group_by="userVideo"),
        )
    assert (total, rows) == grouped_now
    assert total == len(pairs)
    for row in rows:
        visits = pairs[(row.user_id, row.asset_id)]
        assert row.watch_ms == sum(visit.watch_ms for visit in visits)
        assert row.visit_count == len(visits)
        spans = normalize(span for visit in visits for span in visit.segments)
        assert measure(row.coverage) == measure(spans)
    with db.engine.connect() as conn:
        assert authkey_of(tenant_id) in {
            tenant.authkey for tenant in list_tenants(conn, db.secret_box)
        }
