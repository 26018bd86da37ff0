"""``GET /vod/webapi/statistics/vod/watch/export``: every row of the seed endpoint as one file,
CSV (UTF-8 with a BOM, RFC 4180) or XLSX (SPEC §9).

The file is written to a temporary file first, a chunk of rows at a time, inside one read of
the database: memory stays flat whatever the row count, the read ends before the first byte is
sent (a slow download holds no connection), and an error before it is the usual JSON answer.
"""

import csv
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Literal

import xlsxwriter
from sqlalchemy import Connection

from vodwatch.errors import InvalidParameter
from vodwatch.report.insights import is_completed
from vodwatch.report.page import covered_ms, render_row
from vodwatch.report.params import ReportQuery
from vodwatch.store.reports import ReportRow, page_viewer_videos, page_visits

ExportFormat = Literal["csv", "xlsx"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
HEADER = (
    "userId",
    "userName",
    "assetId",
    "videoTitle",
    "visitTime",
    "visitRadio",
    "startTime",
    "watchTimeMs",
    "coveredMs",
    "completed",
)
CHUNK_ROWS = 5_000
XLSX_MAX_ROWS = 1_048_576 - 1  # a worksheet's rows, less the header
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | bool


def iter_rows(
    conn: Connection,
    tenant_id: int,
    tenant_threshold: int,
    query: ReportQuery,
    only_asset_id: str | None = None,
) -> Iterator[tuple[Cell, ...]]:
    """Every row the seed endpoint pages through for ``query``, in its order; only those of
    ``only_asset_id`` when given (``videoInfo`` also matches titles that contain it)."""
    paginate = page_visits if query.group_by == "visit" else page_viewer_videos
    page = 1
    while True:
        _, rows = paginate(conn, tenant_id, replace(query, page=page, page_size=CHUNK_ROWS))
        for row in rows:
            if only_asset_id is None or row.asset_id == only_asset_id:
                yield export_row(row, tenant_threshold)
        if len(rows) < CHUNK_ROWS:
            return
        page += 1


def export_row(row: ReportRow, tenant_threshold: int) -> tuple[Cell, ...]:
    """One row: the seed endpoint's six fields as it formats them, then startTime (unix s),
    watchTimeMs, coveredMs and whether the row's own percent reaches the threshold."""
    rendered = render_row(row)
    covered = covered_ms(row)
    threshold = tenant_threshold if row.completion_threshold is None else row.completion_threshold
    return (
        rendered["userId"],
        rendered["userName"],
        rendered["assetId"],
        rendered["videoTitle"],
        rendered["visitTime"],
        rendered["visitRadio"],
        row.started_at_ms // 1000,
        row.watch_ms,
        covered,
        is_completed(covered, row.duration_ms, threshold),
    )


def guard_formula(cell: str) -> str:
    """A text cell a spreadsheet would read as a formula gets a leading ``'``."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def write_csv(rows: Iterator[tuple[Cell, ...]], out: IO[str]) -> int:
    """CSV with a BOM and CRLF line ends; the number of rows written."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow(
            [
                guard_formula(cell)
                if isinstance(cell, str)
                else ("true" if cell else "false")
                if isinstance(cell, bool)
                else cell
                for cell in row
            ]
        )
        count += 1
    return count


def write_xlsx(rows: Iterator[tuple[Cell, ...]], path: str) -> int:
    """One worksheet in constant-memory mode, every cell a value (text stays text, even when
    it looks like a formula, a number or a link); the number of rows written."""
    workbook = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
            "tmpdir": os.path.dirname(path),
        },
    )
    try:
        sheet = workbook.add_worksheet("watch")
        for column, name in enumerate(HEADER):
            sheet.write_string(0, column, name)
        count = 0
        for count, row in enumerate(rows, start=1):
            if count > XLSX_MAX_ROWS:
                raise InvalidParameter(
                    f"more than {XLSX_MAX_ROWS:,} rows do not fit in one XLSX worksheet; "
                    "export as csv, or narrow the filters"
                )
            for column, cell in enumerate(row):
                if isinstance(cell, bool):
                    sheet.write_boolean(count, column, cell)
                elif isinstance(cell, int):
                    sheet.write_number(count, column, cell)
                else:
                    sheet.write_string(count, column, cell)
    finally:
        workbook.close()
    return count


def export_file(
    conn: Connection,
    tenant_id: int,
    tenant_threshold: int,
    query: ReportQuery,
    file_format: ExportFormat,
    only_asset_id: str | None = None,
) -> IO[bytes]:
    """The whole export (of ``only_asset_id``'s rows, when given) in an open temporary file,
    at its start; the file is already unlinked (it goes away when closed)."""
    rows = iter_rows(conn, tenant_id, tenant_threshold, query, only_asset_id)
    directory = tempfile.mkdtemp(prefix="vodwatch-export-")
    path = os.path.join(directory, f"export.{file_format}")
    try:
        if file_format == "csv":
            with open(path, "w", encoding="utf-8", newline="") as out:
                write_csv(rows, out)
        else:
            write_xlsx(rows, path)
        result: IO[bytes] = open(path, "rb")  # noqa: SIM115 - the caller streams and closes it
    finally:
        if os.path.exists(path):
            os.unlink(path)
        for leftover in os.listdir(directory):  # xlsxwriter's own temporary files
            os.unlink(os.path.join(directory, leftover))
        os.rmdir(directory)
    return result


def parse_format(value: object) -> ExportFormat:
    for known in FORMATS:
        if value == known:
            return known
    raise InvalidParameter(f"format must be csv or xlsx, got {value!r}")
