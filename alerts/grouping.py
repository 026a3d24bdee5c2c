"""Grouping, inhibition and silences: what reaches people, and how often.

Alertmanager's model (prometheus/alertmanager ``dispatch``, ``inhibit``, ``silence``): alerts
with the same group key for the same recipient travel in one notification; the first waits
``group_wait`` for its companions, changes go out at most every ``group_interval``, and an
unchanged, still-firing group is repeated every ``repeat_interval``. An inhibition mutes lesser
alerts while a graver one is active nearby; a silence mutes matching alerts for a window, with
the name of who set it and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.errors import SilenceError
from alerts.labels import Labels, Matcher, matches_all, parse_matchers
from alerts.rules import Rule
from geo import cells as geo_cells

__all__ = [
    "DEFAULT_INHIBITIONS",
    "MAX_SILENCE",
    "GroupState",
    "Inhibition",
    "Silence",
    "active_silence",
    "group_key",
    "inhibited_by",
    "notification_due",
    "validate_silence",
]

#: Silences longer than this are refused: a muted threat must come back to someone's desk.
MAX_SILENCE = timedelta(days=14)


def group_key(rule: Rule, labels: Labels) -> str:
    """The group an alert belongs to: the rule's ``group_by`` label values."""
    return "{" + ",".join(f"{k}={labels.get(k, '')}" for k in rule.group_by) + "}"


@dataclass(frozen=True)
class GroupState:
    """One (group, recipient) pair: when its first alert arrived, when it was last notified
    and the content hash then."""

    first_alert_at: datetime
    last_notified_at: datetime | None = None
    notified_hash: str | None = None


def notification_due(
    state: GroupState, current_hash: str, rule: Rule, *, firing: bool
) -> datetime | None:
    """When the group's next notification may go out, or None if there is nothing to send.

    - never notified: at ``first_alert_at + group_wait``;
    - content changed since the last one (new alerts, resolved ones): ``group_interval`` after it;
    - unchanged and still firing: ``repeat_interval`` after it;
    - unchanged and nothing firing: never (the resolution was already told).

    >>> from datetime import datetime, timezone
    >>> from alerts.rules import parse_rule
    >>> rule = parse_rule({"id": "r1", "name": "r", "kind": "flash", "severity": "red",
    ...                    "group_wait_s": 30, "group_interval_s": 300})
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> notification_due(GroupState(t0), "h1", rule, firing=True) == t0 + timedelta(seconds=30)
    True
    """
    if state.last_notified_at is None:
        if not firing:
            return None  # resolved before anyone was told: nothing to say
        return state.first_alert_at + timedelta(seconds=rule.group_wait_s)
    if current_hash != state.notified_hash:
        return state.last_notified_at + timedelta(seconds=rule.group_interval_s)
    if firing:
        return state.last_notified_at + timedelta(seconds=rule.repeat_interval_s)
    return None


# ---------------------------------------------------------------------------------- inhibition


@dataclass(frozen=True)
class Inhibition:
    """While an alert matching ``source`` is active, alerts matching ``target`` in the source's
    cell or anywhere in its parent cell are muted (they still exist, and show as inhibited)."""

    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    #: Labels that must be equal on source and target (Alertmanager's ``equal``).
    equal: tuple[str, ...] = ()


DEFAULT_INHIBITIONS: tuple[Inhibition, ...] = (
    Inhibition(
        "red-attack-mutes-amber-tension",
        source=parse_matchers(['severity="red"', 'type="flash"']),
        target=parse_matchers(['severity="amber"', 'rule=~".*(tension|precursor|surge).*"']),
    ),
    # One report can meet two rules (a killing; a killing of five or more): the red alert
    # says it all, the amber one for the same category there is noise.
    Inhibition(
        "red-flash-mutes-amber-flash-of-its-category",
        source=parse_matchers(['severity="red"', 'type="flash"']),
        target=parse_matchers(['severity="amber"', 'type="flash"']),
        equal=("category",),
    ),
)


def _within(target_cell: int, area_cell: int) -> bool:
    """Whether ``target_cell`` lies in ``area_cell`` (equal to it or a descendant of it)."""
    area_res = geo_cells.cell_resolution(area_cell)
    target_res = geo_cells.cell_resolution(target_cell)
    if target_res < area_res:
        return False
    return geo_cells.parent_cell(target_cell, area_res) == area_cell


def inhibited_by(
    target: Labels,
    active: Iterable[Labels],
    inhibitions: Sequence[Inhibition] = DEFAULT_INHIBITIONS,
) -> tuple[Inhibition, Labels] | None:
    """The first inhibition and active source alert that mute ``target``, if any.

    Cells are read from the ``cell`` and ``parent_cell`` labels (hex H3 indexes). A source
    never inhibits itself.
    """
    candidates = [i for i in inhibitions if matches_all(i.target, target)]
    if not candidates or "cell" not in target:
        return None
    target_cell = geo_cells.cell_from_string(target["cell"])
    for source in active:
        if source is target or dict(source) == dict(target):
            continue
        for inhibition in candidates:
            if not matches_all(inhibition.source, source) or "cell" not in source:
                continue
            if any(source.get(label) != target.get(label) for label in inhibition.equal):
                continue
            area = source.get("parent_cell") or source["cell"]
            if _within(target_cell, geo_cells.cell_from_string(area)):
                return inhibition, source
    return None


# ------------------------------------------------------------------------------------ silences


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def validate_silence(
    matchers: Iterable[str],
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    now: datetime,
    created_by: str,
    comment: str,
    silence_id: str = "",
) -> Silence:
    """A silence as asked, or :class:`SilenceError` saying what is wrong with it.

    A silence needs at least one matcher (no silencing everything), an end, an end after its
    start and within :data:`MAX_SILENCE` of it, and a reason.
    """
    parsed = parse_matchers(list(matchers))
    if not parsed:
        raise SilenceError("a silence needs at least one matcher; it may not mute every alert")
    if ends_at is None:
        raise SilenceError("a silence needs an end (ends_at); open-ended silences are refused")
    start = starts_at or now
    for moment in (start, ends_at):
        if moment.tzinfo is None:
            raise SilenceError("times need a time zone (e.g. 2026-12-04T18:00:00Z)")
    if ends_at <= now:
        raise SilenceError("ends_at is in the past: the silence would mute nothing")
    if ends_at <= start:
        raise SilenceError("ends_at must be after starts_at")
    if ends_at - start > MAX_SILENCE:
        raise SilenceError(f"a silence may last at most {MAX_SILENCE.days} days")
    if not comment or not comment.strip():
        raise SilenceError("say why (comment): the next watch officer needs to know")
    return Silence(silence_id, parsed, start, ends_at, created_by, comment.strip())


def active_silence(labels: Labels, silences: Iterable[Silence], now: datetime) -> Silence | None:
    """The first silence muting ``labels`` at ``now``, if any."""
    for silence in silences:
        if silence.active(now) and matches_all(silence.matchers, labels):
            return silence
    return None
