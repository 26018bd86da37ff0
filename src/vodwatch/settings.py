"""Settings, in one place: flags first, then environment variables, then these defaults (the
one exception: the key itself, ``VODWATCH_SECRET_KEY``, wins over ``--key-file``).

``vodwatch serve`` takes a flag for every field of ``ServiceSettings`` (its help text is the
field's) and hands the values to its worker processes through the environment, where
``ServiceSettings.from_environment`` reads them back.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from vodwatch.keyring import parse_key
from vodwatch.rate_limits import Rate

DATABASE_URL_ENV = "VODWATCH_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///vodwatch.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
LOG_LEVEL_ENV = "VODWATCH_LOG_LEVEL"


def database_url_from_environment() -> str:
    return os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


POOL_SIZE_ENV = "VODWATCH_POOL_SIZE"
DEFAULT_POOL_SIZE = 10


def pool_size_from_environment() -> int:
    return int(os.environ.get(POOL_SIZE_ENV) or DEFAULT_POOL_SIZE)


SECRET_KEY_ENV = "VODWATCH_SECRET_KEY"  # noqa: S105 - the name of a variable
KEY_FILE_ENV = "VODWATCH_KEY_FILE"
DEFAULT_KEY_FILE = "vodwatch.key"  # in the working directory, when not beside a SQLite file


@dataclass(frozen=True)
class KeySource:
    """Where the key that encrypts tenant secrets comes from: the key itself (from the
    environment), or a key file to read, which may be created when ``may_create``."""

    key: bytes | None = field(default=None, repr=False)
    path: Path | None = None
    may_create: bool = False


def key_source(database_url: str, key_file: str | None = None) -> KeySource:
    """``VODWATCH_SECRET_KEY`` (base64url of 32 bytes) if set; else ``key_file`` (the
    ``--key-file`` flag or ``VODWATCH_KEY_FILE``); else the default key file, which may be
    created: ``<database file>.key`` beside a SQLite file, ``vodwatch.key`` in the working
    directory for PostgreSQL. ``KeyringError`` for a malformed ``VODWATCH_SECRET_KEY``."""
    text = os.environ.get(SECRET_KEY_ENV)
    if text:
        return KeySource(key=parse_key(text, SECRET_KEY_ENV))
    if key_file:
        return KeySource(path=Path(key_file).absolute())
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        default = Path(f"{url.database}.key")
    else:
        default = Path(DEFAULT_KEY_FILE)
    return KeySource(path=default.absolute(), may_create=True)


def key_file_from_environment() -> str | None:
    return os.environ.get(KEY_FILE_ENV) or None


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise ValueError(f"{text!r}: must be between 0 and 3600 seconds")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text!r}: must be at least 1")
    return value


def _origin(text: str) -> str:
    from vodwatch.origins import normalize_origin

    return normalize_origin(text) if text else ""


def _setting(default: Any, env: str, parse: Callable[[str], Any], help: str) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "help": help})


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What a worker process needs beyond its database URL and pool size."""

    write_timeout: float = _setting(
        10.0,
        "VODWATCH_WRITE_TIMEOUT",
        _seconds,
        "Seconds a beacon request waits to be stored before it is answered 503.",
    )
    max_queued_beacons: int = _setting(
        50_000,
        "VODWATCH_MAX_QUEUED_BEACONS",
        _count,
        "Beacons waiting to be stored per worker before new requests get 503 (42900).",
    )
    db_connect_timeout: float = _setting(
        5.0, "VODWATCH_DB_CONNECT_TIMEOUT", _seconds, "PostgreSQL: seconds to connect."
    )
    db_pool_timeout: float = _setting(
        10.0,
        "VODWATCH_DB_POOL_TIMEOUT",
        _seconds,
        "Seconds a request waits for a free database connection.",
    )
    db_lock_timeout: float = _setting(
        5.0, "VODWATCH_DB_LOCK_TIMEOUT", _seconds, "PostgreSQL: seconds to wait for a row lock."
    )
    db_statement_timeout: float = _setting(
        30.0,
        "VODWATCH_DB_STATEMENT_TIMEOUT",
        _seconds,
        "PostgreSQL: seconds one statement may run.",
    )
    failed_auth_per_address: Rate = _setting(
        Rate(30, 60.0),
        "VODWATCH_FAILED_AUTH_PER_ADDRESS",
        Rate.parse,
        "Failed authentications one client address may make (e.g. 30/minute) before all its "
        "requests get 429 for a while.",
    )
    failed_auth_per_authkey: Rate = _setting(
        Rate(300, 60.0),
        "VODWATCH_FAILED_AUTH_PER_AUTHKEY",
        Rate.parse,
        "Failed authentications with one authkey (e.g. 300/minute) before further failing "
        "ones get 429 (valid requests still pass).",
    )
    beacons_per_token: Rate = _setting(
        Rate(600, 60.0),
        "VODWATCH_BEACONS_PER_TOKEN",
        Rate.parse,
        "Beacons one playback token may send (e.g. 600/minute), bursts included.",
    )
    header_timeout: float = _setting(
        10.0,
        "VODWATCH_HEADER_TIMEOUT",
        _seconds,
        "Close a connection that has not sent a whole request head within this many seconds "
        "(answered 408), on each request of a keep-alive connection too.",
    )
    body_timeout: float = _setting(
        30.0,
        "VODWATCH_BODY_TIMEOUT",
        _seconds,
        "Close a connection whose whole request body has not arrived this many seconds after "
        "its head (answered 408; nothing is stored).",
    )
    max_connections: int = _setting(
        1000,
        "VODWATCH_MAX_CONNECTIONS",
        _count,
        "Open connections per worker; beyond it, those waiting longest for a request head are "
        "closed first, else the newcomer is answered 503.",
    )
    dashboard_login_rate: Rate = _setting(
        Rate(10, 60.0),
        "VODWATCH_DASHBOARD_LOGIN_RATE",
        Rate.parse,
        "Dashboard sign-in attempts per account and per client address (e.g. 10/minute); "
        "beyond it, attempts are refused (429) until the budget is earned back.",
    )
    public_url: str = _setting(
        "",
        "VODWATCH_PUBLIC_URL",
        _origin,
        "The origin browsers reach vodwatch at (e.g. https://stats.example.com): pages served "
        "there may send beacons without being allowed by a tenant. Default: the scheme and "
        "Host of each request.",
    )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "ServiceSettings":
        """Each field from its environment variable, else its default; ``ValueError`` naming
        the variable for a bad value."""
        values: dict[str, Any] = {}
        for setting in fields(cls):
            env = setting.metadata["env"]
            text = environ.get(env)
            if text is None or text == "":
                continue
            try:
                values[setting.name] = setting.metadata["parse"](text)
            except ValueError as error:
                raise ValueError(f"{env}: {error}") from None
        return cls(**values)


@dataclass(frozen=True)
class ConnectionLimits:
    """What a worker allows one connection (see ``vodwatch.api.connections``)."""

    header_timeout: float = 10.0  # seconds for a whole request head
    body_timeout: float = 30.0  # seconds for a whole body, from the head's end
    max_connections: int = 1000  # open connections per worker

    def __post_init__(self) -> None:
        if not (self.header_timeout > 0 and self.body_timeout > 0 and self.max_connections > 0):
            raise ValueError(f"connection limits must be positive: {self}")


def connection_limits_from_environment() -> ConnectionLimits:
    """The ``ServiceSettings`` that concern connections; ``ValueError`` for a bad value."""
    settings = ServiceSettings.from_environment()
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )


def setting_help() -> list[tuple[str, str, str, str]]:
    """(field name, environment variable, default as text, help) of each service setting."""
    return [
        (s.name, s.metadata["env"], str(s.default), s.metadata["help"])
        for s in fields(ServiceSettings)
    ]
