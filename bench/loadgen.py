"""A load generator, run as its own process: many keep-alive HTTP/1.1 connections (asyncio and
uvloop, raw sockets: the client must cost less than the server it measures), each sending
requests back to back for a fixed time. Prints one JSON object with throughput and latency.

    python -m bench.loadgen --url http://127.0.0.1:8000 --plan plan.json --connections 64 \
        --seconds 20

The plan (JSON) names the mode and what it needs:
- ``{"mode": "player", "path": "/vod/webapi/beacon", "tokens": [...], "sessions": N}``:
  one player beacon per request, sessions cycled round robin, seq counting up per session;
- ``{"mode": "server", "path": ..., "authkey": ..., "secret": ..., "batches_file": ...}``:
  pre-made JSON arrays of server beacons (one per line), signed here per request;
- ``{"mode": "floor", "path": "/bench/floor", "tokens": [...], "sessions": N}``: the player
  request, sent to an endpoint that does no work.
"""

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vodwatch.signing import sign_request

Request = tuple[bytes, int]  # the request bytes, the number of beacons in it


def player_requests(plan: dict[str, Any], host: str, worker: int) -> Iterator[Request]:
    """Heartbeats of sessions that each play on from a random start, 10 s of media per beacon
    (as a player reports while playing)."""
    tokens: list[str] = plan["tokens"]
    sessions = int(plan["sessions"])
    rng = random.Random(worker)
    seq = [0] * sessions
    position = [0.0] * sessions
    for index in itertools.cycle(range(worker, sessions, plan["workers"])):
        seq[index] += 1
        if seq[index] == 1 or position[index] >= 3590:
            position[index] = round(rng.uniform(0, 3000), 3)
        start = position[index]
        position[index] = round(start + 10, 3)
        body = json.dumps(
            {
                "token": tokens[index % len(tokens)],
                "sessionId": f"bench{plan['run']}w{worker}s{index:07d}",
                "seq": seq[index],
                "segments": [[start, position[index]]],
                "playedMs": 10_000,
                "position": position[index],
                "duration": 3600,
            },
            separators=(",", ":"),
        ).encode()
        yield _http("POST", plan["path"], host, body, {"Content-Type": "text/plain"}), 1


def server_requests(plan: dict[str, Any], host: str, worker: int) -> Iterator[Request]:
    mine = plan["batches"][worker :: plan["workers"]]
    for body in _fresh_sessions(mine):
        timestamp = str(int(time.time()))
        token = sign_request(
            plan["secret"], plan["authkey"], timestamp, "POST", plan["path"], [], body
        )
        headers = {
            "Content-Type": "application/json",
            "Tk-authkey": plan["authkey"],
            "Timestamp": timestamp,
            "Tk-token": token,
        }
        yield _http("POST", plan["path"], host, body, headers), body.count(b'"sessionId"')


def _fresh_sessions(batches: list[bytes]) -> Iterator[bytes]:
    """The batches over and over, each round with new session ids (new visits, never
    duplicates of the first round)."""
    yield from batches
    for round_ in itertools.count(1):
        prefix = b'"sessionId":"r%d' % round_
        for body in batches:
            yield body.replace(b'"sessionId":"', prefix)


def _http(method: str, path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def connection(
    host: str,
    port: int,
    requests: Iterator[Request],
    deadline: float,
    latencies: list[float],
    counts: dict[str, int],
    errors: dict[int, str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            payload, beacons = next(requests)
            started = time.perf_counter()
            writer.write(payload)
            status_line = await reader.readline()
            if not status_line:  # the server closed the connection: count it, reconnect
                counts["closed"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            status = int(status_line.split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status == 200:
                counts["ok"] += 1
                counts["beacons"] += beacons
            else:
                counts["errors"] += 1
                errors.setdefault(status, body[:300].decode(errors="replace"))
    finally:
        writer.close()


async def run(url: str, plan: dict[str, Any], connections: int, seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    make: Callable[[dict[str, Any], str, int], Iterator[Request]] = (
        server_requests if plan["mode"] == "server" else player_requests
    )
    plan = {**plan, "workers": connections}
    if "batches_file" in plan:  # read once, before any connection opens (an idle connection
        # is closed by the server after a few seconds)
        plan["batches"] = Path(plan["batches_file"]).read_bytes().splitlines()
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0, "beacons": 0, "closed": 0}
    errors: dict[int, str] = {}
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(
            connection(
                host, port, make(plan, f"{host}:{port}", n), deadline, latencies, counts, errors
            )
            for n in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def quantile(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    return {
        "requests": counts["ok"] + counts["errors"],
        "errors": counts["errors"],
        "closed_connections": counts["closed"],
        "error_samples": {str(status): body for status, body in errors.items()},
        "seconds": round(elapsed, 3),
        "requests_per_s": round(counts["ok"] / elapsed, 1),
        "beacons_per_s": round(counts["beacons"] / elapsed, 1),
        "p50_ms": quantile(0.50) if latencies else None,
        "p99_ms": quantile(0.99) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    plan = json.loads(args.plan.read_text())
    runner: Callable[[Any], Any] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    result = runner(run(args.url, plan, args.connections, args.seconds))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
