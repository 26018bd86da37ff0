"""``vodwatch demo``: a demo tenant with made-up viewing, to look at on the first run."""

import json
import sys
import time

import click

from vodwatch.cli.options import DATABASE_ERRORS, database_url_option, key_file_option
from vodwatch.cli.tenant import now_ms, open_migrated
from vodwatch.demo import PERIOD_DAYS, DemoPlan, plan_demo
from vodwatch.demo_loader import (
    DASHBOARD_URL,
    DemoError,
    DemoLogin,
    RemovedDemo,
    count_beacons,
    create_demo_tenant,
    load_demo,
    remove_demo,
)
from vodwatch.store.database import Database

DEFAULT_VIEWERS = 300
MAX_VIEWERS = 3_000
DEFAULT_SEED = 1


@click.command()
@click.option(
    "--viewers",
    type=click.IntRange(1, MAX_VIEWERS),
    default=DEFAULT_VIEWERS,
    show_default=True,
    help="How many viewers watch.",
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULT_SEED,
    show_default=True,
    help="The same seed gives the same viewers and viewing (shifted to end now).",
)
@click.option(
    "--if-empty",
    is_flag=True,
    help="Load only into a database without any tenant, else say so and exit 0 (make run).",
)
@click.option(
    "--remove",
    is_flag=True,
    help="Delete the demo tenant and everything of it instead; other tenants stay.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@database_url_option
@key_file_option
def demo(
    viewers: int,
    seed: int,
    if_empty: bool,
    remove: bool,
    as_json: bool,
    database_url: str,
    key_file: str | None,
) -> None:
    """Load a demo tenant, "Demo school": a few videos and VIEWERS viewers with three weeks
    of realistic viewing, sent through the service as players send it, and a dashboard
    account, whose sign-in it prints. Its data is marked as demo data in the dashboard.
    With --remove, delete it again. vodwatch serve never adds demo data."""
    database = open_migrated(database_url, key_file)
    try:
        if remove:
            _remove(database, as_json=as_json)
        else:
            _load(database, viewers, seed, if_empty=if_empty, as_json=as_json)
    except (DemoError, *DATABASE_ERRORS) as error:
        raise click.ClickException(str(error)) from None
    finally:
        database.dispose()


def _load(database: Database, viewers: int, seed: int, *, if_empty: bool, as_json: bool) -> None:
    started = time.perf_counter()
    plan = plan_demo(viewers, seed, now_ms())
    login = create_demo_tenant(database, plan, now_ms(), if_empty=if_empty)
    if login is None:
        reason = "the database has tenants already: no demo data loaded"
        click.echo(json.dumps({"loaded": False, "reason": reason}) if as_json else reason)
        return
    try:
        label = f"Loading {viewers} viewers' viewing"
        with click.progressbar(length=count_beacons(plan), label=label, file=sys.stderr) as bar:
            sent = load_demo(database, login.tenant, plan, on_sent=bar.update)
    except BaseException:
        remove_demo(database)
        click.echo("Loading stopped: the partial demo tenant was removed.", err=True)
        raise
    seconds = time.perf_counter() - started
    click.echo(f"Sent {sent:,} beacons in {seconds:.1f} s.", err=True)
    _echo_login(login, plan, as_json=as_json)


def _echo_login(login: DemoLogin, plan: DemoPlan, *, as_json: bool) -> None:
    tenant = login.tenant
    videos, viewers, visits = len(plan.videos), len(plan.viewers), len(plan.sittings)
    if as_json:
        fields = {
            "loaded": True,
            "tenant": tenant.name,
            "authkey": tenant.authkey,
            "videos": videos,
            "viewers": viewers,
            "visits": visits,
            "url": DASHBOARD_URL,
            "email": login.email,
            "password": login.password,
        }
        click.echo(json.dumps(fields, ensure_ascii=False))
        return
    click.echo(
        f"Loaded the demo tenant {tenant.name!r} ({tenant.authkey}): {videos} videos, "
        f"{viewers:,} viewers, {visits:,} visits over the last {PERIOD_DAYS} days "
        "(made-up data, marked as such in the dashboard).\n"
        "Sign in to the dashboard while vodwatch serve runs:\n"
        f"  {DASHBOARD_URL}\n"
        f"  e-mail:   {login.email}\n"
        f"  password: {login.password}\n"
        f"The password is shown only now ('vodwatch user set-password {login.email}' sets "
        "another).\nRemove the demo with: vodwatch demo --remove"
    )


def _remove(database: Database, *, as_json: bool) -> None:
    removed = remove_demo(database)
    if as_json:
        click.echo(json.dumps([_removed_fields(one) for one in removed], ensure_ascii=False))
        return
    if not removed:
        click.echo("There is no demo tenant: nothing removed.")
    for one in removed:
        rows = ", ".join(f"{table} {count:,}" for table, count in one.rows.items() if count)
        click.echo(
            f"Removed the demo tenant {one.tenant.name!r} ({one.tenant.authkey}), rows of it "
            f"deleted: {rows}."
        )


def _removed_fields(removed: RemovedDemo) -> dict[str, object]:
    return {"tenant": removed.tenant.name, "authkey": removed.tenant.authkey, "rows": removed.rows}
