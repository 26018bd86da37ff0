"""Peer: the learning record store Ralph (PyPI ``ralph-malph``) with its ``fs`` backend.

The tool an xAPI shop would use today. The same viewing data goes in as xAPI video-profile
``played`` statements over its HTTP API, and "completeness per viewer for one video" comes out
the way an xAPI client has to get it: fetch every statement about the video (following the
LRS's ``more`` links), then compute the union of played segments per viewer on the client.

Why ``fs`` (see ``NOTES``): it is the only one of Ralph's LRS backends that runs here. Ralph
runs in its own virtualenv under ``workdir``, started as in production (uvicorn, one worker) by
``ralph_launcher.py``, which fixes two defects of the ``fs`` backend in-process (see there).

The ``fs`` backend reads its whole store for every request: each POST scans it for duplicate
statement ids, and each page of a GET scans it from the top to the previous page's last id. So
ingest slows down as the store grows (quadratic in total) and the query is a full scan per page.
Two choices keep that from dominating, both in the result's ``notes``:

- statements are posted in batches of 500, the chunk size Ralph's own LRS client
  (``ralph write --backend lrs``) uses; a player posting one statement per heartbeat would
  scan the store once per heartbeat;
- the server's page size (``RUNSERVER_MAX_SEARCH_HITS_COUNT``, 100 by default) is raised to
  10,000. At 1,000 visits (36,738 statements, 16,756 about the video) the query took 25.6 s
  with pages of 100, 4.2 s with 1,000 and 2.0 s in one page.

And ``max_statements`` (default 100,000) caps how many heartbeats Ralph gets;
``select_statements`` says which, and the result's ``subset`` says what was left out. Measured
here (2 CPUs): 36,738 statements took 14 s to ingest (7,700/s falling to 1,500/s) and the query
2.0 s; 129,872 took 144 s (5,000/s falling to 470/s) and the query 19.7 s. All the heartbeats
of 20,000 visits (~746k) would, extrapolating the quadratic, take well over an hour.
"""

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import orjson

from bench.peers import xapi
from bench.peers.timing import time_runs
from bench.viewing import Heartbeat

Progress = Callable[[int], None]

VERSION = "5.1.0"
# `ralph auth` needs requests, which no extra of ralph-malph installs.
REQUIREMENTS = (f"ralph-malph[lrs,cli]=={VERSION}", "requests==2.34.2")
LAUNCHER = Path(__file__).with_name("ralph_launcher.py")
USERNAME = "bench"
XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3"}
BATCH = 500  # statements per POST: Ralph's own LRS client's WRITE_CHUNK_SIZE
PAGE = 10_000  # statements per GET page; Ralph's default maximum is 100
MAX_STATEMENTS = 100_000  # ~1.5 min of ingest here, see the module's docstring
QUERY_RUNS = 5  # each is a few seconds at MAX_STATEMENTS
START_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 900.0

NOTES = (
    "Ralph {version} (ralph-malph) LRS with its fs backend (one JSON-lines file), under "
    "uvicorn with one worker, HTTP basic auth, in its own virtualenv; two fs defects patched "
    "in-process (writes in create mode fail on the second POST; activity filter never "
    "matches). fs because Ralph's other LRS backends cannot run here: Elasticsearch and "
    "MongoDB are not in Debian or on PyPI as servers, and Debian's clickhouse-server is "
    "18.16 (2018) while Ralph's ClickHouse backend needs DateTime64 and query parameters "
    "(ClickHouse 20+); Ralph's docs present fs as a backend for trying things out. fs scans "
    "the whole store on every request (duplicate check on POST, each GET page), so ingest "
    "slows as the store grows. Ingest: statements POSTed in batches of {batch} (Ralph's own "
    "LRS client chunk size) over {connections} connections. Query: GET "
    "/xAPI/statements?activity=<video> with the server's page size raised from 100 to {page}, "
    "following `more`, then the union of played-segments per viewer in Python; timed end to "
    "end."
)


