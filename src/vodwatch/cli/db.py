"""``vodwatch db``: schema versions."""

import click

from vodwatch.cli.options import (
    DATABASE_ERRORS,
    database_url_option,
    key_file_option,
    open_database,
)
from vodwatch.store.database import describe_url
from vodwatch.store.migrate import SchemaError, check_known, read_schema_state, upgrade


@click.group()
def db() -> None:
    """Database schema: status and upgrades."""


@db.command("upgrade")
@database_url_option
@key_file_option
def db_upgrade(database_url: str, key_file: str | None) -> None:
    """Migrate the database to the newest schema (creating it if empty); loses no data."""
    database = open_database(database_url, key_file)
    try:
        before = read_schema_state(database)
        after = upgrade(database)
    except DATABASE_ERRORS as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.dispose()
    if before.current == after.current:
        click.echo(f"{describe_url(database_url)}: schema already at {after.current}")
    else:
        click.echo(
            f"{describe_url(database_url)}: schema upgraded from {before.current or 'empty'} "
            f"to {after.current}"
        )


@db.command("status")
@database_url_option
def db_status(database_url: str) -> None:
    """Print the schema revision of the database and the newest this vodwatch knows."""
    database = open_database(database_url)
    try:
        state = read_schema_state(database)
        check_known(state)
    except SchemaError as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.dispose()
    verdict = "current" if state.is_current else "needs 'vodwatch db upgrade'"
    click.echo(f"schema {state.current or 'empty'}, newest known {state.head}: {verdict}")
