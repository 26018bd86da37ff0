"""Signing in to the dashboard and out of it.

``POST /dashboard/login`` checks the sign-in form's CSRF token, then the attempt rate (per
account and per client address, ``--dashboard-login-rate``: every attempt counts, so a guesser
gets a few tries a minute whatever they try), then the password (argon2, ~0.1 s, in a worker
thread: never on the event loop). A wrong address and a wrong password get the same answer.
"""

from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vodwatch.api.incoming import Services
from vodwatch.dashboard.sessions import Session, is_same_token, new_csrf_token, safe_next
from vodwatch.dashboard.site import (
    FORM_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    dashboard_of,
    error_page,
    render,
    secure,
    set_cookie,
    signed_in,
)
from vodwatch.store.accounts import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, verify_password
from vodwatch.store.tenants import Tenant, find_tenant_by_id

router = APIRouter(include_in_schema=False)

MAX_FORM_BYTES = 16 * 1024


async def read_form(request: Request) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body of at most ``MAX_FORM_BYTES``, each field
    once (an empty body has no field); None for anything else (answered 400)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    if not body:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    fields = dict(pairs)
    return fields if len(fields) == len(pairs) else None


def _sign_in_form(
    request: Request,
    *,
    token: str,
    next_path: str,
    email: str = "",
    problem: str | None = None,
    wait_seconds: int | None = None,
    status_code: int = 200,
) -> Response:
    dashboard = dashboard_of(request)
    headers = {"Retry-After": str(wait_seconds)} if wait_seconds is not None else None
    response = render(
        request,
        "login.html",
        {
            "csrf_token": token,
            "next_path": next_path,
            "email": email,
            "problem": problem,
            "wait_seconds": wait_seconds,
            "max_email_length": MAX_EMAIL_LENGTH,
        },
        status_code=status_code,
        headers=headers,
    )
    now = dashboard.services.clock()
    cookie = dashboard.signer.sign_form_token(token, now)
    set_cookie(request, response, FORM_COOKIE, cookie, dashboard.signer.lifetime_seconds)
    return response


@router.get("/dashboard/login")
async def sign_in_page(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if await signed_in(request) is not None:
        return secure(RedirectResponse(next_path, status_code=303))
    dashboard = dashboard_of(request)
    # The token of an earlier form, while it lasts: two tabs of the form both work.
    token = dashboard.signer.load_form_token(
        request.cookies.get(FORM_COOKIE), dashboard.services.clock()
    )
    return _sign_in_form(request, token=token or new_csrf_token(), next_path=next_path)


def _verify(services: Services, email: str, password: str) -> tuple[Session, Tenant] | None:
    """The session to start and its tenant; None for a wrong address or password."""
    with services.db.read() as conn:
        account = verify_password(conn, email, password)
        if account is None:
            return None
        tenant = find_tenant_by_id(conn, services.db.secret_box, account.tenant_id)
    if tenant is None:
        return None
    session = Session(
        email=account.email,
        tenant_id=account.tenant_id,
        password_changed_at_ms=account.password_changed_at_ms,
        csrf_token=new_csrf_token(),
        issued_at=int(services.clock()),
    )
    return session, tenant


@router.post("/dashboard/login")
async def sign_in(request: Request) -> Response:
    dashboard = dashboard_of(request)
    form = await read_form(request)
    if form is None:
        return error_page(request, 400)
    now = dashboard.services.clock()
    expected = dashboard.signer.load_form_token(request.cookies.get(FORM_COOKIE), now)
    if expected is None or not is_same_token(form.get("csrf_token"), expected):
        return error_page(request, 403)
    email = form.get("email", "").strip()[:MAX_EMAIL_LENGTH]
    password = form.get("password", "")[:MAX_PASSWORD_LENGTH]
    next_path = safe_next(form.get("next"))

    def again(problem: str, status_code: int, wait: int | None = None) -> Response:
        return _sign_in_form(
            request,
            token=expected,
            next_path=next_path,
            email=email,
            problem=problem,
            wait_seconds=wait,
            status_code=status_code,
        )

    if not email or not password:
        return again("missing", 400)
    client = request.client.host if request.client else ""
    limits = (
        (dashboard.attempts_per_address, f"address {client}"),
        (dashboard.attempts_per_account, f"account {email.lower()}"),
    )
    waits = [wait for limiter, key in limits if (wait := limiter.blocked_for(key)) is not None]
    if not waits:
        waits = [wait for limiter, key in limits if (wait := limiter.hit(key)) is not None]
    if waits:
        return again("too_many", 429, max(waits))
    verified = await run_in_threadpool(_verify, dashboard.services, email, password)
    if verified is None:
        return again("credentials", 401)
    session, tenant = verified
    if tenant.is_disabled:
        return again("disabled", 403)
    response = secure(RedirectResponse(next_path, status_code=303))
    cookie = dashboard.signer.sign_session(session)
    set_cookie(request, response, SESSION_COOKIE, cookie, dashboard.signer.lifetime_seconds)
    clear_cookie(request, response, FORM_COOKIE)
    return response


@router.post("/dashboard/logout")
async def sign_out(request: Request) -> Response:
    """Ends the session in this browser (the cookie goes; a copy of it lasts until it
    expires, or until the password changes)."""
    user = await signed_in(request)
    form = await read_form(request)
    if form is None:
        return error_page(request, 400, user=user)
    if user is not None and not is_same_token(form.get("csrf_token"), user.session.csrf_token):
        return error_page(request, 403, user=user)
    response = secure(RedirectResponse("/dashboard/login", status_code=303))
    clear_cookie(request, response, SESSION_COOKIE)
    return response
