"""Soft lockout after repeated failed sign-ins (SECURITY.md S2), the same for every username."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from server.auth.models import LoginThrottle
from server.db.base import utcnow
from server.errors import TooManyAttemptsError
from server.settings import AuthSettings

__all__ = ["LoginThrottler"]


class LoginThrottler:
    def __init__(self, secret_key: str, auth: AuthSettings) -> None:
        self._secret = secret_key.encode("utf-8")
        self._auth = auth

    def key(self, username: str) -> str:
        normalised = username.strip().lower().encode("utf-8")
        return hmac.new(self._secret, normalised, hashlib.sha256).hexdigest()

    def check(self, session: Session, username: str, now: datetime | None = None) -> None:
        """Raise TooManyAttemptsError while the username is locked."""
        now = now or utcnow()
        state = session.get(LoginThrottle, self.key(username), with_for_update=True)
        if state is not None and state.locked_until is not None and state.locked_until > now:
            raise TooManyAttemptsError(
                "Too many failed sign-in attempts; this account is locked for a while.",
                retry_after_s=int((state.locked_until - now).total_seconds()) + 1,
            )

    def failed(self, session: Session, username: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        window = timedelta(minutes=self._auth.lockout_window_minutes)
        key = self.key(username)
        state = session.get(LoginThrottle, key, with_for_update=True)
        if state is None:
            state = LoginThrottle(username_key=key, failures=0, first_failure_at=now)
            session.add(state)
        if now - state.first_failure_at > window:
            state.first_failure_at = now
            state.failures = 0
        state.failures += 1
        if state.failures >= self._auth.max_failed_logins:
            state.locked_until = now + window
        session.flush()

    def clear(self, session: Session, username: str) -> None:
        state = session.get(LoginThrottle, self.key(username))
        if state is not None:
            session.delete(state)
            session.flush()

    def locked_until(self, session: Session, username: str) -> datetime | None:
        state = session.get(LoginThrottle, self.key(username))
        if state is None or state.locked_until is None or state.locked_until <= utcnow():
            return None
        return state.locked_until
