"""Tenant secrets in use: a copy of the database cannot sign, rotation with a grace period,
disabled tenants, and the commands that do it."""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, client_for
from tests.helpers import new_session_id, run, stored_secrets
from vodwatch.api.auth import TenantDirectory
from vodwatch.client import VodwatchAPIError, VodwatchClient
from vodwatch.keyring import WrongKey, encode_key, new_key
from vodwatch.settings import SECRET_KEY_ENV
from vodwatch.store.database import Database
from vodwatch.store.tenants import Tenant, find_tenant

REFUSED = (401, 40003)


def answer(call: Callable[[], Any]) -> tuple[int, int, str]:
    """(HTTP status, result, msg) of a call: (200, 0, "成功") when it succeeds."""
    try:
        body = call()
    except VodwatchAPIError as error:
        return error.status, error.result, error.message
    return 200, body["result"], body["msg"]


def status(call: Callable[[], Any]) -> tuple[int, int]:
    return answer(call)[:2]


def client_with(http: TestClient, authkey: str, secret: str, clock: FakeClock) -> VodwatchClient:
    return VodwatchClient("http://testserver", authkey, secret, http=http, clock=clock)


def beacon_with(client: VodwatchClient, token: str) -> Callable[[], Any]:
    return lambda: client.send_player_beacons(
        {"token": token, "sessionId": new_session_id(), "seq": 1}
    )


def verified_token(client: VodwatchClient, directory: TenantDirectory) -> str:
    """A playback token the service has accepted (and so cached), for a cataloged video."""
    client.put_media("860", "Math 101", duration=100)
    token = client.playback_token("李四", "860")
    assert status(beacon_with(client, token)) == (200, 0)
    assert token in directory.verified_tokens
    return token


@pytest.fixture
def directory(http: TestClient, db: Database) -> TenantDirectory:
    """The app's tenant directory without its 10 s cache of tenants, as if every request came
    after it expired: what is left to test is the cache of verified playback tokens."""
    directory = TenantDirectory(db, ttl_seconds=0)
    services = http.app.state.services  # type: ignore[attr-defined]
    services.directory = services.auth.directory = directory
    return directory


