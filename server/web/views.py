"""Signing in and out of Vigil's pages (the threat map, the JOC page) with a browser session.

The form posts to the same sign-in service as ``/api/v1/auth/token``: the same throttle,
lockout and audit trail. A session is a cookie (see ``server.web.sessions``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from server.auth import service as auth
from server.db.base import utcnow
from server.deps import DbSession, Passwords, Sessions, Throttle, Tokens, WebUser, WebVisitor
from server.errors import AuthenticationError, PermissionDeniedError, TooManyAttemptsError
from server.web.sessions import COOKIE, safe_next

__all__ = ["page", "router", "set_session_cookie", "template_environment"]

router = APIRouter(tags=["pages"], include_in_schema=False)


#: Vigil's page icon, inline: browsers ask for one on every page, and an exported briefing page
#: has no server to ask.
ICON_SVG = Path(__file__).with_name("static").joinpath("vigil-icon.svg").read_bytes()
ICON_LINK = Markup(  # noqa: S704 - a constant built from our own file
    '<link rel="icon" type="image/svg+xml" href="data:image/svg+xml;base64,'
    + base64.b64encode(ICON_SVG).decode()
    + '">'
)


def template_environment(directory: Path) -> Environment:
    """Jinja templates of a slice's pages, every value escaped unless marked safe."""
    environment = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    environment.globals["icon_link"] = ICON_LINK
    return environment


templates = template_environment(Path(__file__).with_name("templates"))

#: Pages are never cached (they show sensitive data) and may not be framed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def set_session_cookie(response: Response, request: Request, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def page(
    html: str, request: Request, visitor: WebVisitor | None = None, status: int = 200
) -> HTMLResponse:
    """An HTML page, with the visitor's session renewed (its idle clock restarts)."""
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    if visitor is not None:
        idle = request.app.state.sessions.idle
        set_session_cookie(response, request, visitor.renewed_cookie, int(idle.total_seconds()))
    return response


def _form(message: str | None, username: str, next_path: str) -> str:
    return templates.get_template("login.html").render(
        message=message, username=username, next=next_path
    )


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return page(_form(None, "", safe_next(next)), request)


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    passwords: Passwords,
    tokens: Tokens,
    throttle: Throttle,
    sessions: Sessions,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = safe_next(next)
    try:
        user, _token = auth.login(
            session=session,
            username=username,
            password=password,
            passwords=passwords,
            tokens=tokens,
            throttle=throttle,
            request_id=getattr(request.state, "request_id", None),
        )
    except TooManyAttemptsError as exc:
        session.commit()  # keep the failed attempt (counter, audit) as the API does
        return page(_form(exc.message, username, target), request, status=429)
    except AuthenticationError as exc:
        session.commit()
        return page(_form(exc.message, username, target), request, status=401)
    cookie = sessions.issue(user_id=user.id, token_version=user.token_version, started_at=utcnow())
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    set_session_cookie(response, request, cookie, int(sessions.idle.total_seconds()))
    return response


@router.post("/logout")
def logout(
    request: Request,
    visitor: WebUser,
    sessions: Sessions,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not sessions.check_csrf(visitor.claims, csrf):
        raise PermissionDeniedError("This sign-out did not come from a Vigil page.")
    response = RedirectResponse("/login", status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE, path="/")
    return response
