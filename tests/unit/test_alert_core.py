"""The pure alert core: matchers, rules, routing, grouping timers, inhibition, silences,
escalation and KPIs, with plain values and an explicit clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts import (
    AlertState,
    CellState,
    GapFact,
    GroupState,
    HotspotFact,
    MatcherError,
    ReportFact,
    RuleError,
    SilenceError,
    UnitNode,
    active_silence,
    evaluate,
    group_key,
    inhibited_by,
    next_escalation,
    notification_due,
    parse_matcher,
    parse_matchers,
    parse_rule,
    route,
    rule_to_dict,
    validate_silence,
)
from alerts.defaults import default_rules
from alerts.kpis import AlertTimes, time_to_act
from alerts.messages import alert_summary
from alerts.rules import RuleKind
from geo import cells as geo_cells

T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
LAT, LON = 5.75, 20.12
CELL = int(geo_cells.point_cells([LAT], [LON], 8)[0])
PARENT = geo_cells.parent_cell(CELL, 7)
RULES = {r.id: r for r in default_rules()}


def report(category: str, family: str, **kw) -> ReportFact:
    values = {
        "subject": "report:1",
        "category": category,
        "family": family,
        "severity_weight": 9.0,
        "sensitivity": "normal",
        "cell": CELL,
        "parent_cell": PARENT,
        "occurred_at": T0,
    }
    values.update(kw)
    return ReportFact(**values)


# ------------------------------------------------------------------------------ matchers


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('family="abduction"', {"family": "abduction"}, True),
        ('family!="abduction"', {"family": "abduction"}, False),
        ('category=~"rape|sexual_.*"', {"category": "sexual_slavery"}, True),
        ('category=~"rape"', {"category": "rape_x"}, False),  # anchored
        ('category!~"attack_.*"', {"category": "rape"}, True),
        ('site_kind!=""', {}, False),  # a missing label is the empty string
        ('unit="coy \\"a\\""', {"unit": 'coy "a"'}, True),
    ],
    ids=["equal", "not-equal", "regex", "regex-anchored", "not-regex", "missing", "escaped"],
)
def test_matchers(text, labels, expected) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize(
    "text",
    ['colour="red"', "family", '="x"', 'family=~"("', 'family=="x"'],
    ids=["unknown-label", "no-operator", "no-label", "bad-regex", "double-equals"],
)
def test_bad_matchers_are_refused(text) -> None:
    with pytest.raises(MatcherError):
        parse_matcher(text)


def test_matcher_lists_in_braces() -> None:
    matchers = parse_matchers('{family="abduction", category=~"a,b|c"}')
    assert [str(m) for m in matchers] == ['family="abduction"', 'category=~"a,b|c"']


# --------------------------------------------------------------------------------- rules


def test_default_rules_round_trip() -> None:
    for rule in default_rules():
        assert parse_rule(rule_to_dict(rule)) == rule


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"kind": "nope"}, "kind"),
        ({"severity": "blue"}, "severity"),
        ({"when": {"min_killed": -1}}, "when.min_killed"),
        ({"when": {"min_killed": 1.5}}, "when.min_killed"),
        ({"when": {"patterns": []}}, "when.patterns"),
        ({"group_wait_s": "soon"}, "group_wait_s"),
        ({"escalate_to_top": "yes"}, "escalate_to_top"),
        ({"cap": {"certainty": "Sure"}}, "cap.certainty"),
        ({"cap": {"colour": "x"}}, "cap.colour"),
        ({"match": [3]}, "match[0]"),
    ],
)
def test_rules_that_do_not_parse(data, path) -> None:
    base = {"id": "r-1", "name": "r", "kind": "flash", "severity": "red"}
    with pytest.raises(RuleError) as caught:
        parse_rule({**base, **data})
    assert caught.value.path == path


def test_a_condition_of_another_kind_is_refused() -> None:
    with pytest.raises(RuleError, match="not a condition of a gap rule"):
        parse_rule(
            {"id": "gg", "name": "g", "kind": "gap", "severity": "red", "when": {"min_killed": 1}}
        )


def test_flash_thresholds() -> None:
    rule = RULES["flash-mass-killing"]
    assert (
        evaluate(rule, report("killing_of_civilians", "violence_against_civilians", killed=4))
        is None
    )
    fired = evaluate(rule, report("killing_of_civilians", "violence_against_civilians", killed=5))
    assert fired is not None and fired.firing and fired.killed == 5
    assert fired.labels["severity"] == "red" and fired.labels["type"] == "flash"


def test_camp_rule_needs_a_camp_in_the_cell() -> None:
    rule = RULES["flash-attack-near-camp"]
    assert evaluate(rule, report("attack_on_civilians", "violence_against_civilians")) is None
    near = report("attack_on_civilians", "violence_against_civilians", site_kind="idp_camp")
    assert evaluate(rule, near) is not None


def test_fingerprint_is_rule_cell_and_category() -> None:
    rule = RULES["flash-killing"]
    a = evaluate(rule, report("killing_of_civilians", "violence_against_civilians"))
    b = evaluate(
        rule,
        report(
            "killing_of_civilians",
            "violence_against_civilians",
            subject="report:2",
            occurred_at=T0 + timedelta(hours=5),
        ),
    )
    assert a is not None and b is not None and a.fingerprint == b.fingerprint


def test_hotspot_rules_fire_on_the_rising_edge_and_clear_on_the_falling_one() -> None:
    rule = RULES["hotspot-new"]
    cold, hot = CellState(), CellState(confidence=99, pattern="new")
    rising = evaluate(rule, HotspotFact(CELL, PARENT, cold, hot, T0))
    assert rising is not None and rising.firing
    assert evaluate(rule, HotspotFact(CELL, PARENT, hot, hot, T0)) is None
    falling = evaluate(rule, HotspotFact(CELL, PARENT, hot, cold, T0))
    assert falling is not None and not falling.firing
    assert rising.fingerprint == falling.fingerprint
    # A mission's first snapshot: every hot cell is news.
    assert evaluate(rule, HotspotFact(CELL, PARENT, None, hot, T0)) is not None


def test_surge_and_precursor_follow_their_flags() -> None:
    assert evaluate(
        RULES["surge"], HotspotFact(CELL, PARENT, CellState(), CellState(surge=True), T0)
    )
    assert (
        evaluate(
            RULES["surge"], HotspotFact(CELL, PARENT, CellState(), CellState(precursor=True), T0)
        )
        is None
    )
    assert evaluate(
        RULES["precursor"], HotspotFact(CELL, PARENT, CellState(), CellState(precursor=True), T0)
    )


def test_gap_rule_fires_while_overdue() -> None:
    rule = RULES["gap-overdue"]
    overdue = evaluate(rule, GapFact(CELL, PARENT, 200.0, 168.0, ("site",), T0))
    closed = evaluate(rule, GapFact(CELL, PARENT, 2.0, 168.0, ("site",), T0))
    assert overdue is not None and overdue.firing
    assert closed is not None and not closed.firing


def test_sensitive_summary_says_category_cell_and_count_only() -> None:
    text = alert_summary(
        kind=RuleKind.FLASH,
        category="rape",
        count=2,
        killed=3,
        abducted=0,
        sensitive=True,
        place="cell 86",
        first_at=T0,
        last_at=T0,
    )
    assert "killed" not in text and "06:00" not in text and "2 reports of rape" in text


# ------------------------------------------------------------------------------- routing

UNITS = {
    1: UnitNode(1, "mission-hq", None, 0),
    2: UnitNode(2, "force-hq", 1, 1),
    3: UnitNode(3, "sector-a", 2, 2),
    4: UnitNode(4, "bn-a1", 3, 3),
    5: UnitNode(5, "coy-a1-1", 4, 4),
    6: UnitNode(6, "joc", 1, 1),
    7: UnitNode(7, "women-protection", 1, 1),
    8: UnitNode(8, "child-protection", 1, 1),
    9: UnitNode(9, "conduct-discipline", 1, 1),
    10: UnitNode(10, "fpu", 1, 1),
}


def test_the_deepest_holder_and_its_chain() -> None:
    routed = route({"family": "abduction"}, [2, 3, 4, 5, 10], UNITS, fallback_unit_id=6)
    assert routed.chain == (5, 4, 3, 2, 1) and routed.also == ()


def test_component_routes() -> None:
    sgbv = route({"family": "sexual_violence", "category": "rape"}, [5], UNITS, fallback_unit_id=6)
    assert sgbv.chain[0] == 5 and sgbv.also == (7,)
    children = route(
        {"family": "sexual_violence", "category": "sexual_violence_against_children"},
        [5],
        UNITS,
        fallback_unit_id=6,
    )
    assert children.also == (7, 8)
    misconduct = route({"family": "misconduct"}, [5], UNITS, fallback_unit_id=6)
    assert misconduct.chain == (9,) and misconduct.also == ()


def test_outside_every_aor_and_missing_component_units() -> None:
    assert route({}, [], UNITS, fallback_unit_id=6).chain == (6, 1)
    no_cdt = {k: v for k, v in UNITS.items() if k != 9}
    assert route({"family": "misconduct"}, [5], no_cdt, fallback_unit_id=6).chain == (6,)


# ------------------------------------------------------------------------------ grouping


def test_grouping_timers() -> None:
    rule = parse_rule(
        {
            "id": "gg",
            "name": "g",
            "kind": "flash",
            "severity": "amber",
            "group_wait_s": 30,
            "group_interval_s": 300,
            "repeat_interval_s": 3600,
        }
    )
    fresh = GroupState(T0)
    assert notification_due(fresh, "h", rule, firing=True) == T0 + timedelta(seconds=30)
    assert notification_due(fresh, "h", rule, firing=False) is None
    told = GroupState(T0, T0 + timedelta(seconds=30), "h")
    assert notification_due(told, "h2", rule, firing=True) == T0 + timedelta(seconds=330)
    assert notification_due(told, "h", rule, firing=True) == T0 + timedelta(seconds=3630)
    assert notification_due(told, "h", rule, firing=False) is None


def test_group_key_uses_the_rules_labels() -> None:
    rule = RULES["flash-tension"]
    assert group_key(rule, {"rule": rule.id, "parent_cell": "87x", "cell": "88y"}) == (
        "{rule=flash-tension,parent_cell=87x}"
    )


# ---------------------------------------------------------------------------- inhibition


def _labels(rule_id: str, severity: str, kind: str, cell: int) -> dict[str, str]:
    parent = geo_cells.parent_cell(cell, geo_cells.cell_resolution(cell) - 1)
    return {
        "rule": rule_id,
        "severity": severity,
        "type": kind,
        "cell": geo_cells.cell_to_string(cell),
        "parent_cell": geo_cells.cell_to_string(parent),
    }


def test_red_attack_mutes_amber_tension_in_its_cell_and_parent() -> None:
    attack = _labels("flash-attack-on-protected-site", "red", "flash", CELL)
    same = _labels("flash-tension", "amber", "flash", CELL)
    sibling = next(int(c) for c in geo_cells.uncompact_cells([PARENT], 8) if int(c) != CELL)
    in_parent = _labels("flash-tension", "amber", "flash", sibling)
    far = _labels(
        "flash-tension", "amber", "flash", int(geo_cells.point_cells([LAT], [LON + 0.5], 8)[0])
    )
    assert inhibited_by(same, [attack]) is not None
    assert inhibited_by(in_parent, [attack]) is not None
    assert inhibited_by(far, [attack]) is None
    # A red flash alert mutes an amber flash alert of its own category there, not another's.
    killing = _labels("flash-killing", "amber", "flash", CELL) | {
        "category": "killing_of_civilians"
    }
    mass = _labels("flash-mass-killing", "red", "flash", CELL) | {
        "category": "killing_of_civilians"
    }
    abduction = _labels("flash-abduction", "amber", "flash", CELL) | {"category": "abduction"}
    assert inhibited_by(killing, [mass]) is not None
    assert inhibited_by(abduction, [mass]) is None
    # Red does not mute red, and amber does not mute anything.
    assert inhibited_by(_labels("flash-children", "red", "flash", CELL), [attack]) is None
    assert inhibited_by(same, [_labels("flash-killing", "amber", "flash", CELL)]) is None


# ------------------------------------------------------------------------------ silences


def test_silences() -> None:
    silence = validate_silence(
        ['unit="coy-a1-1"'],
        starts_at=None,
        ends_at=T0 + timedelta(hours=2),
        now=T0,
        created_by="cdr",
        comment=" exercise ",
    )
    assert silence.comment == "exercise"
    assert active_silence({"unit": "coy-a1-1"}, [silence], T0 + timedelta(hours=1)) is silence
    assert active_silence({"unit": "coy-a1-1"}, [silence], T0 + timedelta(hours=2)) is None
    assert active_silence({"unit": "bn-a1"}, [silence], T0) is None


@pytest.mark.parametrize(
    ("matchers", "ends", "comment", "says"),
    [
        ([], timedelta(hours=1), "c", "at least one matcher"),
        (['unit="x"'], None, "c", "needs an end"),
        (['unit="x"'], timedelta(days=15), "c", "at most 14 days"),
        (['unit="x"'], timedelta(hours=1), "  ", "say why"),
        (['unit="x"'], -timedelta(hours=1), "c", "in the past"),
    ],
    ids=["no-matchers", "no-end", "too-long", "no-reason", "past"],
)
def test_bad_silences(matchers, ends, comment, says) -> None:
    with pytest.raises(SilenceError, match=says):
        validate_silence(
            matchers,
            starts_at=None,
            ends_at=T0 + ends if ends is not None else None,
            now=T0,
            created_by="cdr",
            comment=comment,
        )


# ---------------------------------------------------------------------------- escalation


def test_escalation_climbs_to_the_top_then_stops() -> None:
    rule = RULES["flash-attack-on-protected-site"]
    chain = (5, 4, 3, 2, 1)
    level, started, seen = 0, T0, []
    while (
        step := next_escalation(
            state=AlertState.OPEN, level=level, level_started_at=started, chain=chain, rule=rule
        )
    ) is not None:
        seen.append((step.unit_id, step.due_at - started))
        level, started = step.level, step.due_at
    assert [u for u, _ in seen] == [4, 3, 2, 1]
    assert all(d == timedelta(minutes=15) for _, d in seen)
    assert (
        next_escalation(
            state=AlertState.ACKNOWLEDGED, level=0, level_started_at=T0, chain=chain, rule=rule
        )
        is None
    )


def test_rules_that_do_not_escalate_to_the_top_stop_at_the_parent() -> None:
    rule = RULES["gap-overdue"]
    step = next_escalation(
        state=AlertState.OPEN, level=0, level_started_at=T0, chain=(5, 4, 3), rule=rule
    )
    assert step is not None and step.unit_id == 4
    assert (
        next_escalation(
            state=AlertState.OPEN, level=1, level_started_at=T0, chain=(5, 4, 3), rule=rule
        )
        is None
    )


# ---------------------------------------------------------------------------------- KPIs


def test_waiting_alerts_are_counted_not_dropped() -> None:
    rows = [
        AlertTimes("coy", "red", T0, T0, T0 + timedelta(minutes=2), None),
        AlertTimes("coy", "red", T0, T0 + timedelta(seconds=1), None, None),
    ]
    (kpi,) = time_to_act(rows, now=T0 + timedelta(hours=1))
    assert kpi.acknowledged == 1 and kpi.waiting_ack == 1
    assert kpi.ack_p50_s == 120.0 and kpi.oldest_waiting_ack_s == 3600.0
    assert kpi.delivery_p50_s == 0.5
