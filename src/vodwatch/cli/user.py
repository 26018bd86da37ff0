"""``vodwatch user``: the accounts that sign in to the dashboard, each in one tenant."""

import json
import sys

import click

from vodwatch.cli.options import database_url_option, key_file_option
from vodwatch.cli.tenant import now_ms, open_migrated, utc_text
from vodwatch.store.accounts import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    create_account,
    delete_account,
    find_account,
    list_accounts,
    normalize_email,
    set_password,
)
from vodwatch.store.tenants import find_tenant, list_tenants

password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)


@click.group()
def user() -> None:
    """Dashboard accounts: create, list, set a password, delete."""


def read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice without echo."""
    if not from_stdin:
        typed: str = click.prompt(
            f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
        return typed
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.BadParameter("standard input has no password", param_hint="--password-stdin")
    return line


def _email(email: str) -> str:
    try:
        return normalize_email(email)
    except AccountError as error:
        raise click.BadParameter(str(error), param_hint="EMAIL") from None


@user.command("create")
@click.argument("email")
@click.option("--tenant", "authkey", required=True, metavar="AUTHKEY", help="The account's tenant.")
@password_stdin_option
@database_url_option
@key_file_option
def user_create(
    email: str, authkey: str, password_stdin: bool, database_url: str, key_file: str | None
) -> None:
    """Create an account for EMAIL in the tenant AUTHKEY; it signs in at /dashboard and sees
    that tenant's videos and viewers only."""
    email = _email(email)
    database = open_migrated(database_url, key_file)
    try:
        with database.read() as conn:
            tenant = find_tenant(conn, database.secret_box, authkey)
        if tenant is None:
            raise click.BadParameter(
                f"no tenant with the authkey {authkey!r}", param_hint="--tenant"
            )
        password = read_password(password_stdin)
        try:
            with database.write() as conn:
                create_account(conn, tenant.tenant_id, email, password, now_ms())
        except AccountError as error:
            raise click.ClickException(str(error)) from None
    finally:
        database.dispose()
    click.echo(f"{email}: can sign in to the dashboard of {tenant.name} ({authkey})")


@user.command("list")
@click.option("--tenant", "authkey", metavar="AUTHKEY", help="Only this tenant's accounts.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@database_url_option
@key_file_option
def user_list(authkey: str | None, as_json: bool, database_url: str, key_file: str | None) -> None:
    """List accounts: e-mail address, tenant, when created and when the password last
    changed (UTC). Never a password or its hash."""
    database = open_migrated(database_url, key_file)
    try:
        with database.read() as conn:
            tenants = {t.tenant_id: t for t in list_tenants(conn, database.secret_box)}
            tenant_id = None
            if authkey is not None:
                tenant_id = next(
                    (t.tenant_id for t in tenants.values() if t.authkey == authkey), None
                )
                if tenant_id is None:
                    raise click.BadParameter(
                        f"no tenant with the authkey {authkey!r}", param_hint="--tenant"
                    )
            accounts = list_accounts(conn, tenant_id)
    finally:
        database.dispose()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "email": account.email,
                        "tenant": tenants[account.tenant_id].authkey,
                        "tenantName": tenants[account.tenant_id].name,
                        "createdAt": account.created_at_ms // 1000,
                        "passwordChangedAt": account.password_changed_at_ms // 1000,
                    }
                    for account in accounts
                ],
                ensure_ascii=False,
            )
        )
        return
    for account in accounts:
        tenant = tenants[account.tenant_id]
        created = utc_text(account.created_at_ms)
        changed = utc_text(account.password_changed_at_ms)
        click.echo(
            f"{account.email}\t{tenant.authkey}\t{tenant.name}\t"
            f"created {created}\tpassword set {changed}"
        )


@user.command("set-password")
@click.argument("email")
@password_stdin_option
@database_url_option
@key_file_option
def user_set_password(
    email: str, password_stdin: bool, database_url: str, key_file: str | None
) -> None:
    """Give the account EMAIL a new password; every session it has signed in ends now."""
    email = _email(email)
    database = open_migrated(database_url, key_file)
    try:
        with database.read() as conn:
            if find_account(conn, email) is None:
                raise _unknown(email)
        password = read_password(password_stdin)
        try:
            with database.write() as conn:
                found = set_password(conn, email, password, now_ms())
        except AccountError as error:
            raise click.ClickException(str(error)) from None
    finally:
        database.dispose()
    if not found:  # deleted meanwhile
        raise _unknown(email)
    click.echo(f"{email}: new password set; its dashboard sessions have ended")


@user.command("delete")
@click.argument("email")
@database_url_option
@key_file_option
def user_delete(email: str, database_url: str, key_file: str | None) -> None:
    """Delete the account EMAIL; its dashboard sessions end at once. The tenant's data stays."""
    email = _email(email)
    database = open_migrated(database_url, key_file)
    try:
        with database.write() as conn:
            found = delete_account(conn, email)
    finally:
        database.dispose()
    if not found:
        raise _unknown(email)
    click.echo(f"{email}: deleted")


def _unknown(email: str) -> click.BadParameter:
    return click.BadParameter(f"no account for {email}", param_hint="EMAIL")
