"""Users and roles. Any change to role, unit, status or password voids the user's tokens."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.access.policy import Actor, Permission, require
from server.audit import service as audit
from server.auth.passwords import PasswordService, check_password_rules
from server.auth.throttle import LoginThrottler
from server.db.base import utcnow
from server.errors import NotFoundError, ValidationFailedError
from server.units.models import Unit
from server.users.enums import Role
from server.users.models import User
from server.users.schemas import UserCreate, UserUpdate

__all__ = ["create", "get_or_raise", "list_", "update"]


def get_or_raise(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"User {user_id} does not exist.")
    return user


def list_(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def _check_unit(session: Session, unit_id: int) -> None:
    if session.get(Unit, unit_id) is None:
        raise ValidationFailedError.on("unit_id", f"unit {unit_id} does not exist")


def create(
    *,
    session: Session,
    user_in: UserCreate,
    actor: Actor | None,
    passwords: PasswordService,
) -> User:
    """Create a user. ``actor`` None means the command line (``vigil user create``)."""
    if actor is not None:
        require(actor, Permission.MANAGE_USERS)
    taken = session.scalar(
        select(User.id).where(func.lower(User.username) == user_in.username.lower())
    )
    if taken is not None:
        raise ValidationFailedError.on("username", f"{user_in.username!r} is already taken")
    _check_unit(session, user_in.unit_id)
    password = user_in.password.get_secret_value()
    check_password_rules(password, username=user_in.username)
    user = User(
        username=user_in.username.lower(),
        full_name=user_in.full_name,
        role=user_in.role,
        unit_id=user_in.unit_id,
        password_hash=passwords.hash(password),
        is_active=True,
        token_version=0,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user_created",
        object_type="user",
        object_id=user.id,
        details={"role": user.role.value, "unit_id": user.unit_id},
    )
    return user


def update(
    *,
    session: Session,
    user: User,
    user_in: UserUpdate,
    actor: Actor,
    passwords: PasswordService,
    throttle: LoginThrottler | None = None,
) -> User:
    require(actor, Permission.MANAGE_USERS)
    changes = user_in.model_dump(exclude_unset=True)
    if user.id == actor.user_id and (
        changes.get("is_active") is False or changes.get("role", Role.ADMIN) != Role.ADMIN
    ):
        raise ValidationFailedError.on(
            "role", "you cannot deactivate yourself or remove your own admin role"
        )
    for name in ("full_name", "role", "unit_id", "is_active"):
        if name in changes and changes[name] is None:
            raise ValidationFailedError.on(name, "cannot be set to null")
    if "unit_id" in changes:
        _check_unit(session, changes["unit_id"])
    for name in ("full_name", "role", "unit_id", "is_active"):
        if name in changes:
            setattr(user, name, changes[name])
    if user_in.password is not None:
        password = user_in.password.get_secret_value()
        check_password_rules(password, username=user.username)
        user.password_hash = passwords.hash(password)
        user.password_changed_at = utcnow()
        if throttle is not None:
            throttle.clear(session, user.username)  # a reset password also lifts a lockout
    if {"role", "unit_id", "is_active", "password"} & changes.keys():
        user.token_version += 1
    user.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user_updated",
        object_type="user",
        object_id=user.id,
        details={"fields": sorted(changes)},
    )
    return user
