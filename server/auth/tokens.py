"""Short-lived signed access tokens (JWT, HS256).

A token names the user and the user's ``token_version``; every request re-reads the user, so
deactivating a user, or changing their role, unit or password, voids their tokens at the next
request rather than at expiry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from server.errors import AuthenticationError

__all__ = ["AccessToken", "TokenClaims", "TokenService"]

ALGORITHM = "HS256"
AUDIENCE = "vigil-api"
ISSUER = "vigil"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_version: int
    token_id: str


class TokenService:
    def __init__(self, secret_key: str, lifetime: timedelta) -> None:
        self._key = secret_key
        self._lifetime = lifetime

    def issue(
        self, *, user_id: int, token_version: int, now: datetime | None = None
    ) -> AccessToken:
        issued = now or datetime.now(UTC)
        expires = issued + self._lifetime
        claims = {
            "sub": str(user_id),
            "ver": token_version,
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "aud": AUDIENCE,
            "iss": ISSUER,
            "jti": uuid.uuid4().hex,
        }
        return AccessToken(jwt.encode(claims, self._key, algorithm=ALGORITHM), expires)

    def verify(self, token: str) -> TokenClaims:
        try:
            # The algorithm list is fixed: "none" and key-confusion (RS/HS swap) are refused.
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            )
            return TokenClaims(int(claims["sub"]), int(claims.get("ver", -1)), str(claims["jti"]))
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("Your session has expired; sign in again.") from exc
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            raise AuthenticationError("The access token is not valid; sign in again.") from exc
