"""``vodwatch tenant``: enterprises and their credentials."""

import json
import time

import click

from vodwatch.cli.options import database_url_option, open_database
from vodwatch.origins import normalize_origin
from vodwatch.store.database import Database
from vodwatch.store.migrate import SchemaError, upgrade
from vodwatch.store.tenants import Tenant, create_tenant, list_tenants, set_allowed_origins

MAX_NAME_LENGTH = 200


@click.group()
def tenant() -> None:
    """Tenants (enterprises): create, list, allowed browser origins."""


def open_migrated(database_url: str) -> Database:
    database = open_database(database_url)
    try:
        upgrade(database)
    except SchemaError as error:
        raise click.ClickException(str(error)) from None
    return database


def add_tenant(database: Database, name: str) -> Tenant:
    with database.write() as conn:
        return create_tenant(conn, name, int(time.time() * 1000))


@tenant.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help='Print {"authkey": ..., "secret": ...}.')
@database_url_option
def tenant_create(name: str, as_json: bool, database_url: str) -> None:
    """Create a tenant and print its authkey and secret (shown this once: keep the secret)."""
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise click.BadParameter(f"must be 1 to {MAX_NAME_LENGTH} characters", param_hint="NAME")
    database = open_migrated(database_url)
    try:
        created = add_tenant(database, name)
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps({"authkey": created.authkey, "secret": created.secret}))
    else:
        click.echo(
            f"tenant:  {created.name}\nauthkey: {created.authkey}\nsecret:  {created.secret}"
        )
        click.echo(
            "The secret is shown only now; the service never prints or logs it again.", err=True
        )


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@database_url_option
def tenant_list(as_json: bool, database_url: str) -> None:
    """List tenants: name, authkey and allowed origins (never the secret)."""
    database = open_migrated(database_url)
    try:
        with database.read() as conn:
            found = list_tenants(conn)
    finally:
        database.dispose()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "authkey": t.authkey,
                        "allowedOrigins": list(t.allowed_origins),
                    }
                    for t in found
                ],
                ensure_ascii=False,
            )
        )
        return
    for t in found:
        click.echo(f"{t.authkey}\t{t.name}\t{' '.join(t.allowed_origins) or '-'}")


@tenant.command("set-origins")
@click.argument("authkey")
@click.argument("origins", nargs=-1)
@database_url_option
def tenant_set_origins(authkey: str, origins: tuple[str, ...], database_url: str) -> None:
    """Allow browser pages on ORIGINS (e.g. https://learn.example.com, or * for any) to send
    player beacons for the tenant AUTHKEY; replaces the list, none clears it."""
    try:
        normalized = sorted({normalize_origin(origin) for origin in origins})
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="ORIGINS") from None
    database = open_migrated(database_url)
    try:
        with database.write() as conn:
            if not set_allowed_origins(conn, authkey, normalized):
                raise click.BadParameter("no tenant with this authkey", param_hint="AUTHKEY")
    finally:
        database.dispose()
    click.echo(f"{authkey}: {' '.join(normalized) or 'no browser origin'} may send beacons")
    click.echo("Running servers pick this up within 10 seconds.", err=True)
