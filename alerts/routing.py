"""Routing: who must act on an alert.

An alert goes to the deepest unit whose current AOR holds its cell (a company before its
battalion before its sector), and from there up that unit's chain of command as it escalates.
Cells outside every AOR go to the operations centre. Component routes add (or, for conduct and
discipline, replace) recipients by what the alert is about: sexual violence to the women
protection advisers, children to child protection, misconduct to conduct and discipline only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alerts.labels import Labels, Matcher, matches_all, parse_matchers

__all__ = [
    "DEFAULT_COMPONENT_ROUTES",
    "ComponentRoute",
    "Route",
    "UnitNode",
    "chain_of_command",
    "route",
]


@dataclass(frozen=True)
class UnitNode:
    id: int
    code: str
    parent_id: int | None
    depth: int


@dataclass(frozen=True)
class ComponentRoute:
    """Send alerts matching ``match`` to the units ``unit_codes`` as well. ``exclusive``: to
    them only, never the AOR chain (misconduct is for conduct and discipline alone)."""

    name: str
    match: tuple[Matcher, ...]
    unit_codes: tuple[str, ...]
    exclusive: bool = False


DEFAULT_COMPONENT_ROUTES: tuple[ComponentRoute, ...] = (
    ComponentRoute(
        "conduct-and-discipline",
        parse_matchers(['family="misconduct"']),
        ("conduct-discipline",),
        exclusive=True,
    ),
    ComponentRoute(
        "women-protection",
        parse_matchers(['family="sexual_violence"']),
        ("women-protection",),
    ),
    ComponentRoute(
        "child-protection",
        parse_matchers(
            [
                'category=~"killing_maiming_of_children|sexual_violence_against_children|'
                'abduction_of_children|recruitment_use_of_children|attack_on_school_or_hospital"'
            ]
        ),
        ("child-protection",),
    ),
)


@dataclass(frozen=True)
class Route:
    """Where an alert goes. ``chain`` is the escalation ladder, responsible unit first, then its
    parents to the top; ``also`` the component units told at once; ``reason`` says why, in
    words that go on the alert's timeline."""

    responsible_unit_id: int
    chain: tuple[int, ...]
    also: tuple[int, ...]
    reason: str


def chain_of_command(unit_id: int, units: Mapping[int, UnitNode]) -> tuple[int, ...]:
    """``unit_id`` and its parents up to the root (a cycle in bad data stops the walk)."""
    chain: list[int] = []
    current: int | None = unit_id
    while current is not None and current in units and current not in chain:
        chain.append(current)
        current = units[current].parent_id
    return tuple(chain)


def route(
    labels: Labels,
    holders: Iterable[int],
    units: Mapping[int, UnitNode],
    *,
    fallback_unit_id: int,
    component_routes: Iterable[ComponentRoute] = DEFAULT_COMPONENT_ROUTES,
) -> Route:
    """Route one alert.

    ``holders`` are the units whose current AOR holds the alert's cell (any depth); the deepest
    is responsible (ties: the lowest id, so the answer never depends on query order).
    ``fallback_unit_id`` (the JOC) takes cells outside every AOR, and component routes whose
    units do not exist in this mission.

    >>> units = {1: UnitNode(1, "hq", None, 0), 2: UnitNode(2, "sector", 1, 1),
    ...          3: UnitNode(3, "coy", 2, 2), 9: UnitNode(9, "joc", 1, 1)}
    >>> route({"family": "violence_against_civilians"}, [2, 3], units, fallback_unit_id=9).chain
    (3, 2, 1)
    >>> route({}, [], units, fallback_unit_id=9).reason
    'outside every area of responsibility: the operations centre'
    """
    by_code = {u.code: u.id for u in units.values()}
    present = [h for h in holders if h in units]
    also: list[int] = []
    for component in component_routes:
        if not matches_all(component.match, labels):
            continue
        targets = [by_code[c] for c in component.unit_codes if c in by_code]
        if component.exclusive:
            target = targets[0] if targets else fallback_unit_id
            why = (
                f"{component.name} only"
                if targets
                else f"{component.name} only, no such unit: the operations centre"
            )
            return Route(target, (target,), tuple(targets[1:]), why)
        also.extend(t for t in targets if t not in also)
    if present:
        deepest = min(present, key=lambda u: (-units[u].depth, u))
        chain = chain_of_command(deepest, units)
        reason = f"area of responsibility of {units[deepest].code}"
    else:
        chain = chain_of_command(fallback_unit_id, units)
        deepest = fallback_unit_id
        reason = "outside every area of responsibility: the operations centre"
    extra = tuple(u for u in also if u not in chain)
    if extra:
        reason += "; also " + ", ".join(units[u].code for u in extra)
    return Route(deepest, chain, extra, reason)
