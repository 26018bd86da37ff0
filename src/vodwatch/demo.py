"""The demo school's viewing, planned: pure, no I/O, the same plan for the same seed.

``plan_demo`` makes a few videos (``VIDEOS``) and a few hundred viewers, and what each viewer
did on each video they opened over the last three weeks, as sittings (one page load, one
visit each) of runs of playing. ``sitting_beacons`` turns a sitting into the beacons the
browser tracker (``vodwatch.js``) sends for it; ``vodwatch.demo_loader`` sends them through the
service. What the viewers do, each a figure the dashboard shows:

- **drop-off**: most viewers start a video, fewer get far; where each one finally stops is
  drawn from a curve that falls over the video, so the retention curve does;
- **skipped intro and credits**: on videos with opening titles most viewers seek past them
  after a second or two, and most of those who get to the end leave when the credits start
  (the first buckets and the last ones are lower than their neighbours);
- **a rewatched section**: each video has a hard part that many viewers play twice in a row
  (watch time, not coverage), and some come back days later to review it (``views`` above
  ``viewers`` there);
- **resumed sittings**: a long video is often watched in two or three visits, days apart, each
  resuming a little before where the previous one stopped;
- **forward seeks**, pauses, some viewers at 1.25x to 2x, and a few who press play and leave
  within seconds (a page opened without pressing play sends nothing at all);
- about one viewer in six completes a video they opened (reaches its threshold), the
  compliance training (mandatory, threshold 80 %) more often than the others.

Times are integer milliseconds: media positions in the video, wall-clock instants (unix ms)
for when things happen.
"""

import itertools
import math
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass

from vodwatch.intervals import Interval

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
PERIOD_DAYS = 21  # the viewing spreads over the three weeks before the plan's end
# The demo's trackers report every 60 s of playing (``heartbeatSeconds: 60``; the tracker's
# default is 10): the same watch time and coverage in a fraction of the beacons, so that the
# default demo loads in seconds. Beacons at pauses, seeks and the end go at once, as always.
HEARTBEAT_MS = 60_000
LOCAL_UTC_OFFSET_MS = 8 * HOUR_MS  # the school's clock (China Standard Time)
SESSION_ID_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True, slots=True)
class DemoVideo:
    asset_id: str
    title: str
    duration_ms: int
    intro_ms: int  # opening titles most viewers seek past (0: none)
    credits_ms: int  # closing credits most viewers leave at
    hard_part: Interval  # the section many viewers play twice
    audience: float  # share of the viewers who open it
    finish_bonus: float = 0.0  # how much likelier than elsewhere viewers are to finish it
    completion_threshold: int | None = None  # percent; None: the tenant's (90)


VIDEOS = (
    DemoVideo(
        "demo-calculus-01",
        "高等数学 第1讲 Limits 极限",
        (42 * 60 + 30) * 1000,
        intro_ms=28_000,
        credits_ms=35_000,
        hard_part=((15 * 60 + 20) * 1000, (19 * 60 + 40) * 1000),  # the ε-δ definition
        audience=0.6,
    ),
    DemoVideo(
        "demo-python-03",
        "Python 入门 — Lists 列表",
        (17 * 60 + 45) * 1000,
        intro_ms=10_000,
        credits_ms=20_000,
        hard_part=((8 * 60 + 10) * 1000, (10 * 60 + 30) * 1000),  # slicing
        audience=0.5,
    ),
    DemoVideo(
        "demo-compliance-2025",
        "Compliance training 2025 · 信息安全合规培训",
        20 * 60 * 1000,
        intro_ms=45_000,
        credits_ms=25_000,
        hard_part=(11 * 60 * 1000, (13 * 60 + 30) * 1000),  # spotting a phishing mail
        audience=0.92,
        finish_bonus=0.22,  # mandatory
        completion_threshold=80,
    ),
    DemoVideo(
        "demo-english-u3",
        "English Listening 英语听力 Unit 3",
        (12 * 60 + 10) * 1000,
        intro_ms=0,
        credits_ms=15_000,
        hard_part=((5 * 60 + 5) * 1000, (6 * 60 + 40) * 1000),  # the fast dialogue
        audience=0.45,
    ),
    DemoVideo(
        "demo-lab-safety",
        "实验室安全须知 Lab Safety",
        (6 * 60 + 20) * 1000,
        intro_ms=8_000,
        credits_ms=10_000,
        hard_part=(3 * 60 * 1000, (3 * 60 + 50) * 1000),  # using the extinguisher
        audience=0.55,
        finish_bonus=0.1,
    ),
)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁郑谢宋唐许韩冯邓曹"
_GIVEN_NAMES = (
    *"伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚",
    *("浩然", "子涵", "欣怡", "梓轩", "雨桐", "宇航", "思远", "嘉怡", "一鸣", "晓东"),
    *("文博", "佳琪", "天宇", "若曦", "志强", "美玲", "俊杰", "海燕"),
)
_FIRST_NAMES = (
    *("Emma", "Liam", "Olivia", "Noah", "Sophie", "Lucas", "Mia", "Elias", "Hannah", "Felix"),
    *("Chloé", "Mateo", "Anna", "Jonas", "Laura", "David", "Sarah", "Tom", "Julia", "Ben"),
    *("Clara", "Leon", "Marie", "Oscar", "Lena", "Hugo", "Ava", "Samuel", "Nora", "Daniel"),
)
_LAST_NAMES = (
    *("Müller", "Smith", "Martin", "García", "Rossi", "Schmidt", "Dubois", "Johnson", "Novak"),
    *("Jensen", "Silva", "Kowalski", "Brown", "Weber", "Fischer", "López", "Bernard"),
    *("Nielsen", "Costa", "Wilson"),
)


