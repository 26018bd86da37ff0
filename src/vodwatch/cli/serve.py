"""``vodwatch serve``: run the HTTP service."""

import os
import sys
import time

import click
import uvicorn

from vodwatch.cli.options import database_url_option, open_database
from vodwatch.logs import logging_config
from vodwatch.settings import (
    BODY_TIMEOUT_ENV,
    DATABASE_URL_ENV,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_SIZE,
    DEFAULT_PORT,
    HEADER_TIMEOUT_ENV,
    MAX_CONNECTIONS_ENV,
    POOL_SIZE_ENV,
    connection_limits_from_environment,
)
from vodwatch.store.database import Database, describe_url
from vodwatch.store.migrate import SchemaError, require_current, upgrade
from vodwatch.store.tenants import count_tenants, create_tenant


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@database_url_option
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(0, 256),
    help="Worker processes; 0 means one per CPU core.",
)
@click.option(
    "--pool-size",
    envvar=POOL_SIZE_ENV,
    default=DEFAULT_POOL_SIZE,
    show_default=True,
    type=click.IntRange(1, 500),
    help=f"Database connections per worker, and as many again under load (env {POOL_SIZE_ENV}).",
)
@click.option(
    "--header-timeout",
    metavar="SECONDS",
    envvar=HEADER_TIMEOUT_ENV,
    default=DEFAULT_HEADER_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0, 3600, min_open=True),
    help="Close a connection that has not sent a whole request head within this many seconds "
    f"(answered 408), on each request of a keep-alive connection too (env {HEADER_TIMEOUT_ENV}).",
)
@click.option(
    "--body-timeout",
    metavar="SECONDS",
    envvar=BODY_TIMEOUT_ENV,
    default=DEFAULT_BODY_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0, 3600, min_open=True),
    help="Close a connection whose whole request body has not arrived this many seconds after "
    f"its head (answered 408; nothing is stored) (env {BODY_TIMEOUT_ENV}).",
)
@click.option(
    "--max-connections",
    metavar="N",
    envvar=MAX_CONNECTIONS_ENV,
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Open connections per worker; beyond it, those waiting longest for a request head are "
    f"closed first, else the newcomer is answered 503 (env {MAX_CONNECTIONS_ENV}).",
)
@click.option(
    "--first-tenant",
    metavar="NAME",
    help="If the database has no tenant yet, create one and print its credentials (once).",
)
@click.option(
    "--no-upgrade",
    is_flag=True,
    help="Refuse to start on an older schema instead of upgrading it.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(
    host: str,
    port: int,
    database_url: str,
    workers: int,
    pool_size: int,
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
    first_tenant: str | None,
    no_upgrade: bool,
    log_level: str,
) -> None:
    """Serve the API (beacons, catalog, report) until interrupted."""
    database = open_database(database_url)
    try:
        if no_upgrade:
            require_current(database)
        else:
            upgrade(database)
        if first_tenant:
            _create_first_tenant(database, first_tenant, host, port)
    except SchemaError as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.dispose()
    click.echo(f"vodwatch on {describe_url(database_url)}, http://{host}:{port}", err=True)
    # Each worker process opens the database from the environment.
    os.environ[DATABASE_URL_ENV] = database_url
    os.environ[POOL_SIZE_ENV] = str(pool_size)
    os.environ[HEADER_TIMEOUT_ENV] = str(header_timeout)
    os.environ[BODY_TIMEOUT_ENV] = str(body_timeout)
    os.environ[MAX_CONNECTIONS_ENV] = str(max_connections)
    run_workers("vodwatch.api.factory:app_from_environment", host, port, workers, log_level)


def run_workers(factory: str, host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the app that ``factory`` ("module:function") builds, in ``workers`` processes
    (0: one per core), until interrupted. The benchmarks' floor server runs through here too.

    Every worker runs ``GuardedHttpProtocol`` (httptools, with the connection limits of the
    environment), never uvicorn's pure-Python h11 fallback."""
    try:
        from vodwatch.api.connections import GuardedHttpProtocol, raise_open_file_limit
    except ImportError as error:  # httptools is a dependency; a broken install lacks it
        raise click.ClickException(f"cannot load the HTTP protocol (httptools): {error}") from None
    try:
        connection_limits_from_environment()  # each worker reads them, once
    except ValueError as error:
        raise click.ClickException(f"bad connection limits: {error}") from None
    raise_open_file_limit()
    uvicorn.run(
        factory,
        factory=True,
        http=GuardedHttpProtocol,
        host=host,
        port=port,
        workers=workers or os.cpu_count() or 1,
        log_config=logging_config(log_level),
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def _create_first_tenant(database: Database, name: str, host: str, port: int) -> None:
    with database.write() as conn:
        if count_tenants(conn):
            return
        created = create_tenant(conn, name, int(time.time() * 1000))
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    program = sys.argv[0] if sys.argv[0].endswith("vodwatch") else "vodwatch"
    click.echo(
        f"\nCreated the first tenant {created.name!r}. Its secret is shown only now:\n"
        f"  authkey: {created.authkey}\n"
        f"  secret:  {created.secret}\n\n"
        "Try the report from another terminal:\n"
        f"  {program} report --url http://{url_host}:{port} "
        f"--authkey {created.authkey} --secret {created.secret}\n"
    )
