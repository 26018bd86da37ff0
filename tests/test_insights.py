"""The analytics endpoints (SPEC §9) against a brute-force model of sets of milliseconds, on
both backends: the videos summary (and its sorts), retention and distribution, one viewer's
heatmap, completion; the export equals the seed endpoint's pages concatenated."""

import csv
import io
import itertools
from fractions import Fraction
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FakeClock, add_tenant, client_for
from tests.helpers import new_session_id, report_rows, server_beacon
from tests.model import ms_set, percent, runs
from vodwatch.client import VodwatchAPIError, VodwatchClient
from vodwatch.formats import format_duration, format_visit_time
from vodwatch.report.export import HEADER
from vodwatch.store.database import Database
from vodwatch.store.tenants import set_completion_threshold

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
counter = itertools.count()
SORTS = ("lastVisit", "viewers", "visits", "watchTime", "coverage", "completionRate", "title")

# Media times on a 50 ms grid up to 12 s: small sets of milliseconds, durations that clamp,
# and round durations and thresholds, so that exact boundaries (a percent equal to the
# threshold, half a bucket covered) come up often.
media = st.integers(0, 240).map(lambda n: n / 20)
durations = st.sampled_from([1_000, 2_000, 4_000, 10_000]) | st.integers(1, 10_000)
thresholds = st.sampled_from([1, 25, 50, 75, 100]) | st.integers(1, 100)
segments = st.lists(st.tuples(media, media).map(sorted), max_size=3)


@st.composite
def worlds(draw):
    """Up to three videos (cataloged with a duration and maybe a threshold, or known only from
    beacons: no duration), up to four viewers, up to eight visits, a tenant threshold and
    maybe a time range."""
    videos = {}
    for n in range(draw(st.integers(1, 3))):
        cataloged = draw(st.booleans()) or n == 0
        videos[f"v{n}"] = {
            "title": draw(st.sampled_from(["Intro", "intro", "数学", "Zeta", "ä"])),
            "duration_ms": draw(durations) if cataloged else None,
            "threshold": draw(st.none() | thresholds) if cataloged else None,
        }
    users = [f"u{n}" for n in range(draw(st.integers(1, 4)))]
    visits = [
        {
            "user": draw(st.sampled_from(users)),
            "asset": draw(st.sampled_from(sorted(videos))),
            "ago": draw(st.integers(0, 5)) * 100,  # seconds before now: ties happen
            "beacons": draw(st.lists(segments, min_size=1, max_size=2)),
            "played": draw(st.integers(0, 90_000)),
        }
        for _ in range(draw(st.integers(1, 8)))
    ]
    tenant_threshold = draw(thresholds)
    window = draw(st.none() | st.tuples(st.integers(0, 5), st.integers(0, 5)).map(sorted))
    return videos, visits, tenant_threshold, window


def build(db: Database, http, clock: FakeClock, world) -> tuple[VodwatchClient, dict[str, Any]]:
    """Store ``world`` through the API; the client of its tenant and query parameters."""
    videos, visits, tenant_threshold, window = world
    tenant = add_tenant(db, f"t{next(counter)}")
    with db.write() as conn:
        set_completion_threshold(conn, tenant.authkey, tenant_threshold)
    client = client_for(http, tenant, clock)
    now = int(clock())
    for asset, video in videos.items():
        if video["duration_ms"] is not None:
            client.put_media(
                asset,
                video["title"],
                video["duration_ms"] / 1000,
                completionThreshold=video["threshold"],
            )
    for visit in visits:
        visit["session"] = new_session_id()
        visit["started"] = now - visit["ago"]
        for seq, played in enumerate(visit["beacons"], start=1):
            extra = {"startedAt": visit["started"]} if seq == 1 else {}
            client.send_beacons(
                server_beacon(
                    visit["session"],
                    seq,
                    user_id=visit["user"],
                    asset_id=visit["asset"],
                    segments=[list(pair) for pair in played],
                    played_ms=visit["played"] if seq == 1 else 0,
                    **extra,
                )
            )
    params: dict[str, Any] = {}
    if window is not None:
        params = {"startTime": now - window[1] * 100, "endTime": now - window[0] * 100}
    return client, params