@dataclass(frozen=True, slots=True)
class DemoViewer:
    user_id: str
    user_name: str


@dataclass(frozen=True, slots=True)
class Play:
    """One run of playing, ``start_ms`` to ``end_ms`` of the video at ``rate``; then the
    viewer pauses for ``pause_ms`` of wall-clock time, or seeks to the next run's start."""

    start_ms: int
    end_ms: int
    rate: float = 1.0
    pause_ms: int = 0


@dataclass(frozen=True, slots=True)
class Sitting:
    """One visit: a page load whose video played, from its first ``playing`` event at
    ``starts_at_ms`` (unix ms)."""

    session_id: str
    user_id: str
    asset_id: str
    starts_at_ms: int
    plays: tuple[Play, ...]

    @property
    def wall_ms(self) -> int:
        return sum(
            _wall_ms(play.end_ms - play.start_ms, play.rate) + play.pause_ms for play in self.plays
        )


@dataclass(frozen=True, slots=True)
class PlannedBeacon:
    """One beacon as the tracker sends it, at ``at_ms`` (unix ms)."""

    at_ms: int
    session_id: str
    seq: int
    segments: tuple[Interval, ...]  # media ranges played since the previous beacon
    played_ms: int
    position_ms: int
    is_ended: bool


@dataclass(frozen=True, slots=True)
class DemoPlan:
    videos: tuple[DemoVideo, ...]
    viewers: tuple[DemoViewer, ...]
    sittings: tuple[Sitting, ...]  # by start
    starts_at_ms: int  # before the first sitting: the catalog is made then
    ends_at_ms: int  # every sitting is over by then

    def video(self, asset_id: str) -> DemoVideo:
        return next(video for video in self.videos if video.asset_id == asset_id)


def plan_demo(viewer_count: int, seed: int, ends_at_ms: int) -> DemoPlan:
    """The viewing of ``viewer_count`` viewers over the ``PERIOD_DAYS`` before ``ends_at_ms``.
    The same arguments give the same plan; the same seed with another end, the same viewers
    and sittings at other instants."""
    rng = random.Random(seed)  # noqa: S311 - made-up viewing, reproducible by design
    starts_at_ms = ends_at_ms - PERIOD_DAYS * DAY_MS
    viewers = tuple(plan_viewer(rng, number) for number in range(1, viewer_count + 1))
    sittings: list[Sitting] = []
    for viewer in viewers:
        engagement = rng.betavariate(2, 3)  # how far this viewer tends to get
        rate = rng.choices((1.0, 1.25, 1.5, 2.0), weights=(86, 5, 6, 3))[0]
        opened = [video for video in VIDEOS if rng.random() < video.audience]
        for video in opened or [rng.choice(VIDEOS)]:
            runs = plan_viewing(rng, video, engagement, rate)
            sittings += place_sittings(rng, viewer, video, runs, starts_at_ms, ends_at_ms)
    sittings.sort(key=lambda sitting: (sitting.starts_at_ms, sitting.session_id))
    # The catalog is made an hour before anyone watches (a sitting moved earlier to end in
    # time may start before the period).
    catalog_at_ms = min(starts_at_ms, sittings[0].starts_at_ms) - HOUR_MS
    return DemoPlan(VIDEOS, viewers, tuple(sittings), catalog_at_ms, ends_at_ms)


