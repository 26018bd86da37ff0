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
from vodwatch.playback_token import ATTEMPT_ID_RULE, PlaybackClaims, is_attempt_id
from vodwatch.validation import (
    SESSION_ID,
    is_identifier,
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

MAX_BEACON_RATE = 16.0  # what browsers allow (Chromium: 1/16 .. 16)
COMMON_FIELDS = frozenset(
    {"sessionId", "seq", "segments", "playedMs", "position", "ended", "duration", "rate", "hidden"}
)
PLAYER_FIELDS = COMMON_FIELDS | {"token"}
SERVER_FIELDS = COMMON_FIELDS | {"userId", "userName", "assetId", "startedAt", "attemptId"}


@dataclass(frozen=True, slots=True)
class Viewing:
    """Who watched what, as the token (players) or the customer backend (servers) says."""

    user_id: str
    user_name: str | None
    asset_id: str
    title: str | None = None
    duration_ms: int | None = None  # from the token's "dur": the customer's own figure
    attempt_id: str = ""  # the token's "att" or a server beacon's attemptId; "": none


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
    rate: float = 1.0  # playback rate while the segments played
    is_hidden: bool = False  # the page was hidden while they played

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
    if not item.keys() <= allowed:
        name = next(name for name in item if name not in allowed)
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
    # Each check passes a well-formed value at once and builds the field's name (for the
    # message) only when the value is wrong: a batch of 100 beacons would otherwise format a
    # thousand names for nothing.
    session_id = item["sessionId"]
    if not (type(session_id) is str and SESSION_ID.fullmatch(session_id)):
        session_id = require_session_id(f"{where}sessionId", session_id)
    seq = item["seq"]
    if not (type(seq) is int and 1 <= seq <= MAX_SEQ):
        seq = require_int(f"{where}seq", seq, low=1, high=MAX_SEQ)
    segments = _segments(item.get("segments", []), where)
    played_ms = item.get("playedMs", 0)
    if not (type(played_ms) is int and 0 <= played_ms <= MAX_PLAYED_MS):
        played_ms = require_int(f"{where}playedMs", played_ms, low=0, high=MAX_PLAYED_MS)
    position = item.get("position")
    position_ms = (
        None
        if position is None
        else seconds_to_ms(
            require_number(f"{where}position", position, low=0, high=MAX_MEDIA_SECONDS)
        )
    )
    is_ended = item.get("ended", False)
    if type(is_ended) is not bool:
        is_ended = require_bool(f"{where}ended", is_ended)
    duration = item.get("duration")
    rate = item.get("rate", 1.0)
    if not ((type(rate) is float or type(rate) is int) and 0 < rate <= MAX_BEACON_RATE):
        rate = require_number(f"{where}rate", rate, low=0, high=MAX_BEACON_RATE)
        if rate <= 0:
            raise InvalidParameter(f"{where}rate must be > 0, got {rate:g}")
    is_hidden = item.get("hidden", False)
    if type(is_hidden) is not bool:
        is_hidden = require_bool(f"{where}hidden", is_hidden)
    return Beacon(
        session_id=session_id,
        seq=seq,
        viewing=viewing,
        segments=segments,
        played_ms=played_ms,
        position_ms=position_ms,
        is_ended=is_ended,
        duration_ms=None if duration is None else _duration_ms(f"{where}duration", duration),
        started_at_ms=started_at_ms,
        rate=float(rate),
        is_hidden=is_hidden,
    )


def _segments(value: object, where: str) -> tuple[Interval, ...]:
    if type(value) is list and len(value) <= MAX_SEGMENTS_PER_BEACON:
        segments = []
        for pair in value:
            if type(pair) is not list or len(pair) != 2:
                break
            start, end = pair
            # (NaN and infinities fail the comparison and go to the checks below)
            if (
                (type(start) is float or type(start) is int)
                and (type(end) is float or type(end) is int)
                and 0 <= start <= end <= MAX_MEDIA_SECONDS
            ):
                segments.append((int(start * 1000 + 0.5), int(end * 1000 + 0.5)))  # seconds_to_ms
            else:
                break
        else:
            return tuple(segments)
    return _checked_segments(value, where)


def _checked_segments(value: object, where: str) -> tuple[Interval, ...]:
    """``_segments`` field by field, naming the first that is wrong."""
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
    user_id, asset_id, user_name = item["userId"], item["assetId"], item.get("userName")
    if not is_identifier(user_id):
        user_id = require_identifier(f"{where}userId", user_id)
    if user_name is not None:
        user_name = require_text(f"{where}userName", user_name)
    if not is_identifier(asset_id):
        asset_id = require_identifier(f"{where}assetId", asset_id)
    attempt_id = item.get("attemptId")
    if attempt_id is None:
        attempt_id = ""
    elif not (type(attempt_id) is str and is_attempt_id(attempt_id)):
        raise InvalidParameter(f"{where}attemptId must be {ATTEMPT_ID_RULE}")
    return Viewing(user_id=user_id, user_name=user_name, asset_id=asset_id, attempt_id=attempt_id)


def _player_viewing(claims: PlaybackClaims) -> Viewing:
    return Viewing(
        user_id=require_identifier("token claim 'sub'", claims.user_id),
        user_name=None
        if claims.user_name is None
        else require_text("token claim 'name'", claims.user_name),
        asset_id=require_identifier("token claim 'aid'", claims.asset_id),
        title=None if claims.title is None else require_text("token claim 'title'", claims.title),
        duration_ms=claims.duration_ms,
        attempt_id=claims.attempt_id,
    )


def _started_at(item: dict[str, object], where: str, now_seconds: float) -> int | None:
    value = item.get("startedAt")
    if value is None:
        return None
    latest = int(now_seconds) + STARTED_AT_FUTURE_SLACK_SECONDS
    if type(value) is int and EARLIEST_STARTED_AT <= value <= latest:
        return value * 1000
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
