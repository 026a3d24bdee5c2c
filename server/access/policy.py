"""The one access policy: who may see which reports, in how much detail, and who may do what.

Every read path — detail, list, GeoJSON, incidents, merge suggestions, and later map, export,
sync pull and alerts — asks this module, in Python for one record and in SQL for many; the two
forms are tested against each other.

Three questions, answered from role, unit and sensitivity tier:

1. **Scope** — is the report within the actor's units? A report is in scope when its reporting
   unit or the unit whose area holds it (``aor_unit_id``) is the actor's unit or below it.
   Members of a unit that sees the whole mission (the JOC, analysis cells, human rights
   sections), and of the mission's root unit, see every report. A report with no unit at all is
   seen only by those (default deny).
2. **Detail** — full, or redacted? Normal reports are full for everyone in scope. Restricted and
   strictly confidential reports (SGBV, children, informants, misconduct) are full only for
   protection officers; everyone else gets the redacted form: category, day, and the res-6
   cell, never the narrative, victim details or exact point. An unknown or missing tier counts
   as strictly confidential.
3. **Function** — may this role do this at all (``Permission``)?
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from server.errors import PermissionDeniedError
from server.taxonomy.codes import Sensitivity, most_restrictive
from server.units.models import Unit
from server.users.enums import Role
from server.users.models import User

__all__ = [
    "Actor",
    "Detail",
    "Permission",
    "actor_for",
    "detail_for",
    "full_detail_clause",
    "in_scope",
    "require",
    "scope_clause",
    "system_actor",
]


class Detail(StrEnum):
    FULL = "full"
    REDACTED = "redacted"
    HIDDEN = "hidden"


class Permission(StrEnum):
    CREATE_REPORT = "create_report"
    EDIT_ANY_REPORT = "edit_any_report"
    START_VERIFICATION = "start_verification"
    DECIDE_VERIFICATION = "decide_verification"
    MERGE_INCIDENTS = "merge_incidents"
    MANAGE_UNITS = "manage_units"
    MANAGE_USERS = "manage_users"
    MANAGE_DEVICES = "manage_devices"
    READ_AUDIT = "read_audit"
    IMPORT_DATASETS = "import_datasets"
    RECORD_PATROL = "record_patrol"
    REMOVE_REPORT = "remove_report"
    MANAGE_SITES = "manage_sites"
    SUGGEST_TASKING = "suggest_tasking"


#: What each role may do. Anything not listed is denied.
PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.CREATE_REPORT: frozenset(
        {Role.FIELD_OFFICER, Role.ANALYST, Role.COMMANDER, Role.PROTECTION_OFFICER}
    ),
    Permission.EDIT_ANY_REPORT: frozenset({Role.ANALYST, Role.PROTECTION_OFFICER}),
    Permission.START_VERIFICATION: frozenset(
        {Role.ANALYST, Role.PROTECTION_OFFICER, Role.COMMANDER}
    ),
    Permission.DECIDE_VERIFICATION: frozenset({Role.ANALYST, Role.PROTECTION_OFFICER}),
    Permission.MERGE_INCIDENTS: frozenset({Role.ANALYST, Role.PROTECTION_OFFICER}),
    Permission.MANAGE_UNITS: frozenset({Role.ADMIN}),
    Permission.MANAGE_USERS: frozenset({Role.ADMIN}),
    Permission.MANAGE_DEVICES: frozenset({Role.ADMIN}),
    Permission.READ_AUDIT: frozenset({Role.ADMIN}),
    Permission.IMPORT_DATASETS: frozenset({Role.ADMIN, Role.ANALYST}),
    Permission.RECORD_PATROL: frozenset({Role.FIELD_OFFICER, Role.COMMANDER}),
    #: Tombstone a report (kept on record, gone from devices): the JOC/protection side of HQ.
    Permission.REMOVE_REPORT: frozenset({Role.ANALYST, Role.PROTECTION_OFFICER}),
    #: Protected sites (camps, markets, water points): those who map protection needs.
    Permission.MANAGE_SITES: frozenset(
        {Role.ADMIN, Role.ANALYST, Role.COMMANDER, Role.PROTECTION_OFFICER}
    ),
    #: Ask which gaps a unit's patrols should close: who tasks patrols, and the JOC.
    Permission.SUGGEST_TASKING: frozenset({Role.COMMANDER, Role.ANALYST}),
}

#: Tiers each role sees in full; every other tier is redacted for that role.
FULL_DETAIL_TIERS: dict[Role, frozenset[Sensitivity]] = {
    Role.FIELD_OFFICER: frozenset({Sensitivity.NORMAL}),
    Role.ANALYST: frozenset({Sensitivity.NORMAL}),
    Role.COMMANDER: frozenset({Sensitivity.NORMAL}),
    Role.ADMIN: frozenset({Sensitivity.NORMAL}),
    Role.PROTECTION_OFFICER: frozenset(
        {Sensitivity.NORMAL, Sensitivity.RESTRICTED, Sensitivity.STRICTLY_CONFIDENTIAL}
    ),
}


@dataclass(frozen=True)
class Actor:
    """Who is asking: enough to decide access and to sign the audit log.

    ``scope_unit_ids`` is None for the whole mission, else the actor's unit and its subtree.
    """

    user_id: int | None
    username: str
    role: Role
    unit_id: int | None
    scope_unit_ids: frozenset[int] | None
    request_id: str | None = None

    @property
    def sees_whole_mission(self) -> bool:
        return self.scope_unit_ids is None

    def may(self, permission: Permission) -> bool:
        return self.role in PERMISSIONS.get(permission, frozenset())


def actor_for(session: Session, user: User, request_id: str | None = None) -> Actor:
    """Resolve a user's scope from the unit tree (read fresh on every request)."""
    unit = user.unit
    scope: frozenset[int] | None
    if unit.parent_id is None or unit.sees_whole_mission:
        scope = None
    else:
        ids = session.scalars(select(Unit.id).where(Unit.path.startswith(unit.path))).all()
        scope = frozenset(ids)
    return Actor(user.id, user.username, Role(user.role), unit.id, scope, request_id)


