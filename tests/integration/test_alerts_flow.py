"""Alerts on the database, with a controlled clock: routing through nested AORs and component
routes, dedup, grouping, inhibition, silences, escalation to the top and back, acknowledgement,
auto-resolve, the outbox and the delivery log.

Reports are created through the real report service (so the outbox row is written in the
report's transaction, as in production); the clock is the ``now`` every step takes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo import cells as geo_cells
from server.alerts_inbox import service as alerts
from server.alerts_inbox.models import (
    Alert,
    AlertDelivery,
    AlertEvent,
    AlertNotification,
    AlertOutbox,
)
from server.errors import ConflictError, NotFoundError, PermissionDeniedError
from server.reports import service as reports
from server.reports.schemas import ReportCreate
from tests.seed import POINT_A1_1, POINT_A1_2, POINT_OUTSIDE

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def file_report(
    session: Session,
    actor: Any,
    settings: Any,
    category: str,
    where: tuple[float, float],
    *,
    killed: int | None = None,
    narrative: str | None = None,
    occurred_at: datetime | None = None,
) -> uuid.UUID:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "category": category,
        "occurred_at": (occurred_at or T0).isoformat(),
        "location": {"type": "Point", "coordinates": list(where)},
    }
    if killed is not None:
        body["victims"] = {"killed": {"best": killed}}
    if narrative is not None:
        body["narrative"] = narrative
    report, created = reports.create(
        session=session,
        report_in=ReportCreate.model_validate(body),
        actor=actor,
        mission=settings.mission,
    )
    assert created
    return report.id


def drain(session: Session, settings: Any, now: datetime) -> alerts.DrainResult:
    result = alerts.drain_outbox(session, settings=settings, now=now)
    session.flush()
    return result


def open_alerts(session: Session, rule_id: str | None = None) -> list[Alert]:
    statement = select(Alert).where(Alert.state != "resolved").order_by(Alert.id)
    if rule_id:
        statement = statement.where(Alert.rule_id == rule_id)
    return list(session.scalars(statement))


def codes(mission: Any, ids: list[int]) -> list[str]:
    by_id = {unit.id: code for code, unit in mission.units.items()}
    return [by_id[i] for i in ids]


def inbox(session: Session, unit_id: int) -> list[AlertNotification]:
    return list(
        session.scalars(
            select(AlertNotification)
            .where(AlertNotification.unit_id == unit_id, AlertNotification.channel_kind == "inbox")
            .order_by(AlertNotification.id)
        )
    )


# ------------------------------------------------------------------------------- routing


def test_the_outbox_row_is_written_with_the_report(session, settings, actor_of) -> None:
    before = session.scalar(select(func.count()).select_from(AlertOutbox))
    report_id = file_report(session, actor_of("officer_a"), settings, "armed_clash", POINT_A1_1)
    rows = session.scalars(select(AlertOutbox).where(AlertOutbox.processed_at.is_(None))).all()
    assert session.scalar(select(func.count()).select_from(AlertOutbox)) == before + 1
    assert rows[-1].payload == {"report_id": str(report_id)}


def test_flash_alert_goes_to_the_deepest_unit_and_its_chain(
    session, settings, actor_of, mission
) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    result = drain(session, settings, T0)
    assert result.raised == 1
    (alert,) = open_alerts(session, "flash-attack-on-protected-site")
    assert codes(mission, alert.chain) == [
        "coy-a1-1",
        "bn-a1",
        "sector-a",
        "force-hq",
        "mission-hq",
    ]
    assert alert.labels["unit"] == "coy-a1-1"
    assert alert.severity == "red" and alert.urgency == "Immediate"
    assert alert.escalate_at == T0 + timedelta(minutes=15)
    assert "patrol presence" in alert.coverage
    # group_wait 0: the responsible company's inbox has it at once, nobody above yet.
    (notification,) = inbox(session, mission.unit_id("coy-a1-1"))
    assert notification.msg_type == "Alert" and notification.alert_ids == [alert.id]
    assert inbox(session, mission.unit_id("bn-a1")) == []
    assert alert.first_delivered_at == T0


def test_a_point_in_the_other_company_goes_there(session, settings, actor_of, mission) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_2)
    drain(session, settings, T0)
    (alert,) = open_alerts(session, "flash-attack-on-protected-site")
    assert codes(mission, alert.chain)[0] == "coy-a1-2"


def test_cells_outside_every_aor_go_to_the_operations_centre(
    session, settings, actor_of, mission
) -> None:
    file_report(session, actor_of("analyst"), settings, "attack_on_protected_site", POINT_OUTSIDE)
    drain(session, settings, T0)
    (alert,) = open_alerts(session, "flash-attack-on-protected-site")
    assert codes(mission, alert.chain) == ["joc", "mission-hq"]
    assert "operations centre" in alert.route_reason


def test_sexual_violence_also_goes_to_women_protection_with_no_narrative(
    session, settings, actor_of, mission
) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    file_report(session, actor_of("officer_a"), settings, "rape", POINT_A1_1, narrative=canary)
    drain(session, settings, T0)
    (alert,) = open_alerts(session, "flash-sexual-violence")
    assert codes(mission, alert.also_unit_ids) == ["women-protection"]
    assert alert.sensitive
    # A sensitive case travels as a coarse cell, whoever reads it.
    assert geo_cells.cell_resolution(alert.cell) == settings.hotspots.sensitive_max_resolution
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(seconds=30))
    notifications = inbox(session, mission.unit_id("women-protection")) + inbox(
        session, mission.unit_id("coy-a1-1")
    )
    assert len(notifications) == 2
    stored = [alert.title, alert.summary, alert.coverage, str(alert.labels)]
    stored += [n.text + n.subject for n in notifications]
    stored += [str(e.detail) for e in session.scalars(select(AlertEvent))]
    assert not any(canary in text for text in stored)


def test_misconduct_goes_to_conduct_and_discipline_only(
    session, settings, actor_of, mission
) -> None:
    file_report(session, actor_of("officer_a"), settings, "misconduct_by_personnel", POINT_A1_1)
    drain(session, settings, T0)
    (alert,) = open_alerts(session, "flash-misconduct")
    assert codes(mission, alert.chain) == ["conduct-discipline"]
    assert inbox(session, mission.unit_id("coy-a1-1")) == []
    with pytest.raises(NotFoundError):
        alerts.get_or_raise(session=session, alert_id=alert.id, actor=actor_of("commander_a"))
    with pytest.raises(NotFoundError):
        alerts.get_or_raise(session=session, alert_id=alert.id, actor=actor_of("analyst"))
    seen = alerts.get_or_raise(session=session, alert_id=alert.id, actor=actor_of("conduct"))
    assert seen.id == alert.id


# ------------------------------------------------------------------------------ dedup


def test_a_second_report_refreshes_the_open_alert_once(
    session, settings, actor_of, mission
) -> None:
    officer = actor_of("officer_a")
    file_report(session, officer, settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    file_report(session, officer, settings, "attack_on_protected_site", POINT_A1_1)
    result = drain(session, settings, T0 + timedelta(minutes=1))
    assert (result.raised, result.refreshed) == (0, 1)
    (alert,) = open_alerts(session, "flash-attack-on-protected-site")
    assert alert.count == 2
    # The same outbox rows processed again (a job that ran twice) change nothing.
    for row in session.scalars(select(AlertOutbox)):
        row.processed_at = None
    session.flush()
    drain(session, settings, T0 + timedelta(minutes=2))
    session.refresh(alert)
    assert alert.count == 2
    assert len(open_alerts(session, "flash-attack-on-protected-site")) == 1


def test_delivery_log_is_unique_per_alert_recipient_and_step(
    session, settings, actor_of, mission
) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    for _ in range(3):  # flushes with nothing new: nothing sent again
        alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(seconds=5))
    keys = session.execute(
        select(AlertDelivery.alert_id, AlertDelivery.recipient, AlertDelivery.step)
    ).all()
    assert len(keys) == len(set(keys)) == 1


# ---------------------------------------------------------------------------- grouping


def test_group_wait_collects_companions_into_one_notification(
    session, settings, actor_of, mission
) -> None:
    officer = actor_of("officer_a")
    lon, lat = POINT_A1_1
    # Three tension reports a few hundred metres apart: three cells, one parent cell.
    for step in range(3):
        file_report(session, officer, settings, "hate_speech_incitement", (lon + step * 0.004, lat))
    drain(session, settings, T0)
    tension = open_alerts(session, "flash-tension")
    assert len({a.group_key for a in tension}) == 1
    unit = mission.unit_id("coy-a1-1")
    assert inbox(session, unit) == []  # group_wait 60 s
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(seconds=59))
    assert inbox(session, unit) == []
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(seconds=60))
    (notification,) = inbox(session, unit)
    assert sorted(notification.alert_ids) == sorted(a.id for a in tension)


def test_repeat_interval_reminds_an_unacknowledged_group(
    session, settings, actor_of, mission
) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    unit = mission.unit_id("coy-a1-1")
    (alert,) = open_alerts(session)
    alert.escalate_at = None  # hold it at the company for this test
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(hours=3))
    assert len(inbox(session, unit)) == 1
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(hours=4, seconds=1))
    reminders = inbox(session, unit)
    assert len(reminders) == 2 and reminders[1].msg_type == "Update"


# -------------------------------------------------------------------------- inhibition


def test_a_red_attack_mutes_amber_tension_in_the_same_cell(
    session, settings, actor_of, mission
) -> None:
    officer = actor_of("officer_a")
    file_report(session, officer, settings, "attack_on_protected_site", POINT_A1_1)
    file_report(session, officer, settings, "hate_speech_incitement", POINT_A1_1)
    drain(session, settings, T0)
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(minutes=2))
    (tension,) = open_alerts(session, "flash-tension")
    (attack,) = open_alerts(session, "flash-attack-on-protected-site")
    assert tension.inhibited_by_alert_id == attack.id
    told = {i for n in inbox(session, mission.unit_id("coy-a1-1")) for i in n.alert_ids}
    assert attack.id in told and tension.id not in told
    # Once the attack is resolved, the tension alert is heard.
    alerts.resolve(
        session=session,
        alert_id=attack.id,
        actor=actor_of("commander_a"),
        reason="site secured",
        now=T0 + timedelta(minutes=5),
    )
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(minutes=11))
    told = {i for n in inbox(session, mission.unit_id("coy-a1-1")) for i in n.alert_ids}
    assert tension.id in told


def test_tension_elsewhere_is_not_inhibited(session, settings, actor_of, mission) -> None:
    officer = actor_of("officer_a")
    file_report(session, officer, settings, "attack_on_protected_site", POINT_A1_1)
    file_report(session, officer, settings, "hate_speech_incitement", POINT_A1_2)
    drain(session, settings, T0)
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(minutes=2))
    (tension,) = open_alerts(session, "flash-tension")
    assert tension.inhibited_by_alert_id is None


# ---------------------------------------------------------------------------- silences


def test_a_silence_mutes_until_it_ends(session, settings, actor_of, mission) -> None:
    officer = actor_of("officer_a")
    cell = geo_cells.point_cells([POINT_A1_1[1]], [POINT_A1_1[0]], settings.coverage_resolution)
    silence = alerts.create_silence(
        session=session,
        actor=actor_of("commander_a"),
        matchers=[f'cell="{geo_cells.cell_to_string(int(cell[0]))}"'],
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        comment="known exercise at the camp",
        now=T0,
    )
    file_report(session, officer, settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    (alert,) = open_alerts(session)
    assert alert.silenced_by == str(silence.id)
    assert inbox(session, mission.unit_id("coy-a1-1")) == []
    # A silenced alert does not escalate either.
    assert alerts.escalate_due(session, now=T0 + timedelta(minutes=20)) == []
    alerts.expire_silence(
        session=session,
        silence_id=silence.id,
        actor=actor_of("commander_a"),
        now=T0 + timedelta(minutes=30),
    )
    alerts.flush_due_groups(session, settings=settings, now=T0 + timedelta(minutes=30))
    assert len(inbox(session, mission.unit_id("coy-a1-1"))) == 1
    kinds = [e.kind for e in alerts.timeline(session, alert)]
    assert "silenced" in kinds and "unsilenced" in kinds
    # Heard again, it escalates again if nobody acknowledges: its clock restarted at 30 min.
    session.refresh(alert)
    assert alert.escalate_at == T0 + timedelta(minutes=45)
    assert alerts.escalate_due(session, now=T0 + timedelta(minutes=45)) == [alert.id]


# -------------------------------------------------------------------------- escalation


def test_escalation_to_the_top_and_back(session, settings, actor_of, mission) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    (alert,) = open_alerts(session)
    ladder = ["coy-a1-1", "bn-a1", "sector-a", "force-hq", "mission-hq"]
    now = T0
    for level, code in enumerate(ladder[1:], start=1):
        assert alerts.escalate_due(session, now=now + timedelta(minutes=14)) == []
        now += timedelta(minutes=15)
        assert alerts.escalate_due(session, now=now) == [alert.id]
        alerts.flush_due_groups(session, settings=settings, now=now)
        session.refresh(alert)
        assert alert.level == level
        (told,) = inbox(session, mission.unit_id(code))
        assert told.alert_ids == [alert.id]
    assert alert.escalate_at is None  # the top: nobody further up
    assert alerts.escalate_due(session, now=now + timedelta(hours=5)) == []
    # The sector commander acknowledges; every unit told so far hears it ("and back").
    alerts.acknowledge(
        session=session,
        alert_id=alert.id,
        actor=actor_of("commander_a"),
        note="QRF moving",
        now=now + timedelta(minutes=1),
    )
    alerts.flush_due_groups(session, settings=settings, now=now + timedelta(minutes=1))
    for code in ladder:
        last = inbox(session, mission.unit_id(code))[-1]
        assert last.msg_type == "Ack", code
    with pytest.raises(ConflictError):
        alerts.acknowledge(
            session=session, alert_id=alert.id, actor=actor_of("admin"), note=None, now=now
        )
    kinds = [e.kind for e in alerts.timeline(session, alert)]
    assert kinds.count("escalated") == 4 and "acknowledged" in kinds


def test_acknowledging_an_alert_of_another_unit_is_refused(
    session, settings, actor_of, mission
) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    (alert,) = open_alerts(session)
    with pytest.raises(NotFoundError):
        alerts.acknowledge(
            session=session, alert_id=alert.id, actor=actor_of("commander_b"), note=None, now=T0
        )
    with pytest.raises(PermissionDeniedError):
        alerts.acknowledge(
            session=session, alert_id=alert.id, actor=actor_of("officer_a"), note=None, now=T0
        )
    session.refresh(alert)
    assert alert.state == "open"


def test_acknowledged_alerts_stop_escalating(session, settings, actor_of) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    (alert,) = open_alerts(session)
    alerts.acknowledge(
        session=session, alert_id=alert.id, actor=actor_of("commander_a"), note=None, now=T0
    )
    assert alerts.escalate_due(session, now=T0 + timedelta(hours=2)) == []


def test_flash_alerts_resolve_when_no_report_refreshes_them(session, settings, actor_of) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    assert alerts.expire_flash_alerts(session, now=T0 + timedelta(hours=71)) == 0
    assert alerts.expire_flash_alerts(session, now=T0 + timedelta(hours=72)) == 1
    (alert,) = session.scalars(select(Alert)).all()
    assert alert.state == "resolved" and alert.open_key is None
    # The next attack there is a new alert, at the bottom of the chain again.
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0 + timedelta(hours=73))
    (fresh,) = open_alerts(session)
    assert fresh.id != alert.id and fresh.level == 0


# ------------------------------------------------------------------------------- KPIs


def test_time_to_act_kpis(session, settings, actor_of) -> None:
    file_report(session, actor_of("officer_a"), settings, "attack_on_protected_site", POINT_A1_1)
    drain(session, settings, T0)
    (alert,) = open_alerts(session)
    alert.created_at = T0
    alerts.acknowledge(
        session=session,
        alert_id=alert.id,
        actor=actor_of("commander_a"),
        note=None,
        now=T0 + timedelta(minutes=4),
    )
    rows = alerts.kpis(session=session, actor=actor_of("analyst"), since=None, now=T0)
    (row,) = [r for r in rows if r.unit == "coy-a1-1"]
    assert row.acknowledged == 1 and row.ack_p50_s == 240.0 and row.delivery_p50_s == 0.0


def test_tolls_are_the_largest_estimate_and_a_fused_incident_adds_no_report(
    session, settings, actor_of
) -> None:
    from server.incidents import service as incidents
    from server.incidents.models import IncidentReport

    officer = actor_of("officer_a")
    first = file_report(session, officer, settings, "killing_of_civilians", POINT_A1_1, killed=2)
    second = file_report(session, officer, settings, "killing_of_civilians", POINT_A1_1, killed=4)
    drain(session, settings, T0)
    (alert,) = open_alerts(session, "flash-killing")
    assert (alert.count, alert.killed) == (2, 4)  # two witnesses, the larger toll
    incident_ids = [
        session.scalar(select(IncidentReport.incident_id).where(IncidentReport.report_id == r))
        for r in (first, second)
    ]
    incidents.merge(session=session, incident_ids=incident_ids, actor=actor_of("analyst"))
    pending = session.scalars(
        select(AlertOutbox).where(
            AlertOutbox.kind == "incident", AlertOutbox.processed_at.is_(None)
        )
    ).all()
    assert len(pending) == 1  # written in the merge's transaction
    drain(session, settings, T0 + timedelta(minutes=1))
    session.refresh(alert)
    assert (alert.count, alert.killed) == (2, 4)
    assert len(open_alerts(session, "flash-killing")) == 1


# --------------------------------------------------------------------------- coverage gaps


def test_a_never_patrolled_camp_raises_a_gap_alert_that_a_patrol_clears(
    session, settings, actor_of, mission
) -> None:
    from server.sites import service as sites
    from server.sites.schemas import SiteCreate
    from tests.integration.test_coverage_service import record

    camp = sites.create(
        session=session,
        site_in=SiteCreate.model_validate(
            {
                "name": "IDP site",
                "kind": "idp_camp",
                "location": {"type": "Point", "coordinates": list(POINT_A1_2)},
            }
        ),
        actor=actor_of("protection"),
        mission=settings.mission,
    )
    assert camp.id
    now = datetime.now(UTC)
    facts = alerts.gap_facts(session, settings=settings, now=now)
    site_cell = int(geo_cells.point_cells([POINT_A1_2[1]], [POINT_A1_2[0]], 8)[0])
    assert site_cell in {f.cell for f in facts}
    alerts.record_gaps(session, facts)
    drain(session, settings, now)
    (gap,) = [a for a in open_alerts(session, "gap-overdue") if a.cell == site_cell]
    assert codes(mission, gap.chain)[0] == "coy-a1-2"
    assert gap.labels["site_kind"] == "idp_camp" and gap.severity == "yellow"
    alerts.flush_due_groups(session, settings=settings, now=now + timedelta(minutes=6))
    assert len(inbox(session, mission.unit_id("coy-a1-2"))) == 1  # after its group wait
    # The next check finds it still overdue: the same alert, nothing new to tell.
    events = len(alerts.timeline(session, gap))
    alerts.record_gaps(session, alerts.gap_facts(session, settings=settings, now=now))
    drain(session, settings, now + timedelta(minutes=15))
    session.refresh(gap)
    assert gap.count == 1 and len(alerts.timeline(session, gap)) == events
    assert [a.id for a in open_alerts(session, "gap-overdue") if a.cell == site_cell] == [gap.id]
    alerts.flush_due_groups(session, settings=settings, now=now + timedelta(hours=2))
    assert len(inbox(session, mission.unit_id("coy-a1-2"))) == 1  # no hourly "update"
    # A patrol walks through the camp: the next gap check closes the alert.
    record(session, actor_of("officer_a"), settings, POINT_A1_2, hours_ago=1)
    later = datetime.now(UTC)
    alerts.record_gaps(session, alerts.gap_facts(session, settings=settings, now=later))
    drain(session, settings, later)
    session.refresh(gap)
    assert gap.state == "resolved" and gap.resolve_reason == "condition cleared"
