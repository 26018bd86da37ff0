"""Ingest through HTTP, as users run it, beside its two floors.

- single player beacons, one per request, against ``vodwatch serve`` (one worker per core), and
  the *HTTP floor*: the same app and server stack answering an endpoint that does no work;
- batches of 100 server beacons per request, and the *storage floor*: the same rows inserted
  with plain ``executemany`` into the same database, one transaction per batch.

Each server runs alone on the machine while its load runs (``bench.loadgen``, a separate
process, 64 connections by default); the load generator shares the machine's cores with it,
as it does with the floor it is compared with.
"""

import contextlib
import itertools
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, insert

from bench.dataset import load_dataset
from bench.viewing import Heartbeat, generate_visits, heartbeats, make_tenants
from vodwatch.playback_token import mint_playback_token
from vodwatch.store.catalog import put_asset
from vodwatch.store.database import Database
from vodwatch.store.migrate import upgrade
from vodwatch.store.tenants import Tenant, create_tenant

ROOT = Path(__file__).resolve().parents[1]
VODWATCH = str(Path(sys.executable).with_name("vodwatch"))
BEACON_PATH = "/vod/webapi/beacon"
BATCH_SIZE = 100
PLAYER_SESSIONS = 20_000
PLAYER_TOKENS = 500  # viewers; at 600 beacons a minute each (the default limit): 5,000/s in all

