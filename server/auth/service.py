"""Signing in: password check, soft lockout after repeated failures, token issue.

Unknown user and wrong password give the same answer after the same work (one argon2
verification), so the login form is not a username oracle.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.audit import service as audit
from server.auth.passwords import PasswordService
from server.auth.tokens import AccessToken, TokenService
from server.db.base import utcnow
from server.errors import AuthenticationError, TooManyAttemptsError
from server.settings import AuthSettings
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
    auth: AuthSettings,
    request_id: str | None,
) -> tuple[User, AccessToken]:
    now = utcnow()
    user = session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).one_or_none()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        passwords.verify(None, password)  # same work as any other attempt
        audit.record(
            session,
            actor=None,
            action="login_locked",
            object_type="user",
            object_id=user.id,
            request_id=request_id,
        )
        raise TooManyAttemptsError(
            "Too many failed sign-in attempts; this account is locked for a while.",
            retry_after_s=int((user.locked_until - now).total_seconds()) + 1,
        )
    ok = passwords.verify(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        if user is not None:
            _count_failure(user, auth)
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
    user.failed_login_count = 0
    user.first_failed_login_at = None
    user.locked_until = None
    user.last_login_at = now
    session.flush()
    return user, tokens.issue(user_id=user.id, token_version=user.token_version)


def _count_failure(user: User, auth: AuthSettings) -> None:
    now = utcnow()
    window = timedelta(minutes=auth.lockout_window_minutes)
    if user.first_failed_login_at is None or now - user.first_failed_login_at > window:
        user.first_failed_login_at = now
        user.failed_login_count = 0
    user.failed_login_count += 1
    if user.failed_login_count >= auth.max_failed_logins:
        user.locked_until = now + window
