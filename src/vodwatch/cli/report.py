"""``vodwatch report``, ``videos`` and ``retention``: the service's answers in a terminal,
through its signed API (``VodwatchClient``)."""

import json
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import httpx2

from vodwatch.client import VodwatchAPIError, VodwatchClient
from vodwatch.report.insights import VIDEO_SORTS

COLUMNS = ("userId", "userName", "assetId", "videoTitle", "visitTime", "visitRadio")
VIDEO_COLUMNS = (
    "assetId",
    "videoTitle",
    "viewers",
    "visits",
    "visitTime",
    "meanCoverage",
    "completedViewers",
    "completionRate",
)
F = TypeVar("F", bound=Callable[..., Any])


def service_options(function: F) -> F:
    """--url, --authkey and --secret, from the environment too."""
    for option in reversed(
        [
            click.option(
                "--url",
                envvar="VODWATCH_URL",
                default="http://127.0.0.1:8000",
                show_default=True,
                help="Service base URL (env VODWATCH_URL).",
            ),
            click.option(
                "--authkey",
                envvar="VODWATCH_AUTHKEY",
                required=True,
                help="Tenant authkey (env VODWATCH_AUTHKEY).",
            ),
            click.option(
                "--secret",
                envvar="VODWATCH_SECRET",
                required=True,
                help="Tenant secret (env VODWATCH_SECRET).",
            ),
        ]
    ):
        function = option(function)
    return function


def time_options(function: F) -> F:
    for option in reversed(
        [
            click.option(
                "--start-time", type=int, help="Unix seconds: visits started at or after."
            ),
            click.option("--end-time", type=int, help="Unix seconds: visits started at or before."),
        ]
    ):
        function = option(function)
    return function


@contextmanager
def connected(url: str, authkey: str, secret: str) -> Iterator[VodwatchClient]:
    """A client; the service's errors and an unreachable URL become clean messages."""
    with VodwatchClient(url, authkey, secret) as client:
        try:
            yield client
        except VodwatchAPIError as error:
            raise click.ClickException(error.message if error.result > 0 else str(error)) from None
        except httpx2.HTTPError as error:
            raise click.ClickException(f"cannot reach {url}: {error}") from None


@click.command()
@service_options
@click.option("--start-time", type=int, help="Unix seconds: visits started at or after.")
@click.option("--end-time", type=int, help="Unix seconds: visits started at or before.")
@click.option("--user-id", help="One viewer, exactly.")
@click.option("--video-info", help="assetId, or a case-insensitive part of the title.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option(
    "--group-by",
    type=click.Choice(["visit", "userVideo"]),
    default="visit",
    show_default=True,
    help="One row per visit, or per viewer and video.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw response body.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["table", "csv", "xlsx"]),
    default="table",
    show_default=True,
    help="csv or xlsx: every matching row (not one page) as a file on stdout.",
)
def report(
    url: str,
    authkey: str,
    secret: str,
    start_time: int | None,
    end_time: int | None,
    user_id: str | None,
    video_info: str | None,
    page: int,
    page_size: int,
    group_by: str,
    as_json: bool,
    file_format: str,
) -> None:
    """Show 用户观看完整度: watch time and completeness per visit, newest first.

    With --format csv (or xlsx), every matching row goes to stdout as a file:
    vodwatch report --format csv > out.csv"""
    params: dict[str, Any] = {
        "startTime": start_time,
        "endTime": end_time,
        "userId": user_id,
        "videoInfo": video_info,
        "page": page,
        "pageSize": page_size if page_size != 20 else None,
        "groupBy": group_by if group_by != "visit" else None,
    }
    if file_format != "table":
        filters = {name: params[name] for name in ("startTime", "endTime", "userId", "videoInfo")}
        with connected(url, authkey, secret) as client:
            content = client.export(file_format, groupBy=params["groupBy"], **filters)
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    with connected(url, authkey, secret) as client:
        body = client.watch_report(**params)
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False))
        return
    data = body["data"]
    click.echo(render_table(data["data"]))
    click.echo(
        f"page {data['current_page']} of {data['last_page']}, "
        f"{data['total']} {'row' if data['total'] == 1 else 'rows'} in all"
    )


@click.command()
@service_options
@time_options
@click.option("--video-info", help="assetId, or a case-insensitive part of the title.")
@click.option("--sort", type=click.Choice(VIDEO_SORTS), default="lastVisit", show_default=True)
@click.option("--order", type=click.Choice(["desc", "asc"]), default="desc", show_default=True)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw response body.")
def videos(
    url: str,
    authkey: str,
    secret: str,
    start_time: int | None,
    end_time: int | None,
    video_info: str | None,
    sort: str,
    order: str,
    page: int,
    page_size: int,
    as_json: bool,
) -> None:
    """Show each video's viewers, watch time, mean coverage and completion rate."""
    with connected(url, authkey, secret) as client:
        body = client.videos(
            startTime=start_time,
            endTime=end_time,
            videoInfo=video_info,
            sort=sort,
            order=order,
            page=page,
            pageSize=page_size,
        )
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False))
        return
    data = body["data"]
    click.echo(render_table(data["data"], VIDEO_COLUMNS))
    click.echo(
        f"page {data['current_page']} of {data['last_page']}, "
        f"{data['total']} {'video' if data['total'] == 1 else 'videos'} in all"
    )


@click.command()
@service_options
@click.argument("asset_id")
@time_options
@click.option("--buckets", type=click.IntRange(10, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw response body.")
def retention(
    url: str,
    authkey: str,
    secret: str,
    asset_id: str,
    start_time: int | None,
    end_time: int | None,
    buckets: int,
    as_json: bool,
) -> None:
    """Show how many viewers watched each part of the video ASSET_ID, and how far they got."""
    with connected(url, authkey, secret) as client:
        body = client.retention(asset_id, buckets=buckets, startTime=start_time, endTime=end_time)
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False))
        return
    click.echo(render_retention(body["data"]))


def render_retention(data: dict[str, Any]) -> str:
    """One line per bucket: its time span, viewers and views, and a bar of viewers."""
    total = data["totalViewers"]
    lines = [f"{data['assetId']}: {total} viewers, {data['totalVisits']} visits"]
    duration = data["duration"]
    if not duration:
        lines.append("duration unknown: put it in the catalog (PUT media) to see the curve")
        return "\n".join(lines)
    count = data["buckets"]
    lines.append(f"{'part':>17}  {'viewers':>7}  {'views':>7}")
    for index, (viewers, views) in enumerate(zip(data["viewers"], data["views"], strict=True)):
        low, high = index * duration // count // 1000, (index + 1) * duration // count // 1000
        bar = "#" * round(30 * viewers / total) if total else ""
        span = f"{clock(low)}-{clock(high)}"
        lines.append(f"{span:>17}  {viewers:>7}  {views:>7}  {bar}")
    lines.append(
        "coverage: "
        + "  ".join(
            f"{10 * k}-{10 * k + 9 if k < 9 else 100}%: {n}"
            for k, n in enumerate(data["distribution"])
        )
    )
    return "\n".join(lines)


def clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def render_table(rows: list[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """Aligned columns; wide (CJK) characters count as two."""
    cells = [list(columns)] + [[str(row[column]) for column in columns] for row in rows]
    widths = [max(display_width(line[index]) for line in cells) for index in range(len(columns))]
    lines = []
    for line in cells:
        padded = [cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(line)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
