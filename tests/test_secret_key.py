"""Where the key of the tenant secrets comes from, and the clear refusals when it is not the
right one. These tests unset ``VODWATCH_SECRET_KEY`` where they test key files."""

import logging
import os
from pathlib import Path

import pytest

from tests.helpers import file_mode, run, stored_secrets
from vodwatch.keyring import SecretBox, WrongKey, encode_key, new_key, parse_key
from vodwatch.settings import KEY_FILE_ENV, SECRET_KEY_ENV
from vodwatch.store.database import Database
from vodwatch.store.tenants import Tenant


@pytest.fixture
def key_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key in the environment: the key comes from a file. The working directory is the
    test's own (the default key file of PostgreSQL is ./vodwatch.key)."""
    monkeypatch.delenv(SECRET_KEY_ENV)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def default_key_file(database_url: str, tmp_path: Path) -> Path:
    if database_url.startswith("sqlite:"):
        return tmp_path / "vodwatch.db.key"
    return tmp_path / "vodwatch.key"


def refusals(database_url: str) -> list[str]:
    """What commands that need the key print when they refuse to run (exit code 1)."""
    commands = (["serve", "--port", "0"], ["db", "upgrade"], ["tenant", "list"])
    return [run(*command, "--database-url", database_url, ok=False) for command in commands]


def stored_in(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        return list(stored_secrets(db).values())
    finally:
        db.dispose()


@pytest.mark.usefixtures("key_files")
def test_the_default_key_file_is_created_private_for_a_new_database(
    database_url: str, tmp_path: Path
):
    key_file = default_key_file(database_url, tmp_path)
    umask = os.umask(0o022)
    try:
        run("tenant", "create", "acme", "--database-url", database_url)
    finally:
        os.umask(umask)
    assert file_mode(key_file) == 0o600
    box = SecretBox(parse_key(key_file.read_text(), "key file"))
    (stored,) = stored_in(database_url)
    assert stored.startswith(f"v1:{box.key_id}:")
    written = key_file.read_text()
    run("tenant", "create", "other", "--database-url", database_url)
    assert key_file.read_text() == written
    assert all(s.startswith(f"v1:{box.key_id}:") for s in stored_in(database_url))


@pytest.mark.usefixtures("key_files")
def test_no_second_key_is_made_for_a_database_with_encrypted_secrets(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A second host (or a lost key file) must be given the key, not mint its own."""
    key_file = default_key_file(database_url, tmp_path)
    run("tenant", "create", "acme", "--database-url", database_url)
    key_id = SecretBox(parse_key(key_file.read_text(), "key file")).key_id
    backup = tmp_path / "backup" / "secret.key"
    backup.parent.mkdir()
    key_file.rename(backup)

    expected = (
        f"tenant secrets were encrypted with key {key_id}; this server has no key (key file "
        f"{key_file} does not exist): set VODWATCH_SECRET_KEY or --key-file to the key the "
        "database was written with"
    )
    for output in refusals(database_url):
        assert expected in output, output
    assert not key_file.exists()

    assert "acme" in run(
        "tenant", "list", "--key-file", str(backup), "--database-url", database_url
    )
    monkeypatch.setenv(SECRET_KEY_ENV, backup.read_text().strip())
    assert "acme" in run("tenant", "list", "--database-url", database_url)


def test_a_wrong_key_is_refused_by_name(
    database_url: str, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
):
    written_with = db.secret_box.key_id
    other = encode_key(new_key())
    monkeypatch.setenv(SECRET_KEY_ENV, other)
    other_id = SecretBox(parse_key(other, "")).key_id
    expected = (
        f"tenant secrets were encrypted with key {written_with}; this server has key "
        f"{other_id}: set VODWATCH_SECRET_KEY or --key-file to the key the database was "
        "written with"
    )
    for output in refusals(database_url):
        assert expected in output, output
        assert tenant.secret not in output
    other_db = Database(database_url)
    with pytest.raises(WrongKey):
        other_db.secret_box  # noqa: B018
    other_db.dispose()


@pytest.mark.usefixtures("key_files")
def test_a_key_file_named_by_flag_or_environment_must_exist(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    missing = tmp_path / "missing.key"
    output = run(
        "db", "upgrade", "--key-file", str(missing), "--database-url", database_url, ok=False
    )
    assert f"key file {missing} does not exist" in " ".join(output.split())
    monkeypatch.setenv(KEY_FILE_ENV, str(missing))
    assert "does not exist" in run("db", "upgrade", "--database-url", database_url, ok=False)
    assert not missing.exists()
    assert not default_key_file(database_url, tmp_path).exists()

    missing.write_text(encode_key(new_key()) + "\n")
    missing.chmod(0o600)
    assert "upgraded" in run("db", "upgrade", "--database-url", database_url)


@pytest.mark.usefixtures("key_files")
def test_a_key_file_open_to_others_is_made_private_with_a_warning(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    key_file = tmp_path / "shared.key"
    key_file.write_text(encode_key(new_key()))
    key_file.chmod(0o644)
    db = Database(database_url, key_file=str(key_file))
    try:
        with caplog.at_level(logging.WARNING):
            db.secret_box  # noqa: B018
    finally:
        db.dispose()
    assert file_mode(key_file) == 0o600
    warnings = [r.getMessage() for r in caplog.records if str(key_file) in r.getMessage()]
    assert warnings == [f"made private (mode 0600; they were open to group or others): {key_file}"]


def test_a_malformed_key_is_refused(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SECRET_KEY_ENV, "not-a-key")
    output = run("db", "upgrade", "--database-url", database_url, ok=False)
    assert "VODWATCH_SECRET_KEY must hold a key of 32 bytes in base64url" in output
