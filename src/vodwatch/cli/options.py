"""Options shared by several commands."""

from collections.abc import Callable
from typing import Any, TypeVar

import click

from vodwatch.settings import DATABASE_URL_ENV, DEFAULT_DATABASE_URL
from vodwatch.store.database import Database, describe_url

F = TypeVar("F", bound=Callable[..., Any])


def database_url_option(function: F) -> F:
    return click.option(
        "--database-url",
        envvar=DATABASE_URL_ENV,
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        help=f"sqlite:///FILE or postgresql://USER@HOST:PORT/DBNAME (env {DATABASE_URL_ENV}).",
    )(function)


def open_database(url: str) -> Database:
    try:
        return Database(url)
    except (ValueError, ImportError) as error:
        raise click.BadParameter(str(error), param_hint="--database-url") from None
    except Exception as error:  # noqa: BLE001 - a bad URL can fail in many ways
        raise click.ClickException(f"cannot open {describe_url(url)}: {error}") from None
