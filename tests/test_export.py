"""The export read a few rows at a time (``CHUNK_ROWS`` made 3): still the seed endpoint's
pages concatenated, visits that started in the same millisecond included, and one snapshot
however long the read takes."""

import io
from typing import Any

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FakeClock
from tests.helpers import new_session_id, report_rows, server_beacon
from tests.test_insights import csv_rows, export
from vodwatch.attention import Defaults
from vodwatch.client import VodwatchClient
from vodwatch.intervals import clamp, measure, normalize
from vodwatch.report import export as export_module
from vodwatch.report.export import HEADER, covered_within, iter_chunks
from vodwatch.report.params import ReportQuery
from vodwatch.store.database import Database
from vodwatch.store.tenants import Tenant

DURATIONS = {"a1": 100, "a2": 50, "a3": 10}  # seconds
# (viewer, video, started this many seconds ago, seconds watched): most start in the same
# second as others, so rows tie on startTime (visits) and on the latest start (pairs).
VISITS = [
    ("u1", "a1", 30, 95),
    ("u2", "a1", 30, 40),
    ("u3", "a2", 30, 50),
    ("u1", "a2", 30, 10),
    ("u2", "a3", 20, 10),
    ("u3", "a3", 20, 4),
    ("u1", "a1", 20, 20),
    ("u3", "a1", 20, 100),
    ("u2", "a2", 10, 25),
    ("u1", "a3", 10, 9),
    ("u3", "a2", 10, 5),
    ("u2", "a1", 5, 60),
]


def fill(client: VodwatchClient, clock: FakeClock) -> int:
    """Store ``VISITS``; the time they are counted back from (unix s)."""
    now = int(clock())
    for asset, duration in DURATIONS.items():
        client.put_media(asset, f"Video {asset}", duration)
    for user, asset, ago, seconds in VISITS:
        client.send_beacons(
            server_beacon(
                new_session_id(),
                1,
                user_id=user,
                asset_id=asset,
                userName=f"Name of {user}",
                startedAt=now - ago,
                segments=[[0, seconds]],
                played_ms=seconds * 1000,
            )
        )
    return now


def sheet_rows(content: bytes) -> list[list[str]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [
        ["true" if c is True else "false" if c is False else str(c) for c in line]
        for line in book.active.iter_rows(values_only=True)
    ]


@pytest.mark.parametrize("group_by", ["visit", "userVideo"])
@pytest.mark.parametrize("is_windowed", [False, True])
def test_an_export_of_many_chunks_is_the_seed_endpoints_pages(
    client: VodwatchClient,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    group_by: str,
    is_windowed: bool,
):
    now = fill(client, clock)
    # A time range leaves out the oldest visits: userVideo then groups the visits in range.
    window = {"startTime": now - 20, "endTime": now} if is_windowed else {}
    seed = report_rows(client, groupBy=group_by, pageSize=2, **window)
    assert len(seed) > 2 * 3  # more than two chunks
    assert len({row["startedAt"] for row in seed}) < len(seed)  # ties
    expected = [
        [
            *(row[name] for name in HEADER[:6]),
            str(row["startedAt"]),
            str(row["watchMs"]),
            str(row["coveredMs"]),
            "true" if int(row["visitRadio"][:-1]) >= 90 else "false",
        ]
        for row in seed
    ]
    monkeypatch.setattr(export_module, "CHUNK_ROWS", 3)
    rows = csv_rows(export(client, groupBy=group_by, **window))
    assert rows == [list(HEADER), *expected]
    xlsx = export(client, groupBy=group_by, format="xlsx", **window)
    assert sheet_rows(xlsx.content) == [list(HEADER), *expected]


def test_an_export_reads_one_snapshot(
    db: Database,
    tenant: Tenant,
    client: VodwatchClient,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
):
    now = fill(client, clock)
    monkeypatch.setattr(export_module, "CHUNK_ROWS", 3)
    with db.read() as conn:
        chunks = iter_chunks(conn, tenant.tenant_id, Defaults(90), ReportQuery())
        first = next(chunks)
        # A newer visit, committed while the export reads: the export does not see it, and
        # no row moves into a later chunk twice.
        client.send_beacons(
            server_beacon(
                new_session_id(), 1, user_id="u9", asset_id="a1", startedAt=now, segments=[[0, 1]]
            )
        )
        rows = [*first, *(row for chunk in chunks for row in chunk)]
    assert len(first) == 3
    assert [row[0] for row in rows].count("u9") == 0
    assert len(rows) == len(VISITS)
    assert len(report_rows(client)) == len(VISITS) + 1


def test_an_error_amid_the_read_is_the_json_answer(
    client: VodwatchClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    fill(client, clock)
    monkeypatch.setattr(export_module, "CHUNK_ROWS", 3)
    monkeypatch.setattr(export_module, "XLSX_MAX_ROWS", 4)  # refused in the second chunk
    answer = export(client, format="xlsx")
    assert answer.json()["result"] == 40010
    assert "do not fit in one XLSX worksheet" in answer.json()["msg"]
    assert len(csv_rows(export(client))) == len(VISITS) + 1  # the next export reads afresh


intervals = st.lists(st.tuples(st.integers(-50, 200), st.integers(0, 100)), max_size=6)


@given(pairs=intervals, duration=st.none() | st.integers(0, 150))
def test_covered_within_is_the_clamped_measure(pairs: Any, duration: int | None):
    coverage = normalize((start, start + length) for start, length in pairs)
    clamped = measure(clamp(coverage, 0, duration)) if duration else 0
    assert covered_within(coverage, duration) == clamped
