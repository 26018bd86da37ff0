"""Start Ralph's LRS under uvicorn, as in production, with two fixes to its ``fs`` backend.

Runs with the Ralph virtualenv's python, never the project's: ``ralph-venv/bin/python -I
ralph_launcher.py --host 127.0.0.1 --port N ...`` (the arguments are uvicorn's). ``-I`` matters:
without it Python puts this directory first on ``sys.path`` and ``import ralph`` would find
``bench/peers/ralph.py`` instead of the installed package.

The fixes are applied to Ralph's classes in this process only; its installed files are left
alone. Ralph is imported through ``importlib`` because the project's type checker cannot see
that virtualenv.

1. ``FSDataBackend`` writes in "create" mode by default, so the second POST to the LRS answers
   500 "already exists": every LRS write is made an append.
2. ``GET /xAPI/statements?activity=`` (and ``verb=``) compares a pydantic ``IRI`` object with
   the stored string, which is never equal, so it always returns ``[]``: compare strings.
"""

import importlib
import sys
from collections.abc import Callable
from typing import Any


def _patch_append_mode(backend: Any, kinds: Any) -> None:
    original = backend.write
    create_modes = {None, kinds.CREATE, kinds.INDEX}  # None: the backend's default, CREATE

    def write(
        self: Any,
        data: Any,
        target: Any = None,
        chunk_size: Any = None,
        ignore_errors: bool = False,
        operation_type: Any = None,
    ) -> Any:
        if operation_type in create_modes:
            operation_type = kinds.APPEND
        return original(self, data, target, chunk_size, ignore_errors, operation_type)

    backend.write = write


def _as_string_filter(original: Callable[..., None]) -> Callable[..., None]:
    """Wrap one of the backend's ``_add_filter_by_*`` static methods: IRI → str first."""

    def add_filter(filters: list[Any], value: Any, *rest: Any) -> None:
        original(filters, None if value is None else str(value), *rest)

    return add_filter


def patch_ralph() -> None:
    fs = importlib.import_module("ralph.backends.lrs.fs")
    base = importlib.import_module("ralph.backends.data.base")
    backend = fs.FSLRSBackend
    _patch_append_mode(backend, base.BaseOperationType)
    for name in ("_add_filter_by_activity", "_add_filter_by_verb"):
        setattr(backend, name, staticmethod(_as_string_filter(getattr(backend, name))))


def main() -> None:
    patch_ralph()
    uvicorn = importlib.import_module("uvicorn")
    sys.argv = ["uvicorn", "ralph.api:app", *sys.argv[1:]]
    uvicorn.main()


if __name__ == "__main__":
    main()
