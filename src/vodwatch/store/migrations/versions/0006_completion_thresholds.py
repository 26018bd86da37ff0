"""Completion thresholds: a default per tenant (90) and an override per video.

A viewer has completed a video when their percent of it reaches the video's effective
threshold: its own, or else its tenant's (SPEC §9). Both are integers 1..100, checked where
they are set (``vodwatch tenant set-threshold``, ``PUT /vod/webapi/media/{assetId}``). Plain
added columns: on SQLite a CHECK would mean rebuilding tables that others refer to.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("completion_threshold", sa.Integer, nullable=False, server_default="90"),
    )
    op.add_column("assets", sa.Column("completion_threshold", sa.Integer, nullable=True))
