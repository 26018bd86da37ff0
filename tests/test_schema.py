"""The schema: ready to shard by tenant, and migrated forward without losing data."""

import importlib.util
import itertools
import time

import pytest
from sqlalchemy import insert, inspect, select, text
from starlette.testclient import TestClient

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import new_session_id, snapshot, stored_secrets, table_columns
from vodwatch.api.app import create_app
from vodwatch.ingest.visit import Visit
from vodwatch.intervals import measure
from vodwatch.keyring import UndecryptableSecret
from vodwatch.store.database import Database
from vodwatch.store.migrate import (
    MIGRATIONS,
    SchemaError,
    head_revision,
    read_schema_state,
    upgrade,
)
from vodwatch.store.schema import assets, viewer_videos, viewers
from vodwatch.store.schema import visits as visits_table
from vodwatch.store.tenants import Tenant, find_tenant, new_authkey, new_secret
from vodwatch.store.visits import _row as visit_row
from vodwatch.store.visits import decode_intervals

# Small tables every shard needs whole (Citus "reference tables"): keyed by their own ids.
# ``accounts`` is looked up by e-mail at sign-in, before any tenant is known.
REFERENCE_TABLES = {"tenants", "accounts", "alembic_version"}


def test_every_key_and_index_starts_with_the_tenant(db: Database):
    inspector = inspect(db.engine)
    tables = set(inspector.get_table_names())
    assert {"assets", "viewers", "visits"} <= tables
    checked = 0
    for table in sorted(tables - REFERENCE_TABLES):
        keys: list[tuple[str, list[str | None]]] = [
            ("primary key", list(inspector.get_pk_constraint(table)["constrained_columns"]))
        ]
        keys += [(f"index {i['name']}", i["column_names"]) for i in inspector.get_indexes(table)]
        keys += [
            (f"unique {u['name']}", list(u["column_names"]))
            for u in inspector.get_unique_constraints(table)
        ]
        keys += [
            (f"foreign key to {f['referred_table']}", list(f["constrained_columns"]))
            for f in inspector.get_foreign_keys(table)
        ]
        for name, columns in keys:
            assert columns[:1] == ["tenant_id"], f"{table} {name}: {columns}"
            checked += 1
    assert checked >= 10  # 3 primary keys, 3 visit indexes, 4 foreign keys (and more to come)


@pytest.mark.postgres
def test_title_search_uses_a_trigram_index_on_postgresql(postgres_database_url: str):
    db = Database(postgres_database_url)
    upgrade(db)
    with db.read() as conn:
        definition = conn.execute(
            text(
                "SELECT indexdef FROM pg_indexes "
                "WHERE indexname = 'ix_assets_title_trgm' AND schemaname = current_schema()"
            )
        ).scalar_one()
    db.dispose()
    assert "gin (tenant_id, title_folded gin_trgm_ops)" in definition


def add_plaintext_tenant(
    db: Database, name: str = "acme", authkey: str | None = None, secret: str | None = None
) -> Tenant:
    """A tenant as the code before revision 0004 wrote it: the secret in plaintext."""
    authkey, secret = authkey or new_authkey(), secret or new_secret()
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (name, authkey, secret, created_at_ms) "
                "VALUES (:name, :authkey, :secret, :now)"
            ),
            {"name": name, "authkey": authkey, "secret": secret, "now": int(time.time() * 1000)},
        )
        tenant_id = conn.execute(
            text("SELECT tenant_id FROM tenants WHERE authkey = :authkey"), {"authkey": authkey}
        ).scalar_one()
    return Tenant(tenant_id, name, authkey, secret, ())


