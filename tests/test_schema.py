"""The schema: ready to shard by tenant, and migrated forward without losing data."""

import pytest
from sqlalchemy import inspect, text
from starlette.testclient import TestClient

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import new_session_id, server_beacon, snapshot
from vodwatch.api.app import create_app
from vodwatch.store.database import Database
from vodwatch.store.migrate import SchemaError, head_revision, read_schema_state, upgrade

# Small tables every shard needs whole (Citus "reference tables"): keyed by their own ids.
REFERENCE_TABLES = {"tenants", "alembic_version"}


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
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_assets_title_trgm'")
        ).scalar_one()
    db.dispose()
    assert "gin (tenant_id, title_folded gin_trgm_ops)" in definition


def test_upgrade_from_the_first_schema_keeps_every_row(database_url: str, clock: FakeClock):
    db = Database(database_url)
    try:
        upgrade(db, "0001")
        tenant = add_tenant(db)
        with TestClient(create_app(db, clock=clock)) as http:
            client = client_for(http, tenant, clock)
            client.put_media("860", "数学 101", duration=100)
            for n in range(5):
                client.send_beacons(
                    server_beacon(
                        new_session_id(),
                        1,
                        asset_id="860",
                        user_id=f"u{n}",
                        segments=[[0, 10 * n]],
                        played_ms=1000 * n,
                        userName=f"name {n}",
                    )
                )
            before_rows = snapshot(db)
            before_report = client.watch_report(groupBy="userVideo")

            state = upgrade(db)
            assert (state.current, state.is_current) == (head_revision(), True)
            assert snapshot(db) == before_rows
            assert client.watch_report(groupBy="userVideo") == before_report
            assert client.watch_report(videoInfo="数学")["data"]["total"] == 5
    finally:
        db.dispose()


def test_a_newer_schema_is_refused(db: Database):
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaError, match="newer than this vodwatch knows"):
        upgrade(db)
    assert read_schema_state(db).current == "ffff"
