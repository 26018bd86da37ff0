"""Synthetic but realistic viewing: tenants, videos, viewers and visits with a mix of behaviour.

Deterministic for a seed. Everything is integer milliseconds, as in the service.

Behaviour mix per visit (shares from course-platform analytics folklore, not a measurement):
completers, drop-offs, skimmers who seek forward, rewatchers who seek back, resumed sittings that
start mid-video, and 1.5x/2x listeners. Tenant sizes are skewed (log-normal weights), viewers
and videos inside a tenant are Zipf-like (a few popular, a long tail).
"""

import bisect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

DAY_MS = 86_400_000
EPOCH_MS = 1_764_000_000_000  # 2025-11-24: the newest visit starts before this


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: int
    name: str
    viewers: int  # user ids u{tenant}-{n}
    videos: int  # asset ids {tenant}{n:06d}
    weight: float  # share of all visits


@dataclass(frozen=True, slots=True)
class Visit:
    tenant_id: int
    session_id: str
    user_id: str
    asset_id: str
    started_at_ms: int
    duration_ms: int  # of the video
    segments: tuple[tuple[int, int], ...]  # media ranges played, in order (may overlap)
    rate: float  # playback rate

    @property
    def watch_ms(self) -> int:
        return int(sum(end - start for start, end in self.segments) / self.rate)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One beacon as a player would send it: what was played since the previous one."""

    session_id: str
    seq: int
    user_id: str
    asset_id: str
    at_ms: int  # wall clock when sent
    segments: tuple[tuple[int, int], ...]
    played_ms: int
    duration_ms: int


def make_tenants(count: int, viewers: int, videos: int, seed: int = 1) -> list[Tenant]:
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 0.8) for _ in range(count)]
    total = sum(weights)
    tenants = []
    for index, weight in enumerate(weights, start=1):
        share = weight / total
        tenants.append(
            Tenant(
                tenant_id=index,
                name=f"tenant-{index}",
                viewers=max(1, round(viewers * share)),
                videos=max(1, round(videos * share)),
                weight=share,
            )
        )
    return tenants


def video_duration_ms(tenant_id: int, video: int) -> int:
    """Log-normal around 10 minutes, from 1 to 90 minutes; stable per video."""
    rng = random.Random(tenant_id * 1_000_003 + video)
    minutes = min(90.0, max(1.0, rng.lognormvariate(math.log(10), 0.7)))
    return int(minutes * 60_000)


def asset_id(tenant_id: int, video: int) -> str:
    return f"{tenant_id:03d}{video:06d}"


def video_title(tenant_id: int, video: int) -> str:
    subjects = (
        "Mathematics",
        "Physics",
        "数学",
        "Compliance",
        "Safety",
        "History",
        "English",
        "Chemistry",
        "物理",
        "Onboarding",
        "Finance",
        "Biology",
    )
    rng = random.Random(tenant_id * 7919 + video)
    return f"{rng.choice(subjects)} {rng.randrange(100, 500)}: lesson {video}"


def _zipf_picker(rng: random.Random, count: int, exponent: float = 1.0):
    cumulative = list(itertools.accumulate(1 / (rank**exponent) for rank in range(1, count + 1)))
    top = cumulative[-1]
    return lambda: bisect.bisect_left(cumulative, rng.random() * top)


def _play(rng: random.Random, duration: int) -> tuple[tuple[tuple[int, int], ...], float]:
    roll = rng.random()
    rate = 1.0
    if roll < 0.35:  # completer, maybe a pause (same ranges)
        segments = [(0, duration)]
    elif roll < 0.60:  # drop-off
        segments = [(0, max(1_000, int(duration * min(1.0, rng.expovariate(3.0)))))]
    elif roll < 0.75:  # skimmer: short plays, forward seeks
        segments, position = [], 0
        while position < duration:
            length = rng.randrange(5_000, 60_000)
            segments.append((position, min(duration, position + length)))
            position += length + rng.randrange(10_000, 180_000)
    elif roll < 0.85:  # rewatcher: plays, seeks back, plays again
        end = max(2_000, int(duration * rng.uniform(0.3, 1.0)))
        back = rng.randrange(0, end)
        segments = [(0, end), (back, min(duration, back + rng.randrange(10_000, 120_000)))]
    elif roll < 0.95:  # resumed sitting: starts where a previous one stopped
        start = rng.randrange(0, max(1, duration - 1_000))
        segments = [(start, min(duration, start + rng.randrange(30_000, 900_000)))]
    else:  # faster listener
        rate = rng.choice((1.5, 2.0))
        segments = [(0, max(1_000, int(duration * rng.uniform(0.5, 1.0))))]
    return tuple((s, e) for s, e in segments if e > s), rate


def generate_visits(
    tenants: list[Tenant], count: int, seed: int = 2, days: int = 180
) -> Iterator[Visit]:
    """``count`` visits spread over the tenants by weight, newest up to ``EPOCH_MS``."""
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(t.weight for t in tenants))
    pickers = {
        t.tenant_id: (_zipf_picker(rng, t.viewers, 0.8), _zipf_picker(rng, t.videos, 1.0))
        for t in tenants
    }
    for n in range(count):
        tenant = tenants[min(len(tenants) - 1, bisect.bisect_left(cumulative, rng.random()))]
        pick_viewer, pick_video = pickers[tenant.tenant_id]
        video = pick_video()
        duration = video_duration_ms(tenant.tenant_id, video)
        segments, rate = _play(rng, duration)
        yield Visit(
            tenant_id=tenant.tenant_id,
            session_id=f"s{seed:x}{n:09d}",
            user_id=f"u{tenant.tenant_id}-{pick_viewer()}",
            asset_id=asset_id(tenant.tenant_id, video),
            started_at_ms=EPOCH_MS - rng.randrange(days * DAY_MS),
            duration_ms=duration,
            segments=segments,
            rate=rate,
        )


def heartbeats(visit: Visit, every_ms: int = 10_000) -> list[Heartbeat]:
    """The beacons a player sends for ``visit``: one per ``every_ms`` of playing (wall clock),
    each with the media ranges played since the previous one."""
    beats: list[Heartbeat] = []
    pending: list[tuple[int, int]] = []
    pending_ms = 0.0
    clock = visit.started_at_ms
    media_step = int(every_ms * visit.rate)

    def emit() -> None:
        nonlocal pending, pending_ms
        beats.append(
            Heartbeat(
                visit.session_id,
                len(beats) + 1,
                visit.user_id,
                visit.asset_id,
                clock,
                tuple(pending),
                int(pending_ms),
                visit.duration_ms,
            )
        )
        pending, pending_ms = [], 0.0

    for start, end in visit.segments:
        position = start
        while position < end:
            step = min(media_step - int(pending_ms * visit.rate), end - position)
            pending.append((position, position + step))
            pending_ms += step / visit.rate
            clock += int(step / visit.rate)
            position += step
            if pending_ms * visit.rate >= media_step:
                emit()
    if pending:
        emit()
    return beats


def insights_tenant(tenant_id: int, star_viewers: int) -> Tenant:
    """A large tenant for the analytics benchmark: twice ``star_viewers`` viewers, and a video
    (its first, the *star*) that ``star_viewers`` of them watched."""
    return Tenant(
        tenant_id=tenant_id,
        name=f"tenant-{tenant_id}-insights",
        viewers=2 * star_viewers,
        videos=max(10, star_viewers // 25),
        weight=0.0,  # not one of the tenants ``generate_visits`` spreads visits over
    )


def generate_star_visits(
    tenant: Tenant, count: int, star_viewers: int, seed: int = 7, days: int = 180
) -> Iterator[Visit]:
    """``count`` visits of ``tenant``: each of ``star_viewers`` viewers (drawn from all its
    viewers, popular or not) visits the star video (``asset_id(tenant, 0)``) once and a
    quarter of them again; the other visits are Zipf-like over the other videos and every
    viewer, as in ``generate_visits``. The star video has exactly ``star_viewers`` viewers."""
    rng = random.Random(seed)
    watchers = rng.sample(range(tenant.viewers), star_viewers)
    star = [viewer for viewer in watchers for _ in range(2 if rng.random() < 0.25 else 1)]
    if len(star) > count:
        raise ValueError(f"{count} visits cannot hold the star video's {len(star)}")
    pick_viewer = _zipf_picker(rng, tenant.viewers, 0.8)
    pick_other = _zipf_picker(rng, tenant.videos - 1, 1.0)
    for n in range(count):
        if n < len(star):
            viewer, video = star[n], 0
        else:
            viewer, video = pick_viewer(), 1 + pick_other()
        duration = video_duration_ms(tenant.tenant_id, video)
        segments, rate = _play(rng, duration)
        yield Visit(
            tenant_id=tenant.tenant_id,
            session_id=f"s{seed:x}{n:09d}",
            user_id=f"u{tenant.tenant_id}-{viewer}",
            asset_id=asset_id(tenant.tenant_id, video),
            started_at_ms=EPOCH_MS - rng.randrange(days * DAY_MS),
            duration_ms=duration,
            segments=segments,
            rate=rate,
        )