def plan_viewer(rng: random.Random, number: int) -> DemoViewer:
    """Seven viewers in ten have Chinese names, the others Western ones."""
    if rng.random() < 0.7:
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN_NAMES)
    else:
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    return DemoViewer(f"demo-{number:04d}", name)


def plan_viewing(
    rng: random.Random, video: DemoVideo, engagement: float, rate: float
) -> list[list[Play]]:
    """What one viewer plays of ``video``: the runs of each of their sittings, in order.
    ``engagement`` (0 to 1) makes getting to the end likelier; ``rate`` is their speed."""
    duration = video.duration_ms
    if rng.random() < 0.05:  # presses play, leaves within seconds
        return [[Play(0, rng.randrange(2_000, 8_000))]]
    start = 0
    if video.intro_ms and rng.random() < 0.8:  # plays a moment, seeks past the intro
        start = video.intro_ms + rng.randrange(0, 3_000)
    if rng.random() < 0.02 + 0.22 * engagement + video.finish_bonus:
        # Gets to the end: most leave as the credits start, some watch them out.
        stop = (
            duration if rng.random() < 0.3 else duration - video.credits_ms - rng.randrange(2_000)
        )
    else:  # drops off somewhere before 90 %, early more often than late
        share = 1.0
        while share >= 0.9:
            share = 0.02 + rng.expovariate(2.4)
        stop = int(duration * share)
    stop = max(stop, start + 5_000)
    cuts: list[int] = []
    is_long = stop - start > 15 * MINUTE_MS
    if stop - start > 2 * MINUTE_MS and rng.random() < (0.6 if is_long else 0.15):
        # Stops and comes back: once, or twice on a long video.
        breaks = rng.choice((1, 2)) if is_long else 1
        cuts = sorted(rng.randrange(start + MINUTE_MS, stop) for _ in range(breaks))
    bounds = [start, *cuts, stop]
    sittings = []
    for index, (begin, end) in enumerate(itertools.pairwise(bounds)):
        if index:  # resumes a little before where the previous sitting stopped
            begin = max(0, begin - rng.randrange(3_000, 20_000))
        runs = _sitting_runs(rng, video, begin, end, rate)
        if index == 0 and start:
            runs.insert(0, Play(0, rng.randrange(1_000, 4_000), rate))
        sittings.append(runs)
    low, high = video.hard_part
    if start <= high <= stop and rng.random() < 0.35:  # a review, days later
        sittings.append([Play(max(0, low - rng.randrange(0, 15_000)), high, rate)])
    return sittings


def _sitting_runs(
    rng: random.Random, video: DemoVideo, begin: int, end: int, rate: float
) -> list[Play]:
    """Playing ``begin`` to ``end``, with perhaps a replay of the hard part, a forward seek
    and a pause."""
    points = [(begin, end)]
    low, high = video.hard_part
    if begin <= high < end and rng.random() < 0.45:  # replays the hard part at once
        again = min(high, max(begin, low) + rng.randrange(0, 20_000))
        points = [(begin, high), (again, end)]
    if rng.random() < 0.2 and points[-1][1] - points[-1][0] > 4 * MINUTE_MS:
        first, last = points[-1]  # skims: seeks forward 30 s to 2.5 min
        at = rng.randrange(first + MINUTE_MS, last - 2 * MINUTE_MS)
        points[-1:] = [(first, at), (min(last, at + rng.randrange(30_000, 150_000)), last)]
    runs = [Play(a, b, rate) for a, b in points if b > a]
    if rng.random() < 0.3:  # pauses once, 1 to 15 minutes
        index = rng.randrange(len(runs))
        run = runs[index]
        if run.end_ms - run.start_ms > 20_000:
            at = rng.randrange(run.start_ms + 10_000, run.end_ms - 10_000)
            pause = rng.randrange(MINUTE_MS, 15 * MINUTE_MS)
            runs[index : index + 1] = [
                Play(run.start_ms, at, rate, pause),
                Play(at, run.end_ms, rate, run.pause_ms),
            ]
    return runs


