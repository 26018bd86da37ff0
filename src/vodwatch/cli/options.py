"""Options shared by several commands."""

from collections.abc import Callable
from typing import Any, TypeVar

import click

from vodwatch.keyring import KeyringError
from vodwatch.settings import DATABASE_URL_ENV, DEFAULT_DATABASE_URL, KEY_FILE_ENV, SECRET_KEY_ENV
from vodwatch.store.database import Database, describe_url
from vodwatch.store.migrate import SchemaError

F = TypeVar("F", bound=Callable[..., Any])

# What a command reports in one line (exit code 1) when the database cannot be used.
DATABASE_ERRORS = (SchemaError, KeyringError)


def database_url_option(function: F) -> F:
    return click.option(
        "--database-url",
        envvar=DATABASE_URL_ENV,
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        help=f"sqlite:///FILE or postgresql://USER@HOST:PORT/DBNAME (env {DATABASE_URL_ENV}).",
    )(function)


def key_file_option(function: F) -> F:
    return click.option(
        "--key-file",
        envvar=KEY_FILE_ENV,
        type=click.Path(dir_okay=False),
        help=f"The key that encrypts tenant secrets (env {KEY_FILE_ENV}; {SECRET_KEY_ENV}, "
        "the key itself, comes first). Default: FILE.key beside a SQLite FILE, created on "
        "first use; ./vodwatch.key for PostgreSQL.",
    )(function)


def open_database(url: str, key_file: str | None = None) -> Database:
    try:
        return Database(url, key_file=key_file)
    except (ValueError, ImportError) as error:
        raise click.BadParameter(str(error), param_hint="--database-url") from None
    except Exception as error:  # noqa: BLE001 - a bad URL can fail in many ways
        raise click.ClickException(f"cannot open {describe_url(url)}: {error}") from None