def in_range(visit: dict[str, Any], params: dict[str, Any]) -> bool:
    start: int = params.get("startTime", 0)
    end: int = params.get("endTime", 2**40)
    started: int = visit["started"]
    return start <= started <= end


def points(visit) -> set[int]:
    return ms_set((round(s * 1000), round(e * 1000)) for b in visit["beacons"] for s, e in b)


class Model:
    """What every endpoint must answer, by counting milliseconds."""

    def __init__(self, world, params) -> None:
        self.videos, visits, self.tenant_threshold, _ = world
        self.visits = [v for v in visits if in_range(v, params)]

    def duration(self, asset: str) -> int | None:
        duration_ms: int | None = self.videos[asset]["duration_ms"]
        return duration_ms

    def title(self, asset: str) -> str:
        """Server beacons carry no title: a video out of the catalog has none."""
        return self.videos[asset]["title"] if self.duration(asset) is not None else ""

    def threshold(self, asset: str) -> int:
        own: int | None = self.videos[asset]["threshold"]
        return self.tenant_threshold if own is None else own

    def clamp(self, asset: str, covered: set[int]) -> set[int]:
        duration = self.duration(asset)
        return covered if duration is None else {p for p in covered if 0 <= p < duration}

    def united(self, user: str, asset: str) -> set[int]:
        mine = [v for v in self.visits if v["user"] == user and v["asset"] == asset]
        return self.clamp(asset, set().union(*(points(v) for v in mine)))

    def percent(self, asset: str, covered: set[int]) -> int:
        return int(percent(covered, self.duration(asset))[:-1])

    def completed(self, asset: str, covered: set[int]) -> bool:
        return self.duration(asset) is not None and (
            self.percent(asset, covered) >= self.threshold(asset)
        )

    def viewers(self, asset: str) -> list[str]:
        return sorted({v["user"] for v in self.visits if v["asset"] == asset})

    def video_rows(self) -> dict[str, dict[str, Any]]:
        rows = {}
        for asset in sorted({v["asset"] for v in self.visits}):
            viewers = self.viewers(asset)
            mine = [v for v in self.visits if v["asset"] == asset]
            covered = sum(len(self.united(user, asset)) for user in viewers)
            completed = sum(self.completed(asset, self.united(user, asset)) for user in viewers)
            duration = self.duration(asset)
            watch = sum(v["played"] for v in mine)
            rows[asset] = {
                "assetId": asset,
                "videoTitle": self.title(asset),
                "duration": format_duration(duration),
                "viewers": len(viewers),
                "visits": len(mine),
                "watchTimeMs": watch,
                "visitTime": format_visit_time(watch),
                "meanCoverage": f"{covered * 100 // (len(viewers) * duration) if duration else 0}%",
                # Every beacon here plays at rate 1 in a visible page: all of it counts.
                "meanCountedCoverage": (
                    f"{covered * 100 // (len(viewers) * duration) if duration else 0}%"
                ),
                "completedViewers": completed,
                "completionRate": f"{completed * 100 // len(viewers)}%",
                "completionThreshold": self.threshold(asset),
                "lastVisit": max(v["started"] for v in mine),
            }
        return rows


def sort_value(row: dict[str, Any], sort: str, model: Model) -> Any:
    """What the rows are ordered by, from the model: exact ratios, code point order."""
    asset = row["assetId"]
    duration = model.duration(asset)
    viewers = model.viewers(asset)
    if sort == "coverage":
        covered = sum(len(model.united(user, asset)) for user in viewers)
        return Fraction(covered, len(viewers) * duration) if duration else Fraction(0)
    if sort == "completionRate":
        return Fraction(row["completedViewers"], row["viewers"])
    key = {"lastVisit": "lastVisit", "viewers": "viewers", "visits": "visits"}
    key |= {"watchTime": "watchTimeMs", "title": "videoTitle"}
    return row[key[sort]]


