"""Rules: which facts become alerts, with what labels, urgency and escalation policy.

A *fact* is something the server saw change: a report or incident arrived (``ReportFact``), a
hotspot cell changed class (``HotspotFact``), a cell's patrol coverage went stale
(``GapFact``). A *rule* says which facts matter and what alert they raise. Five kinds:

``flash``      one report or incident above a threshold (an attack on an IDP camp, a mass
               killing, an abduction of children); raised on arrival.
``hotspot``    a cell becomes a significant hot spot, or its emerging pattern turns new or
               intensifying; resolves when it cools.
``surge``      a cell's recent count jumps above its own history (the surge flag rises).
``precursor``  leading indicators (incitement, threats, armed-group movement) flag a cell.
``gap``        a cell with a threat has had no patrol presence for longer than allowed.

Rules are data (a JSON object, editable by an administrator) parsed by :func:`parse_rule`, which
refuses anything it cannot run with a :class:`~alerts.errors.RuleError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from alerts.errors import MatcherError, RuleError
from alerts.labels import KNOWN_LABELS, Matcher, matches_all, parse_matcher

__all__ = [
    "CAP_CERTAINTY",
    "CAP_SEVERITY",
    "CAP_URGENCY",
    "AlertSeverity",
    "Candidate",
    "CellState",
    "Fact",
    "GapFact",
    "HotspotFact",
    "ReportFact",
    "Rule",
    "RuleKind",
    "evaluate",
    "parse_rule",
    "rule_to_dict",
]

CAP_URGENCY = ("Immediate", "Expected", "Future", "Past", "Unknown")
CAP_SEVERITY = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CAP_CERTAINTY = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
#: Hotspot patterns that mean "this is getting worse" (geo.emerging's classes).
WORSENING_PATTERNS = ("new", "intensifying", "consecutive", "persistent")


class RuleKind(StrEnum):
    FLASH = "flash"
    HOTSPOT = "hotspot"
    SURGE = "surge"
    PRECURSOR = "precursor"
    GAP = "gap"


class AlertSeverity(StrEnum):
    """The mission's colour scale. Ordered: red outranks amber outranks yellow."""

    RED = "red"
    AMBER = "amber"
    YELLOW = "yellow"

    @property
    def rank(self) -> int:
        return {"red": 3, "amber": 2, "yellow": 1}[self.value]


# ------------------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class ReportFact:
    """A report or a fused incident, as the rules see it: no narrative, no names, ever.

    ``cell`` is at the alert resolution; ``parent_cell`` one mission resolution coarser.
    ``site_kind`` is the kind of protected site (``idp_camp``, ``school``…) in the cell, if any.
    """

    subject: str  # "report:<uuid>" or "incident:<id>"
    category: str
    family: str
    severity_weight: float
    sensitivity: str
    cell: int
    parent_cell: int
    occurred_at: datetime
    killed: int = 0
    abducted: int = 0
    children: bool = False
    precursor: bool = False
    site_kind: str | None = None
    component: str | None = None

    @property
    def kind(self) -> str:
        return "report"


@dataclass(frozen=True)
class CellState:
    """A hotspot cell's class in one snapshot."""

    confidence: int = 0  # 0, 90, 95, 99 (hot); negative for cold spots
    pattern: str = "none"  # geo.emerging class
    surge: bool = False
    precursor: bool = False


@dataclass(frozen=True)
class HotspotFact:
    """A cell's hotspot class before and after a recompute (``before`` None: first snapshot)."""

    cell: int
    parent_cell: int
    before: CellState | None
    after: CellState
    as_of: datetime
    count: int = 0

    @property
    def kind(self) -> str:
        return "hotspot"


@dataclass(frozen=True)
class GapFact:
    """A threatened cell's coverage: hours without presence against the hours allowed."""

    cell: int
    parent_cell: int
    hours_uncovered: float
    allowed_hours: float
    reasons: tuple[str, ...]
    as_of: datetime
    site_kind: str | None = None

    @property
    def kind(self) -> str:
        return "gap"


Fact = ReportFact | HotspotFact | GapFact


# ------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One alert rule. Times are seconds; ``ack_within_s`` is per escalation level."""

    id: str
    name: str
    kind: RuleKind
    severity: AlertSeverity
    urgency: str
    cap_severity: str
    certainty: str
    match: tuple[Matcher, ...] = ()
    min_severity_weight: float = 0.0
    min_killed: int = 0
    min_abducted: int = 0
    children_only: bool = False
    min_confidence: int = 95
    patterns: tuple[str, ...] = WORSENING_PATTERNS
    min_overdue_ratio: float = 1.0
    group_by: tuple[str, ...] = ("rule", "cell")
    group_wait_s: int = 30
    group_interval_s: int = 300
    repeat_interval_s: int = 4 * 3600
    ack_within_s: int = 30 * 60
    escalate_to_top: bool = True
    resolve_after_s: int = 72 * 3600
    enabled: bool = True
    description: str = ""
    instruction: str = field(default="")