class RalphUnavailable(Exception):
    """Ralph could not be installed, started or used here; the message says why, briefly."""


def run_ralph(
    beats: list[Heartbeat],
    asset_id: str,
    workdir: Path,
    progress: Progress | None = None,
    *,
    max_statements: int | None = MAX_STATEMENTS,
    batch: int = BATCH,
    page: int = PAGE,
    connections: int = 4,
    query_runs: int = QUERY_RUNS,
) -> dict[str, Any]:
    """Ingest ``beats`` (at most ``max_statements`` of them, chosen by ``select_statements``;
    ``None``: all) into a fresh Ralph store under ``workdir`` as one statement each, then time
    "completeness per viewer" for ``asset_id`` ``query_runs`` times.

    ``progress(n)`` is called as statements are stored, n being how many more heartbeats; they
    add up to the result's ``heartbeats``, which is less than ``len(beats)`` when capped.

    The result has the keys every peer has: ``available``, ``peer``, ``backend``, ``notes``,
    ``heartbeats_offered``, ``heartbeats``, ``video_heartbeats``, ``viewers``,
    ``ingest_seconds``, ``ingest_per_second`` (heartbeats/s), ``store_bytes``,
    ``query_runs``, ``query_ms_p50``, ``query_ms_p99`` and ``completeness`` (user →
    ``{"percent", "watch_ms"}``, not JSON-friendly in size); and its own: ``statements``,
    ``subset`` (``None``, or what was left out and how it was chosen), ``ingest_curve``
    (heartbeats/s per tenth of the ingest, showing the slowdown), ``history_bytes``, ``batch``,
    ``page``, ``version``. Never raises because Ralph cannot be installed, started or answer:
    that comes back as ``{"available": False, "why": ...}`` with ``peer``, ``backend`` and
    ``notes``.
    """
    notes = NOTES.format(version=VERSION, batch=batch, connections=connections, page=page)
    backend = f"Ralph {VERSION}, fs backend"
    workdir = workdir.resolve()  # Ralph's processes run in another directory
    try:
        python = ensure_venv(workdir / "ralph-venv")
        run_dir = fresh_run_dir(workdir / "ralph-run")
        env = ralph_env(run_dir, page)
        password = create_credentials(python, env, run_dir)
        sent, subset = select_statements(beats, asset_id, max_statements)
        with (
            ralph_server(python, run_dir, env) as base_url,
            _client(base_url, password, connections) as client,
        ):
            measured = _measure(client, sent, asset_id, run_dir, batch, page, connections,
                                progress, query_runs)  # fmt: skip
    except RalphUnavailable as error:
        why = str(error)
    except httpx2.HTTPError as error:
        why = f"Ralph failed during the run: {_short(error)}"
    else:
        return {
            "available": True,
            "peer": "ralph",
            "backend": backend,
            "notes": notes,
            "version": VERSION,
            "heartbeats_offered": len(beats),
            "subset": subset,
            "batch": batch,
            "page": page,
            **measured,
        }
    return {"available": False, "peer": "ralph", "backend": backend, "notes": notes, "why": why}


def _measure(
    client: httpx2.Client,
    beats: list[Heartbeat],
    asset_id: str,
    run_dir: Path,
    batch: int,
    page: int,
    connections: int,
    progress: Progress | None,
    query_runs: int,
) -> dict[str, Any]:
    bodies = [_batch_body(beats[i : i + batch]) for i in range(0, len(beats), batch)]
    _warm_up(client)
    seconds, curve = ingest(client, bodies, connections, progress)
    statements, store_bytes, history_bytes = store_size(run_dir)
    if statements != len(beats):
        raise RalphUnavailable(f"stored {statements} statements of {len(beats)} sent")
    activity = xapi.activity_iri(asset_id)
    timings, completeness = time_runs(
        query_runs, lambda: completeness_of(fetch_statements(client, activity, page))
    )
    return {
        "heartbeats": len(beats),
        "video_heartbeats": sum(1 for beat in beats if beat.asset_id == asset_id),
        "viewers": len(completeness),
        "statements": statements,
        "ingest_seconds": round(seconds, 3),
        "ingest_per_second": round(statements / seconds, 1),
        "ingest_curve": curve,
        "store_bytes": store_bytes,
        "history_bytes": history_bytes,  # Ralph's history.json, rewritten on every read/write
        **timings,
        "completeness": completeness,
    }


