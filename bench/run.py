"""The benchmark suite: ``make bench`` (``--quick`` for a smoke run in about a minute).

    python -m bench.run [--quick] [--backends sqlite,postgresql] [--only query,ingest,...]

Writes ``bench/results/latest.json``, ``bench/results/latest.md`` (the table it also prints)
and ``bench/results/latency.png`` (query latency against data size). Parts:

- ``query``: the seed endpoint's p50/p99 per case at 10k, 100k and 1M visits (quick: 2k, 10k);
- ``insights``: the analytics endpoints (videos, retention, viewer: p50/p99; the export of
  100,000 rows as CSV and XLSX: rows/s and the server's peak RSS growth) and the dashboard's
  video page, on the query part's 1M visits (reused when both run) plus a tenant of 100,000
  visits whose star video has 10,000 viewers (quick: 10k visits, 5,000 and 1,000);
- ``ingest``: single player beacons against the HTTP floor, batches of 100 server beacons
  against the storage floor, per backend;
- ``memory``: the service's resident memory through a sustained ingest (10 minutes; quick: 15 s);
- ``peer``: the same heartbeats into Ralph (an xAPI learning record store), a PostgreSQL
  do-it-yourself baseline and vodwatch, and the time each takes to answer "completeness per
  viewer for one video".
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from tqdm import tqdm

from bench import ingest, insights
from bench.dataset import LoadedDataset, load_dataset
from bench.query import CASES, measure_queries
from bench.viewing import Heartbeat, generate_visits, heartbeats, make_tenants
from vodwatch.client import VodwatchClient
from vodwatch.store.catalog import put_asset
from vodwatch.store.database import Database
from vodwatch.store.migrate import upgrade

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
WORKDIR = BENCH / ".work"
PG_URL = os.environ.get("VODWATCH_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TENANTS, VIEWERS, VIDEOS = 100, 100_000, 10_000
ALL_PARTS = ("query", "insights", "ingest", "memory", "peer")
TARGETS = {
    "ingest.single.ratio_to_http_floor": 0.5,
    "ingest.batch.ratio_to_storage_floor": 0.5,
    "query.p99_ms_max": 50.0,
}
# The query part's largest dataset, per backend, when the insights part runs on it next:
# (url, what was loaded). Whatever is left here at the end is dropped.
SHARED: dict[str, tuple[str, LoadedDataset]] = {}


@contextmanager
def bar(description: str, total: float, unit: str = "it") -> Iterator[Callable[[float], None]]:
    """A progress bar on stderr; the callable sets the position (absolute) or adds (counts)."""
    with tqdm(
        total=total,
        desc=description,
        unit=unit,
        leave=True,
        file=sys.stderr,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}<{remaining}]",
    ) as progress:
        yield progress.update
        progress.n = progress.total
        progress.refresh()


@contextmanager
def timed_bar(description: str, seconds: float) -> Iterator[Callable[[float], None]]:
    with tqdm(
        total=seconds,
        desc=description,
        unit="s",
        file=sys.stderr,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s",
    ) as progress:

        def at(elapsed: float) -> None:
            progress.n = elapsed
            progress.refresh()

        yield at
        at(seconds)


# -- query -----------------------------------------------------------------------------------


def build_dataset(backend: str, name: str, size: int) -> tuple[str, LoadedDataset]:
    """A new database ``name`` holding the query part's dataset of ``size`` visits."""
    tenants = make_tenants(TENANTS, VIEWERS, VIDEOS)
    url = ingest.fresh_database(backend, WORKDIR, name, PG_URL)
    db = Database(url)
    try:
        upgrade(db)
        with bar(f"{backend}: load {size:,} visits", size, "visits") as progress:
            loaded = load_dataset(db, tenants, generate_visits(tenants, size), progress)
    finally:
        db.dispose()
    return url, loaded


