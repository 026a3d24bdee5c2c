"""Signing in: password check, soft lockout after repeated failures, token issue.

Unknown user and wrong password give the same answer after the same work (one argon2
verification), so the login form is not a username oracle.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.audit import service as audit
from server.auth.passwords import PasswordService
from server.auth.throttle import LoginThrottler
from server.auth.tokens import AccessToken, TokenService
from server.db.base import utcnow
from server.errors import AuthenticationError, TooManyAttemptsError
from server.users.models import User

__all__ = ["login"]

GENERIC_FAILURE = "Incorrect username or password."


def login(
    *,
    session: Session,
    username: str,
    password: str,
    passwords: PasswordService,
    tokens: TokenService,
    throttle: LoginThrottler,
    request_id: str | None,
) -> tuple[User, AccessToken]:
    user = session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).one_or_none()
    try:
        throttle.check(session, username)
    except TooManyAttemptsError:
        passwords.verify(None, password)  # the same work as any other attempt
        audit.record(
            session,
            actor=None,
            action="login_locked",
            object_type="user",
            object_id=user.id if user else None,
            request_id=request_id,
        )
        raise
    ok = passwords.verify(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        throttle.failed(session, username)
        audit.record(
            session,
            actor=None,
            action="login_failed",
            object_type="user",
            object_id=user.id if user else None,
            request_id=request_id,
            details={"known_user": user is not None},
        )
        raise AuthenticationError(GENERIC_FAILURE)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    throttle.clear(session, username)
    user.last_login_at = utcnow()
    session.flush()
    return user, tokens.issue(user_id=user.id, token_version=user.token_version)
