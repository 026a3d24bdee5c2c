"""Users and roles: /api/v1/users (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from server.access.policy import Permission, require
from server.auth.throttle import LoginThrottler
from server.deps import CurrentActor, DbSession, Passwords, Throttle
from server.users import service
from server.users.models import User
from server.users.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


def _read(user: User, session: Session, throttle: LoginThrottler) -> UserRead:
    return UserRead(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        unit_id=user.unit_id,
        is_active=user.is_active,
        locked_until=throttle.locked_until(session, user.username),
        last_login_at=user.last_login_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


@router.get("", response_model=list[UserRead], summary="All users (admin)")
def list_users(session: DbSession, actor: CurrentActor, throttle: Throttle) -> list[UserRead]:
    require(actor, Permission.MANAGE_USERS)
    return [_read(u, session, throttle) for u in service.list_(session=session)]


@router.post(
    "",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (admin)",
)
def create_user(
    body: UserCreate,
    session: DbSession,
    actor: CurrentActor,
    passwords: Passwords,
    throttle: Throttle,
) -> UserRead:
    user = service.create(session=session, user_in=body, actor=actor, passwords=passwords)
    return _read(user, session, throttle)


@router.get("/{user_id}", response_model=UserRead, summary="One user (admin)")
def get_user(user_id: int, session: DbSession, actor: CurrentActor, throttle: Throttle) -> UserRead:
    require(actor, Permission.MANAGE_USERS)
    return _read(service.get_or_raise(session=session, user_id=user_id), session, throttle)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    summary="Change role, unit, status or password (admin); voids the user's tokens",
)
def update_user(
    user_id: int,
    body: UserUpdate,
    session: DbSession,
    actor: CurrentActor,
    passwords: Passwords,
    throttle: Throttle,
) -> UserRead:
    require(actor, Permission.MANAGE_USERS)
    user = service.get_or_raise(session=session, user_id=user_id)
    updated = service.update(
        session=session,
        user=user,
        user_in=body,
        actor=actor,
        passwords=passwords,
        throttle=throttle,
    )
    return _read(updated, session, throttle)
