"""The ASGI application: routes, the one error handler, the access log."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

import vodwatch
from vodwatch import dashboard
from vodwatch.api import audit, beacons, catalog, health, insights, progress, report
from vodwatch.api.access_log import AccessLog
from vodwatch.api.incoming import Services
from vodwatch.api.responses import (
    error_response,
    handle_http_exception,
    handle_unexpected,
    handle_vodwatch_error,
)
from vodwatch.errors import Unavailable, VodwatchError
from vodwatch.settings import ServiceSettings
from vodwatch.store.database import Database, describe_outage

STATIC_DIRECTORY = Path(__file__).parent.parent / "static"


async def handle_database_error(request: Request, error: Exception) -> Response:
    """A database that cannot answer (down, full, too slow) is a 503 to try again; any other
    database error is a bug."""
    cause = describe_outage(error)
    if cause is None:
        return await handle_unexpected(request, error)
    return error_response(Unavailable(f"database unavailable ({cause}); try again", retry_after=1))


def create_app(
    db: Database,
    *,
    clock: Callable[[], float] = time.time,
    settings: ServiceSettings | None = None,
) -> FastAPI:
    """The service on an open (and migrated) database; ``clock`` returns unix seconds."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.services.close()

    app = FastAPI(
        title="vodwatch",
        version=vodwatch.__version__,
        summary="How much of each video each viewer really watched, and for how long.",
        lifespan=lifespan,
    )
    app.state.services = Services(db=db, clock=clock, settings=settings or ServiceSettings())
    for module in (beacons, progress, report, insights, audit, catalog, health):
        app.include_router(module.router)
    dashboard.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIRECTORY), name="static")
    app.add_exception_handler(VodwatchError, handle_vodwatch_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(DBAPIError, handle_database_error)
    app.add_exception_handler(PoolTimeout, handle_database_error)
    app.add_exception_handler(Exception, handle_unexpected)
    app.add_middleware(AccessLog)
    return app
