"""Browser sessions for Vigil's own pages (the threat map, the JOC page).

A signed cookie (JWT, HS256, its own audience so an API token is no session and a session no
API token) names the user, their ``token_version`` and when the session started. It is renewed
on every page a user opens: it lapses after ``session_idle_minutes`` without one and in any case
``session_max_hours`` after sign-in (SECURITY.md S8). Like API tokens it is checked against the
user on every request, so deactivating a user or changing their password ends their sessions.

The cookie is ``HttpOnly`` and ``SameSite=Strict``; state-changing requests from a page also
carry a CSRF token derived from the session (:func:`csrf_token`), so neither another site nor a
script injected into a tile can act for the user.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from server.errors import AuthenticationError

__all__ = ["COOKIE", "SessionClaims", "SessionService", "safe_next"]

COOKIE = "vigil_session"
AUDIENCE = "vigil-web"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    token_version: int
    started_at: datetime


class SessionService:
    def __init__(self, secret_key: str, *, idle: timedelta, lifetime: timedelta) -> None:
        self._key = secret_key
        self.idle = idle
        self.lifetime = lifetime

    def issue(
        self, *, user_id: int, token_version: int, started_at: datetime, now: datetime | None = None
    ) -> str:
        moment = now or datetime.now(UTC)
        expires = min(moment + self.idle, started_at + self.lifetime)
        claims = {
            "sub": str(user_id),
            "ver": token_version,
            "sst": int(started_at.timestamp()),
            "iat": int(moment.timestamp()),
            "exp": int(expires.timestamp()),
            "aud": AUDIENCE,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, cookie: str, *, now: datetime | None = None) -> SessionClaims:
        moment = now or datetime.now(UTC)
        try:
            claims = jwt.decode(
                cookie,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["exp", "iat", "sub", "sst", "aud"], "verify_exp": False},
            )
            started = datetime.fromtimestamp(int(claims["sst"]), UTC)
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
            result = SessionClaims(int(claims["sub"]), int(claims["ver"]), started)
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
            raise AuthenticationError("Your session is not valid; sign in again.") from exc
        if moment >= expires or moment >= started + self.lifetime:
            raise AuthenticationError("Your session has ended; sign in again.")
        return result

    def csrf_token(self, claims: SessionClaims) -> str:
        """The session's CSRF token: fixed for the session, useless for any other."""
        message = f"csrf:{claims.user_id}:{claims.token_version}:{claims.started_at.timestamp()}"
        return hmac.new(self._key.encode(), message.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, claims: SessionClaims, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(claims), token)


def safe_next(path: str | None, default: str = "/maps/threat") -> str:
    """Where to go after signing in: a path on this server only (no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path
