"""Heartbeats as xAPI video-profile statements, and back.

What an xAPI shop's player would send for each heartbeat: a ``played`` statement whose
``played-segments`` extension carries the media ranges played since the previous one, in the
profile's ``"0[.]10[,]15[.]20"`` format (seconds). Profile: https://w3id.org/xapi/video.

Times are written as exact decimal seconds (``12.345``, never a float that prints as
``12.344999``), so a statement read back gives the heartbeat's milliseconds exactly.
"""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bench.viewing import Heartbeat

HOME_PAGE = "https://vodwatch.example"
VIDEO = "https://w3id.org/xapi/video"
PLAYED = f"{VIDEO}/verbs/played"
VIDEO_TYPE = f"{VIDEO}/activity-type/video"
PLAYED_SEGMENTS = f"{VIDEO}/extensions/played-segments"
TIME = f"{VIDEO}/extensions/time"
LENGTH = f"{VIDEO}/extensions/length"
SESSION_ID = f"{VIDEO}/extensions/session-id"
# Statement ids and registrations are uuid5 in this namespace: the same data, the same ids.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, HOME_PAGE)

_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def activity_iri(asset_id: str) -> str:
    return f"{HOME_PAGE}/assets/{asset_id}"


def seconds(ms: int) -> str:
    """``12345`` → ``"12.345"``, ``10500`` → ``"10.5"``, ``10000`` → ``"10"``."""
    text = f"{ms // 1000}.{ms % 1000:03d}".rstrip("0")
    return text.rstrip(".")


def ms_of(value: str | float) -> int:
    """Seconds (as text or a JSON number) to integer milliseconds; ``str`` first so that a
    float is read as it was printed, not as its binary approximation."""
    return int(Decimal(str(value)) * 1000)


def format_segments(segments: tuple[tuple[int, int], ...]) -> str:
    return "[,]".join(f"{seconds(start)}[.]{seconds(end)}" for start, end in segments)


def parse_segments(text: str) -> list[tuple[int, int]]:
    pairs = (part.split("[.]") for part in text.split("[,]") if part)
    return [(ms_of(start), ms_of(end)) for start, end in pairs]


def iso_duration(ms: int) -> str:
    return f"PT{seconds(ms)}S"


def duration_ms(text: str) -> int:
    """ISO 8601 ``PT…H…M…S`` (what an LRS may return, not only what we send) to ms."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"unsupported xAPI duration: {text!r}")
    hours, minutes, secs = match.groups()
    return (int(hours or 0) * 3600 + int(minutes or 0) * 60) * 1000 + ms_of(secs or "0")


def timestamp(at_ms: int) -> str:
    moment = datetime.fromtimestamp(at_ms // 1000, UTC).replace(microsecond=at_ms % 1000 * 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_statement(beat: Heartbeat) -> dict[str, Any]:
    """The ``played`` statement for one heartbeat."""
    last_end = beat.segments[-1][1] if beat.segments else 0
    return {
        "id": str(uuid.uuid5(NAMESPACE, f"{beat.session_id}/{beat.seq}")),
        "actor": {"objectType": "Agent", "account": {"homePage": HOME_PAGE, "name": beat.user_id}},
        "verb": {"id": PLAYED, "display": {"en-US": "played"}},
        "object": {
            "objectType": "Activity",
            "id": activity_iri(beat.asset_id),
            "definition": {"type": VIDEO_TYPE},
        },
        "result": {
            "duration": iso_duration(beat.played_ms),
            "extensions": {
                PLAYED_SEGMENTS: format_segments(beat.segments),
                TIME: float(seconds(last_end)),
            },
        },
        "context": {
            "registration": str(uuid.uuid5(NAMESPACE, beat.session_id)),
            "contextActivities": {"category": [{"id": VIDEO, "objectType": "Activity"}]},
            "extensions": {
                SESSION_ID: beat.session_id,
                LENGTH: float(seconds(beat.duration_ms)),
            },
        },
        "timestamp": timestamp(beat.at_ms),
    }
