"""POST /api/v1/auth/token (OAuth2 password flow) and GET /api/v1/auth/me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from server.auth import service
from server.auth.schemas import Me, TokenRead
from server.db.base import utcnow
from server.deps import CurrentActor, CurrentUser, DbSession, Passwords, Throttle, Tokens
from server.errors import AuthenticationError, TooManyAttemptsError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenRead, summary="Sign in (OAuth2 password flow)")
def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: DbSession,
    passwords: Passwords,
    tokens: Tokens,
    throttle: Throttle,
) -> TokenRead:
    try:
        _user, token = service.login(
            session=session,
            username=form.username,
            password=form.password,
            passwords=passwords,
            tokens=tokens,
            throttle=throttle,
            request_id=getattr(request.state, "request_id", None),
        )
    except (AuthenticationError, TooManyAttemptsError):
        # The failed attempt (counter, lockout, audit row) must be kept, not rolled back with
        # the error: commit it, then answer.
        session.commit()
        raise
    expires_in = int((token.expires_at - utcnow()).total_seconds())
    return TokenRead(access_token=token.token, expires_at=token.expires_at, expires_in=expires_in)


@router.get("/me", response_model=Me, summary="Who am I")
def me(user: CurrentUser, actor: CurrentActor) -> Me:
    return Me(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        unit_id=user.unit_id,
        sees_whole_mission=actor.sees_whole_mission,
    )