# --- which heartbeats Ralph gets --------------------------------------------------------------


def select_statements(
    beats: list[Heartbeat], asset_id: str, limit: int | None
) -> tuple[list[Heartbeat], dict[str, Any] | None]:
    """At most ``limit`` of ``beats``, in their order, and a description of the subset
    (``None`` when it is all of them). Deterministic, and whole viewers or sessions only, so
    every viewer Ralph answers for has all their heartbeats of the video:

    - if the video's heartbeats fit, all of them, plus whole sessions of other videos picked
      by a hash of the session id until the next would not fit (the rest of the store);
    - else the video's heartbeats of whole viewers picked by a hash of the user id until the
      next would not fit, and nothing else: Ralph then answers for fewer viewers.
    """
    if limit is None or len(beats) <= limit:
        return beats, None
    video = [beat for beat in beats if beat.asset_id == asset_id]
    if len(video) <= limit:
        rule = (f"all {len(video)} heartbeats of the video, plus whole sessions of other videos "
                "picked by a hash of the session id")  # fmt: skip
        others = _groups((beat for beat in beats if beat.asset_id != asset_id), "session_id")
        chosen = _fill(others, limit - len(video))
        keep = [beat for beat in beats if beat.asset_id == asset_id or beat.session_id in chosen]
    else:
        rule = (f"only heartbeats of the video ({len(video)} would not fit), from whole "
                "viewers picked by a hash of the user id; no other videos")  # fmt: skip
        chosen = _fill(_groups(video, "user_id"), limit)
        keep = [beat for beat in video if beat.user_id in chosen]
    kept_video = [beat for beat in keep if beat.asset_id == asset_id]
    return keep, {
        "limit": limit,
        "rule": rule,
        "heartbeats": len(keep),
        "of_heartbeats": len(beats),
        "video_heartbeats": len(kept_video),
        "of_video_heartbeats": len(video),
        "video_viewers": len({beat.user_id for beat in kept_video}),
        "of_video_viewers": len({beat.user_id for beat in video}),
    }


def _groups(beats: Iterator[Heartbeat] | list[Heartbeat], key: str) -> dict[str, int]:
    """Heartbeats per value of ``key`` (``session_id`` or ``user_id``)."""
    counts: dict[str, int] = {}
    for beat in beats:
        value = getattr(beat, key)
        counts[value] = counts.get(value, 0) + 1
    return counts


def _fill(sizes: dict[str, int], room: int) -> set[str]:
    """Keys in hash order while their sizes still fit in ``room``."""
    chosen: set[str] = set()
    for key in sorted(sizes, key=lambda k: hashlib.blake2b(k.encode(), digest_size=8).digest()):
        if sizes[key] > room:
            break
        chosen.add(key)
        room -= sizes[key]
    return chosen


# --- the virtualenv, the credentials and the server -------------------------------------------


def ensure_venv(venv: Path) -> Path:
    """Ralph's own virtualenv (its FastAPI, pydantic and uvicorn differ from the project's);
    reused when a previous run installed the same requirements."""
    python = venv / "bin" / "python"
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    _run([sys.executable, "-m", "venv", str(venv)], "creating Ralph's virtualenv")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, *REQUIREMENTS], f"installing {' '.join(REQUIREMENTS)}", INSTALL_TIMEOUT_S)
    stamp.write_text(wanted)
    return python


