"""``GET /vod/webapi/statistics/vod/audit`` (signed): the evidence behind a completion."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vodwatch.api.auth import Incoming
from vodwatch.api.catalog import RULES_SCHEMA
from vodwatch.api.incoming import Services, read_incoming
from vodwatch.api.openapi import SIGNED_ERRORS, identifier_schema, responses
from vodwatch.api.progress import INTERVALS_SCHEMA
from vodwatch.api.report import signed_read
from vodwatch.api.responses import success
from vodwatch.report.audit import build_audit, parse_audit_query

router = APIRouter()
PATH = "/vod/webapi/statistics/vod/audit"
AUDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["userId", "assetId", "attempts"],
    "properties": {
        "userId": {"type": "string"},
        "assetId": {"type": "string"},
        "attempts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["attemptId", "rules", "completed", "completedAt", "visits"],
                "properties": {
                    "attemptId": {"type": "string"},
                    "rules": RULES_SCHEMA,
                    "completed": {"type": "boolean"},
                    "completedAt": {"type": ["integer", "null"]},
                    "visits": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "sessionId": {"type": "string"},
                                "startTime": {"type": "integer"},
                                "lastSeen": {"type": "integer"},
                                "watchTimeMs": {"type": "integer"},
                                "counted": INTERVALS_SCHEMA,
                                "uncounted": {
                                    "type": "object",
                                    "properties": {
                                        "hidden": INTERVALS_SCHEMA,
                                        "tooFast": INTERVALS_SCHEMA,
                                    },
                                },
                                "clockBoundMs": {"type": "integer"},
                            },
                        },
                    },
                },
            },
        },
    },
}


@router.get(
    PATH,
    summary="The evidence behind a viewer's completion of a video, per attempt and visit",
    openapi_extra={
        "parameters": [
            {"name": "userId", "in": "query", "required": True, "schema": identifier_schema()},
            {"name": "assetId", "in": "query", "required": True, "schema": identifier_schema()},
            {
                "name": "attemptId",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "maxLength": 64},
                "description": 'empty: the attempt ""; absent: every attempt',
            },
        ]
    },
    responses=responses(AUDIT_SCHEMA, *SIGNED_ERRORS, 404),
)
async def get_audit(request: Request) -> Response:
    services: Services = request.app.state.services
    incoming = await read_incoming(request)
    return success(await run_in_threadpool(_audit, services, incoming))


def _audit(services: Services, incoming: Incoming) -> dict[str, Any]:
    tenant, query = signed_read(services, incoming, parse_audit_query)
    with services.db.read() as conn:
        return build_audit(conn, tenant.tenant_id, tenant.defaults, query)
