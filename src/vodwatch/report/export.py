"""``GET /vod/webapi/statistics/vod/watch/export``: every row of the seed endpoint as one file,
CSV (UTF-8 with a BOM, RFC 4180) or XLSX (SPEC §9).

The file is written to a temporary file first, a chunk of rows at a time, inside one read of
the database: memory stays flat whatever the row count, the read ends before the first byte is
sent (a slow download holds no connection), and an error before it is the usual JSON answer.
The rows come from one statement read as it goes (``store.reports.stream_visits``), not from
the seed endpoint's pages: no count and no OFFSET per chunk, each row's cells computed once.
"""

import csv
import os
import tempfile
from collections.abc import Generator, Iterable
from typing import IO, Literal

import xlsxwriter
from sqlalchemy import Connection

from vodwatch.attention import Defaults, is_completed_by
from vodwatch.errors import InvalidParameter
from vodwatch.formats import format_visit_radio, format_visit_time
from vodwatch.intervals import IntervalSet
from vodwatch.report.insights import is_completed
from vodwatch.report.params import ReportQuery
from vodwatch.store.catalog import stored_rules
from vodwatch.store.reports import StreamRow, stream_viewer_videos, stream_visits

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
# Rows read, formatted and written at a time (and the pairs whose coverage one query reads).
# Few enough that a chunk's objects are freed before the garbage collector's youngest
# generation fills (700 objects): with 5,000, full collections took a third of the time.
CHUNK_ROWS = 200
WRITE_BUFFER = 1 << 20  # bytes of CSV written to the file at a time
XLSX_MAX_ROWS = 1_048_576 - 1  # a worksheet's rows, less the header
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# userId, userName, assetId, videoTitle, visitTime, visitRadio: text; startTime, watchTimeMs,
# coveredMs: numbers; completed.
ExportRow = tuple[str, str, str, str, str, str, int, int, int, bool]


def iter_chunks(
    conn: Connection,
    tenant_id: int,
    defaults: Defaults,
    query: ReportQuery,
    only_asset_id: str | None = None,
) -> Generator[list[ExportRow], None, None]:
    """Every row the seed endpoint pages through for ``query``, in its order, ``CHUNK_ROWS``
    at a time (fewer when ``only_asset_id`` drops some): only those of ``only_asset_id`` when
    given (``videoInfo`` also matches titles that contain it)."""
    stream = stream_visits if query.group_by == "visit" else stream_viewer_videos
    for rows in stream(conn, tenant_id, query, CHUNK_ROWS):
        yield [
            export_row(row, defaults)
            for row in rows
            if only_asset_id is None or row.asset_id == only_asset_id
        ]


def export_row(row: StreamRow, defaults: Defaults) -> ExportRow:
    """One row: the seed endpoint's six fields as ``render_row`` formats them, then startTime
    (unix s), watchTimeMs, coveredMs and whether the row is complete under the video's rules
    (SPEC §10: its counted coverage reaches the threshold and every required range)."""
    (
        user_id,
        user_name,
        asset_id,
        title,
        duration_ms,
        threshold,
        watch_ms,
        coverage,
        started,
        attention,
        rule_columns,
    ) = row
    covered = covered_within(coverage, duration_ms)
    if rule_columns == (None, None, None) and defaults.is_plain and not attention:
        completed = is_completed(
            covered, duration_ms, defaults.threshold if threshold is None else threshold
        )
    else:
        rules = stored_rules(defaults, threshold, *rule_columns)
        completed = is_completed_by(coverage, attention, duration_ms, rules)
    return (
        user_id,
        user_name,
        asset_id,
        title,
        format_visit_time(watch_ms),
        format_visit_radio(covered, duration_ms),
        started // 1000,
        watch_ms,
        covered,
        completed,
    )


def covered_within(coverage: IntervalSet, duration_ms: int | None) -> int:
    """``report.page.covered_ms``: the length of a normal set inside ``[0, D)``, 0 when ``D``
    is unknown; in one pass, without building the clamped set (a third of the cost)."""
    if not duration_ms:
        return 0
    covered = 0
    for start, end in coverage:
        if start < duration_ms and end > 0:
            covered += (end if end < duration_ms else duration_ms) - (start if start > 0 else 0)
    return covered


def guard_formula(cell: str) -> str:
    """A text cell a spreadsheet would read as a formula gets a leading ``'``."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def write_csv(chunks: Iterable[list[ExportRow]], out: IO[str]) -> int:
    """CSV with a BOM and CRLF line ends; the number of rows written."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    count = 0
    for chunk in chunks:
        # Only the first four cells are free text: visitTime and visitRadio begin with a
        # digit, the others are numbers and a boolean.
        writer.writerows(
            (
                guard_formula(user_id),
                guard_formula(user_name),
                guard_formula(asset_id),
                guard_formula(title),
                visit_time,
                visit_radio,
                start_time,
                watch_ms,
                covered_ms,
                "true" if completed else "false",
            )
            for (
                user_id,
                user_name,
                asset_id,
                title,
                visit_time,
                visit_radio,
                start_time,
                watch_ms,
                covered_ms,
                completed,
            ) in chunk
        )
        count += len(chunk)
    return count


def write_xlsx(chunks: Iterable[list[ExportRow]], path: str) -> int:
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
        # The typed writers, called directly: write() or write_row() would find each
        # cell's type again, and every column's type is known.
        text, number, boolean = sheet.write_string, sheet.write_number, sheet.write_boolean
        count = 0
        for chunk in chunks:
            if count + len(chunk) > XLSX_MAX_ROWS:
                raise InvalidParameter(
                    f"more than {XLSX_MAX_ROWS:,} rows do not fit in one XLSX worksheet; "
                    "export as csv, or narrow the filters"
                )
            for row_number, row in enumerate(chunk, start=count + 1):
                for column in (0, 1, 2, 3, 4, 5):
                    text(row_number, column, row[column])
                number(row_number, 6, row[6])
                number(row_number, 7, row[7])
                number(row_number, 8, row[8])
                boolean(row_number, 9, row[9])
            count += len(chunk)
    finally:
        workbook.close()
    return count


def export_file(
    conn: Connection,
    tenant_id: int,
    defaults: Defaults,
    query: ReportQuery,
    file_format: ExportFormat,
    only_asset_id: str | None = None,
) -> IO[bytes]:
    """The whole export (of ``only_asset_id``'s rows, when given) in an open temporary file,
    at its start; the file is already unlinked (it goes away when closed)."""
    chunks = iter_chunks(conn, tenant_id, defaults, query, only_asset_id)
    directory = tempfile.mkdtemp(prefix="vodwatch-export-")
    path = os.path.join(directory, f"export.{file_format}")
    try:
        if file_format == "csv":
            with open(path, "w", encoding="utf-8", newline="", buffering=WRITE_BUFFER) as out:
                write_csv(chunks, out)
        else:
            write_xlsx(chunks, path)
        result: IO[bytes] = open(path, "rb")  # noqa: SIM115 - the caller streams and closes it
    finally:
        chunks.close()  # a read cut short by an error ends here, its cursor closed
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
