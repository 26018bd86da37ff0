"""Tenant secrets encrypted at rest; secret rotation with a grace period; disabled tenants.

Widens ``tenants.secret`` to Text (on PostgreSQL: SQLite never enforced the declared length,
and altering a column there would mean rebuilding a table other tables refer to), adds
``previous_secret``, ``previous_secret_expires_at_ms`` and ``disabled_at_ms``, and encrypts
every plaintext secret in place with the database's key (``vodwatch.keyring``).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import context, op

from vodwatch.keyring import SecretBox, is_encrypted

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "tenants", "secret", type_=sa.Text, existing_type=sa.String(128), nullable=False
        )
    op.add_column("tenants", sa.Column("previous_secret", sa.Text, nullable=True))
    op.add_column(
        "tenants", sa.Column("previous_secret_expires_at_ms", sa.BigInteger, nullable=True)
    )
    op.add_column("tenants", sa.Column("disabled_at_ms", sa.BigInteger, nullable=True))

    box: SecretBox = context.config.attributes["secret_box"]
    tenants = sa.table("tenants", sa.column("tenant_id"), sa.column("secret"))
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT tenant_id, authkey, secret FROM tenants ORDER BY tenant_id")
    ).all()
    encrypted = [
        {"id": tenant_id, "encrypted": box.encrypt(authkey, secret)}
        for tenant_id, authkey, secret in rows
        if not is_encrypted(secret)
    ]
    if encrypted:
        conn.execute(
            tenants.update()
            .where(tenants.c.tenant_id == sa.bindparam("id"))
            .values(secret=sa.bindparam("encrypted")),
            encrypted,
        )
