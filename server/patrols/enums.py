"""Patrol vocabularies: types with their default sensing radius and typical speed, and statuses."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ALLOWED_TRANSITIONS",
    "SENSING_RADIUS_M",
    "TYPICAL_SPEED_KMH",
    "PatrolStatus",
    "PatrolType",
]


class PatrolType(StrEnum):
    FOOT = "foot"
    MOBILE = "mobile"
    NIGHT = "night"
    LONG_RANGE = "long_range"
    ESCORT_FIREWOOD = "escort_firewood"
    ESCORT_MARKET = "escort_market"
    ESCORT_WATER = "escort_water"
    JOINT_POLICE = "joint_police"
    AIR = "air"


#: How far a patrol of each type is present around its track: seen, heard, able to talk to
#: people and to intervene. A foot patrol in a village reaches its lanes; a night patrol sees
#: less; an escort stays with the people it escorts; a vehicle covers the roadside settlements;
#: a helicopter overflight is visible for kilometres. Starting values a mission tunes per
#: patrol (``sensing_radius_m`` overrides them).
SENSING_RADIUS_M: dict[PatrolType, float] = {
    PatrolType.FOOT: 500.0,
    PatrolType.MOBILE: 1000.0,
    PatrolType.NIGHT: 300.0,
    PatrolType.LONG_RANGE: 1500.0,
    PatrolType.ESCORT_FIREWOOD: 300.0,
    PatrolType.ESCORT_MARKET: 300.0,
    PatrolType.ESCORT_WATER: 300.0,
    PatrolType.JOINT_POLICE: 500.0,
    PatrolType.AIR: 3000.0,
}

#: Typical speed over a patrol route, km/h, for tasking (walking pace with halts, laterite roads
#: in the rainy season, a helicopter's cruise).
TYPICAL_SPEED_KMH: dict[PatrolType, float] = {
    PatrolType.FOOT: 4.0,
    PatrolType.MOBILE: 25.0,
    PatrolType.NIGHT: 3.0,
    PatrolType.LONG_RANGE: 25.0,
    PatrolType.ESCORT_FIREWOOD: 3.0,
    PatrolType.ESCORT_MARKET: 4.0,
    PatrolType.ESCORT_WATER: 3.0,
    PatrolType.JOINT_POLICE: 15.0,
    PatrolType.AIR: 150.0,
}


class PatrolStatus(StrEnum):
    PLANNED = "planned"
    UNDERWAY = "underway"
    COMPLETED = "completed"
    ABORTED = "aborted"


#: Status changes a patrol may make; completed and aborted are final.
ALLOWED_TRANSITIONS: dict[PatrolStatus, frozenset[PatrolStatus]] = {
    PatrolStatus.PLANNED: frozenset({PatrolStatus.UNDERWAY, PatrolStatus.ABORTED}),
    PatrolStatus.UNDERWAY: frozenset({PatrolStatus.COMPLETED, PatrolStatus.ABORTED}),
    PatrolStatus.COMPLETED: frozenset(),
    PatrolStatus.ABORTED: frozenset(),
}
