"""A Python client for vodwatch (and for Talk-cloud's compatible endpoint): signs every request
as SPEC §5 says and wraps every endpoint.

    >>> client = VodwatchClient("http://127.0.0.1:8000", authkey, secret)  # doctest: +SKIP
    >>> client.put_media("8602268011035296205", "Math 101", duration=269)  # doctest: +SKIP
    >>> client.watch_report(userId="李四")["data"]  # doctest: +SKIP
"""

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx2

from vodwatch.playback_token import mint_playback_token
from vodwatch.signing import canonical_query, sign_request

REPORT_PATH = "/vod/webapi/statistics/vod/watch"
PROGRESS_PATH = "/vod/webapi/progress"
AUDIT_PATH = "/vod/webapi/statistics/vod/audit"
BEACON_PATH = "/vod/webapi/beacon"
MEDIA_PATH = "/vod/webapi/media/"
VIDEOS_PATH = "/vod/webapi/statistics/vod/videos"
RETENTION_PATH = "/vod/webapi/statistics/vod/retention"
VIEWER_PATH = "/vod/webapi/statistics/vod/viewer"
EXPORT_PATH = "/vod/webapi/statistics/vod/watch/export"
SIGNATURES_REMEMBERED = 10_000
# The service accepts Timestamps up to 300 s ahead of its clock: 60 s are left for the
# two clocks to differ.
MAX_TIMESTAMP_LEAD_SECONDS = 240


class VodwatchAPIError(Exception):
    """The service answered with a non-zero ``result``."""

    def __init__(self, status: int, result: int, message: str) -> None:
        super().__init__(f"HTTP {status}, result {result}: {message}")
        self.status = status
        self.result = result
        self.message = message


