"""Settings, in one place: flags first, then environment variables, then these defaults."""

import os

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
