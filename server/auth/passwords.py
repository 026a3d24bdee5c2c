"""Password hashing with argon2id, and the rules a new password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.errors import ValidationFailedError
from server.settings import AuthSettings

__all__ = ["PasswordService", "check_password_rules"]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128

# The most common passwords of public breach corpora; a full breached-password list comes with
# the security hardening issue. Comparison is case-insensitive.
_COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890",
        "password123",
        "password1234",
        "qwertyuiop",
        "1q2w3e4r5t",
        "iloveyou123",
        "administrator",
        "changeme123",
        "welcome123",
        "letmein1234",
        "passw0rd123",
        "0123456789",
        "1111111111",
        "abcdefghij",
        "qwerty12345",
        "peacekeeper",
        "unitednations",
    }
)


def check_password_rules(password: str, *, username: str) -> None:
    """Raise ValidationFailedError naming the rule a new password breaks.

    Length is what matters (NIST SP 800-63B, ASVS 6.2): no composition rules, but not too
    short, not the username, not a well-known password.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailedError.on(
            "password", f"must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailedError.on(
            "password", f"must be at most {MAX_PASSWORD_LENGTH} characters long"
        )
    lowered = password.lower()
    if lowered == username.lower() or username.lower() in lowered:
        raise ValidationFailedError.on("password", "must not contain the username")
    if lowered in _COMMON_PASSWORDS:
        raise ValidationFailedError.on("password", "is a well-known password; choose another")


class PasswordService:
    """argon2id hashing with the configured cost; verifies in constant work for unknown users."""

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified against when the username is unknown, so both paths cost one argon2 run.
        self._dummy_hash = self._hasher.hash("vigil-timing-equaliser")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
