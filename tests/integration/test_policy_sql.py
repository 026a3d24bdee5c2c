"""The access policy's two forms agree: the SQL that lists reports and incidents (scope and
full-detail clauses) and the Python that decides one record (``detail_for``), for every seeded
user, over reports across tiers, units and the fail-closed edge cases (no unit, unknown tier).
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from sqlalchemy import String, Uuid, bindparam, select, text
from sqlalchemy.orm import Session

from server.access import policy
from server.access.policy import Detail
from server.incidents import service as incidents
from server.incidents.models import Incident
from server.incidents.service import IncidentFilters
from server.reports import service as reports
from server.reports.enums import VerificationState
from server.reports.models import Report
from server.reports.schemas import ReportCreate
from server.reports.service import ReportFilters
from tests.api._access_fixtures import point, report_body
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_B1, POINT_OUTSIDE

pytestmark = pytest.mark.integration

AUTHORS = ("officer_a", "officer_b", "commander_b", "analyst", "protection")
POINTS = (POINT_A1_1, POINT_A1_2, POINT_B1, POINT_OUTSIDE)
CONTENTS: tuple[dict[str, Any], ...] = (
    {"category": "killing_of_civilians"},
    {"category": "sexual_violence"},
    {"category": "sexual_exploitation_abuse"},
    {"category": "armed_clash", "source_type": "confidential_informant"},
)
#: Fail-closed cases written behind the service's back: report index → column values.
EDGE_CASES: dict[str, dict[str, Any]] = {
    "no units": {"reporting_unit_id": None, "aor_unit_id": None},
    "no reporting unit": {"reporting_unit_id": None},
    "unknown tier": {"sensitivity": "top_secret"},
    "empty tier": {"sensitivity": ""},
    "wrong-case tier": {"sensitivity": "NORMAL"},
}


def _set_columns(session: Session, report_id: uuid.UUID, values: dict[str, Any]) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    statement = text(f"UPDATE reports SET {assignments} WHERE id = :id").bindparams(
        bindparam("id", type_=Uuid())
    )
    session.execute(statement, {**values, "id": report_id})


@pytest.fixture
def report_ids(session: Session, settings: Any, actor_of: Any) -> list[uuid.UUID]:
    """A report from every author at every point, the contents rotating so that each author
    and each point has every kind of content; then the edge cases (normal reports by officer_a
    at POINT_A1_1, altered behind the service's back)."""
    ids = []
    for (a, author), (p, where) in itertools.product(enumerate(AUTHORS), enumerate(POINTS)):
        content = CONTENTS[(a + p) % len(CONTENTS)]
        body = report_body(location=point(*where), **content)
        report, created = reports.create(
            session=session,
            report_in=ReportCreate.model_validate(body),
            actor=actor_of(author),
            mission=settings.mission,
        )
        assert created
        ids.append(report.id)
    for values in EDGE_CASES.values():
        body = report_body(location=point(*POINT_A1_1))
        report, _ = reports.create(
            session=session,
            report_in=ReportCreate.model_validate(body),
            actor=actor_of("officer_a"),
            mission=settings.mission,
        )
        session.flush()
        _set_columns(session, report.id, values)
        ids.append(report.id)
    session.commit()
    session.expire_all()
    return ids


def _python_details(actor: policy.Actor, rows: list[Report]) -> dict[uuid.UUID, Detail]:
    return {
        r.id: policy.detail_for(
            actor, sensitivity=r.sensitivity, unit_ids=(r.reporting_unit_id, r.aor_unit_id)
        )
        for r in rows
    }


def _ids_where(details: dict[uuid.UUID, Detail], *wanted: Detail) -> set[uuid.UUID]:
    return {i for i, d in details.items() if d in wanted}


@pytest.mark.parametrize(
    "username",
    ["admin", "analyst", "protection", "commander_a", "commander_b", "officer_a", "officer_b"],
)
def test_sql_and_python_policy_agree_on_reports(
    session: Session, actor_of: Any, report_ids: list[uuid.UUID], username: str
) -> None:
    actor = actor_of(username)
    rows = list(session.scalars(select(Report).where(Report.id.in_(report_ids))))
    assert len(rows) == len(report_ids)
    python = _python_details(actor, rows)

    listed, cursor = reports.list_(
        session=session, actor=actor, filters=ReportFilters(), limit=10_000, cursor=None
    )
    assert cursor is None
    listed_ids = {r.id for r in listed} & set(report_ids)
    assert listed_ids == _ids_where(python, Detail.FULL, Detail.REDACTED)

    full_sql = set(
        session.scalars(
            select(Report.id).where(
                Report.id.in_(report_ids),
                policy.scope_clause(actor, Report.reporting_unit_id, Report.aor_unit_id),
                policy.full_detail_clause(actor, Report.sensitivity),
            )
        )
    )
    assert full_sql == _ids_where(python, Detail.FULL)

    # The service's own split: a verification-state filter matches only full-detail reports.
    every_state = ReportFilters(verification_states=tuple(VerificationState))
    full_listed, _ = reports.list_(
        session=session, actor=actor, filters=every_state, limit=10_000, cursor=None
    )
    assert {r.id for r in full_listed} & set(report_ids) == _ids_where(python, Detail.FULL)

    # The Python policy on the raw stored tier (not the ORM's reading of it) decides the same.
    raw = session.execute(
        text("SELECT id, sensitivity FROM reports").columns(id=Uuid(), sensitivity=String())
    )
    units = {r.id: (r.reporting_unit_id, r.aor_unit_id) for r in rows}
    for report_id, stored in raw:
        if report_id in units:
            decided = policy.detail_for(actor, sensitivity=stored, unit_ids=units[report_id])
            assert decided is python[report_id], (report_id, stored)


def test_the_comparison_is_not_vacuous(
    session: Session, actor_of: Any, report_ids: list[uuid.UUID]
) -> None:
    rows = list(session.scalars(select(Report).where(Report.id.in_(report_ids))))
    seen = {
        username: set(_python_details(actor_of(username), rows).values())
        for username in ("protection", "analyst", "officer_b")
    }
    assert seen["protection"] == {Detail.FULL}
    assert seen["analyst"] == {Detail.FULL, Detail.REDACTED}
    assert seen["officer_b"] == {Detail.FULL, Detail.REDACTED, Detail.HIDDEN}
    by_id = {r.id: r for r in rows}
    edge = report_ids[-len(EDGE_CASES) :]
    officer_a = actor_of("officer_a")
    analyst = actor_of("analyst")
    for name, report_id in zip(EDGE_CASES, edge, strict=True):
        report = by_id[report_id]
        units = (report.reporting_unit_id, report.aor_unit_id)
        if name == "no units":
            assert policy.detail_for(officer_a, sensitivity="normal", unit_ids=units) is (
                Detail.HIDDEN
            )
        if name == "no reporting unit":
            # Still in scope through the unit whose area holds it.
            assert policy.in_scope(officer_a, units)
        if name.endswith("tier"):
            assert report.sensitivity == "strictly_confidential", name
            assert policy.detail_for(analyst, sensitivity=report.sensitivity, unit_ids=units) is (
                Detail.REDACTED
            )


@pytest.mark.parametrize(
    "username",
    ["admin", "analyst", "protection", "commander_a", "commander_b", "officer_a", "officer_b"],
)
def test_sql_and_python_policy_agree_on_incidents(
    session: Session, actor_of: Any, report_ids: list[uuid.UUID], username: str
) -> None:
    actor = actor_of(username)
    all_incidents = list(session.scalars(select(Incident)))
    python = {
        i.id: incidents.detail(session=session, actor=actor, incident=i) for i in all_incidents
    }
    listed, _ = incidents.list_(
        session=session, actor=actor, filters=IncidentFilters(), limit=10_000, cursor=None
    )
    assert {i.id for i in listed} == _ids_where(python, Detail.FULL, Detail.REDACTED)
    full = {
        i.id
        for i in listed
        if incidents.detail(session=session, actor=actor, incident=i) is Detail.FULL
    }
    full_sql = set(
        session.scalars(
            select(Incident.id).where(
                Incident.id.in_([i.id for i in listed]),
                policy.full_detail_clause(actor, Incident.sensitivity),
            )
        )
    )
    assert full == full_sql == _ids_where(python, Detail.FULL)
