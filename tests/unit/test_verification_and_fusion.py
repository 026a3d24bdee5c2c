"""The verification state machine, and how an incident's fields follow from its reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.access.policy import Actor
from server.errors import InvalidTransitionError, PermissionDeniedError, ValidationFailedError
from server.incidents.fusion import derive
from server.reports import verification
from server.reports.enums import TimePrecision
from server.reports.enums import VerificationState as S
from server.reports.models import Report
from server.taxonomy.codes import Sensitivity
from server.users.enums import Role


def actor(role: Role) -> Actor:
    return Actor(user_id=1, username="u", role=role, unit_id=1, scope_unit_ids=None)


@pytest.mark.parametrize(
    ("current", "target", "role", "outcome"),
    [
        (S.REPORTED, S.UNDER_VERIFICATION, Role.ANALYST, None),
        (S.REPORTED, S.UNDER_VERIFICATION, Role.COMMANDER, None),
        (S.REPORTED, S.UNDER_VERIFICATION, Role.FIELD_OFFICER, PermissionDeniedError),
        (S.REPORTED, S.UNDER_VERIFICATION, Role.ADMIN, PermissionDeniedError),
        (S.UNDER_VERIFICATION, S.VERIFIED, Role.ANALYST, None),
        (S.UNDER_VERIFICATION, S.DISCREDITED, Role.PROTECTION_OFFICER, None),
        (S.UNDER_VERIFICATION, S.VERIFIED, Role.COMMANDER, PermissionDeniedError),
        (S.REPORTED, S.VERIFIED, Role.ANALYST, InvalidTransitionError),
        (S.VERIFIED, S.DISCREDITED, Role.ANALYST, InvalidTransitionError),
        (S.VERIFIED, S.REPORTED, Role.ANALYST, InvalidTransitionError),
    ],
    ids=lambda v: getattr(v, "value", getattr(v, "__name__", str(v))),
)
def test_transitions(current, target, role, outcome) -> None:
    if outcome is None:
        verification.check(current, target, actor(role), note=None)
    else:
        with pytest.raises(outcome):
            verification.check(current, target, actor(role), note=None)


def test_reopening_needs_a_note() -> None:
    with pytest.raises(ValidationFailedError, match="note"):
        verification.check(S.VERIFIED, S.UNDER_VERIFICATION, actor(Role.ANALYST), note="  ")
    verification.check(
        S.VERIFIED,
        S.UNDER_VERIFICATION,
        actor(Role.ANALYST),
        note="New witness contradicts the source",
    )


def test_invalid_transition_message_lists_the_allowed_next_states() -> None:
    with pytest.raises(InvalidTransitionError, match="under_verification"):
        verification.check(S.REPORTED, S.DISCREDITED, actor(Role.ANALYST), note=None)


T0 = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)


def report(**fields) -> Report:
    values = {
        "id": uuid.uuid4(),
        "category": "attack_on_civilians",
        "occurred_at": T0,
        "time_precision": TimePrecision.EXACT,
        "location": None,
        "longitude": 20.1,
        "latitude": 5.7,
        "location_precision": "exact",
        "location_accuracy_m": 50.0,
        "coarse_longitude": 20.1,
        "coarse_latitude": 5.7,
        "aor_unit_id": 3,
        "sensitivity": Sensitivity.NORMAL,
        "verification_state": S.REPORTED,
        "killed_best": None,
    }
    values.update(fields)
    return Report(**values)


def test_one_massacre_reported_three_times_fuses_to_one_event() -> None:
    patrol = report(
        category="attack_on_civilians",
        killed_best=3,
        location_accuracy_m=20.0,
        longitude=20.101,
        h3_res9=111,
    )
    hotline = report(
        category="killing_of_civilians",
        killed_best=7,
        occurred_at=T0 - timedelta(hours=2),
        location_precision="settlement",
        location_accuracy_m=None,
        longitude=20.2,
    )
    officer = report(
        category="killing_of_civilians",
        killed_best=5,
        verification_state=S.VERIFIED,
        location_accuracy_m=100.0,
    )
    fused = derive([patrol, hotline, officer])
    assert fused["report_count"] == 3
    assert fused["killed_best"] == 7  # the largest estimate, not 15
    assert fused["category"] == "killing_of_civilians"  # the most severe
    assert fused["occurred_at"] == T0 - timedelta(hours=2)  # the earliest
    assert fused["longitude"] == 20.101 and fused["h3_res9"] == 111  # the most precise fix
    assert fused["verification_state"] is S.VERIFIED


def test_one_sensitive_report_makes_the_incident_sensitive() -> None:
    fused = derive([report(), report(sensitivity=Sensitivity.RESTRICTED)])
    assert fused["sensitivity"] is Sensitivity.RESTRICTED
    assert fused["list_sort_at"] == datetime(2026, 11, 20, tzinfo=UTC)


def test_missing_tier_counts_as_the_strictest() -> None:
    fused = derive([report(sensitivity=None)])
    assert fused["sensitivity"] is Sensitivity.STRICTLY_CONFIDENTIAL


def test_discredited_only_when_every_report_is() -> None:
    assert derive(
        [report(verification_state=S.DISCREDITED), report(verification_state=S.UNDER_VERIFICATION)]
    )["verification_state"] is (S.UNDER_VERIFICATION)
    assert derive([report(verification_state=S.DISCREDITED)])["verification_state"] is (
        S.DISCREDITED
    )


def test_an_incident_needs_a_report() -> None:
    with pytest.raises(ValueError, match="at least one report"):
        derive([])