def run_query(
    backends: list[str], sizes: list[int], repeats: int, keep_size: int | None = None
) -> dict[str, Any]:
    """``keep_size``: keep that size's database in ``SHARED`` (for the insights part)."""
    out: dict[str, Any] = {
        "sizes": sizes,
        "tenants": TENANTS,
        "viewers": VIEWERS,
        "videos": VIDEOS,
        "cases": list(CASES),
        "repeats": repeats,
    }
    for backend in backends:
        per_size: dict[str, Any] = {}
        for size in sizes:
            url, loaded = build_dataset(backend, "vodwatch_bench_query", size)
            with bar(f"{backend}: query {size:,} visits", repeats * len(CASES), "req") as progress:
                measured = measure_queries(url, loaded, WORKDIR, repeats, progress)
            measured["load_seconds"] = round(loaded.seconds, 1)
            per_size[str(size)] = measured
            if size == keep_size:
                SHARED[backend] = (url, loaded)
            else:
                ingest.drop_database(backend, url, PG_URL)
        largest = per_size[str(max(sizes))]
        out[backend] = {"by_size": per_size, "p99_ms_max": largest["p99_ms_max"]}
    out["visits"] = max(sizes)
    return out


# -- insights --------------------------------------------------------------------------------


def run_insights(backends: list[str], plan: insights.Plan) -> dict[str, Any]:
    """Per backend: the query part's dataset of ``plan.base_visits`` (the one it just measured
    when it ran first, else built the same way), the insights tenant added, every case."""
    out: dict[str, Any] = {"plan": plan.describe(), "cases": list(insights.CASES)}
    for backend in backends:
        shared = SHARED.pop(backend, None)
        if shared is not None and shared[1].visits == plan.base_visits:
            url, base = shared
            built = "reused from the query part"
        else:
            if shared is not None:
                ingest.drop_database(backend, shared[0], PG_URL)
            url, base = build_dataset(backend, "vodwatch_bench_insights", plan.base_visits)
            built = "built by the insights part"
        try:
            tenant_id = len(base.tenants) + 1
            with bar(
                f"{backend}: load the insights tenant", plan.tenant_visits, "visits"
            ) as progress:
                data = insights.add_insights_tenant(url, tenant_id, plan, progress)
            measured = insights.measure_insights(url, data, plan, WORKDIR, bar)
        finally:
            ingest.drop_database(backend, url, PG_URL)
        out[backend] = {
            "dataset": {
                "visits": base.visits + data.visits,
                "base_visits": base.visits,
                "base": built,
                "base_load_seconds": round(base.seconds, 1),
                "tenant_id": tenant_id,
                "tenant_visits": data.visits,
                "tenant_viewers": data.tenant.viewers,
                "tenant_videos_watched": data.videos,
                "star_asset": data.star_asset,
                "star_viewers": data.star_viewers,
                "tenant_load_seconds": round(data.load_seconds, 1),
            },
            **measured,
        }
    out["visits"] = plan.base_visits + plan.tenant_visits
    return out


def drop_shared() -> None:
    while SHARED:
        backend, (url, _) = SHARED.popitem()
        ingest.drop_database(backend, url, PG_URL)


# -- ingest ----------------------------------------------------------------------------------


def run_ingest(
    backends: list[str], seconds: float, connections: int, preload: int
) -> dict[str, Any]:
    workers = os.cpu_count() or 1
    out: dict[str, Any] = {
        "connections": connections,
        "seconds": seconds,
        "workers": workers,
        "batch_size": ingest.BATCH_SIZE,
    }
    for backend in backends:
        url = ingest.fresh_database(backend, WORKDIR, "vodwatch_bench_ingest", PG_URL)
        with bar(f"{backend}: preload {preload:,} visits", 1, "step"):
            stage = ingest.prepare(url, preload_visits=preload)
        port = ingest.free_port()
        result: dict[str, Any] = {"preloaded_visits": preload}
        with (
            ingest.floor_server(url, port, workers, WORKDIR / "floor.log"),
            timed_bar(f"{backend}: HTTP floor", seconds) as progress,
        ):
            plan = ingest.player_plan(stage, "/bench/floor", "floor")
            result["http_floor"] = ingest.loadgen(
                port, plan, WORKDIR, connections, seconds, progress
            )
        with (
            ingest.vodwatch_server(url, port, workers, WORKDIR / "serve.log"),
            timed_bar(f"{backend}: player beacons", seconds) as progress,
        ):
            plan = ingest.player_plan(stage, ingest.BEACON_PATH, "single")
            result["single"] = ingest.loadgen(port, plan, WORKDIR, connections, seconds, progress)
        # Enough batches that the run never sends one twice at twice the floor's rate.
        count = 300 if seconds < 10 else 3_000  # sent round after round with new session ids
        with bar(f"{backend}: make {count:,} batches", 1, "step"):
            batches_file, batches = ingest.server_batches(stage, count, WORKDIR)
        with (
            ingest.vodwatch_server(url, port, workers, WORKDIR / "serve.log"),
            timed_bar(f"{backend}: batches of {ingest.BATCH_SIZE}", seconds) as progress,
        ):
            result["batch"] = ingest.loadgen(
                port,
                ingest.server_plan(stage, batches_file),
                WORKDIR,
                connections,
                seconds,
                progress,
            )
        with timed_bar(f"{backend}: storage floor", seconds) as progress:
            result["storage_floor"] = ingest.storage_floor(
                url, batches, seconds, progress, writers=1 if backend == "sqlite" else workers
            )
        ingest.drop_database(backend, url, PG_URL)
        result["single"]["ratio_to_http_floor"] = round(
            result["single"]["beacons_per_s"] / result["http_floor"]["beacons_per_s"], 3
        )
        result["batch"]["ratio_to_storage_floor"] = round(
            result["batch"]["beacons_per_s"] / result["storage_floor"]["beacons_per_s"], 3
        )
        out[backend] = result
    return out


