"""``vodwatch tenant``: enterprises and their credentials."""

import json
import time
from datetime import UTC, datetime

import click

from vodwatch.cli.options import (
    DATABASE_ERRORS,
    database_url_option,
    key_file_option,
    open_database,
)
from vodwatch.origins import normalize_origin
from vodwatch.store.database import Database
from vodwatch.store.migrate import upgrade
from vodwatch.store.tenants import (
    Tenant,
    create_tenant,
    find_tenant,
    list_tenants,
    rotate_secret,
    set_allowed_origins,
    set_completion_threshold,
    set_disabled,
    set_rules,
)

MAX_NAME_LENGTH = 200
DEFAULT_GRACE_SECONDS = 86_400
MAX_GRACE_SECONDS = 366 * 86_400
PICKED_UP = "Running servers pick this up within 10 seconds."


@click.group()
def tenant() -> None:
    """Tenants (enterprises): create, list, allowed browser origins, secrets, disabling."""


def open_migrated(database_url: str, key_file: str | None) -> Database:
    database = open_database(database_url, key_file)
    try:
        upgrade(database)
    except DATABASE_ERRORS as error:
        database.dispose()
        raise click.ClickException(str(error)) from None
    return database


def add_tenant(database: Database, name: str) -> Tenant:
    with database.write() as conn:
        return create_tenant(conn, database.secret_box, name, now_ms())


def now_ms() -> int:
    return int(time.time() * 1000)


def utc_text(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def echo_credentials(authkey: str, secret: str, name: str | None, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"authkey": authkey, "secret": secret}))
        return
    click.echo((f"tenant:  {name}\n" if name is not None else "") + f"authkey: {authkey}")
    click.echo(f"secret:  {secret}")
    click.echo("The secret is shown only now; the service never prints or logs it again.", err=True)


@tenant.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help='Print {"authkey": ..., "secret": ...}.')
@database_url_option
@key_file_option
def tenant_create(name: str, as_json: bool, database_url: str, key_file: str | None) -> None:
    """Create a tenant and print its authkey and secret (shown this once: keep the secret)."""
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise click.BadParameter(f"must be 1 to {MAX_NAME_LENGTH} characters", param_hint="NAME")
    database = open_migrated(database_url, key_file)
    try:
        created = add_tenant(database, name)
    finally:
        database.dispose()
    echo_credentials(created.authkey, created.secret, created.name, as_json=as_json)


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@database_url_option
@key_file_option
def tenant_list(as_json: bool, database_url: str, key_file: str | None) -> None:
    """List tenants: authkey, name, allowed origins and state (never a secret).

    The state is "enabled" or "disabled since TIME", then "; previous secret valid until
    TIME" while a rotation's grace period lasts (times in UTC)."""
    database = open_migrated(database_url, key_file)
    try:
        with database.read() as conn:
            found = list_tenants(conn, database.secret_box)
    finally:
        database.dispose()
    now = now_ms()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "authkey": t.authkey,
                        "allowedOrigins": list(t.allowed_origins),
                        "disabledAt": _seconds(t.disabled_at_ms),
                        "previousSecretValidUntil": _seconds(t.grace_ends_at_ms(now)),
                        "completionThreshold": t.completion_threshold,
                        "maxRate": t.max_rate,
                        "visibleOnly": t.visible_only,
                    }
                    for t in found
                ],
                ensure_ascii=False,
            )
        )
        return
    for t in found:
        origins = " ".join(t.allowed_origins) or "-"
        click.echo(f"{t.authkey}\t{t.name}\t{origins}\t{_state(t, now)}")


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def _state(t: Tenant, now: int) -> str:
    states = [
        "enabled" if t.disabled_at_ms is None else f"disabled since {utc_text(t.disabled_at_ms)}"
    ]
    grace_ends = t.grace_ends_at_ms(now)
    if grace_ends is not None:
        states.append(f"previous secret valid until {utc_text(grace_ends)}")
    return "; ".join(states)


@tenant.command("set-origins")
@click.argument("authkey")
@click.argument("origins", nargs=-1)
@database_url_option
@key_file_option
def tenant_set_origins(
    authkey: str, origins: tuple[str, ...], database_url: str, key_file: str | None
) -> None:
    """Allow browser pages on ORIGINS (e.g. https://learn.example.com, or * for any) to send
    player beacons for the tenant AUTHKEY; replaces the list, none clears it."""
    try:
        normalized = sorted({normalize_origin(origin) for origin in origins})
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="ORIGINS") from None
    database = open_migrated(database_url, key_file)
    try:
        with database.write() as conn:
            if not set_allowed_origins(conn, authkey, normalized):
                raise _unknown(authkey)
    finally:
        database.dispose()
    click.echo(f"{authkey}: {' '.join(normalized) or 'no browser origin'} may send beacons")
    click.echo(PICKED_UP, err=True)


@tenant.command("rotate-secret")
@click.argument("authkey")
@click.option(
    "--grace",
    type=click.IntRange(0, MAX_GRACE_SECONDS),
    default=DEFAULT_GRACE_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How long the current secret stays valid beside the new one (0: not at all).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"authkey": ..., "secret": ...}.')
