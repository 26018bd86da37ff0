"""Parameters of the watch-completeness report (SPEC §3), from the query string and/or a JSON
body, validated into one ``ReportQuery``."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from vodwatch.errors import InvalidParameter
from vodwatch.validation import parse_int_text, require_int, require_text

GroupBy = Literal["visit", "userVideo"]
GROUP_BYS: tuple[GroupBy, ...] = ("visit", "userVideo")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000_000
MAX_UNIX_SECONDS = 2**40
PARAMETERS = ("startTime", "endTime", "userId", "videoInfo", "page", "pageSize", "groupBy")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    start_time: int | None = None  # unix seconds, inclusive
    end_time: int | None = None  # unix seconds, inclusive
    user_id: str | None = None
    video_info: str | None = None  # assetId exactly, or a title substring (case-insensitive)
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    group_by: GroupBy = "visit"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def parse_report_query(
    query: list[tuple[str, str]],
    body: Mapping[str, object] | None = None,
    extra: tuple[str, ...] = (),
) -> ReportQuery:
    """Merge body and query (the query string wins), check every value; ``extra`` names
    parameters the caller takes besides (the export's ``format``), left unchecked here.

    An empty value means "not given", as Talk-cloud clients send unused parameters blank.
    """
    given = merge_parameters(query, body, PARAMETERS + extra)
    start_time = optional_integer(given, "startTime", 0, MAX_UNIX_SECONDS)
    end_time = optional_integer(given, "endTime", 0, MAX_UNIX_SECONDS)
    if start_time is not None and end_time is not None and start_time > end_time:
        raise InvalidParameter(f"startTime ({start_time}) is after endTime ({end_time})")
    group_by = given.get("groupBy", "visit")
    if group_by not in GROUP_BYS:
        raise InvalidParameter(f"groupBy must be 'visit' or 'userVideo', got {group_by!r}")
    return ReportQuery(
        start_time=start_time,
        end_time=end_time,
        user_id=optional_text(given, "userId"),
        video_info=optional_text(given, "videoInfo"),
        page=optional_integer(given, "page", 1, MAX_PAGE) or 1,
        page_size=optional_integer(given, "pageSize", 1, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE,
        group_by=group_by,
    )


def merge_parameters(
    query: list[tuple[str, str]], body: Mapping[str, object] | None, known: tuple[str, ...]
) -> dict[str, object]:
    """Body fields, then query parameters over them, without the blank ones; a name not in
    ``known``, or given twice in the query, is an error."""
    merged: dict[str, object] = {}
    for name, value in (body or {}).items():
        _check_name(name, "body field", known)
        merged[name] = value
    seen: set[str] = set()
    for name, value in query:
        _check_name(name, "parameter", known)
        if name in seen:
            raise InvalidParameter(f"parameter '{name}' is given more than once")
        seen.add(name)
        merged[name] = value
    return {name: value for name, value in merged.items() if value not in ("", None)}


def _check_name(name: str, kind: str, known: tuple[str, ...]) -> None:
    if name not in known:
        raise InvalidParameter(f"unknown {kind} '{name}'; known: {', '.join(known)}")


def optional_integer(given: Mapping[str, object], name: str, low: int, high: int) -> int | None:
    value = given.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return parse_int_text(name, value, low=low, high=high)
    return require_int(name, value, low=low, high=high)


def optional_text(given: Mapping[str, object], name: str) -> str | None:
    value = given.get(name)
    return None if value is None else require_text(name, value)
