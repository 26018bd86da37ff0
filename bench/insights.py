"""The analytics endpoints (SPEC §9) and the dashboard's video page, through HTTP.

The dataset is the query part's (``bench.dataset``: 100 tenants, 1M visits), with one more
tenant added on top, the *insights tenant* (``bench.viewing.insights_tenant``): 100,000 visits,
20,000 viewers, 400 videos, the first of which (the star) has 10,000 distinct viewers. It is the
largest tenant, so the figures are the slowest tenant's; its visits are the 100,000 rows of the
export. Every duration is in the catalog.

One ``vodwatch serve`` worker answers one client, one request at a time, as in the query part.
Latency cases are asked ``samples`` times with varying parameters after a warm-up, within a
time budget (a slow case stops early; the results say how many samples it has); a sample is
the time from sending the request to the last byte of the answer (signing is not counted).
Each export format gets a fresh server: the download is timed client-side from the request to
its last byte (rows/s), and the serving process's peak RSS over its resident memory before the
first export is its growth (peak: ``VmHWM`` reset through ``/proc/PID/clear_refs``, and RSS
sampled every 20 ms, the larger of the two).
"""

import html.parser
import importlib.util
import random
import statistics
import threading
import time
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil

from bench import ingest
from bench.dataset import authkey_of, load_dataset, secret_of
from bench.viewing import (
    Tenant,
    Visit,
    asset_id,
    generate_star_visits,
    insights_tenant,
    video_title,
)
from vodwatch.client import (
    EXPORT_PATH,
    RETENTION_PATH,
    VIDEOS_PATH,
    VIEWER_PATH,
    VodwatchClient,
)
from vodwatch.signing import canonical_query
from vodwatch.store.database import Database

Progress = Callable[[float], None]
Bar = Callable[[str, float, str], AbstractContextManager[Progress]]

LATENCY_CASES = ("videos", "videosByCompletionRate", "videosSearch", "retention", "viewer")
EXPORT_CASES = ("exportCsv", "exportXlsx")
DASHBOARD_CASE = "dashboardVideo"
CASES = (*LATENCY_CASES, *EXPORT_CASES, DASHBOARD_CASE)
# Per case, per figure: ("max" or "min", the target), as the issue states them.
TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "videos": {"p99_ms": ("max", 100.0)},
    "videosByCompletionRate": {"p99_ms": ("max", 100.0)},
    "videosSearch": {"p99_ms": ("max", 100.0)},
    "retention": {"p99_ms": ("max", 100.0)},
    "viewer": {"p99_ms": ("max", 20.0)},
    "exportCsv": {"rows_per_s": ("min", 50_000.0), "rss_growth_mb": ("max", 50.0)},
    "exportXlsx": {"rows_per_s": ("min", 50_000.0), "rss_growth_mb": ("max", 50.0)},
    "dashboardVideo": {"p99_ms": ("max", 150.0)},
}
RETENTION_BUCKETS = 100
RSS_EVERY_S = 0.02
DASHBOARD_EMAIL = "bench@example.org"
DASHBOARD_PASSWORD = "bench-password-1234"  # a throwaway account of the bench


