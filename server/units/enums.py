"""Kinds of units in a mission hierarchy and the mission components they belong to."""

from __future__ import annotations

from enum import StrEnum


class UnitKind(StrEnum):
    MISSION_HQ = "mission_hq"
    FORCE_HQ = "force_hq"
    SECTOR = "sector"
    BATTALION = "battalion"
    COMPANY = "company"
    POLICE_HQ = "police_hq"
    POLICE_UNIT = "police_unit"
    CIVILIAN_SECTION = "civilian_section"
    FIELD_OFFICE = "field_office"
    OPERATIONS_CENTRE = "operations_centre"


class Component(StrEnum):
    MILITARY = "military"
    POLICE = "police"
    CIVILIAN = "civilian"
