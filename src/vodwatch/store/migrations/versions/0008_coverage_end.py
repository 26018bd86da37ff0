"""viewer_videos.coverage_end_ms: where a pair's coverage ends, for the videos summary.

The summary sums ``|U|`` (coverage clamped to the duration ``D``) over a video's viewers. A pair
whose coverage ends at or before ``D`` has ``|U| = covered_ms``: the sum is taken in SQL, and
only the pairs reaching past ``D`` (a duration shortened after viewing, or a beacon past the
end) are clamped in Python. NULL means not known, read as reaching past any duration.

Backfilled from ``coverage`` (JSON, normal form: its last pair ends last) by the database's own
JSON functions, a batch of primary keys at a time. ``ix_viewer_videos_asset`` (the tenant, the
video, the latest start) is made to hold every other column the summary reads, so the summary
reads no row of the table itself. Widened rather than joined by a fourth index: ingest keeps as
many index entries per pair (on PostgreSQL an update of a pair now changes an indexed column
always, so it is never a heap-only update).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
CHUNK = 20_000
ASSET_INDEX = [
    "tenant_id",
    "asset_id",
    "latest_started_at_ms",
    # The columns the videos summary sums, read from the index.
    "coverage_end_ms",
    "covered_ms",
    "watch_ms",
    "visit_count",
]

# The end of the last [start, end] pair of ``coverage``; NULL for [] (then 0).
_LAST_END = {
    "sqlite": "json_extract(coverage, '$[#-1][1]')",
    "postgresql": "(coverage::json -> -1 ->> 1)::bigint",
}
_TABLE = sa.table(
    "viewer_videos",
    *(sa.column(name) for name in ("tenant_id", "user_id", "asset_id", "coverage_end_ms")),
)
_pair_key = sa.tuple_(_TABLE.c.tenant_id, _TABLE.c.user_id, _TABLE.c.asset_id)
Key = tuple[int, str, str]


def upgrade() -> None:
    op.add_column("viewer_videos", sa.Column("coverage_end_ms", sa.BigInteger, nullable=True))
    op.drop_index("ix_viewer_videos_asset", "viewer_videos")  # one index less to update
    conn = op.get_bind()
    last_end: sa.ColumnElement[int] = sa.func.coalesce(
        sa.literal_column(_LAST_END[conn.dialect.name]), 0
    )
    after: Key | None = None
    while True:
        upto = _chunk_end(conn, after)
        conditions = []
        if after is not None:
            conditions.append(_pair_key > sa.tuple_(*after))
        if upto is not None:
            conditions.append(_pair_key <= sa.tuple_(*upto))
        conn.execute(sa.update(_TABLE).where(*conditions).values(coverage_end_ms=last_end))
        if upto is None:
            break
        after = upto
    op.create_index("ix_viewer_videos_asset", "viewer_videos", ASSET_INDEX)
    if conn.dialect.name == "postgresql":
        op.execute("ANALYZE viewer_videos")  # the planner's statistics of the new column
    elif sa.inspect(conn).has_table("sqlite_stat1"):
        # Someone ran ANALYZE (vodwatch never does): give the new index statistics too, or
        # SQLite would weigh it against the others' with none and may pick it wrongly.
        op.execute("ANALYZE viewer_videos")


def _chunk_end(conn: sa.Connection, after: Key | None) -> Key | None:
    """The key CHUNK rows past ``after`` in key order; None when fewer rows are left."""
    query = sa.select(_TABLE.c.tenant_id, _TABLE.c.user_id, _TABLE.c.asset_id)
    if after is not None:
        query = query.where(_pair_key > sa.tuple_(*after))
    row = conn.execute(query.order_by(*_pair_key.clauses).limit(1).offset(CHUNK - 1)).first()
    return None if row is None else (row[0], row[1], row[2])
