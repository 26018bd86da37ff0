"""Beacons (SPEC §6): what a player or a customer backend reports about one visit.

``parse_beacons`` turns a decoded JSON body into validated ``Beacon`` values, all or nothing:
the first bad field raises ``InvalidParameter`` naming it, and nothing is stored. Times become
integer milliseconds here; nothing after this module sees a float.
"""

from collections.abc import Callable
from dataclasses import dataclass

from vodwatch.errors import InvalidParameter, MissingAuth, PayloadTooLarge
from vodwatch.formats import seconds_to_ms
from vodwatch.intervals import Interval
from vodwatch.playback_token import PlaybackClaims
from vodwatch.validation import (
    require_bool,
    require_identifier,
    require_int,
    require_number,
    require_session_id,
    require_text,
)

MAX_BEACONS_PER_REQUEST = 1000
MAX_SEGMENTS_PER_BEACON = 1000
MAX_SEGMENTS_PER_REQUEST = 10_000  # in all its beacons: what one request may make ingest weigh
MAX_SEQ = 2**31 - 1
MAX_MEDIA_SECONDS = 7 * 24 * 3600
MAX_PLAYED_MS = MAX_MEDIA_SECONDS * 1000
EARLIEST_STARTED_AT = 946_684_800  # 2000-01-01: older "startedAt" values are typos
STARTED_AT_FUTURE_SLACK_SECONDS = 300

COMMON_FIELDS = frozenset(
    {"sessionId", "seq", "segments", "playedMs", "position", "ended", "duration"}
)
PLAYER_FIELDS = COMMON_FIELDS | {"token"}
SERVER_FIELDS = COMMON_FIELDS | {"userId", "userName", "assetId", "startedAt"}


@dataclass(frozen=True, slots=True)
class Viewing:
    """Who watched what, as the token (players) or the customer backend (servers) says."""

    user_id: str
    user_name: str | None
    asset_id: str
    title: str | None = None
    duration_ms: int | None = None  # from the token's "dur": the customer's own figure


@dataclass(frozen=True, slots=True)
class Beacon:
    session_id: str
    seq: int
    viewing: Viewing
    segments: tuple[Interval, ...] = ()  # media ms, in the order reported
    played_ms: int = 0
    position_ms: int | None = None
    is_ended: bool = False
    duration_ms: int | None = None  # what the player says the media lasts
    started_at_ms: int | None = None  # server beacons only

    @property
    def media_ms(self) -> int:
        """Media time the beacon says was played, counting rewatched parts each time."""
        return sum(end - start for start, end in self.segments)


ClaimsLookup = Callable[[str], PlaybackClaims]


def parse_beacons(
    payload: object,
    *,
    claims_for: ClaimsLookup | None,
    now_seconds: float,
) -> list[Beacon]:
    """Validate a request body: one beacon object or an array of them.

    Player requests pass ``claims_for(token) -> PlaybackClaims`` (verifying each token); server
    requests pass ``claims_for=None`` and name the viewer and asset in each beacon.
    """
    if isinstance(payload, dict):
        items: list[object] = [payload]
        prefix: Callable[[int], str] = lambda _: ""  # noqa: E731
    elif isinstance(payload, list):
        if not payload:
            raise InvalidParameter("body must hold at least one beacon, got an empty array")
        if len(payload) > MAX_BEACONS_PER_REQUEST:
            raise PayloadTooLarge(
                f"body holds {len(payload)} beacons; at most {MAX_BEACONS_PER_REQUEST} per request"
            )
        items = payload
        prefix = lambda index: f"beacons[{index}]."  # noqa: E731
    else:
        raise InvalidParameter("body must be a beacon object or an array of beacons")
    segments = sum(
        len(item["segments"])
        for item in items
        if isinstance(item, dict) and isinstance(item.get("segments"), list)
    )
    if segments > MAX_SEGMENTS_PER_REQUEST:
        raise PayloadTooLarge(
            f"body holds {segments} segments in all; at most {MAX_SEGMENTS_PER_REQUEST} per request"
        )
    return [
        _parse_one(item, prefix(index), claims_for, now_seconds) for index, item in enumerate(items)
    ]


