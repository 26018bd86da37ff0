"""The web dashboard at ``/dashboard``: people of a tenant sign in with an e-mail address and a
password (``vodwatch user``) and see the analytics of their videos and viewers, in Chinese or
English. Server-rendered pages; the figures come from the analytics endpoints' own functions.
"""

from fastapi import FastAPI

from vodwatch.dashboard import auth, pages
from vodwatch.dashboard.site import Dashboard


def install(app: FastAPI) -> None:
    """Add the dashboard's routes (outside the OpenAPI document) to the service's app, whose
    ``state.services`` must be set."""
    app.state.dashboard = Dashboard(app.state.services)
    app.include_router(auth.router)
    app.include_router(pages.router)  # last: it ends with the dashboard's catch-all 404