Progress = Callable[[float], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database(backend: str, workdir: Path, name: str, pg_url: str) -> str:
    """The URL of a new, empty database for one run: a file, or a PostgreSQL database."""
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        for stale in workdir.glob(f"{name}.db*"):
            stale.unlink()
        return f"sqlite:///{path}"
    admin = create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(backend: str, url: str, pg_url: str) -> None:
    if backend == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        for stale in path.parent.glob(f"{path.name}*"):
            stale.unlink()
        return
    admin = create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    admin.dispose()


@dataclass(frozen=True)
class Stage:
    """A database with one tenant and its catalog, ready for load."""

    url: str
    tenant: Tenant
    tokens: list[str]  # playback tokens, one per viewer and video


def prepare(url: str, videos: int = 100, preload_visits: int = 0) -> Stage:
    """A new tenant with ``videos`` videos of an hour, in a database that already holds
    ``preload_visits`` visits of other tenants (analyzed, as a service in use would have it:
    PostgreSQL plans its lookups on an empty, never analyzed table badly)."""
    db = Database(url)
    try:
        upgrade(db)
        if preload_visits:
            tenants = make_tenants(20, 20_000, 2_000, seed=3)
            load_dataset(db, tenants, generate_visits(tenants, preload_visits, seed=4))
        with db.write() as conn:
            tenant = create_tenant(conn, db.secret_box, "bench", int(time.time() * 1000))
            for n in range(videos):
                put_asset(conn, tenant.tenant_id, f"v{n:04d}", f"Lesson {n}", 3_600_000, 0)
    finally:
        db.dispose()
    tokens = [
        mint_playback_token(
            tenant.authkey, tenant.secret, f"viewer{n}", f"v{n % videos:04d}", ttl_seconds=86_400
        )
        for n in range(PLAYER_TOKENS)
    ]
    return Stage(url, tenant, tokens)


@contextlib.contextmanager
def running(
    command: list[str], port: int, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator["psutil.Process"]:
    """A server process (its own process group) until the block ends; waits for /healthz."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command,
        stdout=out,
        stderr=out,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited with {process.returncode}; see {log}")
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} did not answer on port {port}; see {log}")
            time.sleep(0.2)
        yield psutil.Process(process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def vodwatch_server(url: str, port: int, workers: int, log: Path) -> Any:
    return running(
        [
            VODWATCH,
            "serve",
            "--database-url",
            url,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            os.environ.get("BENCH_LOG_LEVEL", "warning"),
        ],
        port,
        log=log,
    )


def floor_server(url: str, port: int, workers: int, log: Path) -> Any:
    return running(
        [sys.executable, "-m", "bench.floor_app", "--port", str(port), "--workers", str(workers)],
        port,
        env={"VODWATCH_DATABASE_URL": url},
        log=log,
    )


def loadgen(
    port: int,
    plan: dict[str, Any],
    workdir: Path,
    connections: int,
    seconds: float,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``bench.loadgen`` for ``seconds``; its JSON result."""
    plan_path = workdir / "plan.json"
    plan_path.write_text(json.dumps(plan))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--url",
            f"http://127.0.0.1:{port}",
            "--plan",
            str(plan_path),
            "--connections",
            str(connections),
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    started = time.monotonic()
    while process.poll() is None:
        time.sleep(0.5)
        if progress:
            progress(min(seconds, time.monotonic() - started))
    out = process.stdout.read() if process.stdout else b""
    if process.returncode != 0:
        raise RuntimeError(f"loadgen failed ({process.returncode})")
    return dict(json.loads(out))


def player_plan(stage: Stage, path: str, run: str) -> dict[str, Any]:
    return {
        "mode": "player",
        "path": path,
        "tokens": stage.tokens,
        "sessions": PLAYER_SESSIONS,
        "run": run,
    }


def server_batches(stage: Stage, count: int, workdir: Path) -> tuple[Path, list[list[Heartbeat]]]:
    """``count`` batches of 100 server beacons (heartbeats of generated visits, in the order a
    backend would forward them), one JSON array per line of a file."""
    tenants = make_tenants(1, 5_000, 100)
    beats: list[Heartbeat] = []
    for visit in generate_visits(tenants, count * BATCH_SIZE // 8 + 100, seed=7):
        beats.extend(heartbeats(visit))
        if len(beats) >= count * BATCH_SIZE:
            break
    beats = sorted(beats[: count * BATCH_SIZE], key=lambda beat: beat.at_ms)
    batches = [beats[n : n + BATCH_SIZE] for n in range(0, len(beats), BATCH_SIZE)]
    path = workdir / "batches.jsonl"
    with path.open("w") as out:
        for batch in batches:
            out.write(json.dumps([server_beacon(beat) for beat in batch], separators=(",", ":")))
            out.write("\n")
    return path, batches


def server_beacon(beat: Heartbeat) -> dict[str, Any]:
    number = int(beat.asset_id[-6:]) % 100
    return {
        "sessionId": beat.session_id,
        "seq": beat.seq,
        "userId": beat.user_id,
        "assetId": f"v{number:04d}",
        "startedAt": beat.at_ms // 1000,
        "segments": [[start / 1000, end / 1000] for start, end in beat.segments],
        "playedMs": beat.played_ms,
    }


def server_plan(stage: Stage, batches_file: Path) -> dict[str, Any]:
    return {
        "mode": "server",
        "path": BEACON_PATH,
        "authkey": stage.tenant.authkey,
        "secret": stage.tenant.secret,
        "batches_file": str(batches_file),
    }


def _fresh_rounds(batches: list[list[dict[str, Any]]], name: str) -> Iterator[list[dict[str, Any]]]:
    """The batches over and over, each round with new session ids, as the load generator
    sends them."""
    for round_ in itertools.count():
        for batch in batches:
            yield [{**row, "session_id": f"{name}r{round_}{row['session_id']}"} for row in batch]


_floor_metadata = MetaData()
FLOOR_ROWS = Table(
    "bench_storage_floor",
    _floor_metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("session_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("asset_id", String(128), nullable=False),
    Column("started_at_ms", Integer, nullable=False),
    Column("segments", Text, nullable=False),
    Column("played_ms", Integer, nullable=False),
)


def storage_floor(
    url: str,
    batches: list[list[Heartbeat]],
    seconds: float,
    progress: Progress | None = None,
    writers: int = 1,
) -> dict[str, Any]:
    """The beacons of ``batches`` inserted as plain rows, one ``executemany`` and one commit
    per batch, through the same driver and settings as the service, for ``seconds``, from
    ``writers`` processes with a connection each (PostgreSQL takes concurrent writers, as from
    the service's worker processes; a SQLite file takes one at a time)."""
    db = Database(url)
    try:
        with db.write() as conn:
            FLOOR_ROWS.create(conn, checkfirst=True)
        rows = [[_floor_row(beat) for beat in batch] for batch in batches]
        started = time.perf_counter()
        with ProcessPoolExecutor(writers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = [
                pool.submit(_insert_rounds, url, rows[writer::writers], f"w{writer}", seconds)
                for writer in range(writers)
            ]
            while not all(future.done() for future in done):
                time.sleep(0.5)
                if progress:
                    progress(min(seconds, time.perf_counter() - started))
            inserted = sum(future.result() for future in done)
        elapsed = time.perf_counter() - started
        with db.write() as conn:
            FLOOR_ROWS.drop(conn)
    finally:
        db.dispose()
    return {
        "rows": inserted,
        "writers": writers,
        "seconds": round(elapsed, 3),
        "beacons_per_s": round(inserted / elapsed, 1),
    }


def _floor_row(beat: Heartbeat) -> dict[str, Any]:
    return {
        "tenant_id": 1,
        "session_id": beat.session_id,
        "seq": beat.seq,
        "user_id": beat.user_id,
        "asset_id": beat.asset_id,
        "started_at_ms": beat.at_ms // 1000,
        "segments": json.dumps([[s / 1000, e / 1000] for s, e in beat.segments]),
        "played_ms": beat.played_ms,
    }


def _insert_rounds(url: str, rows: list[list[dict[str, Any]]], name: str, seconds: float) -> int:
    """In a writer process: insert batch after batch (new session ids each round) for
    ``seconds``; how many rows."""
    db = Database(url)
    inserted, started = 0, time.perf_counter()
    try:
        for batch in _fresh_rounds(rows, name):
            if time.perf_counter() - started >= seconds:
                break
            with db.write() as conn:
                conn.execute(insert(FLOOR_ROWS), batch)
            inserted += len(batch)
    finally:
        db.dispose()
    return inserted
