"""``vodwatch serve``: run the HTTP service."""

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import uvicorn

from vodwatch.cli.options import (
    DATABASE_ERRORS,
    database_url_option,
    key_file_option,
    open_database,
)
from vodwatch.logs import logging_config
from vodwatch.settings import (
    DATABASE_URL_ENV,
    DEFAULT_HOST,
    DEFAULT_POOL_SIZE,
    DEFAULT_PORT,
    KEY_FILE_ENV,
    POOL_SIZE_ENV,
    ServiceSettings,
    connection_limits_from_environment,
    setting_help,
)
from vodwatch.store.database import Database, describe_url
from vodwatch.store.migrate import require_current, upgrade
from vodwatch.store.tenants import Tenant, count_tenants, create_tenant, lock_tenant_creation

_ENVIRONMENT = {name: env for name, env, _, _ in setting_help()}
F = TypeVar("F", bound=Callable[..., Any])


def service_setting_options(function: F) -> F:
    """A flag for each field of ``ServiceSettings``, e.g. ``--write-timeout`` (its environment
    variable is read by each worker; the flag, when given, overrides it)."""
    for name, env, default, help_text in reversed(setting_help()):
        function = click.option(
            "--" + name.replace("_", "-"),
            name,
            default=None,
            metavar="VALUE",
            help=f"{help_text} (env {env}; default {default or 'none'})",
        )(function)
    return function


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
@database_url_option
@key_file_option
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
    "--first-tenant",
    metavar="NAME",
    help="If the database has no tenant yet (the demo tenant does not count), create one and "
    "print its credentials (once).",
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
@click.option(
    "--forwarded-allow-ips",
    envvar="VODWATCH_FORWARDED_ALLOW_IPS",
    default="127.0.0.1",
    show_default=True,
    help="Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are "
    "trusted (comma-separated, or * for any); rate limits count the client address they give "
    "(env VODWATCH_FORWARDED_ALLOW_IPS).",
)
@service_setting_options
def serve(
    host: str,
    port: int,
    database_url: str,
    key_file: str | None,
    workers: int,
    pool_size: int,
    first_tenant: str | None,
    no_upgrade: bool,
    log_level: str,
    forwarded_allow_ips: str,
    **settings: str | None,
) -> None:
    """Serve the API (beacons, catalog, report) until interrupted."""
    # Each worker process reads the service settings from the environment: check them here.
    for name, value in settings.items():
        if value is not None:
            os.environ[_ENVIRONMENT[name]] = value
    try:
        ServiceSettings.from_environment()
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    database = open_database(database_url, key_file)
    try:
        if no_upgrade:
            require_current(database)
            database.secret_box  # noqa: B018 - refuse to start without the right key
        else:
            upgrade(database)
        if first_tenant:
            create_first_tenant(database, first_tenant, host, port)
    except DATABASE_ERRORS as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.dispose()
    click.echo(f"vodwatch on {describe_url(database_url)}, http://{host}:{port}", err=True)
    # Each worker process opens the database from the environment, with the key just checked.
    os.environ[DATABASE_URL_ENV] = database_url
    os.environ[POOL_SIZE_ENV] = str(pool_size)
    if key_file:
        os.environ[KEY_FILE_ENV] = str(Path(key_file).absolute())
    run_workers(
        "vodwatch.api.factory:app_from_environment",
        host,
        port,
        workers,
        log_level,
        forwarded_allow_ips=forwarded_allow_ips,
    )


def run_workers(
    factory: str,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    *,
    forwarded_allow_ips: str = "127.0.0.1",
) -> None:
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
    # glibc gives each thread that allocates its own malloc arena; what the event loop, the
    # ingest writer and the helper threads free in one another's arenas stays resident. Two
    # arenas per worker (read when a worker process starts) keep its memory flat.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
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
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
    )


def create_first_tenant(database: Database, name: str, host: str, port: int) -> Tenant | None:
    """Create a tenant and print its credentials, unless there is one already: the demo
    tenant (``vodwatch demo``, which ``make run`` loads first) does not count. ``serve`` adds
    no demo data itself."""
    box = database.secret_box
    with database.write() as conn:
        lock_tenant_creation(conn)
        if count_tenants(conn, include_demo=False):
            return None
        created = create_tenant(conn, box, name, int(time.time() * 1000))
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
    return created
