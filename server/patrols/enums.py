"""Patrol vocabularies (the coverage issue builds the full patrol model on these)."""

from __future__ import annotations

from enum import StrEnum


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


class PatrolStatus(StrEnum):
    PLANNED = "planned"
    UNDERWAY = "underway"
    COMPLETED = "completed"
    ABORTED = "aborted"
