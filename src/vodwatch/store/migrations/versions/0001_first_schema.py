"""First schema: tenants, assets, viewers, visits.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("authkey", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("allowed_origins", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenants"),
        sa.UniqueConstraint("authkey", name="uq_tenants_authkey"),
    )
    op.create_table(
        "assets",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("title_folded", sa.Text, nullable=False, server_default=""),
        sa.Column("duration_ms", sa.BigInteger, nullable=True),
        sa.Column("is_cataloged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "asset_id", name="pk_assets"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name="fk_assets_tenants"),
    )
    op.create_table(
        "viewers",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.Text, nullable=False, server_default=""),
        sa.Column("name_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="pk_viewers"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name="fk_viewers_tenants"),
    )
    op.create_table(
        "visits",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at_ms", sa.BigInteger, nullable=False),
        sa.Column("watch_ms", sa.BigInteger, nullable=False),
        sa.Column("coverage", sa.Text, nullable=False),
        sa.Column("covered_ms", sa.BigInteger, nullable=False),
        sa.Column("seqs", sa.Text, nullable=False),
        sa.Column("beacon_count", sa.Integer, nullable=False),
        sa.Column("position_ms", sa.BigInteger, nullable=True),
        sa.Column("position_seq", sa.Integer, nullable=False),
        sa.Column("is_ended", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "session_id", name="pk_visits"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "asset_id"],
            ["assets.tenant_id", "assets.asset_id"],
            name="fk_visits_assets",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["viewers.tenant_id", "viewers.user_id"],
            name="fk_visits_viewers",
        ),
    )
    op.create_index("ix_visits_started", "visits", ["tenant_id", "started_at_ms", "session_id"])
    op.create_index("ix_visits_user", "visits", ["tenant_id", "user_id", "started_at_ms"])
    op.create_index("ix_visits_asset", "visits", ["tenant_id", "asset_id", "started_at_ms"])
