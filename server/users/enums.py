"""Roles a user can hold; what each may do is decided in ``server.access.policy``."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    FIELD_OFFICER = "field_officer"
    ANALYST = "analyst"
    COMMANDER = "commander"
    PROTECTION_OFFICER = "protection_officer"
    ADMIN = "admin"
