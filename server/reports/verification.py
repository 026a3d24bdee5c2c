"""The verification state machine and who may take each step.

reported ──► under_verification ──► verified
                    ▲        └────► discredited
                    └── reopened (with a note) from verified or discredited

reported / under_verification ──► withdrawn   (by the report's author only, before a decision)
"""

from __future__ import annotations

from server.access.policy import Actor, Permission, require
from server.errors import InvalidTransitionError, PermissionDeniedError, ValidationFailedError
from server.reports.enums import VerificationState as S

__all__ = ["TRANSITIONS", "WITHDRAWABLE", "check", "check_withdrawal"]

#: (from, to) → the permission the step needs.
TRANSITIONS: dict[tuple[S, S], Permission] = {
    (S.REPORTED, S.UNDER_VERIFICATION): Permission.START_VERIFICATION,
    (S.UNDER_VERIFICATION, S.VERIFIED): Permission.DECIDE_VERIFICATION,
    (S.UNDER_VERIFICATION, S.DISCREDITED): Permission.DECIDE_VERIFICATION,
    (S.VERIFIED, S.UNDER_VERIFICATION): Permission.DECIDE_VERIFICATION,
    (S.DISCREDITED, S.UNDER_VERIFICATION): Permission.DECIDE_VERIFICATION,
}

_REOPENING = {(S.VERIFIED, S.UNDER_VERIFICATION), (S.DISCREDITED, S.UNDER_VERIFICATION)}


def allowed_next(current: S) -> list[S]:
    return [to for (frm, to) in TRANSITIONS if frm is current]


def check(current: S, target: S, actor: Actor, *, note: str | None) -> None:
    """Raise unless ``actor`` may move a report from ``current`` to ``target``."""
    permission = TRANSITIONS.get((current, target))
    if permission is None:
        options = ", ".join(s.value for s in allowed_next(current)) or "none"
        raise InvalidTransitionError(
            f"A report that is {current.value} cannot become {target.value}; "
            f"allowed next states: {options}."
        )
    require(actor, permission)
    if (current, target) in _REOPENING and not (note and note.strip()):
        raise ValidationFailedError.on("note", "reopening a decided report needs a note saying why")


#: States from which a report's author may still withdraw it: no decision has been taken.
WITHDRAWABLE = frozenset({S.REPORTED, S.UNDER_VERIFICATION})


def check_withdrawal(current: S, *, actor: Actor, author_user_id: int | None) -> None:
    """Raise unless ``actor`` may withdraw a report that is ``current``."""
    if author_user_id is None or actor.user_id != author_user_id:
        raise PermissionDeniedError("Only the report's author may withdraw it.")
    if current is S.WITHDRAWN:
        raise InvalidTransitionError("This report is already withdrawn.")
    if current not in WITHDRAWABLE:
        raise InvalidTransitionError(
            f"A report that is {current.value} cannot be withdrawn: it has been decided on "
            "(ask the verifying analyst to reopen it)."
        )