class VodwatchClient:
    """Signed calls for one tenant. ``http`` may be any ``httpx2.Client`` (a Starlette
    ``TestClient`` in tests); by default the client makes its own."""

    def __init__(
        self,
        base_url: str,
        authkey: str,
        secret: str,
        *,
        http: httpx2.Client | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.authkey = authkey
        self.secret = secret
        self.clock = clock
        self._sleep = sleep
        self._http = http or httpx2.Client(timeout=timeout)
        # Signatures sent lately: the service accepts each signed request once, so an
        # identical request in the same second is signed with the next second instead.
        self._sent: OrderedDict[str, None] = OrderedDict()
        self._sent_lock = threading.Lock()  # one client may sign from several threads

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "VodwatchClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the endpoints -------------------------------------------------------------------

    def put_media(self, asset_id: str, title: str, duration: float, **extra: Any) -> dict[str, Any]:
        """Create or update a video; ``duration`` in seconds; its completion rules when given
        (``completionThreshold=N``, ``requiredRanges=[[s, e]]``, ``maxRate=2.0``,
        ``visibleOnly=True``; None clears one back to the tenant's)."""
        body: dict[str, Any] = {"videoTitle": title, "duration": duration, **extra}
        return self.call("PUT", media_path(asset_id), body=body)

    def get_media(self, asset_id: str) -> dict[str, Any]:
        return self.call("GET", media_path(asset_id))

    def send_beacons(self, beacons: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
        """Server beacons (trusted records, e.g. an import): each names userId and assetId."""
        return self.call("POST", BEACON_PATH, body=beacons)

    def send_player_beacons(self, beacons: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
        """Beacons as a browser sends them: unsigned, each carrying its playback token."""
        response = self._http.post(
            self.base_url + BEACON_PATH,
            content=json.dumps(beacons).encode(),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        )
        return _decode(response)

    def progress(self, token: str) -> dict[str, Any]:
        """A learner's own progress (SPEC §10), as their page reads it: with the playback
        token, unsigned."""
        response = self._http.get(
            self.base_url + PROGRESS_PATH, headers={"Authorization": f"Bearer {token}"}
        )
        return _decode(response)

    def watch_report(self, **params: str | int | None) -> dict[str, Any]:
        """One page of 用户观看完整度; parameters as the endpoint names them
        (``startTime``, ``endTime``, ``userId``, ``videoInfo``, ``page``, ``pageSize``,
        ``groupBy``). Returns the whole body; the rows are in ``["data"]["data"]``."""
        return self.call("GET", REPORT_PATH, params=params)

    def iter_report(self, **params: str | int | None) -> Iterator[dict[str, Any]]:
        """Every row of the report, page after page."""
        page = 1
        while True:
            data = self.watch_report(**{**params, "page": page})["data"]
            yield from data["data"]
            if page >= data["last_page"]:
                return
            page += 1

    # -- analytics (SPEC §9) --------------------------------------------------------------

    def videos(self, **params: str | int | None) -> dict[str, Any]:
        """One page of per-video figures (``startTime``, ``endTime``, ``videoInfo``, ``page``,
        ``pageSize``, ``sort``, ``order``); the whole body, rows in ``["data"]["data"]``."""
        return self.call("GET", VIDEOS_PATH, params=params)

    def retention(self, asset_id: str, **params: str | int | None) -> dict[str, Any]:
        """The retention curve and coverage distribution of one video (``buckets``,
        ``startTime``, ``endTime``)."""
        return self.call("GET", RETENTION_PATH, params={"assetId": asset_id, **params})

    def viewer(self, user_id: str, asset_id: str, **params: str | int | None) -> dict[str, Any]:
        """One viewer on one video: covered intervals, completion, visits."""
        return self.call(
            "GET", VIEWER_PATH, params={"userId": user_id, "assetId": asset_id, **params}
        )

    def audit(self, user_id: str, asset_id: str, attempt_id: str | None = None) -> dict[str, Any]:
        """The evidence behind a completion (SPEC §10); every attempt unless ``attempt_id``
        ("" is the attempt without an id)."""
        params = {"userId": user_id, "assetId": asset_id}
        if attempt_id is not None:
            params["attemptId"] = attempt_id
        return self.call("GET", AUDIT_PATH, params=params)

    def export(self, file_format: str = "csv", **params: str | int | None) -> bytes:
        """Every row of the report for the filters (as ``watch_report`` takes them), as the
        bytes of a CSV (UTF-8 with a BOM) or XLSX file; raises ``VodwatchAPIError`` on an
        error answer."""
        pairs = [(name, str(value)) for name, value in params.items() if value is not None]
        pairs.append(("format", file_format))
        headers = self.signed_headers("GET", EXPORT_PATH, pairs, b"")
        url = self.base_url + EXPORT_PATH + "?" + canonical_query(pairs)
        response = self._http.get(url, headers=headers)
        if response.status_code != 200:
            _decode(response)  # raises with the service's message
        return response.content

    def healthz(self) -> dict[str, Any]:
        return _decode(self._http.get(self.base_url + "/healthz"))

    def playback_token(
        self,
        user_id: str,
        asset_id: str,
        *,
        user_name: str | None = None,
        title: str | None = None,
        duration: float | None = None,
        attempt_id: str | None = None,
        ttl_seconds: int = 6 * 3600,
    ) -> str:
        """A playback token for a player page (mint it on your backend, never in a browser)."""
        return mint_playback_token(
            self.authkey,
            self.secret,
            user_id,
            asset_id,
            user_name=user_name,
            title=title,
            duration=duration,
            attempt_id=attempt_id,
            ttl_seconds=ttl_seconds,
            now=self.clock(),
        )

    # -- signing -------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: object = None,
    ) -> dict[str, Any]:
        """A signed request; raises ``VodwatchAPIError`` unless ``result`` is 0."""
        pairs = [(name, str(value)) for name, value in (params or {}).items() if value is not None]
        content = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = self.signed_headers(method, path, pairs, content)
        query = canonical_query(pairs)
        url = self.base_url + path + (f"?{query}" if query else "")
        return _decode(self._http.request(method, url, content=content, headers=headers))

    def signed_headers(
        self, method: str, path: str, pairs: list[tuple[str, str]], body: bytes
    ) -> dict[str, str]:
        """Tk headers for one request, never the same as an earlier request's: ``path`` as
        it goes on the wire (percent-encoded, as ``media_path`` makes it)."""
        while True:
            now = int(self.clock())
            signed = self._unsent_signature(now, method, path, pairs, body)
            if signed is not None:
                timestamp, token = signed
                break
            # Every second the service would take is spent on this very request: sending it
            # again now would be refused as a replay, so wait for the clock to move on.
            self._sleep(max(0.05, now + 1 - self.clock()))
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "version": "v2",
            "Tk-authkey": self.authkey,
            "Timestamp": timestamp,
            "Tk-token": token,
        }

    def _unsent_signature(
        self, now: int, method: str, path: str, pairs: list[tuple[str, str]], body: bytes
    ) -> tuple[str, str] | None:
        """The earliest ``Timestamp`` from ``now`` on (at most the lead ahead) whose signature
        was not sent yet, and that signature, now remembered; None when all were sent."""
        with self._sent_lock:
            for timestamp in map(str, range(now, now + MAX_TIMESTAMP_LEAD_SECONDS + 1)):
                token = sign_request(
                    self.secret, self.authkey, timestamp, method, path, pairs, body
                )
                if token not in self._sent:
                    self._sent[token] = None
                    if len(self._sent) > SIGNATURES_REMEMBERED:
                        self._sent.popitem(last=False)
                    return timestamp, token
        return None


def media_path(asset_id: str) -> str:
    """The catalog path of ``asset_id``, percent-encoded (an assetId may hold ``?`` or ``#``)."""
    return MEDIA_PATH + quote(asset_id, safe="-._~")


def _decode(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise VodwatchAPIError(response.status_code, -1, response.text[:200]) from None
    if not isinstance(body, dict) or body.get("result") != 0:
        result = body.get("result", -1) if isinstance(body, dict) else -1
        message = body.get("msg", "") if isinstance(body, dict) else str(body)
        raise VodwatchAPIError(response.status_code, int(result), str(message))
    return body