@dataclass(frozen=True)
class Plan:
    """How big and how long: ``FULL`` for ``make bench``, ``QUICK`` for ``--quick``."""

    base_visits: int  # the query part's dataset underneath
    star_viewers: int
    tenant_visits: int  # the insights tenant's, all of them exported
    samples: int  # per latency case
    warm_up: int
    budget_s: float  # per latency case: fewer samples when a case is slow
    min_samples: int
    export_runs: int  # per format

    def describe(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


FULL = Plan(1_000_000, 10_000, 100_000, 300, 20, 150.0, 50, 3)
QUICK = Plan(10_000, 1_000, 5_000, 30, 5, 20.0, 10, 1)


@dataclass
class InsightsTenant:
    tenant: Tenant
    star_asset: str
    star_viewers: int
    visits: int
    pairs: list[tuple[str, str]]  # every (userId, assetId) with a visit, sorted
    videos: int  # with a visit
    load_seconds: float


def add_insights_tenant(url: str, tenant_id: int, plan: Plan, progress: Progress) -> InsightsTenant:
    """Load the insights tenant into the database at ``url`` (which holds the others)."""
    tenant = insights_tenant(tenant_id, plan.star_viewers)
    generated: list[Visit] = list(
        generate_star_visits(tenant, plan.tenant_visits, plan.star_viewers)
    )
    db = Database(url)
    try:
        loaded = load_dataset(db, [tenant], generated, progress)
    finally:
        db.dispose()
    star = asset_id(tenant_id, 0)
    return InsightsTenant(
        tenant=tenant,
        star_asset=star,
        star_viewers=len({visit.user_id for visit in generated if visit.asset_id == star}),
        visits=loaded.visits,
        pairs=sorted({(visit.user_id, visit.asset_id) for visit in generated}),
        videos=len({visit.asset_id for visit in generated}),
        load_seconds=loaded.seconds,
    )


# -- requests ------------------------------------------------------------------------------------


class Requester:
    """Signed GETs for one tenant, timed from sending to the last byte of the answer."""

    def __init__(self, port: int, tenant_id: int) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.signer = VodwatchClient(self.base_url, authkey_of(tenant_id), secret_of(tenant_id))
        self.http = httpx2.Client(timeout=300)

    def close(self) -> None:
        self.http.close()
        self.signer.close()

    def get(self, path: str, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """(ms, the decoded answer); raises unless ``result`` is 0."""
        url, headers = self._signed(path, params)
        started = time.perf_counter()
        response = self.http.get(url, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        body = response.json()
        if response.status_code != 200 or body.get("result") != 0:
            raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:200]}")
        return elapsed, body

    def download(self, path: str, params: dict[str, Any], out: Path) -> tuple[float, int]:
        """Stream a file answer into ``out``: (seconds from the request to the last byte,
        bytes)."""
        url, headers = self._signed(path, params)
        size = 0
        started = time.perf_counter()
        with self.http.stream("GET", url, headers=headers) as response, out.open("wb") as file:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
            for chunk in response.iter_bytes(256 * 1024):
                file.write(chunk)
                size += len(chunk)
        return time.perf_counter() - started, size

    def _signed(self, path: str, params: dict[str, Any]) -> tuple[str, dict[str, str]]:
        pairs = [(name, str(value)) for name, value in params.items()]
        headers = self.signer.signed_headers("GET", path, pairs, b"")
        query = canonical_query(pairs)
        return self.base_url + path + (f"?{query}" if query else ""), headers


def _percentiles(timings: list[float]) -> dict[str, Any]:
    ordered = sorted(timings)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(ordered[-1], 2),
        "samples": len(ordered),
    }


def case_request(case: str, rng: random.Random, data: InsightsTenant) -> tuple[str, dict[str, Any]]:
    """The path and parameters of one request of a latency case."""
    tenant = data.tenant
    if case == "videos":  # the list as it opens: latest visit first, one of its first pages
        return VIDEOS_PATH, {"page": 1 + rng.randrange(5)}
    if case == "videosByCompletionRate":
        return VIDEOS_PATH, {
            "sort": "completionRate",
            "order": rng.choice(("desc", "asc")),
            "page": 1 + rng.randrange(5),
        }
    if case == "videosSearch":
        title = video_title(tenant.tenant_id, rng.randrange(tenant.videos))
        # Half the time a rare fragment ("Physics 234"), half a common one ("Physics").
        fragment = title.split(":")[0] if rng.random() < 0.5 else title.split()[0]
        return VIDEOS_PATH, {"videoInfo": fragment}
    if case == "retention":
        return RETENTION_PATH, {"assetId": data.star_asset, "buckets": RETENTION_BUCKETS}
    if case == "viewer":
        user_id, asset = rng.choice(data.pairs)
        return VIEWER_PATH, {"userId": user_id, "assetId": asset}
    raise ValueError(case)


def measure_latency(
    requester: Requester, case: str, data: InsightsTenant, plan: Plan, progress: Progress
) -> dict[str, Any]:
    rng = random.Random(f"insights-{case}")
    for _ in range(plan.warm_up):
        requester.get(*case_request(case, rng, data))
    timings: list[float] = []
    deadline = time.monotonic() + plan.budget_s
    answered: list[int] = []
    while len(timings) < plan.samples and (
        len(timings) < plan.min_samples or time.monotonic() < deadline
    ):
        path, params = case_request(case, rng, data)
        elapsed, body = requester.get(path, params)
        timings.append(elapsed)
        answered.append(_size_of(case, body["data"]))
        progress(1)
    return {
        **_percentiles(timings),
        "planned_samples": plan.samples,
        "rows_median": int(statistics.median(answered)),
    }