def test_upgrade_from_the_first_schema_keeps_every_row(database_url: str, clock: FakeClock):
    """Rows written by the first schema (as its code wrote them) survive every migration, and
    the per viewer-and-video totals added later are backfilled from them."""
    db = Database(database_url)
    try:
        upgrade(db, "0001")
        tenant = add_plaintext_tenant(db)
        visits_by_user: dict[str, list[tuple[tuple[int, int], ...]]] = {
            "李四": [((0, 30_000),), ((20_000, 50_000), (90_000, 100_000))],
            "王五": [((0, 10_000),)],
        }
        with db.write() as conn:
            conn.execute(
                insert(assets).values(
                    tenant_id=tenant.tenant_id,
                    asset_id="860",
                    title="数学 101",
                    title_folded="数学 101",
                    duration_ms=100_000,
                    is_cataloged=True,
                    created_at_ms=0,
                    updated_at_ms=0,
                )
            )
            for n, (user, sittings) in enumerate(visits_by_user.items()):
                conn.execute(
                    insert(viewers).values(
                        tenant_id=tenant.tenant_id,
                        user_id=user,
                        user_name=f"name {n}",
                        name_at_ms=0,
                    )
                )
                for m, coverage in enumerate(sittings):
                    visit = Visit(
                        session_id=f"session-{n}-{m}",
                        user_id=user,
                        asset_id="860",
                        started_at_ms=1_764_000_000_000 + m * 1000,
                        last_seen_at_ms=1_764_000_100_000,
                        watch_ms=1000 * (m + 1),
                        coverage=list(coverage),
                        seqs=[(1, 2)],
                        beacon_count=1,
                    )
                    row = visit_row(tenant.tenant_id, visit)
                    for later in ("attempt_id", "attention", "refused_ms"):  # 0009's columns
                        del row[later]
                    conn.execute(insert(visits_table).values(row))
        first_columns = table_columns(db)
        before_rows = snapshot(db, exclude={"tenants", "viewer_videos"}, columns=first_columns)

        state = upgrade(db)
        assert (state.current, state.is_current) == (head_revision(), True)
        after_rows = snapshot(db, exclude={"tenants", "viewer_videos"}, columns=first_columns)
        assert after_rows == before_rows
        with TestClient(create_app(db, clock=clock)) as http:
            client = client_for(http, tenant, clock)
            grouped = client.watch_report(groupBy="userVideo")["data"]["data"]
            assert [
                (r["userId"], r["visitTime"], r["visitRadio"], r["visits"]) for r in grouped
            ] == [("李四", "00:00:03", "60%", 2), ("王五", "00:00:01", "10%", 1)]
            assert client.watch_report(videoInfo="数学")["data"]["total"] == 3
    finally:
        db.dispose()


def test_a_newer_schema_is_refused(db: Database):
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaError, match="newer than this vodwatch knows"):
        upgrade(db)
    assert read_schema_state(db).current == "ffff"


def test_upgrade_encrypts_the_secrets_in_place_and_they_still_sign(
    database_url: str, clock: FakeClock
):
    """Secrets stored in plaintext by the 0003 code are encrypted by 0004 (bound to their
    tenant), and requests and playback tokens made with them are still accepted."""
    db = Database(database_url)
    try:
        upgrade(db, "0003")
        demo = add_plaintext_tenant(
            db, "demo", "tk_demo_authkey", "a-secret-written-in-plaintext-by-0003"
        )
        other = add_plaintext_tenant(db, "other")

        upgrade(db)
        stored = stored_secrets(db)
        key_id = db.secret_box.key_id
        for tenant in (demo, other):
            assert stored[tenant.authkey].startswith(f"v1:{key_id}:")
            assert tenant.secret not in stored[tenant.authkey]
            assert db.secret_box.decrypt(tenant.authkey, stored[tenant.authkey]) == tenant.secret
        with db.read() as conn:
            found = find_tenant(conn, db.secret_box, demo.authkey)
            columns = {c["name"]: c["type"] for c in inspect(conn).get_columns("tenants")}
        assert found == demo
        assert {"previous_secret", "previous_secret_expires_at_ms", "disabled_at_ms"} <= set(
            columns
        )
        if not db.is_sqlite:
            assert str(columns["secret"]) == "TEXT"
        with pytest.raises(UndecryptableSecret, match="copied from another tenant"):
            db.secret_box.decrypt(other.authkey, stored[demo.authkey])

        with TestClient(create_app(db, clock=clock)) as http:
            for tenant in (demo, other):
                client = client_for(http, tenant, clock)
                client.put_media("860", "数学 101", duration=100)
                token = client.playback_token("李四", "860")
                client.send_player_beacons(
                    {"token": token, "sessionId": new_session_id(), "seq": 1}
                )
                assert client.watch_report()["data"]["total"] == 1
    finally:
        db.dispose()