def test_a_copy_of_the_database_alone_cannot_sign(
    database_url: str,
    db: Database,
    http: TestClient,
    tenant: Tenant,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    stored = stored_secrets(db)[tenant.authkey]
    assert stored.startswith(f"v1:{db.secret_box.key_id}:")
    assert tenant.secret not in stored
    assert status(client_for(http, tenant, clock).watch_report) == (200, 0)
    # What the database holds does not sign, whole or in part.
    for guess in (stored, stored.rsplit(":", 1)[1]):
        assert status(client_with(http, tenant.authkey, guess, clock).watch_report) == REFUSED

    copy_url = database_url
    if db.is_sqlite:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        copy = tmp_path / "stolen" / "vodwatch.db"
        copy.parent.mkdir()
        shutil.copy(tmp_path / "vodwatch.db", copy)
        assert tenant.secret.encode() not in copy.read_bytes()
        copy_url = f"sqlite:///{copy}"
    # Without the key the secrets cannot be read: another key is refused by name, and no
    # key file is created for a database that holds encrypted secrets.
    monkeypatch.setenv(SECRET_KEY_ENV, encode_key(new_key()))
    thief = Database(copy_url)
    with pytest.raises(WrongKey, match=f"encrypted with key {db.secret_box.key_id}"):
        thief.secret_box  # noqa: B018
    thief.dispose()
    if db.is_sqlite:
        monkeypatch.delenv(SECRET_KEY_ENV)
        thief = Database(copy_url)
        with pytest.raises(WrongKey, match=r"this server has no key \(key file .* does not"):
            thief.secret_box  # noqa: B018
        assert not Path(f"{copy}.key").exists()
        thief.dispose()


def test_secrets_never_show_in_repr(db: Database, tenant: Tenant):
    with db.read() as conn:
        found = find_tenant(conn, db.secret_box, tenant.authkey)
    assert found is not None
    assert tenant.secret not in repr(found)
    assert tenant.authkey in repr(found)
    assert os.environ[SECRET_KEY_ENV] not in repr(db.secret_box)


def rotate(database_url: str, authkey: str, *options: str) -> str:
    output = run(
        "tenant",
        "rotate-secret",
        authkey,
        *options,
        "--json",
        "--database-url",
        database_url,
        stdout_only=True,
    )
    rotated = json.loads(output)
    assert rotated["authkey"] == authkey
    return str(rotated["secret"])


def test_rotation_keeps_the_old_secret_valid_for_the_grace_period_only(
    database_url: str,
    http: TestClient,
    tenant: Tenant,
    clock: FakeClock,
    directory: TenantDirectory,
):
    old = client_for(http, tenant, clock)
    old_token = verified_token(old, directory)

    secret = rotate(database_url, tenant.authkey, "--grace", "3600")
    assert secret != tenant.secret
    new = client_with(http, tenant.authkey, secret, clock)
    new_token = new.playback_token("李四", "860")
    # In the grace period: either secret signs requests and tokens, the cached token too.
    for call in (
        old.watch_report,
        new.watch_report,
        beacon_with(old, old_token),
        beacon_with(old, old.playback_token("王五", "860")),
        beacon_with(new, new_token),
    ):
        assert status(call) == (200, 0)
    listed = json.loads(run("tenant", "list", "--json", "--database-url", database_url))
    assert listed[0]["previousSecretValidUntil"] >= int(clock()) + 3600 - 5
    line = run("tenant", "list", "--database-url", database_url)
    assert "previous secret valid until " in line
    assert secret not in line
    assert tenant.secret not in line

    clock.advance(3600 + 60)
    assert status(new.watch_report) == (200, 0)
    assert status(beacon_with(new, new_token)) == (200, 0)
    assert status(old.watch_report) == REFUSED
    assert status(beacon_with(old, old_token)) == REFUSED  # verified and cached before


def test_rotating_again_in_the_grace_period_ends_the_oldest_secret_at_once(
    database_url: str,
    http: TestClient,
    tenant: Tenant,
    clock: FakeClock,
    directory: TenantDirectory,
):
    first = client_for(http, tenant, clock)
    first_token = verified_token(first, directory)
    second = client_with(http, tenant.authkey, rotate(database_url, tenant.authkey), clock)
    third = client_with(http, tenant.authkey, rotate(database_url, tenant.authkey), clock)
    assert status(first.watch_report) == REFUSED
    assert status(beacon_with(first, first_token)) == REFUSED
    assert status(second.watch_report) == (200, 0)
    assert status(third.watch_report) == (200, 0)

    fourth = client_with(
        http, tenant.authkey, rotate(database_url, tenant.authkey, "--grace", "0"), clock
    )
    assert status(third.watch_report) == REFUSED
    assert status(fourth.watch_report) == (200, 0)
    assert "enabled" in run("tenant", "list", "--database-url", database_url)


def test_a_disabled_tenant_is_refused_like_an_unknown_one_and_keeps_its_data(
    database_url: str,
    db: Database,
    http: TestClient,
    tenant: Tenant,
    clock: FakeClock,
    directory: TenantDirectory,
):
    client = client_for(http, tenant, clock)
    token = verified_token(client, directory)
    origin = "https://learn.example.com"
    run("tenant", "set-origins", tenant.authkey, origin, "--database-url", database_url)
    unknown = client_with(http, "tk_nobody", tenant.secret, clock)
    unknown_signed = answer(unknown.watch_report)
    unknown_token = answer(beacon_with(unknown, unknown.playback_token("李四", "860")))
    assert unknown_signed[:2] == unknown_token[:2] == REFUSED

    assert "disabled" in run("tenant", "disable", tenant.authkey, "--database-url", database_url)
    assert answer(client.watch_report) == unknown_signed
    assert answer(lambda: client.put_media("861", "Other", duration=10)) == unknown_signed
    assert answer(beacon_with(client, token)) == unknown_token  # verified and cached before
    assert answer(beacon_with(client, client.playback_token("王五", "860"))) == unknown_token
    preflight = http.options(
        "/vod/webapi/beacon",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    listed = json.loads(run("tenant", "list", "--json", "--database-url", database_url))
    assert listed[0]["disabledAt"] >= int(clock()) - 60
    assert "disabled since " in run("tenant", "list", "--database-url", database_url)
    assert "disabled" in run(
        "token", "--authkey", tenant.authkey, "--user-id", "u", "--asset-id", "a",
        "--database-url", database_url, ok=False,
    )  # fmt: skip
    # Disabling twice keeps the first time.
    run("tenant", "disable", tenant.authkey, "--database-url", database_url)
    again = json.loads(run("tenant", "list", "--json", "--database-url", database_url))
    assert again[0]["disabledAt"] == listed[0]["disabledAt"]

    assert "enabled" in run("tenant", "enable", tenant.authkey, "--database-url", database_url)
    assert status(beacon_with(client, token)) == (200, 0)
    assert client.watch_report()["data"]["total"] == 2  # the visits from before are still here
    assert client.get_media("860")["data"]["videoTitle"] == "Math 101"


def test_the_cache_of_tenants_sees_a_change_within_its_lifetime(
    database_url: str, http: TestClient, tenant: Tenant, clock: FakeClock
):
    """A running service reads a tenant again once its cached copy is 10 s old (``clear()``
    stands for those 10 s here): until then it answers as before."""
    client = client_for(http, tenant, clock)
    assert status(client.watch_report) == (200, 0)
    run("tenant", "disable", tenant.authkey, "--database-url", database_url)
    assert status(client.watch_report) == (200, 0)
    http.app.state.services.directory.clear()  # type: ignore[attr-defined]
    assert status(client.watch_report) == REFUSED


@pytest.mark.parametrize("command", ["rotate-secret", "disable", "enable"])
def test_an_unknown_authkey_is_an_error(database_url: str, command: str):
    output = run("tenant", command, "tk_nobody", "--database-url", database_url, ok=False)
    assert "no tenant with the authkey 'tk_nobody'" in output
