"""Load a generated dataset straight into a vodwatch database (not through HTTP), fast:
``executemany`` on SQLite, ``COPY`` on PostgreSQL. The rows are what ingest would have
written for the same visits: the visits, and their per viewer and video rollup."""

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, text

from bench.viewing import Tenant, Visit, asset_id, video_duration_ms, video_title
from vodwatch.intervals import IntervalSet, coverage_end, measure, normalize, union
from vodwatch.store.database import Database
from vodwatch.store.schema import assets, tenants, viewer_videos, viewers, visits

Progress = Callable[[int], None]
CHUNK = 20_000
VISIT_COLUMNS = [column.name for column in visits.columns]
PAIR_COLUMNS = [column.name for column in viewer_videos.columns]


@dataclass(frozen=True)
class LoadedDataset:
    tenants: list[Tenant]
    visits: int
    seconds: float
    largest_tenant: int  # tenant_id with the most visits
    visits_per_tenant: dict[int, int]


def secret_of(tenant_id: int) -> str:
    return f"bench-secret-{tenant_id:03d}-{'x' * 32}"


def authkey_of(tenant_id: int) -> str:
    return f"tk_bench{tenant_id:03d}"


def visit_row(visit: Visit) -> dict[str, Any]:
    coverage = normalize(visit.segments)
    return {
        "tenant_id": visit.tenant_id,
        "session_id": visit.session_id,
        "user_id": visit.user_id,
        "asset_id": visit.asset_id,
        "started_at_ms": visit.started_at_ms,
        "last_seen_at_ms": visit.started_at_ms + visit.watch_ms,
        "watch_ms": visit.watch_ms,
        "coverage": json.dumps(coverage, separators=(",", ":")),
        "covered_ms": measure(coverage),
        "seqs": "[[1,2]]",
        "beacon_count": 1,
        "position_ms": coverage[-1][1] if coverage else 0,
        "position_seq": 1,
        "is_ended": False,
        "attempt_id": "",
        "attention": "[]",
        "refused_ms": 0,
    }


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_dataset(
    db: Database,
    tenant_list: list[Tenant],
    visit_iter: Iterable[Visit],
    progress: Progress | None = None,
) -> LoadedDataset:
    """Tenants, every tenant's catalog and viewers, then the visits; ANALYZE at the end."""
    started = time.perf_counter()
    box = db.secret_box
    with db.write() as conn:
        conn.execute(
            insert(tenants),
            [
                {
                    "tenant_id": t.tenant_id,
                    "name": t.name,
                    "authkey": authkey_of(t.tenant_id),
                    "secret": box.encrypt(authkey_of(t.tenant_id), secret_of(t.tenant_id)),
                    "allowed_origins": '["*"]',
                    "created_at_ms": 0,
                }
                for t in tenant_list
            ],
        )
        for chunk in _chunks(_asset_rows(tenant_list), CHUNK):
            conn.execute(insert(assets), chunk)
        for chunk in _chunks(_viewer_rows(tenant_list), CHUNK):
            conn.execute(insert(viewers), chunk)
    counts: dict[int, int] = {}
    pairs: dict[tuple[int, str, str], _Pair] = {}
    total = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal total
        for visit in visit_iter:
            counts[visit.tenant_id] = counts.get(visit.tenant_id, 0) + 1
            total += 1
            row = visit_row(visit)
            key = (visit.tenant_id, visit.user_id, visit.asset_id)
            pair = pairs.get(key)
            if pair is None:
                pairs[key] = _Pair(row)
            else:
                pair.add(row)
            yield row

    for chunk in _chunks(counted(), CHUNK):
        _insert(db, "visits", chunk)
        if progress:
            progress(len(chunk))
    for chunk in _chunks((pair.row(key) for key, pair in sorted(pairs.items())), CHUNK):
        _insert(db, "viewer_videos", chunk)
    if not db.is_sqlite:  # the ids were given: move the sequence past them for new tenants
        with db.write() as conn:
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('tenants', 'tenant_id'), "
                    "(SELECT max(tenant_id) FROM tenants))"
                )
            )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE"))
    return LoadedDataset(
        tenants=tenant_list,
        visits=total,
        seconds=time.perf_counter() - started,
        largest_tenant=max(counts, key=lambda tenant_id: counts[tenant_id]),
        visits_per_tenant=counts,
    )


class _Pair:
    """One viewer and video: its visits summed as ingest's rollup keeps them."""

    __slots__ = ("coverage", "first", "last_seen", "latest", "visits", "watch")

    def __init__(self, row: dict[str, Any]) -> None:
        self.first = self.latest = row["started_at_ms"]
        self.last_seen, self.watch, self.visits = row["last_seen_at_ms"], row["watch_ms"], 1
        self.coverage: IntervalSet = _spans(row["coverage"])

    def add(self, row: dict[str, Any]) -> None:
        self.first = min(self.first, row["started_at_ms"])
        self.latest = max(self.latest, row["started_at_ms"])
        self.last_seen = max(self.last_seen, row["last_seen_at_ms"])
        self.watch += row["watch_ms"]
        self.visits += 1
        self.coverage = union(self.coverage, _spans(row["coverage"]))

    def row(self, key: tuple[int, str, str]) -> dict[str, Any]:
        return {
            "tenant_id": key[0],
            "user_id": key[1],
            "asset_id": key[2],
            "first_started_at_ms": self.first,
            "latest_started_at_ms": self.latest,
            "last_seen_at_ms": self.last_seen,
            "watch_ms": self.watch,
            "coverage": json.dumps(self.coverage, separators=(",", ":")),
            "covered_ms": measure(self.coverage),
            "coverage_end_ms": coverage_end(self.coverage),
            "visit_count": self.visits,
            # Loaded as history (as server beacons would bring it): no player clock yet.
            "player_since_ms": None,
            "player_watch_ms": 0,
            "player_gain_ms": 0,
            "attention": "[]",
        }


def _spans(coverage: str) -> IntervalSet:
    return [(start, end) for start, end in json.loads(coverage)]


def _insert(db: Database, table: str, rows: list[dict[str, Any]]) -> None:
    with db.write() as conn:
        if db.is_sqlite:
            conn.execute(insert(visits if table == "visits" else viewer_videos), rows)
            return
        columns = VISIT_COLUMNS if table == "visits" else PAIR_COLUMNS
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[column] for column in columns])


def _asset_rows(tenant_list: list[Tenant]) -> Iterator[dict[str, Any]]:
    for tenant in tenant_list:
        for video in range(tenant.videos):
            title = video_title(tenant.tenant_id, video)
            yield {
                "tenant_id": tenant.tenant_id,
                "asset_id": asset_id(tenant.tenant_id, video),
                "title": title,
                "title_folded": title.casefold(),
                "duration_ms": video_duration_ms(tenant.tenant_id, video),
                "is_cataloged": True,
                "created_at_ms": 0,
                "updated_at_ms": 0,
            }


def _viewer_rows(tenant_list: list[Tenant]) -> Iterator[dict[str, Any]]:
    for tenant in tenant_list:
        for viewer in range(tenant.viewers):
            yield {
                "tenant_id": tenant.tenant_id,
                "user_id": f"u{tenant.tenant_id}-{viewer}",
                "user_name": f"Viewer {viewer}",
                "name_at_ms": 0,
            }
