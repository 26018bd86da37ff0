"""How figures look on the dashboard's pages: times, heatmap strips, bars, links, chart data.
No I/O, and no arithmetic of the figures themselves: they come formatted as the API gives them
(``visitTime`` HH:MM:SS, ``visitRadio`` "N%"); this only draws them.

Drawings are inline SVG shapes sized by attributes, not ``style`` attributes, which the
dashboard's Content-Security-Policy forbids.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

HEATMAP_WIDTH = 1000  # SVG user units across [0, D]
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def video_path(asset_id: str) -> str:
    return "/dashboard/videos/" + quote(asset_id, safe="")


def viewer_path(user_id: str) -> str:
    return "/dashboard/viewers/" + quote(user_id, safe="")


def with_query(path: str, parameters: Mapping[str, object]) -> str:
    """``path`` with the parameters that have a value, in a query string."""
    given = {name: value for name, value in parameters.items() if value not in (None, "")}
    return f"{path}?{urlencode(given)}" if given else path


def time_element(unix_seconds: int) -> Markup:
    """``<time>`` in UTC; the page's script rewrites its text in the browser's time zone and
    language, and without script the UTC text stays."""
    moment = datetime.fromtimestamp(unix_seconds, UTC)
    return Markup('<time datetime="{}">{} UTC</time>').format(
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"), moment.strftime("%Y-%m-%d %H:%M")
    )


def heatmap(intervals: Sequence[Sequence[int]], duration_ms: int, label: str) -> Markup:
    """A strip over ``[0, D]`` with the covered ``[start, end)`` intervals filled in; an empty
    string when ``D`` is unknown (nothing to draw against)."""
    if duration_ms <= 0:
        return Markup("")
    scale = HEATMAP_WIDTH / duration_ms
    shapes = [
        Markup('<rect class="heatmap-covered" x="{:.2f}" width="{:.2f}" height="10"/>').format(
            start * scale, max((end - start) * scale, 0.5)
        )
        for start, end in intervals
        if end > start
    ]
    return Markup(
        '<svg class="heatmap" viewBox="0 0 {width} 10" preserveAspectRatio="none" role="img" '
        'aria-label="{label}" data-intervals="{count}">'
        '<rect class="heatmap-track" width="{width}" height="10"/>{shapes}</svg>'
    ).format(width=HEATMAP_WIDTH, label=label, count=len(shapes), shapes=Markup("").join(shapes))


def percent_bar(percent_text: str) -> Markup:
    """A bar of a percentage as the API writes it ("42%"), with the text beside it."""
    value = min(100, max(0, int(percent_text.rstrip("%") or 0)))
    return Markup(
        '<span class="bar"><svg class="bar-graphic" viewBox="0 0 100 8" '
        'preserveAspectRatio="none" aria-hidden="true"><rect class="bar-track" width="100" '
        'height="8"/><rect class="bar-fill" width="{value}" height="8"/></svg>'
        '<span class="bar-text">{text}</span></span>'
    ).format(value=value, text=percent_text)


def json_script(element_id: str, data: Any) -> Markup:
    """A ``<script type="application/json">`` data block (allowed by the Content-Security-
    Policy, which runs no inline script): ``<``, ``>`` and ``&`` escaped, so no text in the
    data can end the element."""
    text = json.dumps(data, ensure_ascii=False).translate(_JSON_ESCAPES)
    safe = Markup(text)  # noqa: S704 - JSON with every "<", ">" and "&" escaped
    return Markup('<script type="application/json" id="{}">{}</script>').format(element_id, safe)


def retention_chart_data(retention: Mapping[str, Any], bounds: Sequence[int]) -> dict[str, Any]:
    """What the retention and distribution charts draw: each bucket's start in media seconds,
    the viewers and views layers, and the ten bins of the distribution."""
    return {
        "x": [bound / 1000 for bound in bounds[:-1]],
        "viewers": list(retention["viewers"]),
        "views": list(retention["views"]),
        "distribution": list(retention["distribution"]),
        "bins": [f"{10 * k}–{10 * k + 9}%" if k < 9 else "90–100%" for k in range(10)],
    }


def page_numbers(current: int, last: int, around: int = 2) -> list[int | None]:
    """The page links to show: the first, the last, and those near ``current``; None where
    pages are left out."""
    shown = sorted({1, last, *range(max(1, current - around), min(last, current + around) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers
