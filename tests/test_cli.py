"""The ``vodwatch`` command, as a user types it."""

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import add_tenant
from tests.helpers import run, server_beacon
from tests.servers import Server
from vodwatch.client import VodwatchClient
from vodwatch.store.database import Database
from vodwatch.store.migrate import head_revision


def test_tenant_create_and_list(database_url: str):
    created = json.loads(
        run("tenant", "create", "Acme 学院", "--json", "--database-url", database_url)
    )
    assert set(created) == {"authkey", "secret"}
    assert created["authkey"].startswith("tk_")
    assert len(created["secret"]) >= 40
    listed = json.loads(run("tenant", "list", "--json", "--database-url", database_url))
    assert listed == [
        {
            "name": "Acme 学院",
            "authkey": created["authkey"],
            "allowedOrigins": [],
            "disabledAt": None,
            "previousSecretValidUntil": None,
            "completionThreshold": 90,
            "maxRate": None,
            "visibleOnly": False,
        }
    ]
    assert created["secret"] not in run("tenant", "list", "--database-url", database_url)
    assert "must be 1 to 200" in run(
        "tenant", "create", " ", "--database-url", database_url, ok=False
    )


def test_database_url_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("VODWATCH_DATABASE_URL", url)
    run("tenant", "create", "from-env")
    assert (tmp_path / "env.db").exists()
    assert "unsupported database URL" in run(
        "db", "status", "--database-url", "mysql://x/y", ok=False
    )


def test_db_upgrade_and_status(database_url: str):
    assert f"upgraded from empty to {head_revision()}" in run(
        "db", "upgrade", "--database-url", database_url
    )
    assert "already at" in run("db", "upgrade", "--database-url", database_url)
    assert ": current" in run("db", "status", "--database-url", database_url)


@pytest.mark.slow
def test_first_start_prints_credentials_once_and_the_report_command_works(
    database_url: str, tmp_path: Path
):
    server = Server(database_url, tmp_path, extra=("--first-tenant", "demo"))
    try:
        first = server.start().output()
        assert "authkey:" in first
        assert "secret:" in first
        command = next(line for line in first.splitlines() if " report --url " in line).split()
        args = command[command.index("report") :]
        assert "page 1 of 1, 0 rows in all" in run(*args)
        secret = args[args.index("--secret") + 1]
        authkey = args[args.index("--authkey") + 1]
        server.stop()
        again = server.start().output()
        assert secret not in again
        assert "authkey:" not in again

        with VodwatchClient(server.url, authkey, secret) as client:
            client.put_media("860", "数学 101", duration=100)
            client.send_beacons(
                server_beacon(
                    "cli-session-1",
                    1,
                    asset_id="860",
                    userName="张三",
                    segments=[[0, 42]],
                    played_ms=42_000,
                )
            )
        table = run(*args)
        assert table.splitlines()[0].split() == [
            "userId",
            "userName",
            "assetId",
            "videoTitle",
            "visitTime",
            "visitRadio",
        ]
        assert table.splitlines()[1].split() == [
            "李四",
            "张三",
            "860",
            "数学",
            "101",
            "00:00:42",
            "42%",
        ]
        raw = json.loads(run(*args, "--json", "--video-info", "数学"))
        assert raw["data"]["data"][0]["visitRadio"] == "42%"
        bad = run(*[a if a != secret else "wrong" for a in args], ok=False)
        assert "invalid credentials" in bad
    finally:
        server.stop()


def test_serve_refuses_a_schema_newer_than_it_knows(database_url: str, db: Database):
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    output = run("serve", "--database-url", database_url, "--port", "0", ok=False)
    assert "newer than this vodwatch knows" in output
    assert "newer than this vodwatch knows" in run(
        "db", "upgrade", "--database-url", database_url, ok=False
    )


def test_token_command_mints_a_token_the_service_accepts(database_url: str):
    created = json.loads(run("tenant", "create", "t", "--json", "--database-url", database_url))
    token = run(
        "token",
        "--authkey",
        created["authkey"],
        "--user-id",
        "u",
        "--asset-id",
        "a",
        "--database-url",
        database_url,
    ).strip()
    from vodwatch.playback_token import verify_playback_token

    claims = verify_playback_token(token, lambda _: created["secret"], __import__("time").time())
    assert (claims.user_id, claims.asset_id) == ("u", "a")


@pytest.mark.slow
def test_videos_retention_and_report_as_a_file(servers, db: Database):
    server = servers()
    tenant = add_tenant(db)
    with VodwatchClient(server.url, tenant.authkey, tenant.secret) as client:
        client.put_media("860", "数学 101", duration=100)
        for n, seconds in enumerate((100, 50)):
            client.send_beacons(
                server_beacon(
                    f"cli-session-{n}",
                    1,
                    user_id=f"u{n}",
                    asset_id="860",
                    userName="=张三",
                    segments=[[0, seconds]],
                    played_ms=seconds * 1000,
                )
            )
    args = ("--url", server.url, "--authkey", tenant.authkey, "--secret", tenant.secret)
    lines = run("videos", *args).splitlines()
    assert lines[0].split()[:3] == ["assetId", "videoTitle", "viewers"]
    assert lines[1].split() == ["860", "数学", "101", "2", "2", "00:02:30", "75%", "1", "50%"]
    assert lines[-1] == "page 1 of 1, 1 video in all"
    curve = run("retention", "860", "--buckets", "10", *args)
    assert "860: 2 viewers, 2 visits" in curve
    assert "coverage:" in curve
    assert "0:00-0:10        2        2" in curve
    assert "1:30-1:40        1        1" in curve
    exported = run("report", "--format", "csv", *args, stdout_only=True)
    rows = list(csv.reader(io.StringIO(exported.lstrip("\ufeff"), newline="")))
    assert rows[0][:2] == ["userId", "userName"]
    assert sorted((row[0], row[1], row[-1]) for row in rows[1:]) == [
        ("u0", "'=张三", "true"),
        ("u1", "'=张三", "false"),
    ]
    assert "neither in the catalog nor ever seen" in run("retention", "nothing", *args, ok=False)
