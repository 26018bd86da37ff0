"""Peer: the strongest do-it-yourself baseline, raw heartbeat rows in PostgreSQL.

What a team without vodwatch would build: keep every heartbeat as it arrives, and answer
"completeness per viewer for one video" entirely in SQL.

Layout: one row per played segment (``int8range``), keyed by (session, heartbeat seq, part), so
a resent heartbeat cannot count twice; the heartbeat's played time sits on its first part. The
index is (asset, user) covering the other columns, so the question is an index-only scan already
grouped by viewer. It exists before the COPY, as it would in a live system that receives
heartbeats all day, so the load rate includes maintaining it and the primary key.

Two ways to compute the coverage in SQL are kept (``query=``), both exact:

- ``range_agg``: PostgreSQL 14+ unions each viewer's ranges, then sums the union's lengths;
- ``window``: sort each viewer's ranges by start and add what each one reaches past the running
  maximum of the ends before it (the usual gaps-and-islands shortcut).

``range_agg`` is the default because it was the faster of the two here (PostgreSQL 15, 2 CPUs;
p50 of 20 runs, the most-viewed video of ``try_peers``): 8.0 ms against 12.8 ms at 1,000 visits
(16,756 heartbeats of the video, 144 viewers), 154-163 ms against 224-232 ms at 20,000 visits
(336,916 heartbeats of the video, 200 viewers). ``try_peers --diy-query window`` measures the
other.
"""

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from bench.peers.timing import time_runs
from bench.viewing import Heartbeat

Progress = Callable[[int], None]

SCHEMA = "bench_diy"
QUERY_RUNS = 20
PROGRESS_EVERY = 10_000  # heartbeats

DDL = """
CREATE TABLE played (
    session_id  text      NOT NULL,
    seq         integer   NOT NULL,
    part        smallint  NOT NULL,  -- position of the segment in its heartbeat
    user_id     text      NOT NULL,
    asset_id    text      NOT NULL,
    at_ms       bigint    NOT NULL,  -- when the heartbeat was sent
    played_ms   integer   NOT NULL,  -- the heartbeat's played time on part 0, else 0
    duration_ms integer   NOT NULL,  -- of the video, as the player reported it
    media       int8range NOT NULL,  -- media milliseconds played, [start, end)
    PRIMARY KEY (session_id, seq, part)
);
CREATE INDEX played_by_asset ON played (asset_id, user_id) INCLUDE (media, played_ms, duration_ms);
"""

COLUMNS = "session_id, seq, part, user_id, asset_id, at_ms, played_ms, duration_ms, media"

# Completeness per viewer for one video: the union of every range the viewer played, as a
# percent of the video (floor: integer division), and the summed played time.
QUERIES = {
    "range_agg": """
SELECT user_id,
       (100 * (SELECT coalesce(sum(upper(r) - lower(r)), 0)::bigint  -- sum(int8) is numeric
                 FROM unnest(range_agg(media)) AS r)
            / max(duration_ms))::integer AS percent,
       sum(played_ms)::bigint AS watch_ms
  FROM played
 WHERE asset_id = %s
 GROUP BY user_id
""",
    "window": """
SELECT user_id,
       (100 * sum(greatest(0, hi - greatest(lo, coalesce(reach, lo))))::bigint
            / max(duration_ms))::integer AS percent,
       sum(played_ms)::bigint AS watch_ms
  FROM (SELECT user_id, lower(media) AS lo, upper(media) AS hi, played_ms, duration_ms,
               max(upper(media)) OVER (PARTITION BY user_id ORDER BY lower(media), upper(media)
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
          FROM played
         WHERE asset_id = %s) AS ranges
 GROUP BY user_id
""",
}

NOTES = (
    "Raw heartbeats in PostgreSQL, one row per played segment (int8range), primary key "
    "(session, seq, part), covering index (asset_id, user_id) INCLUDE (media, played_ms, "
    "duration_ms) created before the load; loaded with one COPY in one transaction, then "
    "VACUUM ANALYZE (not counted in ingest); coverage computed in SQL by {query}; the query "
    "is prepared and timed end to end (execute and fetch into a dict), warm cache, on a "
    "private schema dropped afterwards. Measured here: range_agg and the window-function "
    "merge answer the same; range_agg was ~1.5x faster (figures in the "
    "bench/peers/diy_postgres.py docstring)."
)