def test_upgrade_to_0008_backfills_where_each_pairs_coverage_ends(
    database_url: str, clock: FakeClock
):
    """Pairs stored before 0008 get ``coverage_end_ms`` from their coverage, over more than one
    batch of the backfill and two tenants, and the videos summary (summed in SQL from it) is
    what the coverage says, clamped to the duration."""
    spec = importlib.util.spec_from_file_location(
        "coverage_end", MIGRATIONS / "versions" / "0008_coverage_end.py"
    )
    assert spec is not None
    assert spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    # Each coverage, where it ends and |U| on a 10 s video: empty, inside, past the end, at it.
    kinds = [
        ("[]", 0, 0),
        ("[[0,5000]]", 5000, 5000),
        ("[[0,1000],[2000,12000]]", 12000, 9000),
        ("[[9000,10000]]", 10000, 1000),
    ]
    coverages = {coverage: end for coverage, end, _ in kinds}
    covered = {coverage: united for coverage, _, united in kinds}
    db = Database(database_url)
    try:
        upgrade(db, "0007")
        sizes = {}
        tenant_list = [add_tenant(db, "big"), add_tenant(db, "small")]
        for tenant, size in zip(tenant_list, (migration.CHUNK + 3, 5), strict=True):
            sizes[tenant.tenant_id] = size
            with db.write() as conn:
                conn.execute(
                    insert(assets).values(
                        tenant_id=tenant.tenant_id,
                        asset_id="860",
                        title="数学 101",
                        title_folded="数学 101",
                        duration_ms=10_000,
                        is_cataloged=True,
                        created_at_ms=0,
                        updated_at_ms=0,
                    )
                )
                users = [f"user {n:05d}" for n in range(size)]
                conn.execute(
                    insert(viewers),
                    [
                        {"tenant_id": tenant.tenant_id, "user_id": user, "name_at_ms": 0}
                        for user in users
                    ],
                )
                conn.execute(
                    insert(viewer_videos),
                    [
                        {
                            "tenant_id": tenant.tenant_id,
                            "user_id": user,
                            "asset_id": "860",
                            "first_started_at_ms": 1_764_000_000_000,
                            "latest_started_at_ms": 1_764_000_000_000,
                            "last_seen_at_ms": 1_764_000_000_000,
                            "watch_ms": 1000,
                            "coverage": coverage,
                            "covered_ms": measure(decode_intervals(coverage)),
                            "visit_count": 1,
                        }
                        for user, coverage in zip(users, itertools.cycle(coverages))
                    ],
                )

        upgrade(db)
        with db.read() as conn:
            rows = conn.execute(
                select(viewer_videos.c.coverage, viewer_videos.c.coverage_end_ms)
            ).all()
        assert len(rows) == sum(sizes.values())
        assert all(end == coverages[coverage] for coverage, end in rows)
        with TestClient(create_app(db, clock=clock)) as http:
            for tenant in tenant_list:
                size = sizes[tenant.tenant_id]
                stored = list(itertools.islice(itertools.cycle(coverages), size))
                total = sum(covered[coverage] for coverage in stored)
                completed = stored.count("[[0,1000],[2000,12000]]")  # 90% of 10 s
                [row] = client_for(http, tenant, clock).videos()["data"]["data"]
                assert (row["viewers"], row["visits"], row["completedViewers"]) == (
                    size,
                    size,
                    completed,
                )
                assert row["meanCoverage"] == f"{total * 100 // (size * 10_000)}%"
    finally:
        db.dispose()
