"""Dashboard accounts (store.accounts) on both backends: addresses folded, passwords hashed with
argon2id and checked, a changed password dating the sessions before it."""

import pytest
from sqlalchemy import select

from tests.conftest import add_tenant
from vodwatch.store.accounts import (
    AccountError,
    create_account,
    delete_account,
    delete_tenant_accounts,
    find_account,
    list_accounts,
    normalize_email,
    set_password,
    verify_password,
)
from vodwatch.store.database import Database
from vodwatch.store.schema import accounts

PASSWORD = "correct horse battery"


def test_an_account_signs_in_with_its_password_only(db: Database):
    tenant = add_tenant(db)
    with db.write() as conn:
        created = create_account(conn, tenant.tenant_id, " Alice@Example.ORG ", PASSWORD, 1000)
    assert (created.email, created.tenant_id) == ("alice@example.org", tenant.tenant_id)
    with db.read() as conn:
        assert verify_password(conn, "ALICE@example.org", PASSWORD) == created
        assert verify_password(conn, "alice@example.org", PASSWORD + "!") is None
        assert verify_password(conn, "bob@example.org", PASSWORD) is None
        assert verify_password(conn, "not an address", PASSWORD) is None
        stored = conn.execute(select(accounts.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_bad_addresses_short_passwords_and_duplicates_are_refused(db: Database):
    tenant = add_tenant(db)
    with db.write() as conn:
        create_account(conn, tenant.tenant_id, "a@b.c", PASSWORD, 0)
    for email, password, message in [
        ("no-at-sign", PASSWORD, "not an e-mail address"),
        ("two@@b.c", PASSWORD, "not an e-mail address"),
        ("x" * 250 + "@b.cd", PASSWORD, "not an e-mail address"),
        ("new@b.c", "short", "at least 8 characters"),
        ("A@B.C", PASSWORD, "exists already"),
    ]:
        with pytest.raises(AccountError, match=message), db.write() as conn:
            create_account(conn, tenant.tenant_id, email, password, 0)
    with db.read() as conn:
        assert [account.email for account in list_accounts(conn)] == ["a@b.c"]


def test_a_new_password_replaces_the_old_and_dates_the_sessions(db: Database):
    tenant = add_tenant(db)
    with db.write() as conn:
        create_account(conn, tenant.tenant_id, "a@b.c", PASSWORD, 1000)
        assert set_password(conn, "A@b.c", "another password", 5000)
        assert not set_password(conn, "nobody@b.c", "another password", 5000)
    with db.read() as conn:
        assert verify_password(conn, "a@b.c", PASSWORD) is None
        account = verify_password(conn, "a@b.c", "another password")
    assert account is not None
    assert (account.created_at_ms, account.password_changed_at_ms) == (1000, 5000)


def test_accounts_are_deleted_one_by_one_or_per_tenant(db: Database):
    first, second = add_tenant(db, "first"), add_tenant(db, "second")
    with db.write() as conn:
        for email, tenant in [("a@x.y", first), ("b@x.y", first), ("c@x.y", second)]:
            create_account(conn, tenant.tenant_id, email, PASSWORD, 0)
        assert delete_account(conn, "A@x.y")
        assert not delete_account(conn, "a@x.y")
        assert delete_tenant_accounts(conn, first.tenant_id) == 1
    with db.read() as conn:
        assert find_account(conn, "b@x.y") is None
        assert [account.email for account in list_accounts(conn, second.tenant_id)] == ["c@x.y"]


def test_addresses_are_folded_to_lower_case():
    assert normalize_email("  Zoë@Example.COM\n") == "zoë@example.com"
