"""Completion events (SPEC §10): ``video.completed``, at most one per viewer, video and attempt,
written in the transaction of the beacons that completed the attempt (an outbox: delivery
reads it). ``data`` holds the event's figures as they were after that request (JSON).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "completion_events",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("attempt_id", sa.String(64), nullable=False),
        sa.Column("completed_at_ms", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name="pk_completion_events"),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "asset_id",
            "attempt_id",
            name="uq_completion_events_tenant_id_user_id_asset_id_attempt_id",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_completion_events_tenants"
        ),
    )
