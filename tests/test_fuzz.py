"""The OpenAPI document, fuzzed with Schemathesis: every operation, with requests generated from
the document (valid and invalid), signed as a customer backend signs them or carrying a real
playback token, must never get a 5xx, and every answer must be one the document describes
(status, content type, headers, body schema). The media operations must accept every valid
request the document allows."""

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.core import NotSet
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from tests.conftest import FakeClock, add_tenant
from vodwatch.api.app import create_app
from vodwatch.client import VodwatchClient
from vodwatch.rate_limits import Rate
from vodwatch.settings import ServiceSettings
from vodwatch.store.database import Database
from vodwatch.store.migrate import upgrade

pytestmark = pytest.mark.slow
EXAMPLES = 60  # per operation and mode


class World:
    """One service on one database for the whole fuzzing run of an operation."""

    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        upgrade(self.db)
        self.tenant = add_tenant(self.db)
        self.clock = FakeClock()
        # Fuzzing sends thousands of failed authentications from one address, on purpose.
        generous = Rate(1_000_000, 60.0)
        self.app = create_app(
            self.db,
            clock=self.clock,
            settings=ServiceSettings(
                failed_auth_per_address=generous,
                failed_auth_per_authkey=generous,
                beacons_per_token=generous,
            ),
        )
        self.http = TestClient(self.app, raise_server_exceptions=False)
        self.client = VodwatchClient(
            "http://testserver",
            self.tenant.authkey,
            self.tenant.secret,
            http=self.http,
            clock=self.clock,
        )
        self.client.put_media("8602268011035296205", "Math 101", duration=269)
        self.token = self.client.playback_token("李四", "8602268011035296205", user_name="张三")


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    built = World(database_url)
    with built.http:
        yield built
    built.db.dispose()


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
RUNS = [
    (method, path, mode)
    for method, path in (
        ("GET", "/vod/webapi/statistics/vod/watch"),
        ("GET", "/vod/webapi/statistics/vod/watch/export"),
        ("GET", "/vod/webapi/statistics/vod/videos"),
        ("GET", "/vod/webapi/statistics/vod/retention"),
        ("GET", "/vod/webapi/statistics/vod/viewer"),
        ("PUT", "/vod/webapi/media/{assetId}"),
        ("GET", "/vod/webapi/media/{assetId}"),
        ("POST", "/vod/webapi/beacon"),
    )
    for mode in (POSITIVE, NEGATIVE)
] + [("GET", "/healthz", POSITIVE)]  # (it takes no input: nothing can be invalid)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # what the document does not allow gets a 4xx
]
# What the document does not allow is refused with a 4xx: schemathesis's usual list, and 413
# for a body over a documented size limit (more beacons or segments than a request may hold).
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
                    "413",
                ]
            }
        }
    }
)
# Valid requests to the catalog must be taken; elsewhere a valid shape may still be refused for
# what the document cannot say (a startTime after the endTime, a session of another viewer).
MEDIA_CHECKS = [*CHECKS, positive_data_acceptance]


def is_pair_of_numbers(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    )


def valid_ranges(ranges: list[Any], duration: Any) -> list[list[float]]:
    """``ranges`` as SPEC §10 takes them: each ordered, clipped to ``[0, duration]``, the
    empty ones and those overlapping an earlier one dropped."""
    end_of_media = duration if isinstance(duration, int | float) else 0
    kept: list[list[float]] = []
    for pair in sorted(sorted(pair) for pair in ranges):
        start, end = max(0, pair[0]), min(end_of_media, pair[1])
        if start < end and (not kept or start >= kept[-1][1]):
            kept.append([start, end])
    return kept


def send(world: World, case: Any, *, as_player: bool) -> Any:
    """The case as a client would send it: the body as JSON bytes, then signed (or, for a
    player beacon, with a real playback token in each beacon)."""
    body: Any = None if isinstance(case.body, NotSet) else case.body
    if as_player and body is not None:
        beacons = body if isinstance(body, list) else [body]
        for beacon in beacons:
            if isinstance(beacon, dict):
                beacon["token"] = world.token
                for field in ("userId", "userName", "assetId", "startedAt"):
                    beacon.pop(field, None)
    # JSON Schema cannot tell 66.0 from 66 (both are "integer" to it), the service does:
    # SPEC §9 refuses a threshold written with a fraction. A generated 66.0 means 66.
    threshold = body.get("completionThreshold") if isinstance(body, dict) else None
    if isinstance(threshold, float) and threshold.is_integer():
        body["completionThreshold"] = int(threshold)
    # Nor can it say that required ranges are non-empty, sorted, apart and within the
    # duration (SPEC §10): generated ones are made so, keeping what they can.
    ranges = body.get("requiredRanges") if isinstance(body, dict) else None
    if isinstance(ranges, list) and all(is_pair_of_numbers(pair) for pair in ranges):
        body["requiredRanges"] = valid_ranges(ranges, body.get("duration"))
    if body is None:
        content = b""
    elif isinstance(body, bytes):  # a negative case: raw bytes
        content = body
    else:
        content = json.dumps(body, ensure_ascii=False).encode()
    path = case.formatted_path
    if "assetId" in (case.path_parameters or {}):
        path = case.operation.path.replace(
            "{assetId}", quote(str(case.path_parameters["assetId"]), safe="-._~")
        )
    pairs = []
    for name, value in (case.query or {}).items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, str(item).lower() if isinstance(item, bool) else str(item)))
    headers = {"Content-Type": case.media_type or "application/json"}
    if not as_player and case.operation.path != "/healthz":
        headers.update(world.client.signed_headers(case.method.upper(), path, pairs, content))
        if case.media_type:
            headers["Content-Type"] = case.media_type
    world.clock.advance(0.001)
    query = "&".join(f"{quote(n, safe='-._~')}={quote(v, safe='-._~')}" for n, v in pairs)
    return world.http.request(
        case.method.upper(),
        path + (f"?{query}" if query else ""),
        content=content,
        headers=headers,
    )


@pytest.mark.parametrize(("method", "path", "mode"), RUNS)
def test_no_5xx_and_every_answer_as_documented(
    world: World, method: str, path: str, mode: GenerationMode
) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", world.app, config=CONFIG)[path][
        method
    ]
    is_media = path.startswith("/vod/webapi/media/")
    checks = MEDIA_CHECKS if is_media and mode is POSITIVE else CHECKS

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        for as_player in (False, True) if path == "/vod/webapi/beacon" else (False,):
            response = send(world, case, as_player=as_player)
            assert response.status_code < 500, response.text
            case.validate_response(response, checks=checks)

    fuzz()


def test_the_document_names_path_parameters_as_its_templates_do(world: World) -> None:
    document = world.http.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
            assert {"200", "500"} <= set(operation["responses"])


def test_the_fuzzing_world_starts_clean(world: World) -> None:
    """Sanity: the world's own requests succeed (so fuzzing reaches past authentication)."""
    assert world.client.get_media("8602268011035296205")["data"]["duration"] == "269"
    assert world.client.watch_report()["result"] == 0
    time.sleep(0)
