"""Latency of the seed endpoint (用户观看完整度) on a loaded dataset, through HTTP.

One ``vodwatch serve`` worker answers one client, one request at a time: each case is asked
``repeats`` times with varying parameters (after a warm-up), on the tenant with the most visits
(the slowest to answer), and p50/p99 of the whole round trip are kept.
"""

import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ingest
from bench.dataset import LoadedDataset, authkey_of, secret_of
from bench.viewing import DAY_MS, EPOCH_MS, asset_id, video_title
from vodwatch.client import VodwatchClient

CASES = ("userId", "assetId", "title", "timeRange", "deepPage", "groupByUserVideo")
WARM_UP = 20


def case_params(
    case: str, rng: random.Random, tenant_id: int, viewers: int, videos: int
) -> dict[str, Any]:
    """Parameters of one request of ``case``; popular viewers and videos come up more often,
    as they do in the generated visits (Zipf-like)."""

    def popular(count: int) -> int:
        return min(count - 1, int(rng.paretovariate(1.0)) - 1)

    if case == "userId":
        return {"userId": f"u{tenant_id}-{popular(viewers)}"}
    if case == "assetId":
        return {"videoInfo": asset_id(tenant_id, popular(videos))}
    if case == "title":
        title = video_title(tenant_id, rng.randrange(videos))
        # Half the time a rare fragment ("Physics 234"), half a common one ("Physics").
        return {"videoInfo": title.split(":")[0] if rng.random() < 0.5 else title.split()[0]}
    if case == "timeRange":
        start = EPOCH_MS - rng.randrange(180) * DAY_MS
        return {"startTime": start // 1000 - 7 * 86_400, "endTime": start // 1000}
    if case == "deepPage":
        return {"page": 500}
    if case == "groupByUserVideo":
        return {"groupBy": "userVideo", "page": 1 + rng.randrange(3)}
    raise ValueError(case)


def measure_queries(
    url: str,
    loaded: LoadedDataset,
    workdir: Path,
    repeats: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """p50/p99 (ms) per case for the largest tenant of ``loaded``, served from ``url``."""
    tenant = next(t for t in loaded.tenants if t.tenant_id == loaded.largest_tenant)
    port = ingest.free_port()
    rng = random.Random(5)
    results: dict[str, Any] = {}
    with (
        ingest.vodwatch_server(url, port, 1, workdir / "query-serve.log"),
        VodwatchClient(
            f"http://127.0.0.1:{port}", authkey_of(tenant.tenant_id), secret_of(tenant.tenant_id)
        ) as client,
    ):
        for case in CASES:
            timings, rows = [], []
            for n in range(WARM_UP + repeats):
                params = case_params(case, rng, tenant.tenant_id, tenant.viewers, tenant.videos)
                started = time.perf_counter()
                body = client.watch_report(**params)
                elapsed = (time.perf_counter() - started) * 1000
                if n >= WARM_UP:
                    timings.append(elapsed)
                    rows.append(body["data"]["total"])
                    if progress:
                        progress(1)
            timings.sort()
            results[case] = {
                "p50_ms": round(statistics.median(timings), 2),
                "p99_ms": round(timings[min(len(timings) - 1, int(0.99 * len(timings)))], 2),
                "requests": len(timings),
                "matching_rows_median": int(statistics.median(rows)),
            }
    return {
        "tenant_visits": loaded.visits_per_tenant[tenant.tenant_id],
        "cases": results,
        "p99_ms_max": max(case["p99_ms"] for case in results.values()),
    }
