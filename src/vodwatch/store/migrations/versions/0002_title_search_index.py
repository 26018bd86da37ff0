"""Title search index: trigrams on PostgreSQL.

``videoInfo`` matches a case-insensitive substring of the title (``title_folded LIKE '%x%'``).
On PostgreSQL a GIN trigram index answers that without reading every title of the tenant; it
starts with ``tenant_id`` (btree_gin) like every other index, so Citus can shard it. On SQLite
the search reads the tenant's titles through the assets primary key (never the visits), which
this revision leaves as it is.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute(
        "CREATE INDEX ix_assets_title_trgm ON assets "
        "USING gin (tenant_id, title_folded gin_trgm_ops)"
    )
