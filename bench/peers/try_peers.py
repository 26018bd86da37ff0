"""Self-check of the two peers on ~1,000 visits: ``.venv/bin/python -m bench.peers.try_peers``.

Runs Ralph and the PostgreSQL baseline on the heartbeats of the same visits, prints what each
returns, and checks that both answer "completeness per viewer" for the most-viewed video as a
plain computation from the visits does: the same percent for every viewer, and watch time within
1 ms per heartbeat (each heartbeat rounds its played time down to a millisecond). When Ralph
gets only some of the heartbeats (``--ralph-max``), it is checked on the viewers it got.

Exits 1 when a peer disagrees or is unavailable. ``--pg-url`` defaults to this machine's server;
Ralph's virtualenv and store go under ``bench/.work/``.
"""

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.peers import diy_postgres, ralph
from bench.peers.diy_postgres import run_diy_postgres
from bench.peers.ralph import run_ralph, select_statements
from bench.viewing import Heartbeat, Visit, generate_visits, heartbeats, make_tenants

WORKDIR = Path(__file__).resolve().parents[1] / ".work"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def covered_ms(ranges: Iterable[tuple[int, int]]) -> int:
    """Milliseconds covered by the union of ``ranges``, by a sweep over their boundaries
    (deliberately not the merge the peers use)."""
    events = sorted(point for start, end in ranges for point in ((start, 1), (end, -1)))
    covered, depth, opened = 0, 0, 0
    for position, step in events:
        if depth == 0 and step == 1:
            opened = position
        depth += step
        if depth == 0:
            covered += position - opened
    return covered


def expected(visits: list[Visit], asset_id: str) -> dict[str, dict[str, int]]:
    """Per viewer of ``asset_id``: percent covered (floor) and watch time, from the visits."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    watch: Counter[str] = Counter()
    duration = 0
    for visit in visits:
        if visit.asset_id == asset_id:
            ranges.setdefault(visit.user_id, []).extend(visit.segments)
            watch[visit.user_id] += visit.watch_ms
            duration = visit.duration_ms
    return {
        user: {"percent": 100 * covered_ms(spans) // duration, "watch_ms": watch[user]}
        for user, spans in ranges.items()
    }


def disagreements(
    result: dict[str, Any],
    truth: dict[str, dict[str, int]],
    beats_per_user: Counter[str],
) -> list[str]:
    """What a peer got wrong (empty when it agrees)."""
    if not result.get("available"):
        return [f"unavailable: {result.get('why')}"]
    got: dict[str, dict[str, int]] = result["completeness"]
    problems = (
        [f"viewers differ: {sorted(set(got) ^ set(truth))[:5]}"]
        if got.keys() != truth.keys()
        else []
    )
    for user in sorted(truth.keys() & got.keys()):
        want, have = truth[user], got[user]
        if have["percent"] != want["percent"]:
            problems.append(f"{user}: percent {have['percent']} != {want['percent']}")
        if abs(have["watch_ms"] - want["watch_ms"]) > beats_per_user[user]:
            problems.append(f"{user}: watch_ms {have['watch_ms']} vs {want['watch_ms']}")
    return problems


class Bar:
    """A one-line progress counter on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0

    def __call__(self, count: int) -> None:
        before, self.done = self.done, self.done + count
        if self.done < self.total and before * 50 // self.total == self.done * 50 // self.total:
            return  # at most ~50 updates
        end = "\n" if self.done >= self.total else ""
        print(f"\r{self.label}: {self.done}/{self.total}", end=end, file=sys.stderr, flush=True)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The result without the per-viewer map (printed as a count)."""
    shown = {key: value for key, value in result.items() if key != "completeness"}
    if "completeness" in result:
        shown["completeness"] = f"{len(result['completeness'])} viewers"
    return shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1_000)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--ralph-max", type=int, default=ralph.MAX_STATEMENTS,
                        help="most heartbeats Ralph gets (0: all)")  # fmt: skip
    parser.add_argument("--diy-query", choices=sorted(diy_postgres.QUERIES), default="range_agg")
    parser.add_argument("--skip-ralph", action="store_true")
    args = parser.parse_args()

    visits = list(generate_visits(make_tenants(1, 200, 5), args.visits))
    beats: list[Heartbeat] = [beat for visit in visits for beat in heartbeats(visit)]
    asset_id = Counter(visit.asset_id for visit in visits).most_common(1)[0][0]
    truth = expected(visits, asset_id)
    beats_per_user = Counter(beat.user_id for beat in beats if beat.asset_id == asset_id)
    print(f"{len(visits)} visits, {len(beats)} heartbeats; asset {asset_id}: "
          f"{sum(beats_per_user.values())} heartbeats from {len(truth)} viewers")  # fmt: skip

    ralph_max = args.ralph_max or None
    ralph_beats, _ = select_statements(beats, asset_id, ralph_max)
    ralph_viewers = {beat.user_id for beat in ralph_beats if beat.asset_id == asset_id}
    runs: dict[str, tuple[Callable[[], dict[str, Any]], dict[str, dict[str, int]]]] = {
        "ralph": (
            lambda: run_ralph(
                beats, asset_id, WORKDIR, Bar("ralph", len(ralph_beats)), max_statements=ralph_max
            ),
            {user: want for user, want in truth.items() if user in ralph_viewers},
        ),
        "diy_postgres": (
            lambda: run_diy_postgres(
                beats, asset_id, args.pg_url, Bar("postgres", len(beats)), query=args.diy_query
            ),
            truth,
        ),
    }
    if args.skip_ralph:
        del runs["ralph"]
    failed = False
    for name, (run, want) in runs.items():
        started = time.perf_counter()
        result = run()
        print(f"{name}: {json.dumps(summary(result), indent=2, ensure_ascii=False)}")
        print(f"{name}: whole run {time.perf_counter() - started:.1f} s")
        problems = disagreements(result, want, beats_per_user)
        print(f"{name}: {'agrees with the visits' if not problems else 'DISAGREES'}")
        for problem in problems[:20]:
            print(f"  {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
