"""Files only their owner may read: the SQLite database and its companions, the key file.

Files are created 0600 whatever the umask; a file found readable or writable by group or
others is tightened to 0600 with a warning (the service's own files hold tenant data).
"""

import contextlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)
PRIVATE_MODE = 0o600


def open_private(path: str | Path, flags: int) -> int:
    """``os.open`` that creates ``path`` (when ``flags`` ask to) with mode 0600."""
    return os.open(path, flags, PRIVATE_MODE)


def touch_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists."""
    with contextlib.suppress(FileExistsError):
        os.close(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))


def create_private_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new file ``path`` (mode 0600) atomically: readers see the whole
    file or none. False, writing nothing, when ``path`` exists already (another process may
    have created it first)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = open_private(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)  # fails if path exists: never replaces a file
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(path.parent)
    return True


def tighten(paths: Iterable[Path]) -> list[Path]:
    """Set mode 0600 on those of ``paths`` that exist and let group or others in, and log one
    warning line naming them; returns them. ``PermissionError`` when this user cannot (does
    not own the file)."""
    tightened = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            path.chmod(PRIVATE_MODE)
            tightened.append(path)
    if tightened:
        log.warning(
            "made private (mode 0600; they were open to group or others): %s",
            ", ".join(str(path) for path in tightened),
        )
    return tightened


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