_KIND_DEFAULTS: dict[RuleKind, tuple[str, str, str]] = {
    RuleKind.FLASH: ("Immediate", "Extreme", "Observed"),
    RuleKind.HOTSPOT: ("Expected", "Severe", "Likely"),
    RuleKind.SURGE: ("Expected", "Severe", "Possible"),
    RuleKind.PRECURSOR: ("Future", "Moderate", "Possible"),
    RuleKind.GAP: ("Expected", "Moderate", "Observed"),
}

_FIELDS = {
    "id",
    "name",
    "kind",
    "severity",
    "cap",
    "match",
    "when",
    "group_by",
    "group_wait_s",
    "group_interval_s",
    "repeat_interval_s",
    "ack_within_min",
    "escalate_to_top",
    "resolve_after_h",
    "enabled",
    "description",
    "instruction",
}
_WHEN_FIELDS: dict[RuleKind, set[str]] = {
    RuleKind.FLASH: {"min_severity_weight", "min_killed", "min_abducted", "children"},
    RuleKind.HOTSPOT: {"min_confidence", "patterns"},
    RuleKind.SURGE: set(),
    RuleKind.PRECURSOR: set(),
    RuleKind.GAP: {"min_overdue_ratio"},
}


def _number(value: Any, path: str, *, lo: float, hi: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(path, f"must be a number, not {value!r}")
    if integer and not float(value).is_integer():
        raise RuleError(path, f"must be a whole number, not {value!r}")
    if not lo <= value <= hi:
        raise RuleError(path, f"must be between {lo:g} and {hi:g}, not {value!r}")
    return float(value)


def _text(value: Any, path: str, *, limit: int = 500) -> str:
    if not isinstance(value, str):
        raise RuleError(path, f"must be text, not {value!r}")
    if len(value) > limit:
        raise RuleError(path, f"must be at most {limit} characters")
    return value


def _choice(value: Any, path: str, options: Sequence[str]) -> str:
    if value not in options:
        raise RuleError(path, f"must be one of {', '.join(options)}; got {value!r}")
    return str(value)


def parse_rule(data: Mapping[str, Any]) -> Rule:
    """Build a :class:`Rule` from its JSON form, refusing anything it cannot run.

    >>> rule = parse_rule({"id": "flash-camp", "name": "Attack on a camp", "kind": "flash",
    ...     "severity": "red", "match": ['family="attacks_on_protected_sites"']})
    >>> (rule.urgency, rule.cap_severity, rule.certainty, rule.ack_within_s)
    ('Immediate', 'Extreme', 'Observed', 1800)
    """
    if not isinstance(data, Mapping):
        raise RuleError("", "a rule is a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise RuleError(unknown[0], f"unknown field; a rule has {', '.join(sorted(_FIELDS))}")
    for required in ("id", "name", "kind", "severity"):
        if required not in data:
            raise RuleError(required, "is required")
    rule_id = _text(data["id"], "id", limit=63)
    if not _RULE_ID.match(rule_id):
        raise RuleError("id", "use lower-case letters, digits and hyphens (2-63 characters)")
    kind = RuleKind(_choice(data["kind"], "kind", [k.value for k in RuleKind]))
    severities = [s.value for s in AlertSeverity]
    severity = AlertSeverity(_choice(data["severity"], "severity", severities))
    urgency, cap_severity, certainty = _KIND_DEFAULTS[kind]
    cap = data.get("cap", {})
    if not isinstance(cap, Mapping):
        raise RuleError("cap", "must be an object with urgency, severity and certainty")
    for key in set(cap) - {"urgency", "severity", "certainty"}:
        raise RuleError(f"cap.{key}", "unknown field; cap has urgency, severity, certainty")
    urgency = _choice(cap.get("urgency", urgency), "cap.urgency", CAP_URGENCY)
    cap_severity = _choice(cap.get("severity", cap_severity), "cap.severity", CAP_SEVERITY)
    certainty = _choice(cap.get("certainty", certainty), "cap.certainty", CAP_CERTAINTY)

    raw_match = data.get("match", [])
    if isinstance(raw_match, str) or not isinstance(raw_match, Sequence):
        raise RuleError("match", 'must be a list of matchers like family="abduction"')
    matchers = []
    for i, text in enumerate(raw_match):
        try:
            matchers.append(parse_matcher(text))
        except MatcherError as exc:
            raise RuleError(f"match[{i}]", str(exc)) from None

    when = data.get("when", {})
    if not isinstance(when, Mapping):
        raise RuleError("when", "must be an object")
    allowed = _WHEN_FIELDS[kind]
    for key in when:
        if key not in allowed:
            options = ", ".join(sorted(allowed)) or "nothing"
            raise RuleError(f"when.{key}", f"not a condition of a {kind.value} rule ({options})")
    values: dict[str, Any] = {}
    if "min_severity_weight" in when:
        values["min_severity_weight"] = _number(
            when["min_severity_weight"], "when.min_severity_weight", lo=0, hi=10
        )
    for key in ("min_killed", "min_abducted"):
        if key in when:
            values[key] = int(_number(when[key], f"when.{key}", lo=0, hi=1e6, integer=True))
    if "children" in when:
        if not isinstance(when["children"], bool):
            raise RuleError("when.children", "must be true or false")
        values["children_only"] = when["children"]
    if "min_confidence" in when:
        values["min_confidence"] = int(
            _choice(when["min_confidence"], "when.min_confidence", (90, 95, 99))  # type: ignore[arg-type]
        )
    if "patterns" in when:
        patterns = when["patterns"]
        if isinstance(patterns, str) or not isinstance(patterns, Sequence) or not patterns:
            raise RuleError("when.patterns", "must be a non-empty list of emerging patterns")
        values["patterns"] = tuple(_text(p, "when.patterns", limit=32) for p in patterns)
    if "min_overdue_ratio" in when:
        values["min_overdue_ratio"] = _number(
            when["min_overdue_ratio"], "when.min_overdue_ratio", lo=0.1, hi=100
        )

    group_by = data.get("group_by", ["rule", "cell"])
    if isinstance(group_by, str) or not isinstance(group_by, Sequence) or not group_by:
        raise RuleError("group_by", "must be a non-empty list of labels")
    for i, label in enumerate(group_by):
        if label not in KNOWN_LABELS:
            raise RuleError(f"group_by[{i}]", f"unknown label {label!r}")
    day = 86400.0
    timing: dict[str, Any] = {
        "group_wait_s": int(_number(data.get("group_wait_s", 30), "group_wait_s", lo=0, hi=day)),
        "group_interval_s": int(
            _number(data.get("group_interval_s", 300), "group_interval_s", lo=1, hi=day)
        ),
        "repeat_interval_s": int(
            _number(data.get("repeat_interval_s", 14400), "repeat_interval_s", lo=60, hi=7 * day)
        ),
        "ack_within_s": int(
            _number(data.get("ack_within_min", 30), "ack_within_min", lo=1, hi=7 * 24 * 60) * 60
        ),
        "resolve_after_s": int(
            _number(data.get("resolve_after_h", 72), "resolve_after_h", lo=1, hi=90 * 24) * 3600
        ),
    }
    for flag in ("escalate_to_top", "enabled"):
        if flag in data and not isinstance(data[flag], bool):
            raise RuleError(flag, "must be true or false")
    return Rule(
        id=rule_id,
        name=_text(data["name"], "name", limit=200),
        kind=kind,
        severity=severity,
        urgency=urgency,
        cap_severity=cap_severity,
        certainty=certainty,
        match=tuple(matchers),
        group_by=tuple(str(g) for g in group_by),
        escalate_to_top=bool(data.get("escalate_to_top", True)),
        enabled=bool(data.get("enabled", True)),
        description=_text(data.get("description", ""), "description"),
        instruction=_text(data.get("instruction", ""), "instruction"),
        **values,
        **timing,
    )


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """The JSON form :func:`parse_rule` reads (``parse_rule(rule_to_dict(r)) == r``)."""
    when: dict[str, Any] = {}
    if rule.kind is RuleKind.FLASH:
        when = {
            "min_severity_weight": rule.min_severity_weight,
            "min_killed": rule.min_killed,
            "min_abducted": rule.min_abducted,
            "children": rule.children_only,
        }
    elif rule.kind is RuleKind.HOTSPOT:
        when = {"min_confidence": rule.min_confidence, "patterns": list(rule.patterns)}
    elif rule.kind is RuleKind.GAP:
        when = {"min_overdue_ratio": rule.min_overdue_ratio}
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind.value,
        "severity": rule.severity.value,
        "cap": {
            "urgency": rule.urgency,
            "severity": rule.cap_severity,
            "certainty": rule.certainty,
        },
        "match": [str(m) for m in rule.match],
        "when": when,
        "group_by": list(rule.group_by),
        "group_wait_s": rule.group_wait_s,
        "group_interval_s": rule.group_interval_s,
        "repeat_interval_s": rule.repeat_interval_s,
        "ack_within_min": rule.ack_within_s / 60,
        "escalate_to_top": rule.escalate_to_top,
        "resolve_after_h": rule.resolve_after_s / 3600,
        "enabled": rule.enabled,
        "description": rule.description,
        "instruction": rule.instruction,
    }


# --------------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class Candidate:
    """What a rule says about a fact: raise (or refresh) this alert, or clear it.

    ``fingerprint`` identifies the alert across facts: while an alert with it is open, a new
    fact refreshes it (count + 1) instead of raising another (Alertmanager's dedup).
    """

    rule: Rule
    fingerprint: str
    labels: dict[str, str]
    cell: int
    observed_at: datetime
    firing: bool = True
    killed: int = 0
    abducted: int = 0
    subject: str = ""

    @property
    def sensitive(self) -> bool:
        return self.labels.get("sensitivity", "normal") != "normal"


def _cell_hex(cell: int) -> str:
    return format(int(cell) & 0xFFFFFFFFFFFFFFFF, "x")


def fact_labels(fact: Fact) -> dict[str, str]:
    """The labels a fact offers to matchers (before the rule adds ``rule`` and ``severity``)."""
    labels = {"cell": _cell_hex(fact.cell), "parent_cell": _cell_hex(fact.parent_cell)}
    if isinstance(fact, ReportFact):
        labels.update(
            category=fact.category,
            family=fact.family,
            sensitivity=fact.sensitivity or "strictly_confidential",
        )
        if fact.site_kind:
            labels["site_kind"] = fact.site_kind
        if fact.component:
            labels["component"] = fact.component
    elif isinstance(fact, HotspotFact):
        labels.update(pattern=fact.after.pattern, sensitivity="normal")
    else:
        labels["sensitivity"] = "normal"
        if fact.site_kind:
            labels["site_kind"] = fact.site_kind
    return labels


def _flash_fires(rule: Rule, fact: ReportFact) -> bool:
    return (
        fact.severity_weight >= rule.min_severity_weight
        and fact.killed >= rule.min_killed
        and fact.abducted >= rule.min_abducted
        and (fact.children or not rule.children_only)
    )


def _hot(rule: Rule, state: CellState | None) -> bool:
    if state is None:
        return False
    return state.confidence >= rule.min_confidence or state.pattern in rule.patterns


def evaluate(rule: Rule, fact: Fact) -> Candidate | None:
    """What ``rule`` says about ``fact``: a firing candidate, a clearing one, or nothing.

    Flash rules only ever fire (a flash alert clears by ageing out, ``resolve_after_s`` after
    its last report). Hotspot, surge and precursor rules fire on the rising edge and clear on
    the falling edge; a gap rule fires while the cell is overdue and clears when presence
    returns.
    """
    if not rule.enabled:
        return None
    labels = fact_labels(fact)
    labels["type"] = rule.kind.value
    if not matches_all(rule.match, labels):
        return None
    firing: bool
    killed = abducted = 0
    subject = ""
    if rule.kind is RuleKind.FLASH:
        if not isinstance(fact, ReportFact) or not _flash_fires(rule, fact):
            return None
        firing, killed, abducted, subject = True, fact.killed, fact.abducted, fact.subject
    elif isinstance(fact, HotspotFact) and rule.kind in (
        RuleKind.HOTSPOT,
        RuleKind.SURGE,
        RuleKind.PRECURSOR,
    ):
        if rule.kind is RuleKind.HOTSPOT:
            was, now_ = _hot(rule, fact.before), _hot(rule, fact.after)
        elif rule.kind is RuleKind.SURGE:
            was, now_ = bool(fact.before and fact.before.surge), fact.after.surge
        else:
            was, now_ = bool(fact.before and fact.before.precursor), fact.after.precursor
        if was == now_:
            return None  # no edge: nothing new to say (an open alert stays open)
        firing = now_
    elif isinstance(fact, GapFact) and rule.kind is RuleKind.GAP:
        overdue = fact.hours_uncovered >= fact.allowed_hours * rule.min_overdue_ratio
        firing = overdue
    else:
        return None
    labels["rule"] = rule.id
    labels["severity"] = rule.severity.value
    key_labels = {k: labels.get(k, "") for k in ("rule", "cell", "category")}
    fingerprint = "|".join(f"{k}={v}" for k, v in sorted(key_labels.items()))
    observed = fact.occurred_at if isinstance(fact, ReportFact) else fact.as_of
    return Candidate(
        rule=rule,
        fingerprint=fingerprint,
        labels=labels,
        cell=fact.cell,
        observed_at=observed,
        firing=firing,
        killed=killed,
        abducted=abducted,
        subject=subject,
    )
