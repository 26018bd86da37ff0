"""viewer_videos: one row per viewer and video, kept by ingest, for the grouped report.

Backfilled from the visits already stored: watch time summed, coverage united, first and latest
start, visit count.

Revision ID: 0003
Revises: 0002
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
CHUNK = 5_000


def upgrade() -> None:
    op.create_table(
        "viewer_videos",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("first_started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("latest_started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at_ms", sa.BigInteger, nullable=False),
        sa.Column("watch_ms", sa.BigInteger, nullable=False),
        sa.Column("coverage", sa.Text, nullable=False),
        sa.Column("covered_ms", sa.BigInteger, nullable=False),
        sa.Column("visit_count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "asset_id", name="pk_viewer_videos"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "asset_id"],
            ["assets.tenant_id", "assets.asset_id"],
            name="fk_viewer_videos_assets",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["viewers.tenant_id", "viewers.user_id"],
            name="fk_viewer_videos_viewers",
        ),
    )
    table = sa.table(
        "viewer_videos",
        *(
            sa.column(name)
            for name in (
                "tenant_id",
                "user_id",
                "asset_id",
                "first_started_at_ms",
                "latest_started_at_ms",
                "last_seen_at_ms",
                "watch_ms",
                "coverage",
                "covered_ms",
                "visit_count",
            )
        ),
    )
    batch: list[dict[str, object]] = []
    for row in _pairs(op.get_bind()):
        batch.append(row)
        if len(batch) == CHUNK:
            op.bulk_insert(table, batch)
            batch = []
    if batch:
        op.bulk_insert(table, batch)
    op.create_index(
        "ix_viewer_videos_latest",
        "viewer_videos",
        ["tenant_id", "latest_started_at_ms", "user_id", "asset_id"],
    )
    op.create_index(
        "ix_viewer_videos_asset", "viewer_videos", ["tenant_id", "asset_id", "latest_started_at_ms"]
    )


@dataclass
class _Pair:
    tenant_id: int
    user_id: str
    asset_id: str
    first_started_at_ms: int
    latest_started_at_ms: int
    last_seen_at_ms: int
    watch_ms: int = 0
    visit_count: int = 0
    spans: list[list[int]] = field(default_factory=list)

    def add(self, started: int, last_seen: int, watch: int, coverage: str) -> None:
        self.first_started_at_ms = min(self.first_started_at_ms, started)
        self.latest_started_at_ms = max(self.latest_started_at_ms, started)
        self.last_seen_at_ms = max(self.last_seen_at_ms, last_seen)
        self.watch_ms += watch
        self.visit_count += 1
        self.spans.extend(json.loads(coverage))

    def row(self) -> dict[str, object]:
        merged: list[list[int]] = []
        for start, end in sorted(self.spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return {
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
            "asset_id": self.asset_id,
            "first_started_at_ms": self.first_started_at_ms,
            "latest_started_at_ms": self.latest_started_at_ms,
            "last_seen_at_ms": self.last_seen_at_ms,
            "watch_ms": self.watch_ms,
            "coverage": json.dumps(merged, separators=(",", ":")),
            "covered_ms": sum(end - start for start, end in merged),
            "visit_count": self.visit_count,
        }


def _pairs(conn: sa.Connection) -> Iterator[dict[str, object]]:
    """Every viewer-and-video pair of the stored visits, read in key order."""
    rows = conn.execute(
        sa.text(
            "SELECT tenant_id, user_id, asset_id, started_at_ms, last_seen_at_ms, watch_ms, "
            "coverage FROM visits ORDER BY tenant_id, user_id, asset_id"
        )
    )
    pair: _Pair | None = None
    for tenant_id, user_id, asset_id, started, last_seen, watch, coverage in rows:
        if pair is None or (pair.tenant_id, pair.user_id, pair.asset_id) != (
            tenant_id,
            user_id,
            asset_id,
        ):
            if pair is not None:
                yield pair.row()
            pair = _Pair(tenant_id, user_id, asset_id, started, started, last_seen)
        pair.add(started, last_seen, watch, coverage)
    if pair is not None:
        yield pair.row()