@database_url_option
@key_file_option
def tenant_rotate_secret(
    authkey: str, grace: int, as_json: bool, database_url: str, key_file: str | None
) -> None:
    """Give the tenant AUTHKEY a new secret and print it (shown this once). Signed requests
    and playback tokens made with the current secret are accepted for SECONDS more, then
    only the new one is. Rotating again within that time ends it: the secret before the
    current one stops working at once."""
    database = open_migrated(database_url, key_file)
    rotated_at = now_ms()
    try:
        with database.write() as conn:
            secret = rotate_secret(conn, database.secret_box, authkey, rotated_at, grace * 1000)
    finally:
        database.dispose()
    if secret is None:
        raise _unknown(authkey)
    echo_credentials(authkey, secret, None, as_json=as_json)
    if grace:
        until = utc_text(rotated_at + grace * 1000)
        click.echo(f"The previous secret stays valid until {until}.", err=True)
    else:
        click.echo("The previous secret is no longer valid.", err=True)
    click.echo(PICKED_UP, err=True)


@tenant.command("disable")
@click.argument("authkey")
@database_url_option
@key_file_option
def tenant_disable(authkey: str, database_url: str, key_file: str | None) -> None:
    """Refuse every request and playback token of the tenant AUTHKEY (as for an unknown
    authkey) until it is enabled again; its data stays."""
    _set_disabled(authkey, database_url, key_file, is_disabled=True)
    click.echo(f"{authkey}: disabled; its requests and playback tokens are refused")
    click.echo(PICKED_UP, err=True)


@tenant.command("enable")
@click.argument("authkey")
@database_url_option
@key_file_option
def tenant_enable(authkey: str, database_url: str, key_file: str | None) -> None:
    """Accept the requests and playback tokens of the tenant AUTHKEY again."""
    _set_disabled(authkey, database_url, key_file, is_disabled=False)
    click.echo(f"{authkey}: enabled")
    click.echo(PICKED_UP, err=True)


@tenant.command("set-threshold")
@click.argument("authkey")
@click.argument("percent", metavar="N", type=click.IntRange(1, 100))
@database_url_option
@key_file_option
def tenant_set_threshold(
    authkey: str, percent: int, database_url: str, key_file: str | None
) -> None:
    """Set the default completion threshold of the tenant AUTHKEY to N percent (1..100): a
    viewer has completed a video once they covered N % of it. A video's own threshold
    (``completionThreshold`` in PUT media) wins over it."""
    database = open_migrated(database_url, key_file)
    try:
        with database.write() as conn:
            if not set_completion_threshold(conn, authkey, percent):
                raise _unknown(authkey)
    finally:
        database.dispose()
    click.echo(f"{authkey}: completion threshold {percent}%")
    click.echo(PICKED_UP, err=True)


@tenant.command("set-rules")
@click.argument("authkey")
@click.option(
    "--threshold",
    type=click.IntRange(1, 100),
    default=None,
    help="percent of a video a viewer must cover (counted coverage) to complete it",
)
@click.option(
    "--max-rate",
    type=click.FloatRange(1, 16),
    default=None,
    help="coverage played faster than this playback rate does not count (1..16)",
)
@click.option("--no-max-rate", is_flag=True, help="any playback rate counts")
@click.option(
    "--visible-only/--no-visible-only",
    default=None,
    help="whether coverage played while the page was hidden is left out",
)
@database_url_option
@key_file_option
def tenant_set_rules(
    authkey: str,
    threshold: int | None,
    max_rate: float | None,
    no_max_rate: bool,
    visible_only: bool | None,
    database_url: str,
    key_file: str | None,
) -> None:
    """Set the default completion rules of the tenant AUTHKEY (SPEC §10): a rule left out is
    kept. A video's own rules (PUT media) win over these."""
    if max_rate is not None and no_max_rate:
        raise click.UsageError("give --max-rate R or --no-max-rate, not both")
    changes: dict[str, object] = {}
    if threshold is not None:
        changes["completion_threshold"] = threshold
    if max_rate is not None or no_max_rate:
        changes["max_rate"] = max_rate
    if visible_only is not None:
        changes["visible_only"] = visible_only
    database = open_migrated(database_url, key_file)
    try:
        with database.write() as conn:
            if not set_rules(conn, authkey, changes):
                raise _unknown(authkey)
            found = find_tenant(conn, database.secret_box, authkey)
    finally:
        database.dispose()
    assert found is not None
    rate = "any" if found.max_rate is None else f"{found.max_rate:g}x"
    click.echo(
        f"{authkey}: completion threshold {found.completion_threshold}%, max rate {rate}, "
        f"visible only {'yes' if found.visible_only else 'no'}"
    )
    click.echo(PICKED_UP, err=True)


def _set_disabled(
    authkey: str, database_url: str, key_file: str | None, *, is_disabled: bool
) -> None:
    database = open_migrated(database_url, key_file)
    try:
        with database.write() as conn:
            if not set_disabled(conn, authkey, now_ms(), is_disabled=is_disabled):
                raise _unknown(authkey)
    finally:
        database.dispose()


def _unknown(authkey: str) -> click.BadParameter:
    return click.BadParameter(f"no tenant with the authkey {authkey!r}", param_hint="AUTHKEY")