@given(world=worlds(), sort=st.sampled_from(SORTS), order=st.sampled_from(["desc", "asc"]))
@SETTINGS
def test_videos_summary_and_every_sort(db, http, clock, world, sort, order):
    client, params = build(db, http, clock, world)
    model = Model(world, params)
    expected = model.video_rows()
    rows = []
    page = 1
    while True:
        data = client.call(
            "GET",
            "/vod/webapi/statistics/vod/videos",
            params={**params, "sort": sort, "order": order, "page": page, "pageSize": 2},
        )["data"]
        assert data["total"] == len(expected)
        assert data["last_page"] == max(1, -(-len(expected) // 2))
        rows += data["data"]
        if page >= data["last_page"]:
            break
        page += 1
    assert {row["assetId"]: row for row in rows} == expected
    ordered = sorted(expected.values(), key=lambda row: row["assetId"])
    ordered.sort(key=lambda row: sort_value(row, sort, model), reverse=order == "desc")
    assert [row["assetId"] for row in rows] == [row["assetId"] for row in ordered]


@given(world=worlds(), buckets=st.sampled_from([10, 17, 100, 1000]))
@SETTINGS
def test_retention_and_distribution(db, http, clock, world, buckets):
    client, params = build(db, http, clock, world)
    model = Model(world, params)
    _, all_visits, _, _ = world
    for asset in sorted(model.videos):
        is_known = model.duration(asset) is not None or any(v["asset"] == asset for v in all_visits)
        if not is_known:  # neither in the catalog nor ever seen
            with pytest.raises(VodwatchAPIError) as refused:
                client.call(
                    "GET", "/vod/webapi/statistics/vod/retention", params={"assetId": asset}
                )
            assert (refused.value.status, refused.value.result) == (404, 40400)
            continue
        data = client.call(
            "GET",
            "/vod/webapi/statistics/vod/retention",
            params={**params, "assetId": asset, "buckets": buckets},
        )["data"]
        viewers = model.viewers(asset)
        visits = [v for v in model.visits if v["asset"] == asset]
        duration = model.duration(asset)
        assert (data["assetId"], data["buckets"]) == (asset, buckets)
        assert (data["totalViewers"], data["totalVisits"]) == (len(viewers), len(visits))
        if duration is None:
            assert data["duration"] == 0
            assert data["viewers"] == data["views"] == []
            assert data["distribution"] == [len(viewers)] + [0] * 9
            continue
        bounds = [(i * duration // buckets, (i + 1) * duration // buckets) for i in range(buckets)]

        def watched(covered: set[int], bounds=bounds) -> list[int]:
            return [
                int(high > low and 2 * len(covered & set(range(low, high))) >= high - low)
                for low, high in bounds
            ]

        expected_viewers = [0] * buckets
        distribution = [0] * 10
        for user in viewers:
            covered = model.united(user, asset)
            expected_viewers = [
                a + b for a, b in zip(expected_viewers, watched(covered), strict=True)
            ]
            distribution[min(9, model.percent(asset, covered) // 10)] += 1
        expected_views = [0] * buckets
        for visit in visits:
            covered = model.clamp(asset, points(visit))
            expected_views = [a + b for a, b in zip(expected_views, watched(covered), strict=True)]
        assert data["duration"] == duration
        assert data["viewers"] == expected_viewers
        assert data["views"] == expected_views
        assert data["distribution"] == distribution


@given(world=worlds())
@SETTINGS
def test_one_viewers_heatmap_and_visits(db, http, clock, world):
    client, params = build(db, http, clock, world)
    model = Model(world, params)
    _, all_visits, _, _ = world
    for user, asset in sorted({(v["user"], v["asset"]) for v in all_visits}):
        mine = [v for v in model.visits if v["user"] == user and v["asset"] == asset]
        call = {**params, "userId": user, "assetId": asset}
        if not mine:
            with pytest.raises(VodwatchAPIError) as refused:
                client.call("GET", "/vod/webapi/statistics/vod/viewer", params=call)
            assert (refused.value.status, refused.value.result) == (404, 40400)
            continue
        data = client.call("GET", "/vod/webapi/statistics/vod/viewer", params=call)["data"]
        covered = model.united(user, asset)
        duration = model.duration(asset)
        watch = sum(v["played"] for v in mine)
        mine.sort(key=lambda v: (v["started"], v["session"]), reverse=True)
        assert data == {
            "userId": user,
            "userName": "",
            "assetId": asset,
            "videoTitle": model.title(asset),
            "duration": duration or 0,
            "coveredMs": len(covered),
            "visitRadio": percent(covered, duration),
            "countedMs": len(covered),  # rate 1, visible: all of it counts
            "countedRadio": percent(covered, duration),
            "watchTimeMs": watch,
            "visitTime": format_visit_time(watch),
            "completed": model.completed(asset, covered),
            "completionThreshold": model.threshold(asset),
            "intervals": [list(run) for run in runs(covered)],
            "countedIntervals": [list(run) for run in runs(covered)],
            "visits": [
                {
                    "sessionId": v["session"],
                    "startTime": v["started"],
                    "watchTimeMs": v["played"],
                    "visitTime": format_visit_time(v["played"]),
                    "coveredMs": len(model.clamp(asset, points(v))),
                    "visitRadio": percent(model.clamp(asset, points(v)), duration),
                    "countedMs": len(model.clamp(asset, points(v))),
                    "intervals": [list(run) for run in runs(model.clamp(asset, points(v)))],
                    "countedIntervals": [list(run) for run in runs(model.clamp(asset, points(v)))],
                }
                for v in mine
            ],
        }


def export(client: VodwatchClient, **params: Any) -> Any:
    """The raw export answer (a file, not the JSON envelope)."""
    pairs = [(name, str(value)) for name, value in params.items() if value is not None]
    path = "/vod/webapi/statistics/vod/watch/export"
    headers = client.signed_headers("GET", path, pairs, b"")
    return client._http.get(client.base_url + path, params=list(pairs), headers=headers)


def test_the_clients_analytics_methods(client: VodwatchClient):
    client.put_media("a1", "Safety", duration=10)
    client.send_beacons(
        server_beacon(new_session_id(), 1, user_id="u1", asset_id="a1", segments=[[0, 10]])
    )
    assert client.videos(sort="title")["data"]["data"][0]["completedViewers"] == 1
    assert client.retention("a1", buckets=10)["data"]["viewers"] == [1] * 10
    assert client.viewer("u1", "a1")["data"]["intervals"] == [[0, 10_000]]
    rows = list(csv.reader(io.StringIO(client.export(groupBy="userVideo").decode("utf-8-sig"))))
    assert rows[1][:3] == ["u1", "", "a1"]
    assert openpyxl.load_workbook(io.BytesIO(client.export("xlsx"))).active.max_row == 2
    with pytest.raises(VodwatchAPIError) as refused:
        client.export("pdf")
    assert refused.value.result == 40010


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    assert text.endswith("\r\n")
    return list(csv.reader(io.StringIO(text, newline="")))


def seed_as_export(row: dict[str, Any], completed: bool) -> list[str]:
    six = [row[name] for name in HEADER[:6]]
    started, watch, covered = str(row["startedAt"]), str(row["watchMs"]), str(row["coveredMs"])
    return [*six, started, watch, covered, "true" if completed else "false"]


@given(world=worlds(), group_by=st.sampled_from(["visit", "userVideo"]))
@SETTINGS
def test_export_rows_are_the_seed_endpoints_pages(db, http, clock, world, group_by):
    client, params = build(db, http, clock, world)
    model = Model(world, params)
    seed = report_rows(client, **params, groupBy=group_by, pageSize=3)
    expected = []
    for row in seed:
        asset = row["assetId"]
        if group_by == "visit":
            visit = next(v for v in model.visits if v["session"] == row["sessionId"])
            covered = model.clamp(asset, points(visit))
        else:
            covered = model.united(row["userId"], asset)
        expected.append(seed_as_export(row, model.completed(asset, covered)))
    rows = csv_rows(export(client, **params, groupBy=group_by, page=2, pageSize=1))
    assert rows == [list(HEADER), *expected]
    book = openpyxl.load_workbook(
        io.BytesIO(export(client, **params, groupBy=group_by, format="xlsx").content)
    )
    sheet = [
        ["true" if c is True else "false" if c is False else str(c) for c in line]
        for line in book.active.iter_rows(values_only=True)
    ]
    assert sheet == [list(HEADER), *expected]
