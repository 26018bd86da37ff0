"""Typed errors: every failure a client can cause, with its HTTP status and result code.

One handler (``vodwatch.api.responses``) renders them all as ``{"result": code, "msg": text}``.
Messages name what is wrong and never carry secrets, SQL or stack traces.
"""

from typing import Any, ClassVar


class VodwatchError(Exception):
    """Base of every error a client sees."""

    status: ClassVar[int] = 500
    code: ClassVar[int] = 50000

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, sent as Retry-After: when to try again


def error_fields(error: VodwatchError) -> dict[str, Any]:
    """The error shape, ``{"result": code, "msg": "..."}``: for the one handler, and for
    answers written below the app (``vodwatch.api.connections``, which a server supervisor
    imports without the web framework)."""
    return {"result": error.code, "msg": error.message}


class MalformedRequest(VodwatchError):
    """The bytes received are not an HTTP/1.1 request (answered before any route runs)."""

    status = 400
    code = 40000


class MissingAuth(VodwatchError):
    """Auth headers or the playback token are missing or malformed."""

    status = 401
    code = 40001


class StaleTimestamp(VodwatchError):
    """``Timestamp`` is outside the allowed window around the server clock."""

    status = 401
    code = 40002


class InvalidCredentials(VodwatchError):
    """Unknown authkey, bad signature, forged or expired token: one answer for all."""

    status = 401
    code = 40003


class ReplayedRequest(VodwatchError):
    """A signed request (same authkey, Timestamp and Tk-token) that was accepted before."""

    status = 401
    code = 40004

    def __init__(
        self,
        message: str = (
            "this signed request was accepted before (same Tk-authkey, Timestamp and Tk-token): "
            "a request is accepted once; sign each anew"
        ),
    ) -> None:
        super().__init__(message)


class InvalidParameter(VodwatchError):
    """A parameter or field has a bad value; the message names it."""

    status = 400
    code = 40010


class OriginNotAllowed(VodwatchError):
    """A browser page on an origin the tenant has not allowed sent a beacon."""

    status = 403
    code = 40300


class ClientDisconnected(VodwatchError):
    """The client went away before its request body arrived whole: nothing is done (and
    nobody reads the answer)."""

    status = 400
    code = 40000


class NotFound(VodwatchError):
    status = 404
    code = 40400


class MethodNotAllowed(VodwatchError):
    status = 405
    code = 40500


class RequestTimeout(VodwatchError):
    """The request head or body did not arrive in time (``vodwatch serve --header-timeout``,
    ``--body-timeout``)."""

    status = 408
    code = 40800


class PayloadTooLarge(VodwatchError):
    status = 413
    code = 41300


class TooManyRequests(VodwatchError):
    """A rate limit: too many failed authentications, or beacons for one playback token."""

    status = 429
    code = 42900


class Overloaded(VodwatchError):
    """The ingest queue of this process is full: the same code as a rate limit, but the
    service, not the client, is what is too busy (503)."""

    status = 503
    code = 42900


class InternalError(VodwatchError):
    status = 500
    code = 50000


class Unavailable(VodwatchError):
    """The database cannot be reached or cannot write (down, disk full, too slow)."""

    status = 503
    code = 50300


class TooManyConnections(Unavailable):
    """The worker holds its cap of connections (``--max-connections``) and none could be let
    go for this one."""