def fresh_run_dir(run_dir: Path) -> Path:
    """An empty store every run: Ralph's speed depends on how much it already holds."""
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "store").mkdir(parents=True, exist_ok=True)
    (run_dir / "app").mkdir(exist_ok=True)
    return run_dir


def ralph_env(run_dir: Path, page: int = PAGE) -> dict[str, str]:
    """Ralph reads its settings from the environment when first imported; everything it
    writes stays under ``run_dir`` (else it would use ``~/.config/ralph``). ``page``: the
    most statements one GET returns."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RALPH_")}
    env.update(
        RALPH_RUNSERVER_BACKEND="fs",
        RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH=str(run_dir / "store"),
        RALPH_APP_DIR=str(run_dir / "app"),
        RALPH_AUTH_FILE=str(run_dir / "app" / "auth.json"),
        RALPH_HISTORY_FILE=str(run_dir / "app" / "history.json"),
        RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT=str(page),
    )
    return env


def create_credentials(python: Path, env: dict[str, str], cwd: Path) -> str:
    """A user for HTTP basic auth, written to ``RALPH_AUTH_FILE``; returns its password.
    Run in ``cwd`` because Ralph also reads settings from a ``.env`` in the current directory."""
    password = secrets.token_urlsafe(16)
    ralph = str(python.with_name("ralph"))
    command = [ralph, "auth", "-u", USERNAME, "-p", password, "-s", "all",
               "-A", USERNAME, xapi.HOME_PAGE, "-w"]  # fmt: skip
    _run(command, "creating Ralph credentials", env=env, cwd=cwd)
    return password


@contextmanager
def ralph_server(python: Path, run_dir: Path, env: dict[str, str]) -> Iterator[str]:
    """Ralph under uvicorn as in production; yields its base URL, always stops it."""
    port = _free_port()
    command = [str(python), "-I", str(LAUNCHER), "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]  # fmt: skip
    log_path = run_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(process, base_url, log_path)
        yield base_url
    finally:
        _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RalphUnavailable(f"Ralph exited at start: {_last_line(log_path)}")
        try:
            if httpx2.get(f"{base_url}/__lbheartbeat__", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise RalphUnavailable(f"Ralph did not answer within {START_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- ingest -----------------------------------------------------------------------------------


@contextmanager
def _client(base_url: str, password: str, connections: int) -> Iterator[httpx2.Client]:
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    with httpx2.Client(
        base_url=base_url,
        auth=(USERNAME, password),
        headers=XAPI_HEADERS,
        limits=limits,
        timeout=httpx2.Timeout(600.0, connect=10.0),  # a POST waits for all those before it
    ) as client:
        yield client


def _batch_body(beats: list[Heartbeat]) -> tuple[bytes, int]:
    return orjson.dumps([xapi.to_statement(beat) for beat in beats]), len(beats)


def _warm_up(client: httpx2.Client) -> None:
    """The first request checks the password with bcrypt (then cached): keep it out of the
    timing, and fail early on bad credentials."""
    client.get("/xAPI/statements", params={"limit": 1}).raise_for_status()


def ingest(
    client: httpx2.Client,
    bodies: list[tuple[bytes, int]],
    connections: int,
    progress: Progress | None,
) -> tuple[float, list[dict[str, float | int]]]:
    """POST every batch over ``connections`` concurrent connections; the seconds it took, and
    the rate over each tenth of the statements (``{"stored": n, "per_second": r}``, n being the
    store's size at the end of that tenth). Bodies are serialised beforehand so the clock
    measures Ralph, not this client."""

    def post(body: bytes, count: int) -> int:
        response = client.post(
            "/xAPI/statements", content=body, headers={"Content-Type": "application/json"}
        )
        response.raise_for_status()
        return count

    total = sum(count for _, count in bodies)
    curve: list[dict[str, float | int]] = []
    stored, mark_stored, mark_at = 0, 0, 0.0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        futures = [pool.submit(post, body, count) for body, count in bodies]
        try:
            for future in as_completed(futures):
                count = future.result()
                stored += count
                elapsed = time.perf_counter() - started
                if stored * 10 >= total * (len(curve) + 1) and elapsed > mark_at:
                    rate = (stored - mark_stored) / (elapsed - mark_at)
                    curve.append({"stored": stored, "per_second": round(rate, 1)})
                    mark_stored, mark_at = stored, elapsed
                if progress:
                    progress(count)
        except BaseException:
            for future in futures:  # don't send the rest after a failure (or Ctrl-C)
                future.cancel()
            raise
    return time.perf_counter() - started, curve


def store_size(run_dir: Path) -> tuple[int, int, int]:
    """Statements in the store, its bytes on disk, and the bytes of Ralph's history file."""
    store = run_dir / "store"
    statements = 0
    for path in store.glob("*.jsonl"):
        with path.open("rb") as file:
            statements += sum(1 for line in file if line.strip())
    store_bytes = sum(path.stat().st_size for path in store.rglob("*") if path.is_file())
    history = run_dir / "app" / "history.json"
    return statements, store_bytes, history.stat().st_size if history.exists() else 0


# --- the query --------------------------------------------------------------------------------


def fetch_statements(client: httpx2.Client, activity: str, page: int) -> list[dict[str, Any]]:
    """Every statement about ``activity``, ``page`` at a time, following the LRS's ``more``
    links."""
    statements: list[dict[str, Any]] = []
    url = "/xAPI/statements"
    # Not limit=0 ("the server's maximum" in xAPI): Ralph 5.1 takes min(0, maximum) = 0,
    # which its backends read as "no limit".
    params: dict[str, str | int] | None = {"activity": activity, "limit": page}
    while True:
        response = client.get(url, params=params)
        response.raise_for_status()
        answer = response.json()
        statements.extend(answer["statements"])
        url, params = answer.get("more") or "", None  # `more` carries its own query string
        if not url:
            return statements


def completeness_of(statements: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per viewer: percent of the video covered by the union of their played segments
    (floor), and the summed played time; the video's length from the statements."""
    segments: dict[str, list[tuple[int, int]]] = {}
    watch_ms: dict[str, int] = {}
    length_ms = 0
    for statement in statements:
        user = statement["actor"]["account"]["name"]
        result = statement["result"]
        segments.setdefault(user, []).extend(
            xapi.parse_segments(result["extensions"][xapi.PLAYED_SEGMENTS])
        )
        watch_ms[user] = watch_ms.get(user, 0) + xapi.duration_ms(result["duration"])
        length_ms = max(length_ms, xapi.ms_of(statement["context"]["extensions"][xapi.LENGTH]))
    return {
        user: {
            "percent": 100 * union_ms(ranges) // length_ms,
            "watch_ms": watch_ms[user],
        }
        for user, ranges in segments.items()
    }


def union_ms(ranges: list[tuple[int, int]]) -> int:
    """Milliseconds covered by the union of ``ranges`` (sort, then merge overlaps)."""
    covered, reach = 0, 0
    for start, end in sorted(ranges):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


# --- helpers ----------------------------------------------------------------------------------


def _run(
    command: list[str],
    doing: str,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.CalledProcessError as error:
        raise RalphUnavailable(f"{doing} failed: {_last_line_of(error.stderr)}") from error
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RalphUnavailable(f"{doing} failed: {error}") from error


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _last_line(path: Path) -> str:
    return _last_line_of(path.read_bytes()) if path.exists() else "(no log)"


def _last_line_of(output: bytes | None) -> str:
    lines = (output or b"").decode(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else "(no output)"


def _short(error: httpx2.HTTPError) -> str:
    if isinstance(error, httpx2.HTTPStatusError):
        return f"{error.response.status_code} {error.response.text[:200]}"
    return f"{type(error).__name__}: {error}"[:300]
