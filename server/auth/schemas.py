"""Bodies of the auth endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from server.users.enums import Role


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_at: datetime
    expires_in: int


class Me(BaseModel):
    id: int
    username: str
    full_name: str
    role: Role
    unit_id: int
    sees_whole_mission: bool
