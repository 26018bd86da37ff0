"""The app as ``vodwatch serve`` runs it in each worker process: from the environment."""

import gc
import sys

from fastapi import FastAPI

from vodwatch.api.app import create_app
from vodwatch.settings import (
    ServiceSettings,
    database_url_from_environment,
    key_file_from_environment,
    pool_size_from_environment,
)
from vodwatch.store.database import Database, Timeouts
from vodwatch.store.migrate import require_current

SWITCH_INTERVAL_SECONDS = 0.0005


def app_from_environment() -> FastAPI:
    """Open ``VODWATCH_DATABASE_URL`` (``VODWATCH_POOL_SIZE`` connections) with the settings
    of ``ServiceSettings.from_environment``; refuse a schema that is not the current one, or a
    key that is not the one of the stored secrets."""
    settings = ServiceSettings.from_environment()
    db = Database(
        database_url_from_environment(),
        pool_size=pool_size_from_environment(),
        key_file=key_file_from_environment(),
        timeouts=Timeouts(
            connect_seconds=settings.db_connect_timeout,
            pool_seconds=settings.db_pool_timeout,
            lock_ms=round(settings.db_lock_timeout * 1000),
            statement_ms=round(settings.db_statement_timeout * 1000),
        ),
    )
    require_current(db)
    db.secret_box  # noqa: B018 - resolve and check the key before serving
    app = create_app(db, settings=settings)
    # What start-up made lives as long as the process: leave it out of garbage collection
    # from now on. A full collection otherwise scans it all, stopping every thread for ~100 ms
    # (measured: a request of 10,000 segments set one off), which a waiting /healthz felt.
    gc.collect()
    gc.freeze()
    # The event loop and the ingest writer share the interpreter lock: when the loop gives it
    # up for a moment (every socket read and write), a busy writer keeps it for up to the
    # switch interval (5 ms by default) before the loop gets it back. Shorter turns keep the
    # loop answering (bench: player beacons on SQLite ~2,100 -> ~2,500/s, p99 lower).
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    return app