# -- memory ----------------------------------------------------------------------------------


def run_memory(backend: str, seconds: float, connections: int) -> dict[str, Any]:
    """Resident memory of every process of ``vodwatch serve`` (one worker per core) through a
    sustained player-beacon ingest, sampled every few seconds."""
    url = ingest.fresh_database(backend, WORKDIR, "vodwatch_bench_memory", PG_URL)
    stage = ingest.prepare(url)
    port = ingest.free_port()
    samples: list[tuple[float, float]] = []
    every = max(1.0, seconds / 60)
    with ingest.vodwatch_server(url, port, os.cpu_count() or 1, WORKDIR / "memory.log") as server:
        plan = ingest.player_plan(stage, ingest.BEACON_PATH, "memory")
        plan["sessions"] = 200_000  # new visits all along, not the same few updated
        with (
            ThreadPoolExecutor(1) as pool,
            timed_bar(f"{backend}: sustained ingest", seconds) as progress,
        ):
            load = pool.submit(ingest.loadgen, port, plan, WORKDIR, connections, seconds)
            started = time.monotonic()
            while not load.done():
                processes = [server, *server.children(recursive=True)]
                rss = sum(
                    process.memory_info().rss for process in processes if process.is_running()
                )
                samples.append((round(time.monotonic() - started, 1), round(rss / 2**20, 1)))
                progress(min(seconds, time.monotonic() - started))
                time.sleep(every)
            result = load.result()
    ingest.drop_database(backend, url, PG_URL)
    # Flat: compare the first tenth after warm-up with the last tenth.
    tenth = max(1, len(samples) // 10)
    early = statistics.mean(rss for _, rss in samples[tenth : 2 * tenth])
    late = statistics.mean(rss for _, rss in samples[-tenth:])
    return {
        "backend": backend,
        "seconds": seconds,
        "beacons": result["beacons_per_s"] * result["seconds"],
        "beacons_per_s": result["beacons_per_s"],
        "rss_mb_early": round(early, 1),
        "rss_mb_late": round(late, 1),
        "growth_percent": round(100 * (late - early) / early, 1),
        "samples": samples,
    }


# -- peer ------------------------------------------------------------------------------------


def peer_data(visits: int) -> tuple[list[Heartbeat], str, dict[str, int]]:
    tenants = make_tenants(1, 2_000, 50)
    generated = list(generate_visits(tenants, visits, seed=11))
    beats = [beat for visit in generated for beat in heartbeats(visit)]
    target = Counter(visit.asset_id for visit in generated).most_common(1)[0][0]
    durations = {visit.asset_id: visit.duration_ms for visit in generated}
    return beats, target, durations


def vodwatch_as_peer(
    beats: list[Heartbeat], target: str, durations: dict[str, int], backend: str, repeats: int
) -> dict[str, Any]:
    """The same heartbeats as server beacons over HTTP (batches of 100, 8 at a time), then
    ``groupBy=userVideo`` for the video, every page, timed as the peers are."""
    url = ingest.fresh_database(backend, WORKDIR, "vodwatch_bench_peer", PG_URL)
    db = Database(url)
    try:
        upgrade(db)
        stage_tenant = ingest.prepare(url, videos=1).tenant
        with db.write() as conn:
            for asset, duration in durations.items():
                put_asset(conn, stage_tenant.tenant_id, asset, f"Video {asset}", duration, 0)
    finally:
        db.dispose()
    port = ingest.free_port()
    workers = os.cpu_count() or 1
    batches = [beats[n : n + ingest.BATCH_SIZE] for n in range(0, len(beats), ingest.BATCH_SIZE)]
    with (
        ingest.vodwatch_server(url, port, workers, WORKDIR / "peer-serve.log"),
        VodwatchClient(
            f"http://127.0.0.1:{port}", stage_tenant.authkey, stage_tenant.secret
        ) as client,
    ):
        with bar(f"vodwatch ({backend}): ingest", len(beats), "beacons") as progress:
            started = time.perf_counter()

            def send(batch: list[Heartbeat]) -> None:
                body = [{**ingest.server_beacon(beat), "assetId": beat.asset_id} for beat in batch]
                client.send_beacons(body)
                progress(len(batch))

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(send, batches))
            ingest_seconds = time.perf_counter() - started
        analyze(url)  # as the baseline does after its load (autovacuum would, in service)
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            rows = list(client.iter_report(videoInfo=target, groupBy="userVideo", pageSize=100))
            timings.append((time.perf_counter() - started) * 1000)
        completeness = {
            row["userId"]: {
                "percent": int(row["visitRadio"].rstrip("%")),
                "watch_ms": row["watchMs"],
            }
            for row in rows
        }
    ingest.drop_database(backend, url, PG_URL)
    timings.sort()
    return {
        "available": True,
        "backend": backend,
        "heartbeats": len(beats),
        "ingest_seconds": round(ingest_seconds, 2),
        "ingest_per_second": round(len(beats) / ingest_seconds, 1),
        "query_ms_p50": round(statistics.median(timings), 2),
        "query_ms_p99": round(timings[min(len(timings) - 1, int(0.99 * len(timings)))], 2),
        "viewers": len(rows),
        "completeness": completeness,
        "notes": "vodwatch serve, one worker per core; beacons of 100 heartbeats, 8 requests "
        "at a time; then ANALYZE (not counted); the seed endpoint with "
        "videoInfo=<assetId>&groupBy=userVideo, every page of 100, timed end to end",
    }


