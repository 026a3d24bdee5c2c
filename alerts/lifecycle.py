"""An alert's life: open → acknowledged → resolved, with escalation while nobody acknowledges.

PagerDuty's model on a chain of command: each level has the rule's ``ack_within`` to
acknowledge; past it the alert goes to the next unit up, repeating to the top. Acknowledging
stops the escalation (the alert stays open until resolved); resolving ends it, by hand or when
the condition clears. A resolved alert's group may fire again later as a new alert that starts
again at the bottom of the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from alerts.errors import AlertStateError
from alerts.rules import Rule, RuleKind

__all__ = [
    "AlertState",
    "EscalationStep",
    "check_acknowledge",
    "check_resolve",
    "flash_expired",
    "next_escalation",
]


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class EscalationStep:
    """Escalate to ``chain[level]`` at ``due_at``."""

    level: int
    unit_id: int
    due_at: datetime


def next_escalation(
    *,
    state: AlertState,
    level: int,
    level_started_at: datetime,
    chain: tuple[int, ...],
    rule: Rule,
) -> EscalationStep | None:
    """The next escalation step, or None (acknowledged, resolved, already at the top, or the
    rule does not escalate beyond the responsible unit's parent).

    >>> from datetime import timezone
    >>> from alerts.rules import parse_rule
    >>> rule = parse_rule({"id": "r1", "name": "r", "kind": "flash", "severity": "red",
    ...                    "ack_within_min": 15})
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> step = next_escalation(state=AlertState.OPEN, level=0, level_started_at=t0,
    ...                        chain=(3, 2, 1), rule=rule)
    >>> (step.level, step.unit_id, step.due_at - t0)
    (1, 2, datetime.timedelta(seconds=900))
    """
    if state is not AlertState.OPEN:
        return None
    top = len(chain) - 1 if rule.escalate_to_top else min(1, len(chain) - 1)
    if level >= top:
        return None
    return EscalationStep(
        level=level + 1,
        unit_id=chain[level + 1],
        due_at=level_started_at + timedelta(seconds=rule.ack_within_s),
    )


def check_acknowledge(state: AlertState) -> None:
    if state is AlertState.RESOLVED:
        raise AlertStateError("this alert is already resolved; there is nothing to acknowledge")
    if state is AlertState.ACKNOWLEDGED:
        raise AlertStateError("this alert is already acknowledged")


def check_resolve(state: AlertState) -> None:
    if state is AlertState.RESOLVED:
        raise AlertStateError("this alert is already resolved")


def flash_expired(rule: Rule, last_seen_at: datetime, now: datetime) -> bool:
    """A flash alert's condition clears when no new report has refreshed it for
    ``resolve_after`` (its threat has passed into the hotspot picture)."""
    return rule.kind is RuleKind.FLASH and now - last_seen_at >= timedelta(
        seconds=rule.resolve_after_s
    )
