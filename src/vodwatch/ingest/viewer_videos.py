"""Per viewer and video totals (``viewer_videos``), kept by ingest beside the visits: pure.

The grouped report reads one row per pair instead of grouping every visit: watch time is a sum
(each beacon adds what it adds to its visit), coverage a union (each beacon's new ranges are
united in), the latest start a maximum. The pair also carries the clock of the viewer's player
beacons on the video (``beacon.bounds``): when the first came, and how much watch time and new
coverage they have been credited, so that opening more sessions cannot add up to more than the
server clock allows.
"""

from dataclasses import dataclass, field

from vodwatch.attention import Attention
from vodwatch.intervals import IntervalSet

PairKey = tuple[int, str, str]  # (tenant_id, user_id, asset_id)


@dataclass(slots=True)
class ViewerVideo:
    tenant_id: int
    user_id: str
    asset_id: str
    first_started_at_ms: int
    latest_started_at_ms: int
    last_seen_at_ms: int
    watch_ms: int = 0
    coverage: IntervalSet = field(default_factory=list)
    visit_count: int = 0
    player_since_ms: int | None = None  # server time of the first player beacon
    player_watch_ms: int = 0  # watch time credited by player beacons
    player_gain_ms: int = 0  # coverage player beacons added to the pair's union
    attention: Attention = field(default_factory=list)  # of all its visits (vodwatch.attention)

    def copy(self) -> "ViewerVideo":
        """A shallow copy (the coverage list is replaced, never changed in place)."""
        return ViewerVideo(
            self.tenant_id,
            self.user_id,
            self.asset_id,
            self.first_started_at_ms,
            self.latest_started_at_ms,
            self.last_seen_at_ms,
            self.watch_ms,
            self.coverage,
            self.visit_count,
            self.player_since_ms,
            self.player_watch_ms,
            self.player_gain_ms,
            self.attention,
        )

    @property
    def key(self) -> PairKey:
        return (self.tenant_id, self.user_id, self.asset_id)


def start_pair(key: PairKey, started_at_ms: int, now_ms: int) -> ViewerVideo:
    """A pair with no visit yet, about to get one that started at ``started_at_ms``."""
    tenant_id, user_id, asset_id = key
    return ViewerVideo(
        tenant_id=tenant_id,
        user_id=user_id,
        asset_id=asset_id,
        first_started_at_ms=started_at_ms,
        latest_started_at_ms=started_at_ms,
        last_seen_at_ms=now_ms,
    )
