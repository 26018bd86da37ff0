"""``vodwatch token``: mint a playback token, for trying a player page."""

import click

from vodwatch.cli.options import (
    DATABASE_ERRORS,
    database_url_option,
    key_file_option,
    open_database,
)
from vodwatch.playback_token import MAX_LIFETIME_SECONDS, mint_playback_token
from vodwatch.store.tenants import find_tenant


@click.command()
@click.option("--authkey", envvar="VODWATCH_AUTHKEY", required=True, help="Tenant authkey.")
@click.option(
    "--secret", envvar="VODWATCH_SECRET", help="Tenant secret; without it, read from the database."
)
@click.option("--user-id", required=True, help="The viewer (claim sub).")
@click.option("--asset-id", required=True, help="The video (claim aid).")
@click.option("--user-name", help="The viewer's nickname (claim name).")
@click.option("--title", help="Video title, used if the video is not in the catalog.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Video duration in seconds, used if the video is not in the catalog.",
)
@click.option(
    "--ttl",
    type=click.IntRange(1, MAX_LIFETIME_SECONDS),
    default=3600,
    show_default=True,
    help="Lifetime in seconds (at most 24 h).",
)
@database_url_option
@key_file_option
def token(
    authkey: str,
    secret: str | None,
    user_id: str,
    asset_id: str,
    user_name: str | None,
    title: str | None,
    duration: float | None,
    ttl: int,
    database_url: str,
    key_file: str | None,
) -> None:
    """Print a playback token for one viewer and one video (HS256 JWT)."""
    if secret is None:
        database = open_database(database_url, key_file)
        try:
            with database.read() as conn:
                tenant = find_tenant(conn, database.secret_box, authkey)
        except DATABASE_ERRORS as error:
            raise click.ClickException(str(error)) from None
        finally:
            database.dispose()
        if tenant is None:
            raise click.BadParameter("no tenant with this authkey", param_hint="--authkey")
        if tenant.is_disabled:
            raise click.BadParameter(
                "this tenant is disabled ('vodwatch tenant enable' it first)",
                param_hint="--authkey",
            )
        secret = tenant.secret
    click.echo(
        mint_playback_token(
            authkey,
            secret,
            user_id,
            asset_id,
            user_name=user_name,
            title=title,
            duration=duration,
            ttl_seconds=ttl,
        )
    )