def run_diy_postgres(
    beats: list[Heartbeat],
    asset_id: str,
    pg_url: str,
    progress: Progress | None = None,
    *,
    query: str = "range_agg",
    query_runs: int = QUERY_RUNS,
) -> dict[str, Any]:
    """Load ``beats`` into a fresh schema ``bench_diy`` with COPY, time "completeness per
    viewer" for ``asset_id`` ``query_runs`` times, then drop the schema.

    ``progress(n)`` is called as heartbeats are copied, n being how many more (they add up to
    ``len(beats)``). ``query`` picks the SQL: ``"range_agg"`` or ``"window"``.

    The result has the keys every peer has: ``available``, ``peer``, ``backend``, ``notes``,
    ``heartbeats_offered``, ``heartbeats``, ``video_heartbeats``, ``viewers``,
    ``ingest_seconds``, ``ingest_per_second`` (heartbeats/s), ``store_bytes``,
    ``query_runs``, ``query_ms_p50``, ``query_ms_p99`` and ``completeness`` (user →
    ``{"percent", "watch_ms"}``, not JSON-friendly in size); and its own: ``rows``,
    ``rows_per_second``, ``analyze_ms``, ``query``, ``version``. Never raises because
    PostgreSQL is unreachable or too old: that comes back as ``{"available": False, "why":
    ...}`` with ``peer``, ``backend`` and ``notes``.
    """
    if query not in QUERIES:
        raise ValueError(f"query must be one of {sorted(QUERIES)}, not {query!r}")
    unavailable = {"available": False, "peer": "diy_postgres", "backend": "PostgreSQL",
                   "notes": NOTES.format(query=query)}  # fmt: skip
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            version = conn.info.server_version
            if version < 140000:
                return {**unavailable, "why": f"range_agg needs PostgreSQL 14+, not {version}"}
            try:
                _create_schema(conn)
                return _measure(conn, beats, asset_id, progress, query, query_runs)
            finally:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_schema()))
    except psycopg.OperationalError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return {**unavailable, "why": f"PostgreSQL: {first_line[:300]}"}


def _measure(
    conn: psycopg.Connection[Any],
    beats: list[Heartbeat],
    asset_id: str,
    progress: Progress | None,
    query: str,
    query_runs: int,
) -> dict[str, Any]:
    rows = list(segment_rows(beats))  # built first: the clock measures PostgreSQL
    seconds = copy_rows(conn, rows, progress)
    started = time.perf_counter()
    conn.execute("VACUUM ANALYZE played")  # statistics, and the visibility map for index-only
    analyze_ms = round((time.perf_counter() - started) * 1000, 2)
    size = conn.execute("SELECT pg_total_relation_size('played')").fetchone()
    timings, completeness = time_runs(query_runs, lambda: completeness_of(conn, asset_id, query))
    version = conn.info.parameter_status("server_version") or str(conn.info.server_version)
    return {
        "available": True,
        "peer": "diy_postgres",
        "backend": f"PostgreSQL {version.split()[0]}",
        "notes": NOTES.format(query=query),
        "version": version,
        "query": query,
        "heartbeats_offered": len(beats),
        "heartbeats": len(beats),
        "video_heartbeats": sum(1 for beat in beats if beat.asset_id == asset_id),
        "viewers": len(completeness),
        "rows": len(rows),
        "ingest_seconds": round(seconds, 3),
        "ingest_per_second": round(len(beats) / seconds, 1),
        "rows_per_second": round(len(rows) / seconds, 1),
        "analyze_ms": analyze_ms,  # VACUUM ANALYZE after the load, not in ingest_seconds
        "store_bytes": size[0] if size else 0,  # table + its indexes
        **timings,
        "completeness": completeness,
    }


def _schema() -> sql.Identifier:
    return sql.Identifier(SCHEMA)


def _create_schema(conn: psycopg.Connection[Any]) -> None:
    """A fresh schema (a crashed earlier run may have left one) holding only our table."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(_schema()))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(_schema()))
    conn.execute(sql.SQL("SET search_path TO {}").format(_schema()))
    conn.execute(DDL)


Row = tuple[str, int, int, str, str, int, int, int, str]


def segment_rows(beats: list[Heartbeat]) -> Iterator[Row]:
    """One row per played segment, ``media`` in range literal form ``[start,end)``."""
    for beat in beats:
        for part, (start, end) in enumerate(beat.segments):
            played = beat.played_ms if part == 0 else 0
            yield (beat.session_id, beat.seq, part, beat.user_id, beat.asset_id, beat.at_ms,
                   played, beat.duration_ms, f"[{start},{end})")  # fmt: skip


def copy_rows(conn: psycopg.Connection[Any], rows: list[Row], progress: Progress | None) -> float:
    """COPY every row in one transaction; the seconds it took, commit included."""
    started = time.perf_counter()
    beats_done = 0
    statement = f"COPY played ({COLUMNS}) FROM STDIN"
    with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            if row[2] == 0:  # the first part of a heartbeat
                beats_done += 1
                if progress and beats_done % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
    seconds = time.perf_counter() - started
    if progress and beats_done % PROGRESS_EVERY:
        progress(beats_done % PROGRESS_EVERY)
    return seconds


def completeness_of(
    conn: psycopg.Connection[Any], asset_id: str, query: str = "range_agg"
) -> dict[str, dict[str, int]]:
    """Per viewer of ``asset_id``: percent covered (floor) and watch time in ms. Prepared on
    the server, as a service would."""
    rows = conn.execute(QUERIES[query], (asset_id,), prepare=True).fetchall()
    return {user: {"percent": percent, "watch_ms": watch} for user, percent, watch in rows}
