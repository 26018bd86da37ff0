"""``vodwatch report``: the watch-completeness report, from a terminal."""

import json
import unicodedata
from typing import Any

import click
import httpx2

from vodwatch.client import VodwatchAPIError, VodwatchClient

COLUMNS = ("userId", "userName", "assetId", "videoTitle", "visitTime", "visitRadio")


@click.command()
@click.option(
    "--url",
    envvar="VODWATCH_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Service base URL (env VODWATCH_URL).",
)
@click.option(
    "--authkey",
    envvar="VODWATCH_AUTHKEY",
    required=True,
    help="Tenant authkey (env VODWATCH_AUTHKEY).",
)
@click.option(
    "--secret", envvar="VODWATCH_SECRET", required=True, help="Tenant secret (env VODWATCH_SECRET)."
)
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
) -> None:
    """Show 用户观看完整度: watch time and completeness per visit, newest first."""
    params: dict[str, Any] = {
        "startTime": start_time,
        "endTime": end_time,
        "userId": user_id,
        "videoInfo": video_info,
        "page": page,
        "pageSize": page_size if page_size != 20 else None,
        "groupBy": group_by if group_by != "visit" else None,
    }
    with VodwatchClient(url, authkey, secret) as client:
        try:
            body = client.watch_report(**params)
        except VodwatchAPIError as error:
            raise click.ClickException(error.message if error.result > 0 else str(error)) from None
        except httpx2.HTTPError as error:
            raise click.ClickException(f"cannot reach {url}: {error}") from None
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False))
        return
    data = body["data"]
    click.echo(render_table(data["data"]))
    click.echo(
        f"page {data['current_page']} of {data['last_page']}, "
        f"{data['total']} {'row' if data['total'] == 1 else 'rows'} in all"
    )


def render_table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns; wide (CJK) characters count as two."""
    cells = [list(COLUMNS)] + [[str(row[column]) for column in COLUMNS] for row in rows]
    widths = [max(display_width(line[index]) for line in cells) for index in range(len(COLUMNS))]
    lines = []
    for line in cells:
        padded = [cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(line)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
