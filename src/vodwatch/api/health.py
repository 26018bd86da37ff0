"""``GET /healthz``: 200 while the database answers and takes writes, 503 while it does not.

A full disk still answers a SELECT: so the health check also says 503 while writes are failing
(``WriteHealth``), and once the wait after a failure is over it tries a small write itself,
so that a process taken out of a load balancer (which then gets no beacons to try) comes back
as soon as the database writes again.
"""

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.incoming import Services
from vodwatch.api.openapi import responses
from vodwatch.api.responses import error_response, success
from vodwatch.errors import Unavailable
from vodwatch.store.database import describe_outage

router = APIRouter()


HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "database"],
    "properties": {"status": {"type": "string"}, "database": {"type": "string"}},
}


@router.get(
    "/healthz",
    summary="Liveness, database reachability and whether writes succeed",
    responses=responses(HEALTH_SCHEMA, 503),
)
async def healthz(request: Request) -> Response:
    services: Services = request.app.state.services
    health = services.health
    try:
        await run_in_threadpool(services.db.ping)
        if health.is_retry_due():
            await run_in_threadpool(services.db.probe_write)
            health.succeeded()
    except (SQLAlchemyError, OSError) as error:
        cause = describe_outage(error) or type(error).__name__
        retry_after = health.failed(cause, 0)
        return error_response(
            Unavailable(f"database unavailable: {cause}", retry_after=retry_after)
        )
    incident = health.incident
    if incident is not None:
        return error_response(
            Unavailable(
                f"writes are failing: {incident.cause}",
                retry_after=max(1, health.wait_seconds()),
            )
        )
    return success({"status": "ok", "database": services.db.dialect})
