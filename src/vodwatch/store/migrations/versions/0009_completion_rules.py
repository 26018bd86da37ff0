"""Completion rules, attention and attempts (SPEC §10).

- ``tenants``: ``max_rate`` (None: none) and ``visible_only``, the defaults of every video;
- ``assets``: the per-video overrides ``required_ranges`` (JSON ``[[start_s, end_s], ...]``, as
  written in the PUT), ``max_rate`` and ``visible_only`` (None: the tenant's);
- ``visits``: ``attempt_id`` ("" for none), ``attention`` (JSON pieces ``[start_ms, end_ms,
  speed, visible_speed]`` of coverage no plain segment played: ``vodwatch.attention``) and
  ``refused_ms`` (claimed watch time the clock bounds refused, for the audit);
- ``viewer_videos``: ``attention`` over all the pair's visits.

Existing visits were played before beacons said anything about rate or visibility: they keep
no attention, so every rule counts all of their coverage.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column("tenants", sa.Column("max_rate", sa.Float, nullable=True))
    op.add_column(
        "tenants",
        sa.Column("visible_only", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("assets", sa.Column("required_ranges", sa.Text, nullable=True))
    op.add_column("assets", sa.Column("max_rate", sa.Float, nullable=True))
    op.add_column("assets", sa.Column("visible_only", sa.Boolean, nullable=True))
    op.add_column(
        "visits", sa.Column("attempt_id", sa.String(64), nullable=False, server_default="")
    )
    op.add_column("visits", sa.Column("attention", sa.Text, nullable=False, server_default="[]"))
    op.add_column(
        "visits", sa.Column("refused_ms", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column(
        "viewer_videos", sa.Column("attention", sa.Text, nullable=False, server_default="[]")
    )