def require(actor: Actor, permission: Permission) -> None:
    """Raise PermissionDeniedError unless the actor's role grants ``permission``."""
    if not actor.may(permission):
        raise PermissionDeniedError(
            f"A {actor.role.value.replace('_', ' ')} may not {permission.value.replace('_', ' ')}."
        )


def _tier(sensitivity: Sensitivity | str | None) -> Sensitivity:
    return most_restrictive(sensitivity)


def in_scope(actor: Actor, unit_ids: Iterable[int | None]) -> bool:
    """Whether a record attached to ``unit_ids`` (reporting and AOR unit) is in the scope."""
    if actor.scope_unit_ids is None:
        return True
    return any(u is not None and u in actor.scope_unit_ids for u in unit_ids)


def detail_for(
    actor: Actor, *, sensitivity: Sensitivity | str | None, unit_ids: Iterable[int | None]
) -> Detail:
    """How much of one record the actor may see."""
    if not in_scope(actor, unit_ids):
        return Detail.HIDDEN
    if _tier(sensitivity) in FULL_DETAIL_TIERS.get(actor.role, frozenset()):
        return Detail.FULL
    return Detail.REDACTED


def scope_clause(actor: Actor, *unit_columns: Any) -> ColumnElement[bool]:
    """SQL form of :func:`in_scope` over the given unit-id columns."""
    if actor.scope_unit_ids is None:
        return true()
    if not actor.scope_unit_ids:
        return false()
    ids = sorted(actor.scope_unit_ids)
    return or_(*(column.in_(ids) for column in unit_columns))


def full_detail_clause(actor: Actor, sensitivity_column: Any) -> ColumnElement[bool]:
    """SQL form of "this row's tier is shown in full to the actor". As in :func:`detail_for`, a
    NULL or unknown stored tier counts as strictly confidential."""
    full = FULL_DETAIL_TIERS.get(actor.role, frozenset())
    if not full:
        return false()
    if Sensitivity.STRICTLY_CONFIDENTIAL in full:
        # Full unless the row holds a known tier the role is denied (NULL/unknown: strictest).
        withheld = sorted(t.value for t in Sensitivity if t not in full)
        if not withheld:
            return true()
        return or_(sensitivity_column.is_(None), sensitivity_column.not_in(withheld))
    tiers = sorted(t.value for t in full)
    return and_(sensitivity_column.is_not(None), sensitivity_column.in_(tiers))


def system_actor(purpose: str) -> Actor:
    """The actor for operator commands run on the server itself (``vigil demo``, imports,
    ``vigil user create``): administrative rights, whole-mission scope, named in the audit log."""
    return Actor(
        user_id=None,
        username=f"system:{purpose}",
        role=Role.ADMIN,
        unit_id=None,
        scope_unit_ids=None,
    )
