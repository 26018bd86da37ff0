"""The files of a SQLite service are private to its user, whatever the umask: the database,
its -wal, -shm and -writelock companions, and the key file."""

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import add_tenant
from tests.helpers import file_mode, server_beacon
from tests.servers import Server
from vodwatch.client import VodwatchClient
from vodwatch.settings import SECRET_KEY_ENV
from vodwatch.store.database import Database
from vodwatch.store.migrate import upgrade

COMPANIONS = ("", "-wal", "-shm", "-writelock")


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are created readable by everyone (0644)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.slow
@pytest.mark.usefixtures("umask_022")
def test_every_file_of_a_real_server_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(SECRET_KEY_ENV)  # the key goes to the default key file
    database = tmp_path / "data" / "vodwatch.db"
    control = tmp_path / "control"
    control.touch()
    assert file_mode(control) == 0o644
    server = Server(f"sqlite:///{database}", tmp_path, extra=("--first-tenant", "demo")).start()
    try:
        lines = dict(
            line.strip().split(": ", 1)
            for line in server.output().splitlines()
            if line.strip().startswith(("authkey: ", "secret: "))
        )
        with VodwatchClient(server.url, lines["authkey"], lines["secret"].strip()) as client:
            client.put_media("860", "Math 101", duration=100)
            client.send_beacons(server_beacon("private-1", 1, asset_id="860", segments=[[0, 5]]))
        # The signed requests seen (replay protection) live in a file of their own.
        replay = ("-replay", "-replay-wal", "-replay-shm")
        files = [Path(f"{database}{suffix}") for suffix in (*COMPANIONS, ".key", *replay)]
        assert {path.name: oct(file_mode(path)) for path in files} == {
            path.name: "0o600" for path in files
        }
    finally:
        server.stop()


@pytest.mark.usefixtures("umask_022")
def test_a_new_database_file_is_private_before_sqlite_opens_it(tmp_path: Path):
    database = tmp_path / "new.db"
    db = Database(f"sqlite:///{database}")
    try:
        assert (database.stat().st_size, file_mode(database)) == (0, 0o600)
    finally:
        db.dispose()


@pytest.mark.usefixtures("umask_022")
def test_files_open_to_others_are_made_private_at_open_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    database = tmp_path / "old.db"
    url = f"sqlite:///{database}"
    first = Database(url)
    try:
        upgrade(first)
        add_tenant(first)  # a write: the lock file; the open connections keep -wal and -shm
        files = [Path(f"{database}{suffix}") for suffix in COMPANIONS]
        for path in files:
            path.chmod(0o644)  # as an older vodwatch left them
        with caplog.at_level(logging.WARNING):
            second = Database(url)
        add_tenant(second, "other")
        second.dispose()
    finally:
        first.dispose()
    assert {path.name: oct(file_mode(path)) for path in files if path.exists()} == {
        path.name: "0o600" for path in files if path.exists()
    }
    assert [r.getMessage() for r in caplog.records] == [
        "made private (mode 0600; they were open to group or others): "
        + ", ".join(str(path) for path in files)
    ]
