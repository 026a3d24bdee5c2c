"""Sign-in throttling state, keyed by the attempted username whether or not it exists."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class LoginThrottle(Base):
    """Failed sign-ins per attempted username.

    Keyed by an HMAC of the lower-cased username under the server's secret, not the name: a
    mistyped password in the username field must not be stored readable, and an unknown name is
    throttled exactly like a real one, so lockouts reveal nothing about which accounts exist.
    """

    __tablename__ = "login_throttle"

    username_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