def _parse_one(
    item: object, where: str, claims_for: ClaimsLookup | None, now_seconds: float
) -> Beacon:
    if not isinstance(item, dict):
        raise InvalidParameter(f"{where.rstrip('.') or 'body'} must be a beacon object")
    allowed = SERVER_FIELDS if claims_for is None else PLAYER_FIELDS
    for name in item:
        if name not in allowed:
            raise InvalidParameter(_unknown_field_message(where, name, claims_for is None))
    if claims_for is None:
        viewing = _server_viewing(item, where)
        started_at_ms = _started_at(item, where, now_seconds)
    else:
        if "token" not in item:
            raise MissingAuth(
                f"{where}token is required: a player beacon carries its playback token, "
                "a server beacon is signed with Tk headers"
            )
        token = require_text(f"{where}token", item["token"], max_length=4096)
        viewing = _player_viewing(claims_for(token))
        started_at_ms = None
    if "sessionId" not in item:
        raise InvalidParameter(f"{where}sessionId is required")
    if "seq" not in item:
        raise InvalidParameter(f"{where}seq is required")
    position = item.get("position")
    duration = item.get("duration")
    return Beacon(
        session_id=require_session_id(f"{where}sessionId", item["sessionId"]),
        seq=require_int(f"{where}seq", item["seq"], low=1, high=MAX_SEQ),
        viewing=viewing,
        segments=_segments(item.get("segments", []), where),
        played_ms=require_int(
            f"{where}playedMs", item.get("playedMs", 0), low=0, high=MAX_PLAYED_MS
        ),
        position_ms=None
        if position is None
        else seconds_to_ms(
            require_number(f"{where}position", position, low=0, high=MAX_MEDIA_SECONDS)
        ),
        is_ended=require_bool(f"{where}ended", item.get("ended", False)),
        duration_ms=None if duration is None else _duration_ms(f"{where}duration", duration),
        started_at_ms=started_at_ms,
    )


def _segments(value: object, where: str) -> tuple[Interval, ...]:
    if not isinstance(value, list):
        raise InvalidParameter(f"{where}segments must be an array of [start, end] pairs")
    if len(value) > MAX_SEGMENTS_PER_BEACON:
        raise InvalidParameter(
            f"{where}segments has {len(value)} ranges; at most {MAX_SEGMENTS_PER_BEACON}"
        )
    segments = []
    for index, pair in enumerate(value):
        name = f"{where}segments[{index}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidParameter(f"{name} must be a [start, end] pair of seconds")
        start = require_number(f"{name}[0]", pair[0], low=0, high=MAX_MEDIA_SECONDS)
        end = require_number(f"{name}[1]", pair[1], low=0, high=MAX_MEDIA_SECONDS)
        if end < start:
            raise InvalidParameter(f"{name} is reversed: end {end:g} is before start {start:g}")
        segments.append((seconds_to_ms(start), seconds_to_ms(end)))
    return tuple(segments)


def _duration_ms(name: str, value: object) -> int:
    seconds = require_number(name, value, low=0, high=MAX_MEDIA_SECONDS)
    if seconds <= 0:
        raise InvalidParameter(f"{name} must be > 0 seconds")
    return seconds_to_ms(seconds)


def _server_viewing(item: dict[str, object], where: str) -> Viewing:
    for required in ("userId", "assetId"):
        if required not in item:
            raise InvalidParameter(f"{where}{required} is required in a server beacon (Tk headers)")
    user_name = item.get("userName")
    return Viewing(
        user_id=require_identifier(f"{where}userId", item["userId"]),
        user_name=None if user_name is None else require_text(f"{where}userName", user_name),
        asset_id=require_identifier(f"{where}assetId", item["assetId"]),
    )


def _player_viewing(claims: PlaybackClaims) -> Viewing:
    return Viewing(
        user_id=require_identifier("token claim 'sub'", claims.user_id),
        user_name=None
        if claims.user_name is None
        else require_text("token claim 'name'", claims.user_name),
        asset_id=require_identifier("token claim 'aid'", claims.asset_id),
        title=None if claims.title is None else require_text("token claim 'title'", claims.title),
        duration_ms=claims.duration_ms,
    )


def _started_at(item: dict[str, object], where: str, now_seconds: float) -> int | None:
    value = item.get("startedAt")
    if value is None:
        return None
    latest = int(now_seconds) + STARTED_AT_FUTURE_SLACK_SECONDS
    seconds = require_int(f"{where}startedAt", value, low=EARLIEST_STARTED_AT, high=latest)
    return seconds * 1000


def _unknown_field_message(where: str, name: str, is_server: bool) -> str:
    if not is_server and name in SERVER_FIELDS:
        return (
            f"{where}{name} is not accepted from players: the playback token names the viewer "
            "and the video"
        )
    if is_server and name == "token":
        return f"{where}token is for players; a server beacon (Tk headers) names userId and assetId"
    return f"{where}{name} is not a beacon field"
