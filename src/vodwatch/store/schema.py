"""Tables, as SQLAlchemy Core sees them. Migrations in ``store/migrations`` create them.

Every table but ``tenants`` is keyed by ``tenant_id`` first, in its primary key and in every
index, so a distributed PostgreSQL (Citus) can shard by tenant; ``tenants`` is small and
would be a reference table there. Times are integer milliseconds since the epoch, coverage
is integer milliseconds of media time.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("authkey", String(64), nullable=False, unique=True),
    Column("secret", Text, nullable=False),  # encrypted: vodwatch.keyring
    Column("allowed_origins", Text, nullable=False, server_default="[]"),  # JSON array
    Column("created_at_ms", BigInteger, nullable=False),
    # The secret before the latest rotation (encrypted too), valid until the time after it.
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at_ms", BigInteger, nullable=True),
    Column("disabled_at_ms", BigInteger, nullable=True),  # None: enabled
    # Percent of a video a viewer must have covered to have completed it (1..100, SPEC §9).
    Column("completion_threshold", Integer, nullable=False, server_default="90"),
    Column("is_demo", Boolean, nullable=False, server_default=false()),  # vodwatch demo's
    # Completion rules every video has unless it sets its own (SPEC §10, vodwatch.attention).
    Column("max_rate", Float, nullable=True),  # None: any playback rate counts
    Column("visible_only", Boolean, nullable=False, server_default=false()),
)

assets = Table(
    "assets",
    metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("asset_id", String(128), primary_key=True),
    Column("title", Text, nullable=False, server_default=""),
    Column("title_folded", Text, nullable=False, server_default=""),  # str.casefold() of title
    Column("duration_ms", BigInteger, nullable=True),  # None: not known yet
    # True once the catalog endpoint set it: beacons then never change title or duration.
    Column("is_cataloged", Boolean, nullable=False, server_default=false()),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("completion_threshold", Integer, nullable=True),  # None: the tenant's
    # JSON [[start_s, end_s], ...] as written in the PUT (None: none); None: the tenant's.
    Column("required_ranges", Text, nullable=True),
    Column("max_rate", Float, nullable=True),
    Column("visible_only", Boolean, nullable=True),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)

viewers = Table(
    "viewers",
    metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("user_name", Text, nullable=False, server_default=""),
    Column("name_at_ms", BigInteger, nullable=False),  # when user_name was last reported
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)

visits = Table(
    "visits",
    metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("session_id", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("asset_id", String(128), nullable=False),
    Column("started_at_ms", BigInteger, nullable=False),
    Column("last_seen_at_ms", BigInteger, nullable=False),
    Column("watch_ms", BigInteger, nullable=False),
    Column("coverage", Text, nullable=False),  # JSON [[start_ms, end_ms], ...], normal form
    Column("covered_ms", BigInteger, nullable=False),  # measure of coverage, not clamped
    Column("seqs", Text, nullable=False),  # JSON [[first, last + 1], ...] of seen seq numbers
    Column("beacon_count", Integer, nullable=False),
    Column("position_ms", BigInteger, nullable=True),
    Column("position_seq", Integer, nullable=False),
    Column("is_ended", Boolean, nullable=False),
    # The attempt of the visit's lowest-seq beacon ("": none named), SPEC §10.
    Column("attempt_id", String(64), nullable=False, server_default=""),
    # JSON pieces [start_ms, end_ms, speed, visible_speed] of the coverage no plain segment
    # played (vodwatch.attention): what completion rules may leave out.
    Column("attention", Text, nullable=False, server_default="[]"),
    Column("refused_ms", BigInteger, nullable=False, server_default="0"),  # by the clock bounds
    ForeignKeyConstraint(["tenant_id", "asset_id"], ["assets.tenant_id", "assets.asset_id"]),
    ForeignKeyConstraint(["tenant_id", "user_id"], ["viewers.tenant_id", "viewers.user_id"]),
)

Index("ix_visits_started", visits.c.tenant_id, visits.c.started_at_ms, visits.c.session_id)
Index("ix_visits_user", visits.c.tenant_id, visits.c.user_id, visits.c.started_at_ms)
Index("ix_visits_asset", visits.c.tenant_id, visits.c.asset_id, visits.c.started_at_ms)

# One row per viewer and video, kept by ingest next to the visits (watch time summed, coverage
# united, latest start): the report grouped by viewer and video reads a page of it instead of
# grouping every visit of the tenant.
viewer_videos = Table(
    "viewer_videos",
    metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("asset_id", String(128), primary_key=True),
    Column("first_started_at_ms", BigInteger, nullable=False),
    Column("latest_started_at_ms", BigInteger, nullable=False),
    Column("last_seen_at_ms", BigInteger, nullable=False),
    Column("watch_ms", BigInteger, nullable=False),
    Column("coverage", Text, nullable=False),
    Column("covered_ms", BigInteger, nullable=False),  # measure of coverage, not clamped
    # The end of coverage's last interval (0: none): a pair with ``coverage_end_ms <= D`` has
    # ``|U| = covered_ms``, so the videos summary sums it in SQL and clamps only the others.
    # None: not known (a row written without it), treated as reaching past any duration.
    Column("coverage_end_ms", BigInteger, nullable=True),
    Column("visit_count", Integer, nullable=False),
    # The clock of the pair's player beacons (beacon.bounds): server time of the first, and the
    # watch time and new coverage they have been credited since.
    Column("player_since_ms", BigInteger, nullable=True),
    Column("player_watch_ms", BigInteger, nullable=False, server_default="0"),
    Column("player_gain_ms", BigInteger, nullable=False, server_default="0"),
    Column("attention", Text, nullable=False, server_default="[]"),  # of all its visits
    ForeignKeyConstraint(["tenant_id", "asset_id"], ["assets.tenant_id", "assets.asset_id"]),
    ForeignKeyConstraint(["tenant_id", "user_id"], ["viewers.tenant_id", "viewers.user_id"]),
)

Index(
    "ix_viewer_videos_latest",
    viewer_videos.c.tenant_id,
    viewer_videos.c.latest_started_at_ms,
    viewer_videos.c.user_id,
    viewer_videos.c.asset_id,
)
Index(
    "ix_viewer_videos_asset",
    viewer_videos.c.tenant_id,
    viewer_videos.c.asset_id,
    viewer_videos.c.latest_started_at_ms,
    # What the videos summary sums (``store.insights.sum_videos``): it reads only the index.
    viewer_videos.c.coverage_end_ms,
    viewer_videos.c.covered_ms,
    viewer_videos.c.watch_ms,
    viewer_videos.c.visit_count,
)

# Signed requests accepted, each until its Timestamp leaves the window (store.signed_requests):
# a copy sent again is refused. Keyed by tenant like the rest; purged per tenant.
signed_requests = Table(
    "signed_requests",
    metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("token", String(64), primary_key=True),  # the Tk-token: base64 of 32 bytes
    Column("expires_at_ms", BigInteger, nullable=False),
)
Index(
    "ix_signed_requests_tenant_id_expires_at_ms",
    signed_requests.c.tenant_id,
    signed_requests.c.expires_at_ms,
)

# video.completed events (SPEC §10), one per viewer, video and attempt, written with the beacons
# that completed the attempt (store.events): the outbox webhook and xAPI delivery read.
completion_events = Table(
    "completion_events",
    metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("event_id", String(40), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("asset_id", String(128), nullable=False),
    Column("attempt_id", String(64), nullable=False),
    Column("completed_at_ms", BigInteger, nullable=False),
    Column("data", Text, nullable=False),  # JSON: the event's figures after that request
    UniqueConstraint("tenant_id", "user_id", "asset_id", "attempt_id"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)

# People who sign in to the dashboard (store.accounts). Small and looked up by e-mail before any
# tenant is known, so, like ``tenants``, not keyed by tenant first.
accounts = Table(
    "accounts",
    metadata,
    Column("email", String(254), primary_key=True),  # folded to lower case
    Column("tenant_id", Integer, nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("created_at_ms", BigInteger, nullable=False),
    Column("password_changed_at_ms", BigInteger, nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)
Index("ix_accounts_tenant_id", accounts.c.tenant_id)