def analyze(url: str) -> None:
    db = Database(url)
    try:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    finally:
        db.dispose()


def run_peer(tiers: list[int], repeats: int, backends: list[str]) -> dict[str, Any]:
    """Per tier (a number of visits): the same heartbeats into each system. Ralph takes the
    first tier only, and all of it: its file store re-reads every statement on each request,
    so ingest time grows with the square of the store (the results carry its ingest curve)."""
    from bench.peers.diy_postgres import run_diy_postgres
    from bench.peers.ralph import run_ralph

    out: dict[str, Any] = {"tiers": tiers}
    for tier, visits in enumerate(tiers):
        beats, target, durations = peer_data(visits)
        result: dict[str, Any] = {
            "visits": visits,
            "heartbeats": len(beats),
            "asset": target,
            "target_heartbeats": sum(beat.asset_id == target for beat in beats),
        }
        if tier == 0:
            with bar(f"ralph: {len(beats):,} statements", len(beats), "statements") as progress:
                result["ralph"] = run_ralph(
                    beats,
                    target,
                    WORKDIR,
                    progress=progress,
                    max_statements=None,
                    query_runs=repeats,
                )
        else:
            result["ralph"] = {
                "available": False,
                "why": f"not run at {visits:,} visits: its file store would take hours to "
                f"ingest {len(beats):,} statements (see the first tier's ingest curve)",
            }
        with bar(f"diy postgres: {len(beats):,} rows", len(beats), "rows") as progress:
            result["diy_postgres"] = run_diy_postgres(
                beats, target, PG_URL, progress=progress, query_runs=max(repeats, 20)
            )
        for backend in backends:
            result[f"vodwatch_{backend}"] = vodwatch_as_peer(
                beats, target, durations, backend, max(repeats, 20)
            )
        agreed = _agreement(result)
        for system in result.values():
            if isinstance(system, dict):
                system.pop("completeness", None)
        result["agreement"] = agreed
        out[str(visits)] = result
    return out


