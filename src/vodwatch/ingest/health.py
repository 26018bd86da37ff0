"""Whether this process can write, told once per incident.

When a write fails because the database cannot write at all (down, disk full, read-only, too
slow), the process stops trying for a while and answers at once (503 with ``Retry-After``):
a thousand waiting requests must not each wait for a connection timeout, and the log must not
say the same thing a thousand times. It says it once when the incident starts and once when it
ends, with how many requests were refused meanwhile. ``/healthz`` reports the incident, so a
load balancer takes the process out while it lasts.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("vodwatch.storage")

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Incident:
    cause: str  # "disk full", "database unreachable", ...
    since: float  # monotonic seconds
    retry_at: float  # monotonic seconds: until then, writes are refused without trying
    refused: int  # requests answered 503 since it began


class WriteHealth:
    """Thread-safe: the writer thread reports, the event loop and /healthz read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._incident: Incident | None = None
        self._backoff = FIRST_BACKOFF_SECONDS

    @property
    def incident(self) -> Incident | None:
        return self._incident

    def is_retry_due(self) -> bool:
        """Whether an incident is on and its wait is over: time for a probe."""
        incident = self._incident
        return incident is not None and incident.retry_at <= self._clock()

    def wait_seconds(self) -> int:
        """Whole seconds until the next write may be tried (0: now)."""
        incident = self._incident
        if incident is None:
            return 0
        return max(0, math.ceil(incident.retry_at - self._clock()))

    def retry_after(self) -> int | None:
        """Seconds until the next write may be tried, or None when writes go ahead; counts a
        refused request."""
        with self._lock:
            incident = self._incident
            if incident is None:
                return None
            wait = incident.retry_at - self._clock()
            if wait <= 0:
                return None
            self._incident = Incident(
                incident.cause, incident.since, incident.retry_at, incident.refused + 1
            )
            return max(1, math.ceil(wait))

    def failed(self, cause: str, refused: int) -> int:
        """A write failed for ``cause``, refusing ``refused`` requests; seconds to wait."""
        now = self._clock()
        with self._lock:
            incident = self._incident
            if incident is None:
                self._backoff = FIRST_BACKOFF_SECONDS
                log.error(
                    "writes failing: %s; requests get 503 until the database writes again",
                    cause,
                    extra={"cause": cause},
                )
                since, total = now, refused
            else:
                self._backoff = min(self._backoff * 2, MAX_BACKOFF_SECONDS)
                if cause != incident.cause:
                    log.error("writes failing: now %s", cause, extra={"cause": cause})
                since, total = incident.since, incident.refused + refused
            self._incident = Incident(cause, since, now + self._backoff, total)
            return max(1, math.ceil(self._backoff))

    def succeeded(self) -> None:
        """A write committed: the incident, if any, is over."""
        if self._incident is None:  # the common case, without the lock
            return
        with self._lock:
            incident, self._incident = self._incident, None
        if incident is not None:
            log.warning(
                "writes recovered after %.1f s (%s); %d requests were refused meanwhile",
                self._clock() - incident.since,
                incident.cause,
                incident.refused,
                extra={"cause": incident.cause, "refused": incident.refused},
            )