def _size_of(case: str, data: dict[str, Any]) -> int:
    """What one answer covers: matching videos, the video's viewers, the viewer's visits."""
    if case.startswith("videos"):
        return int(data["total"])
    if case == "retention":
        return int(data["totalViewers"])
    return len(data["visits"])


# -- the export ------------------------------------------------------------------------------


class PeakRss:
    """The peak resident memory of one process while the block runs, in bytes: its ``VmHWM``
    (reset on entry by writing 5 to ``/proc/PID/clear_refs``) and RSS sampled every 20 ms,
    whichever is larger (the sampler alone can miss a short peak; the reset can be refused)."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self.is_hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakRss":
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            self.is_hwm_reset = True
        except OSError:
            pass
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.is_hwm_reset:
            self.peak = max(self.peak, _vm_hwm(self.process.pid))

    def _sample(self) -> None:
        while not self._stop.wait(RSS_EVERY_S):
            self.peak = max(self.peak, self.process.memory_info().rss)


def _vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def count_rows(path: Path, file_format: str) -> int:
    """Data rows in a downloaded export (the header row left out)."""
    if file_format == "csv":
        with path.open("rb") as file:
            return sum(chunk.count(b"\r\n") for chunk in iter(lambda: file.read(1 << 20), b"")) - 1
    with zipfile.ZipFile(path) as archive, archive.open("xl/worksheets/sheet1.xml") as sheet:
        rows, tail = 0, b""
        while chunk := sheet.read(1 << 20):
            rows += (tail + chunk).count(b"<row ")
            tail = chunk[-4:]
        return rows - 1


def serving_process(server: psutil.Process) -> psutil.Process:
    """The process that answers requests: the worker, when ``serve`` runs one as a child."""
    children = server.children(recursive=True)
    return children[0] if len(children) == 1 else server


def measure_export(
    url: str,
    data: InsightsTenant,
    file_format: str,
    plan: Plan,
    workdir: Path,
    progress: Progress,
) -> dict[str, Any]:
    """``export_runs`` downloads of every visit of the tenant on a fresh server, after a
    small warm-up export (one video's visits)."""
    port = ingest.free_port()
    out = workdir / f"insights-export.{file_format}"
    with ingest.vodwatch_server(url, port, 1, workdir / "insights-serve.log") as server:
        requester = Requester(port, data.tenant.tenant_id)
        try:
            process = serving_process(server)
            warm = {"format": file_format, "videoInfo": asset_id(data.tenant.tenant_id, 5)}
            requester.download(EXPORT_PATH, warm, out)
            baseline = process.memory_info().rss
            runs = []
            for _ in range(plan.export_runs):
                with PeakRss(process) as peak:
                    seconds, size = requester.download(EXPORT_PATH, {"format": file_format}, out)
                rows = count_rows(out, file_format)
                runs.append(
                    {
                        "seconds": round(seconds, 3),
                        "rows": rows,
                        "bytes": size,
                        "rows_per_s": round(rows / seconds),
                        "rss_growth_mb": round((peak.peak - baseline) / 2**20, 1),
                        "is_hwm_reset": peak.is_hwm_reset,
                    }
                )
                progress(1)
        finally:
            requester.close()
            out.unlink(missing_ok=True)
    return {
        "rows": runs[0]["rows"],
        "bytes": runs[0]["bytes"],
        "runs": len(runs),
        "seconds_median": statistics.median(run["seconds"] for run in runs),
        "rows_per_s": round(statistics.median(run["rows_per_s"] for run in runs)),
        "rss_baseline_mb": round(baseline / 2**20, 1),
        "rss_growth_mb": max(run["rss_growth_mb"] for run in runs),
        "each_run": runs,
    }


# -- the dashboard's video page ---------------------------------------------------------------


class _CsrfFinder(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.token: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag == "input" and given.get("name") == "csrf_token":
            self.token = given.get("value")


def dashboard_missing() -> str | None:
    """Why the dashboard cannot be measured in this checkout, or None when it can."""
    if importlib.util.find_spec("vodwatch.dashboard") is None:
        return "not measured: dashboard missing (no vodwatch.dashboard in this checkout)"
    return None


def create_dashboard_account(url: str, tenant_id: int) -> None:
    from vodwatch.store.accounts import create_account

    db = Database(url)
    try:
        with db.write() as conn:
            create_account(
                conn, tenant_id, DASHBOARD_EMAIL, DASHBOARD_PASSWORD, int(time.time() * 1000)
            )
    finally:
        db.dispose()


def measure_dashboard(
    port: int, data: InsightsTenant, plan: Plan, progress: Progress
) -> dict[str, Any]:
    """Sign in through the login form, then time ``GET /dashboard/videos/{star}`` (the
    whole page, on loopback)."""
    base = f"http://127.0.0.1:{port}"
    with httpx2.Client(base_url=base, timeout=120, follow_redirects=False) as browser:
        login = browser.get("/dashboard/login")
        if login.status_code == 404:
            return {"measured": False, "why": "not measured: dashboard missing (404 on login)"}
        finder = _CsrfFinder()
        finder.feed(login.text)
        if finder.token is None:
            raise RuntimeError("no csrf_token input on /dashboard/login")
        signed_in = browser.post(
            "/dashboard/login",
            data={
                "email": DASHBOARD_EMAIL,
                "password": DASHBOARD_PASSWORD,
                "csrf_token": finder.token,
            },
        )
        if signed_in.status_code not in (302, 303):
            raise RuntimeError(f"dashboard login: {signed_in.status_code} {signed_in.text[:200]}")
        page = f"/dashboard/videos/{data.star_asset}"

        def fetch() -> float:
            started = time.perf_counter()
            response = browser.get(page)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{page}: {response.status_code} {response.text[:200]}")
            return elapsed

        for _ in range(plan.warm_up):
            fetch()
        timings: list[float] = []
        deadline = time.monotonic() + plan.budget_s
        while len(timings) < plan.samples and (
            len(timings) < plan.min_samples or time.monotonic() < deadline
        ):
            timings.append(fetch())
            progress(1)
    return {"measured": True, "page": page, **_percentiles(timings)}


# -- the whole part ---------------------------------------------------------------------------


def verdicts(case: str, result: dict[str, Any]) -> dict[str, Any]:
    """Each targeted figure of a measured case: its target and whether it is met."""
    out = {}
    for figure, (kind, target) in TARGETS[case].items():
        value = result[figure]
        met = value <= target if kind == "max" else value >= target
        out[figure] = {kind: target, "value": value, "met": met}
    return out


def measure_insights(
    url: str, data: InsightsTenant, plan: Plan, workdir: Path, bar: Bar
) -> dict[str, Any]:
    """Every case on the database at ``url`` (the insights tenant loaded): per case its
    figures and ``target``."""
    cases: dict[str, dict[str, Any]] = {}
    port = ingest.free_port()
    with ingest.vodwatch_server(url, port, 1, workdir / "insights-serve.log"):
        requester = Requester(port, data.tenant.tenant_id)
        try:
            for case in LATENCY_CASES:
                with bar(f"insights {case}", plan.samples, "req") as progress:
                    cases[case] = measure_latency(requester, case, data, plan, progress)
        finally:
            requester.close()
    for case, file_format in zip(EXPORT_CASES, ("csv", "xlsx"), strict=True):
        with bar(f"insights {case} ({data.visits:,} rows)", plan.export_runs, "run") as progress:
            cases[case] = measure_export(url, data, file_format, plan, workdir, progress)
    missing = dashboard_missing()
    if missing:
        cases[DASHBOARD_CASE] = {"measured": False, "why": missing}
    else:
        create_dashboard_account(url, data.tenant.tenant_id)
        with (
            ingest.vodwatch_server(url, port, 1, workdir / "insights-serve.log"),
            bar(f"insights {DASHBOARD_CASE}", plan.samples, "req") as progress,
        ):
            cases[DASHBOARD_CASE] = measure_dashboard(port, data, plan, progress)
    for case, result in cases.items():
        if result.get("measured", True):
            result["target"] = verdicts(case, result)
    return cases
