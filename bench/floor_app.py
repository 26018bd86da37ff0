"""The HTTP floor: vodwatch's own app and server stack, plus an endpoint that does no work.

python -m bench.floor_app --port 8001 --workers 0   (database from VODWATCH_DATABASE_URL)
"""

import argparse

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from vodwatch.api.factory import app_from_environment
from vodwatch.api.responses import success
from vodwatch.cli.serve import run_workers

FLOOR_PATH = "/bench/floor"


def app_with_floor() -> FastAPI:
    app = app_from_environment()

    async def floor(request: Request) -> Response:
        await request.body()  # a beacon's body is read, then nothing is done with it
        return success({"accepted": 1, "duplicates": 0, "statuses": ["accepted"]})

    app.add_api_route(FLOOR_PATH, floor, methods=["POST"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    run_workers("bench.floor_app:app_with_floor", args.host, args.port, args.workers, "warning")


if __name__ == "__main__":
    main()
