"""The clock of each viewer's player beacons on a video, and signed requests seen (replay).

``viewer_videos`` gains the server time of the pair's first player beacon and the watch time and
new coverage its player beacons have been credited, so that the clock bounds hold per viewer
and video across sessions. Pairs stored before have no player clock yet: it starts at their next
player beacon (their sessions were each bounded by their own clock).

``signed_requests`` keeps each signed request (its ``Tk-token``) until its ``Timestamp``
leaves the allowed window, so that a copy sent again is refused by every process and server
sharing the database. (On SQLite, signed requests that only read are kept in a file of their
own beside the database, ``<file>-replay``, so that a read never waits for the ingest writer.)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("viewer_videos", sa.Column("player_since_ms", sa.BigInteger, nullable=True))
    op.add_column(
        "viewer_videos",
        sa.Column("player_watch_ms", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column(
        "viewer_videos",
        sa.Column("player_gain_ms", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "signed_requests",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "token", name="pk_signed_requests"),
    )
    op.create_index(
        "ix_signed_requests_tenant_id_expires_at_ms",
        "signed_requests",
        ["tenant_id", "expires_at_ms"],
    )
