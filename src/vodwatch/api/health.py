"""``GET /healthz``: 200 when the database answers, 503 when it does not."""

import logging

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.incoming import Services
from vodwatch.api.responses import error_response, success
from vodwatch.errors import Unavailable

router = APIRouter()
log = logging.getLogger(__name__)


@router.get("/healthz", summary="Liveness and database reachability")
async def healthz(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        await run_in_threadpool(services.db.ping)
    except SQLAlchemyError as error:
        log.warning("health check failed: %s", type(error).__name__)
        return error_response(Unavailable("database unreachable"))
    return success({"status": "ok", "database": services.db.dialect})
