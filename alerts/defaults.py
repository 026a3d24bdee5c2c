"""The rules a new mission starts with (an administrator edits them through the rules API).

Acknowledgement windows follow the stakes: minutes for a mass killing or an attack on a camp,
hours for a cooling coverage gap. Precursor and tension alerts are amber so that a red attack in
the same place mutes them (the people on the ground already know).
"""

from __future__ import annotations

from typing import Any

from alerts.rules import Rule, parse_rule

__all__ = ["DEFAULT_RULE_DEFINITIONS", "default_rules"]

_CHILD_CATEGORIES = (
    "killing_maiming_of_children|abduction_of_children|recruitment_use_of_children|"
    "sexual_violence_against_children"
)

DEFAULT_RULE_DEFINITIONS: tuple[dict[str, Any], ...] = (
    {
        "id": "flash-attack-on-protected-site",
        "name": "Attack on an IDP camp or protected site",
        "kind": "flash",
        "severity": "red",
        "match": ['family="attacks_on_protected_sites"'],
        "group_wait_s": 0,
        "ack_within_min": 15,
        "instruction": "Confirm with the site focal point; consider a protection patrol.",
    },
    {
        "id": "flash-attack-near-camp",
        "name": "Violence at an IDP camp",
        "kind": "flash",
        "severity": "red",
        "match": [
            'site_kind="idp_camp"',
            'family=~"violence_against_civilians|abduction|sexual_violence|property"',
        ],
        "group_wait_s": 0,
        "ack_within_min": 15,
    },
    {
        "id": "flash-mass-killing",
        "name": "Mass killing of civilians",
        "kind": "flash",
        "severity": "red",
        "match": ['family="violence_against_civilians"'],
        "when": {"min_killed": 5},
        "group_wait_s": 0,
        "ack_within_min": 15,
    },
    {
        "id": "flash-children",
        "name": "Grave violation against children",
        "kind": "flash",
        "severity": "red",
        "match": [f'category=~"{_CHILD_CATEGORIES}"'],
        "group_wait_s": 0,
        "ack_within_min": 30,
    },
    {
        "id": "flash-killing",
        "name": "Killing of civilians",
        "kind": "flash",
        "severity": "amber",
        "match": ['category="killing_of_civilians"'],
        "ack_within_min": 60,
    },
    {
        "id": "flash-abduction",
        "name": "Abduction",
        "kind": "flash",
        "severity": "amber",
        "match": ['category="abduction"'],
        "ack_within_min": 60,
    },
    {
        "id": "flash-sexual-violence",
        "name": "Sexual violence",
        "kind": "flash",
        "severity": "amber",
        "cap": {"certainty": "Likely"},
        "match": ['family="sexual_violence"'],
        "ack_within_min": 60,
    },
    {
        "id": "flash-misconduct",
        "name": "Misconduct by mission personnel",
        "kind": "flash",
        "severity": "amber",
        "cap": {"urgency": "Expected", "severity": "Severe", "certainty": "Possible"},
        "match": ['family="misconduct"'],
        "ack_within_min": 240,
        "escalate_to_top": False,
    },
    {
        "id": "flash-tension",
        "name": "Rising tension (incitement, threats, armed-group movement)",
        "kind": "flash",
        "severity": "amber",
        "cap": {"urgency": "Expected", "severity": "Moderate", "certainty": "Possible"},
        "match": ['family=~"incitement|threats|armed_group_activity"'],
        "group_by": ["rule", "parent_cell"],
        "group_wait_s": 60,
        "ack_within_min": 240,
    },
    {
        "id": "hotspot-new",
        "name": "New or intensifying hot spot",
        "kind": "hotspot",
        "severity": "amber",
        "when": {"min_confidence": 95, "patterns": ["new", "intensifying"]},
        "group_by": ["rule", "unit"],
        "group_wait_s": 120,
        "ack_within_min": 240,
    },
    {
        "id": "surge",
        "name": "Surge of incidents",
        "kind": "surge",
        "severity": "amber",
        "group_by": ["rule", "unit"],
        "group_wait_s": 120,
        "ack_within_min": 240,
    },
    {
        "id": "precursor",
        "name": "Precursor signals (early warning)",
        "kind": "precursor",
        "severity": "amber",
        "group_by": ["rule", "unit"],
        "group_wait_s": 300,
        "ack_within_min": 720,
    },
    {
        "id": "gap-overdue",
        "name": "Threatened ground without patrol presence",
        "kind": "gap",
        "severity": "yellow",
        "when": {"min_overdue_ratio": 1.0},
        "group_by": ["rule", "unit"],
        "group_wait_s": 300,
        "group_interval_s": 3600,
        "repeat_interval_s": 86400,
        "ack_within_min": 720,
        "escalate_to_top": False,
    },
)


def default_rules() -> list[Rule]:
    return [parse_rule(d) for d in DEFAULT_RULE_DEFINITIONS]