def place_sittings(
    rng: random.Random,
    viewer: DemoViewer,
    video: DemoVideo,
    runs: Sequence[list[Play]],
    starts_at_ms: int,
    ends_at_ms: int,
) -> list[Sitting]:
    """The sittings of one viewer on one video in time: the first at a waking hour of a day
    of the period, each next one hours to days after the previous one ended, all over by
    ``ends_at_ms``."""
    at = _waking_instant(rng, starts_at_ms, ends_at_ms)
    placed = []
    for plays in runs:
        session_id = "".join(rng.choices(SESSION_ID_ALPHABET, k=22))
        sitting = Sitting(session_id, viewer.user_id, video.asset_id, at, tuple(plays))
        placed.append(sitting)
        hours = rng.randrange(2, 12) if rng.random() < 0.4 else 24 * rng.randrange(1, 5)
        at += sitting.wall_ms + hours * HOUR_MS
    # Drawn whether needed or not, so that the draws do not depend on the time of day.
    margin_ms = rng.randrange(MINUTE_MS, 30 * HOUR_MS)
    last = placed[-1]
    late_ms = last.starts_at_ms + last.wall_ms - ends_at_ms
    if late_ms <= 0:
        return placed
    # Would run past the end: all of them earlier, to end a while before it.
    late_ms += margin_ms
    return [
        Sitting(s.session_id, s.user_id, s.asset_id, s.starts_at_ms - late_ms, s.plays)
        for s in placed
    ]


def _waking_instant(rng: random.Random, starts_at_ms: int, ends_at_ms: int) -> int:
    """An instant between 07:00 and 24:00 on the school's clock, on one of the days of the
    period before the day of ``ends_at_ms`` (the same draws whatever the time of day)."""
    days = (ends_at_ms - starts_at_ms) // DAY_MS
    today = (ends_at_ms + LOCAL_UTC_OFFSET_MS) // DAY_MS * DAY_MS - LOCAL_UTC_OFFSET_MS
    return today - rng.randrange(1, days + 1) * DAY_MS + rng.randrange(7 * HOUR_MS, DAY_MS)


def sitting_beacons(
    sitting: Sitting, duration_ms: int, heartbeat_ms: int = HEARTBEAT_MS
) -> list[PlannedBeacon]:
    """The beacons the tracker sends for ``sitting``: an empty one at the first ``playing``
    (seq 1), one per ``heartbeat_ms`` of playing, and one whenever a run ends (a pause, a
    seek, the end of the video, the page closed), each with what played since the previous
    one."""
    beacons: list[PlannedBeacon] = []
    clock = sitting.starts_at_ms
    pending: list[Interval] = []
    played = 0

    def send(position: int) -> None:
        nonlocal pending, played
        beacons.append(
            PlannedBeacon(
                clock,
                sitting.session_id,
                len(beacons) + 1,
                tuple(pending),
                played,
                position,
                position >= duration_ms,
            )
        )
        pending, played = [], 0

    send(sitting.plays[0].start_ms)
    for play in sitting.plays:
        position = play.start_ms
        since_beat = 0
        while position < play.end_ms:
            wall = min(heartbeat_ms - since_beat, _wall_ms(play.end_ms - position, play.rate))
            media = min(play.end_ms - position, round(wall * play.rate))
            pending = (
                [(pending[0][0], position + media)] if pending else [(position, position + media)]
            )
            played += wall
            since_beat += wall
            clock += wall
            position += media
            if since_beat >= heartbeat_ms and position < play.end_ms:
                send(position)
                since_beat = 0
        send(position)
        clock += play.pause_ms
    return beacons


def viewer_beacons(
    plan: DemoPlan, heartbeat_ms: int = HEARTBEAT_MS
) -> dict[str, list[tuple[Sitting, PlannedBeacon]]]:
    """Every viewer's beacons in the order their browser sends them (by time; the sittings
    of one viewer on two videos may overlap), with the sitting of each."""
    by_viewer: dict[str, list[tuple[Sitting, PlannedBeacon]]] = {}
    for sitting in plan.sittings:
        beacons = sitting_beacons(sitting, plan.video(sitting.asset_id).duration_ms, heartbeat_ms)
        by_viewer.setdefault(sitting.user_id, []).extend((sitting, beacon) for beacon in beacons)
    for stream in by_viewer.values():
        stream.sort(key=lambda item: item[1].at_ms)  # stable: each sitting's stay in order
    return by_viewer


def _wall_ms(media_ms: int, rate: float) -> int:
    """Wall-clock milliseconds that ``media_ms`` of the video take to play at ``rate``."""
    return math.ceil(media_ms / rate)
