"""Vigil's pure alert logic: rules, routing by area of responsibility, grouping, inhibition,
silences, acknowledgement and escalation, messages, time-to-act KPIs (and CAP 1.2 in
``alerts.cap``). Plain values in, plain values out; the current time is always an argument.
"""

from alerts.errors import AlertError, AlertStateError, MatcherError, RuleError, SilenceError
from alerts.grouping import (
    DEFAULT_INHIBITIONS,
    GroupState,
    Inhibition,
    Silence,
    active_silence,
    group_key,
    inhibited_by,
    notification_due,
    validate_silence,
)
from alerts.labels import KNOWN_LABELS, Matcher, parse_matcher, parse_matchers
from alerts.lifecycle import AlertState, next_escalation
from alerts.routing import DEFAULT_COMPONENT_ROUTES, ComponentRoute, Route, UnitNode, route
from alerts.rules import (
    AlertSeverity,
    Candidate,
    CellState,
    GapFact,
    HotspotFact,
    ReportFact,
    Rule,
    RuleKind,
    evaluate,
    parse_rule,
    rule_to_dict,
)

__all__ = [
    "DEFAULT_COMPONENT_ROUTES",
    "DEFAULT_INHIBITIONS",
    "KNOWN_LABELS",
    "AlertError",
    "AlertSeverity",
    "AlertState",
    "AlertStateError",
    "Candidate",
    "CellState",
    "ComponentRoute",
    "GapFact",
    "GroupState",
    "HotspotFact",
    "Inhibition",
    "Matcher",
    "MatcherError",
    "ReportFact",
    "Route",
    "Rule",
    "RuleError",
    "RuleKind",
    "Silence",
    "SilenceError",
    "UnitNode",
    "active_silence",
    "evaluate",
    "group_key",
    "inhibited_by",
    "next_escalation",
    "notification_due",
    "parse_matcher",
    "parse_matchers",
    "parse_rule",
    "route",
    "rule_to_dict",
    "validate_silence",
]
