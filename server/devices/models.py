"""Field devices (phones, laptops) bound to a user and revocable in one request."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db.base import Base, UtcDateTime, utcnow
from server.users.models import User


class Device(Base):
    __tablename__ = "devices"

    #: The install id the device generated for itself; stable across app upgrades.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    platform: Mapped[str] = mapped_column(String(60))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoke_reason: Mapped[str | None] = mapped_column(String(500))
    #: Bumped on revocation so every credential issued to the device is void.
    credential_version: Mapped[int] = mapped_column(Integer, default=0)
    #: sha256 of the device's sync secret (shown once, when issued); NULL: none issued.
    credential_hash: Mapped[str | None] = mapped_column(String(64))
    credential_issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    #: Latest estimate of (device clock − server clock), from the sync clock probe.
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger)
    clock_boot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    clock_sampled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