def _agreement(result: dict[str, Any]) -> dict[str, Any]:
    """Whether the systems that ran gave the same completeness (percent per viewer)."""
    answers = {
        name: {user: row["percent"] for user, row in system["completeness"].items()}
        for name, system in result.items()
        if isinstance(system, dict) and system.get("available") and "completeness" in system
    }
    if len(answers) < 2:
        return {"compared": sorted(answers)}
    reference_name, reference = next(iter(answers.items()))
    return {
        "compared": sorted(answers),
        "same_as_" + reference_name: {
            name: answer == reference for name, answer in answers.items() if name != reference_name
        },
    }


# -- report ----------------------------------------------------------------------------------


def flatten(results: dict[str, Any]) -> dict[str, Any]:
    """The headline figures under the names the issue gives them."""
    flat: dict[str, Any] = {}
    ingest_results = results.get("ingest", {})
    for backend in ("sqlite", "postgresql"):
        if backend in ingest_results:
            flat[f"ingest.{backend}.single.ratio_to_http_floor"] = ingest_results[backend][
                "single"
            ]["ratio_to_http_floor"]
            flat[f"ingest.{backend}.batch.ratio_to_storage_floor"] = ingest_results[backend][
                "batch"
            ]["ratio_to_storage_floor"]
    for kind in ("single.ratio_to_http_floor", "batch.ratio_to_storage_floor"):
        values = [value for key, value in flat.items() if key.endswith(kind)]
        if values:
            flat[f"ingest.{kind}"] = min(values)  # the worse backend
    query = results.get("query", {})
    for backend in ("sqlite", "postgresql"):
        if backend in query:
            flat[f"query.{backend}.p99_ms_max"] = query[backend]["p99_ms_max"]
    if query:
        flat["query.visits"] = query["visits"]
    if "memory" in results:
        flat["memory.growth_percent"] = results["memory"]["growth_percent"]
    insights_results = results.get("insights", {})
    for backend in ("sqlite", "postgresql"):
        for case, result in insights_results.get(backend, {}).items():
            if case not in insights.TARGETS:
                continue
            if not result.get("measured", True):
                flat[f"insights.{backend}.{case}"] = result["why"]
                continue
            for figure in insights.TARGETS[case]:
                flat[f"insights.{backend}.{case}.{figure}"] = result[figure]
    if insights_results:
        flat["insights.visits"] = insights_results["visits"]
    return flat


