"""The exact number formats of the watch-completeness report (SPEC §2)."""


def format_visit_radio(covered_ms: int, duration_ms: int | None) -> str:
    """Coverage as a whole percentage, floored and capped at 100.

    99.9 % is "99%": only a fully covered video reads "100%". Unknown or zero duration reads "0%".

    >>> format_visit_radio(16_200, 269_000), format_visit_radio(999, 1_000)
    ('6%', '99%')
    """
    if not duration_ms or duration_ms <= 0 or covered_ms <= 0:
        return "0%"
    return f"{min(100, covered_ms * 100 // duration_ms)}%"


def format_visit_time(watch_ms: int) -> str:
    """Watch time as ``HH:MM:SS`` of whole (floored) seconds; hours grow past 24.

    >>> format_visit_time(60_999), format_visit_time(90_187_000)
    ('00:01:00', '25:03:07')
    """
    seconds = max(watch_ms, 0) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def format_duration(duration_ms: int | None) -> str:
    """Catalog duration as Talk-cloud shows it: whole seconds (rounded), as a string."""
    if not duration_ms:
        return "0"
    return str((duration_ms + 500) // 1000)


def seconds_to_ms(seconds: float) -> int:
    """Media or unix seconds to integer milliseconds, rounding half up."""
    return int(seconds * 1000 + 0.5) if seconds >= 0 else -int(-seconds * 1000 + 0.5)
