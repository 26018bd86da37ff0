"""The key that encrypts tenant secrets: read from where the settings say, created on first
use of a database, and checked against the secrets the database already holds."""

import logging
from pathlib import Path

from sqlalchemy import Connection, Engine

from vodwatch.keyring import KeyringError, SecretBox, WrongKey, encode_key, new_key, parse_key
from vodwatch.private_files import create_private_file, tighten
from vodwatch.settings import KEY_FILE_ENV, SECRET_KEY_ENV, KeySource
from vodwatch.store.tenants import find_other_key_id

log = logging.getLogger(__name__)


def load_secret_box(engine: Engine, source: KeySource) -> SecretBox:
    """The ``SecretBox`` of the key ``source`` names. A missing default key file is created,
    only while the database holds no encrypted secret (a second host must be given the
    key, not mint its own). ``KeyringError`` when the key is missing, malformed, unreadable
    or not the one the stored secrets were encrypted with."""
    key = source.key
    if key is None:
        assert source.path is not None
        key = read_key_file(source.path)
        if key is None:
            with engine.connect() as conn:
                stored_id = find_other_key_id(conn, None)
            if stored_id is not None:
                raise WrongKey(stored_id, None, f"key file {source.path} does not exist")
            if not source.may_create:
                raise KeyringError(
                    f"key file {source.path} does not exist: put the key there (base64url of "
                    f"32 bytes), or unset --key-file and {KEY_FILE_ENV} to use the default "
                    "key file"
                )
            key = create_key_file(source.path)
    box = SecretBox(key)
    with engine.connect() as conn:
        check_secret_key(conn, box)
    return box


def check_secret_key(conn: Connection, box: SecretBox) -> None:
    """``WrongKey`` unless every encrypted secret stored was encrypted with ``box``'s key."""
    stored_id = find_other_key_id(conn, box.key_id)
    if stored_id is not None:
        raise WrongKey(stored_id, box.key_id)


def read_key_file(path: Path) -> bytes | None:
    """The key in ``path``; None when there is no such file. A key file open to group or
    others is made private (with a warning), or refused when this user cannot."""
    try:
        tighten([path])
    except PermissionError:
        raise KeyringError(
            f"key file {path} is readable by group or others and this user cannot change "
            f"that: make it mode 0600, owned by the user vodwatch runs as (or use "
            f"{SECRET_KEY_ENV})"
        ) from None
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not base64url text"
        raise KeyringError(f"cannot read key file {path}: {reason}") from None
    return parse_key(text, f"key file {path}")


def create_key_file(path: Path) -> bytes:
    """A new key, written to ``path`` (mode 0600), or the key another process wrote there
    first."""
    key = new_key()
    if not create_private_file(path, (encode_key(key) + "\n").encode("ascii")):
        existing = read_key_file(path)
        assert existing is not None
        return existing
    log.warning(
        "created the key file %s for tenant secrets (key %s): back it up apart from the "
        "database; without it the tenant secrets stored there cannot be read",
        path,
        SecretBox(key).key_id,
    )
    return key