def targets(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each headline figure that has a target: the target, met or not, and by how much not
    (as the difference and as a share of the target)."""
    verdicts = {}
    for key, value in flat.items():
        is_latency = key.startswith("query.") and key.endswith("p99_ms_max")
        parts = key.split(".")
        if parts[0] == "ingest" and parts[1] in ("sqlite", "postgresql"):
            parts.pop(1)  # each backend against the same target
        target = TARGETS["query.p99_ms_max"] if is_latency else TARGETS.get(".".join(parts))
        if parts[0] == "insights" and len(parts) == 4:  # insights.<backend>.<case>.<figure>
            kind, target = insights.TARGETS[parts[2]][parts[3]]
            is_latency = kind == "max"  # at most the target, as latency
        if target is None or not isinstance(value, int | float):
            continue
        met = value <= target if is_latency else value >= target
        gap = value - target if is_latency else target - value
        verdicts[key] = {
            "value": value,
            "target": target,
            "met": met,
            "missed_by": None if met else f"{round(gap, 3)} ({round(100 * gap / target)}%)",
        }
    return verdicts


def table(results: dict[str, Any]) -> str:
    lines = [
        f"# vodwatch benchmarks ({results['mode']}, {results['finished']})",
        "",
        f"Machine: {results['machine']}",
        "",
    ]
    for part, why in results.get("failed", {}).items():
        lines += [f"**{part} failed**: {why}", ""]
    query = results.get("query")
    if query:
        lines += [
            "## Seed endpoint latency (ms, p50 / p99), largest tenant",
            "",
            "| backend | visits | tenant visits | " + " | ".join(query["cases"]) + " |",
            "|---|---:|---:|" + "---:|" * len(query["cases"]),
        ]
        for backend in ("sqlite", "postgresql"):
            for size, measured in query.get(backend, {}).get("by_size", {}).items():
                cells = [
                    f"{measured['cases'][case]['p50_ms']} / {measured['cases'][case]['p99_ms']}"
                    for case in query["cases"]
                ]
                lines.append(
                    f"| {backend} | {int(size):,} | {measured['tenant_visits']:,} | "
                    + " | ".join(cells)
                    + " |"
                )
        lines.append("")
    lines += insights_table(results.get("insights"))
    ingest_results = results.get("ingest")
    if ingest_results:
        lines += [
            "## Ingest over HTTP "
            f"({ingest_results['connections']} connections, {ingest_results['workers']} "
            f"workers, {ingest_results['seconds']} s per run)",
            "",
            "| backend | run | beacons/s | requests/s | p50 ms | p99 ms | ratio |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for backend in ("sqlite", "postgresql"):
            result = ingest_results.get(backend)
            if not result:
                continue
            for run in ("http_floor", "single", "batch"):
                r = result[run]
                ratio = r.get("ratio_to_http_floor", r.get("ratio_to_storage_floor", ""))
                lines.append(
                    f"| {backend} | {run} | {r['beacons_per_s']:,} | "
                    f"{r['requests_per_s']:,} | {r['p50_ms']} | {r['p99_ms']} | {ratio} |"
                )
            floor = result["storage_floor"]
            lines.append(f"| {backend} | storage_floor | {floor['beacons_per_s']:,} | | | | |")
        lines.append("")
    memory = results.get("memory")
    if memory:
        lines += [
            "## Memory through a sustained ingest",
            "",
            f"{memory['backend']}, {memory['seconds']:.0f} s, {memory['beacons']:,.0f} "
            f"beacons ({memory['beacons_per_s']:,}/s): RSS {memory['rss_mb_early']} MB "
            f"early, {memory['rss_mb_late']} MB late ({memory['growth_percent']:+}%).",
            "",
        ]
    peer: dict[str, Any] = results.get("peer") or {"tiers": []}
    for visits in peer["tiers"]:
        tier = peer[str(visits)]
        lines += [
            f"## Peers at {visits:,} visits: completeness per viewer of one video",
            "",
            f"{tier['heartbeats']:,} heartbeats, {tier['target_heartbeats']:,} of them for the "
            f"video asked about. Same answers: {json.dumps(tier['agreement'])}",
            "",
            "| system | heartbeats/s in | ingest s | query p50 ms | query p99 ms | notes |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for name, result in tier.items():
            if not isinstance(result, dict) or name == "agreement":
                continue
            if not result.get("available"):
                lines.append(f"| {name} | | | | | unavailable: {result.get('why')} |")
                continue
            lines.append(
                f"| {name} | {result['ingest_per_second']:,} | "
                f"{result['ingest_seconds']} | {result['query_ms_p50']} | "
                f"{result['query_ms_p99']} | {result.get('notes', '')} |"
            )
        lines.append("")
    lines += [
        "## Headline figures and targets",
        "",
        "| figure | value | target | met |",
        "|---|---:|---:|---|",
    ]
    verdicts = targets(results["flat"])
    for key, value in results["flat"].items():
        if key not in verdicts:
            lines.append(f"| {key} | {value} | | |")
            continue
        verdict = verdicts[key]
        met = "yes" if verdict["met"] else f"NO: short by {verdict['missed_by']}"
        lines.append(f"| {key} | {value} | {verdict['target']} | {met} |")
    return "\n".join(lines) + "\n"


def insights_table(part: dict[str, Any] | None) -> list[str]:
    if not part:
        return []
    lines = [f"## Analytics endpoints at {part['visits']:,} visits, the largest tenant", ""]
    for backend in ("sqlite", "postgresql"):
        dataset = part.get(backend, {}).get("dataset")
        if dataset:
            lines.append(
                f"- {backend}: {dataset['base_visits']:,} visits ({dataset['base']}, loaded in "
                f"{dataset['base_load_seconds']} s) + tenant {dataset['tenant_id']}: "
                f"{dataset['tenant_visits']:,} visits, {dataset['tenant_viewers']:,} viewers, "
                f"star video {dataset['star_asset']} with {dataset['star_viewers']:,} viewers "
                f"(loaded in {dataset['tenant_load_seconds']} s)"
            )
    lines += [
        "",
        "| backend | case | p50 ms | p99 ms | samples | rows/s | RSS growth MB | target | met |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for backend in ("sqlite", "postgresql"):
        for case, result in part.get(backend, {}).items():
            if case not in insights.TARGETS:
                continue
            if not result.get("measured", True):
                lines.append(f"| {backend} | {case} | | | | | | | {result['why']} |")
                continue
            goals = ", ".join(
                _goal(figure, verdict) for figure, verdict in result["target"].items()
            )
            missed = [figure for figure, verdict in result["target"].items() if not verdict["met"]]
            lines.append(
                f"| {backend} | {case} | {result.get('p50_ms', '')} | {result.get('p99_ms', '')} "
                f"| {result.get('samples', result.get('runs', ''))} "
                f"| {_thousands(result.get('rows_per_s'))} | {result.get('rss_growth_mb', '')} "
                f"| {goals} | {'NO: ' + ', '.join(missed) if missed else 'yes'} |"
            )
    lines.append("")
    return lines


def _goal(figure: str, verdict: dict[str, Any]) -> str:
    return f"{figure} ≤ {verdict['max']}" if "max" in verdict else f"{figure} ≥ {verdict['min']}"


def _thousands(value: Any) -> str:
    return "" if value is None else f"{value:,}"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    query = results["query"]
    backends = [backend for backend in ("sqlite", "postgresql") if backend in query]
    figure, axes = plt.subplots(
        1, len(backends), figsize=(6 * len(backends), 4.5), sharey=True, squeeze=False
    )
    for axis, backend in zip(axes[0], backends, strict=True):
        by_size = query[backend]["by_size"]
        sizes = sorted(int(size) for size in by_size)
        for case in query["cases"]:
            axis.plot(
                sizes,
                [by_size[str(size)]["cases"][case]["p99_ms"] for size in sizes],
                marker="o",
                label=case,
            )
        axis.axhline(
            TARGETS["query.p99_ms_max"],
            color="red",
            linestyle="--",
            linewidth=1,
            label="target p99",
        )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("visits in the database")
        axis.set_title(f"{backend}: seed endpoint p99 latency")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("ms (p99)")
    axes[0][-1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in about a minute")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--only", default=",".join(ALL_PARTS), help="parts to run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    backends = [backend for backend in args.backends.split(",") if backend]
    parts = set(args.only.split(","))
    WORKDIR.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    results: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}",
    }
    started = time.monotonic()
    stem = "quick" if quick else "latest"
    previous = args.out / f"{stem}.json"
    if parts != set(ALL_PARTS) and previous.exists():
        # A partial run updates its parts of the last results and keeps the others.
        kept = json.loads(previous.read_text())
        results = {**{k: v for k, v in kept.items() if k in ALL_PARTS}, **results}
        results["updated_parts"] = sorted(parts)
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "query": lambda: run_query(
            backends,
            [2_000, 10_000] if quick else [10_000, 100_000, 1_000_000],
            30 if quick else 200,
            # The insights part runs next on the largest dataset: keep it.
            keep_size=(insights.QUICK if quick else insights.FULL).base_visits
            if "insights" in parts
            else None,
        ),
        "insights": lambda: run_insights(backends, insights.QUICK if quick else insights.FULL),
        "ingest": lambda: run_ingest(
            backends, 3 if quick else 20, args.connections, 5_000 if quick else 100_000
        ),
        "memory": lambda: run_memory(backends[0], 15 if quick else 600, args.connections),
        "peer": lambda: run_peer([300] if quick else [2_500, 20_000], 3 if quick else 5, backends),
    }
    failed = []
    try:
        for part, run in runs.items():
            if part not in parts:
                continue
            try:
                results[part] = run()
            except Exception as error:  # noqa: BLE001 - the other parts still run, are written
                failed.append(part)
                results.setdefault("failed", {})[part] = f"{type(error).__name__}: {error}"
                print(f"{part} failed: {error!r}", file=sys.stderr)
            write_results(results, args.out, stem, started)  # after each part: nothing is lost
    finally:
        drop_shared()
    text = table(results)
    print(text)
    print(f"written to {args.out / (stem + '.json')}", file=sys.stderr)
    return 1 if failed else 0


def write_results(results: dict[str, Any], out: Path, stem: str, started: float) -> None:
    results["seconds"] = round(time.monotonic() - started, 1)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["flat"] = flatten(results)
    results["targets"] = targets(results["flat"])
    results.update(results["flat"])
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (out / f"{stem}.md").write_text(table(results))
    if "query" in results:
        chart(results, out / (f"{stem}-latency.png" if stem == "quick" else "latency.png"))


if __name__ == "__main__":
    sys.exit(main())
