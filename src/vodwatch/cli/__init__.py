"""The ``vodwatch`` command."""

import click

from vodwatch import __version__
from vodwatch.cli.db import db
from vodwatch.cli.demo import demo
from vodwatch.cli.report import report, retention, videos
from vodwatch.cli.serve import serve
from vodwatch.cli.tenant import tenant
from vodwatch.cli.token import token
from vodwatch.cli.user import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vodwatch")
def main() -> None:
    """vodwatch: how much of each video each viewer really watched, and for how long."""


for command in (serve, tenant, db, report, videos, retention, token, user):
    main.add_command(command)
main.add_command(demo)
