"""What every dashboard page shares: the signed-in person, the language, the security headers,
rendering a template, and the error page.

A session is re-checked on every request against the database (one primary-key read of the
account and one of the tenant, in a worker thread): a deleted account, a changed password, a
disabled tenant or an account moved to another tenant ends it at once.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from vodwatch.api.incoming import Services
from vodwatch.dashboard import present
from vodwatch.dashboard.languages import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    Language,
    choose_language,
    environment,
    language_for_switch,
)
from vodwatch.dashboard.sessions import SESSION_PURPOSE, Session, SessionSigner
from vodwatch.formats import format_visit_time
from vodwatch.rate_limits import RateLimiter
from vodwatch.store.accounts import find_account
from vodwatch.store.tenants import Tenant, find_tenant_by_id

SESSION_COOKIE = "vodwatch_session"
FORM_COOKIE = "vodwatch_form"  # the sign-in form's CSRF token, before there is a session
COOKIE_PATH = "/dashboard"
LANGUAGE_COOKIE_SECONDS = 365 * 86400
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Dashboard:
    """The dashboard's state in one process: the session signer and the sign-in limits."""

    def __init__(self, services: Services) -> None:
        self.services = services
        rate = services.settings.dashboard_login_rate
        self.attempts_per_account = RateLimiter(rate)
        self.attempts_per_address = RateLimiter(rate)

    @cached_property
    def signer(self) -> SessionSigner:
        # Derived from the server's secret key: the same in every worker, and after restarts.
        return SessionSigner(self.services.db.secret_box.derive_key(SESSION_PURPOSE))


def dashboard_of(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person a request's session belongs to, checked against the database just now."""

    session: Session
    tenant: Tenant


def _check_session(services: Services, session: Session) -> SignedIn | None:
    with services.db.read() as conn:
        account = find_account(conn, session.email)
        if (
            account is None
            or account.tenant_id != session.tenant_id
            or account.password_changed_at_ms != session.password_changed_at_ms
        ):
            return None
        tenant = find_tenant_by_id(conn, services.db.secret_box, account.tenant_id)
    if tenant is None or tenant.is_disabled:
        return None
    return SignedIn(session, tenant)


async def signed_in(request: Request) -> SignedIn | None:
    """Who the request's session cookie signs in, if anyone still may."""
    dashboard = dashboard_of(request)
    session = dashboard.signer.load_session(
        request.cookies.get(SESSION_COOKIE), dashboard.services.clock()
    )
    if session is None:
        return None
    return await run_in_threadpool(_check_session, dashboard.services, session)


def language_of(request: Request) -> Language:
    return choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
    )


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Lax, Secure over https, for the dashboard's paths only."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    set_cookie(request, response, name, "", 0)


def secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _language_links(request: Request) -> list[dict[str, str]]:
    query = [(name, value) for name, value in request.query_params.multi_items() if name != "lang"]
    links = []
    for language in LANGUAGES:
        parameters = "&".join(
            f"{quote(name, safe='')}={quote(value, safe='')}"
            for name, value in [*query, ("lang", language.switch)]
        )
        links.append(
            {
                "label": language.label,
                "href": f"{request.url.path}?{parameters}",
                "lang": language.html_lang,
                "switch": language.switch,
            }
        )
    return links


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    user: SignedIn | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page in the request's language, with the security headers; a ``?lang=`` switch is
    remembered in a cookie."""
    language = language_of(request)
    page = environment(language.catalog).get_template(template)
    html = page.render(
        {
            **context,
            "language": language,
            "language_links": _language_links(request),
            "user": user,
            "present": present,
            "hms": format_visit_time,
            "time_element": present.time_element,
        }
    )
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    switched = language_for_switch(request.query_params.get("lang"))
    if switched is not None:
        set_cookie(request, response, LANGUAGE_COOKIE, switched.switch, LANGUAGE_COOKIE_SECONDS)
    return secure(response)


def error_page(
    request: Request,
    status_code: int,
    *,
    user: SignedIn | None = None,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The page for a 4xx: what went wrong in the reader's language (``detail``: the API's
    own message, in English, for a bad parameter), and a way back."""
    return render(
        request,
        "error.html",
        {"status": status_code, "detail": detail},
        user=user,
        status_code=status_code,
        headers=headers,
    )


def to_sign_in(request: Request) -> Response:
    """Off to the sign-in form, coming back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return secure(
        RedirectResponse(f"/dashboard/login?next={quote(target, safe='')}", status_code=303)
    )
