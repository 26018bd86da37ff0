"""Settings, in one place: flags first, then environment variables, then these defaults."""

import os
from dataclasses import dataclass

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


HEADER_TIMEOUT_ENV = "VODWATCH_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0
BODY_TIMEOUT_ENV = "VODWATCH_BODY_TIMEOUT"
DEFAULT_BODY_TIMEOUT = 30.0
MAX_CONNECTIONS_ENV = "VODWATCH_MAX_CONNECTIONS"
DEFAULT_MAX_CONNECTIONS = 1000


@dataclass(frozen=True)
class ConnectionLimits:
    """What a worker allows one connection (see ``vodwatch.api.connections``)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT  # seconds for a whole request head
    body_timeout: float = DEFAULT_BODY_TIMEOUT  # seconds for a whole body, from the head's end
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # open connections per worker

    def __post_init__(self) -> None:
        if not (self.header_timeout > 0 and self.body_timeout > 0 and self.max_connections > 0):
            raise ValueError(f"connection limits must be positive: {self}")


def connection_limits_from_environment() -> ConnectionLimits:
    """Raises ``ValueError`` for a value that is not a positive number."""
    return ConnectionLimits(
        header_timeout=float(os.environ.get(HEADER_TIMEOUT_ENV) or DEFAULT_HEADER_TIMEOUT),
        body_timeout=float(os.environ.get(BODY_TIMEOUT_ENV) or DEFAULT_BODY_TIMEOUT),
        max_connections=int(os.environ.get(MAX_CONNECTIONS_ENV) or DEFAULT_MAX_CONNECTIONS),
    )
