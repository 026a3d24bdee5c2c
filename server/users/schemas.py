"""Bodies of the users endpoints (admin only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from server.users.enums import Role

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$"


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(pattern=USERNAME_PATTERN, description="Login name (stored lower-case).")
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    unit_id: int
    password: SecretStr = Field(description="At least 10 characters; not a well-known password.")

    @field_validator("username", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        # Sign-in is case-insensitive, so the stored name is lower case whatever was typed.
        return value.strip().lower() if isinstance(value, str) else value


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    unit_id: int | None = None
    is_active: bool | None = None
    password: SecretStr | None = None


class UserRead(BaseModel):
    id: int
    username: str
    full_name: str
    role: Role
    unit_id: int
    is_active: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
