"""Settings, in one place: flags first, then environment variables, then these defaults (the
one exception: the key itself, ``VODWATCH_SECRET_KEY``, wins over ``--key-file``)."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from vodwatch.keyring import parse_key

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
