"""Dashboard accounts, and demo tenants.

``accounts`` holds the people who sign in to the dashboard: one row per e-mail address (folded
to lower case), each belonging to one tenant, with an argon2 hash of the password. Like
``tenants`` it is small and looked up by its own key at sign-in (before any tenant is known),
so it is not keyed by tenant first; on Citus it would be a reference table too.

``tenants.is_demo`` marks the tenant ``vodwatch demo`` loads, so the dashboard can say that its
numbers are made up and ``vodwatch demo --remove`` finds what to delete.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("is_demo", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "accounts",
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        # Bumped when the password changes: sessions signed before it stop working.
        sa.Column("password_changed_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("email", name="pk_accounts"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name="fk_accounts_tenants"),
    )
    op.create_index("ix_accounts_tenant_id", "accounts", ["tenant_id"])
