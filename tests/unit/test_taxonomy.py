"""The incident taxonomy: stable codes, safe defaults, and crosswalks that only speak real types."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from server.taxonomy import codes
from server.taxonomy.codes import (
    ACLED_EVENT_TYPES,
    TAXONOMY,
    TAXONOMY_VERSION,
    AcledType,
    Family,
    Sensitivity,
    UnknownCategoryError,
    categories_in_family,
    category_for_acled,
    category_for_ucdp,
    find_acled_type,
    get_category,
    most_restrictive,
    sensitivity_rank,
)

ALL_CODES = {category.code for category in TAXONOMY}

# ACLED's event type / sub-event type pairs as published in the ACLED codebook (2019 onwards),
# written out independently of the code under test.
REAL_ACLED_PAIRS = {
    ("Battles", "Armed clash"),
    ("Battles", "Government regains territory"),
    ("Battles", "Non-state actor overtakes territory"),
    ("Explosions/Remote violence", "Chemical weapon"),
    ("Explosions/Remote violence", "Air/drone strike"),
    ("Explosions/Remote violence", "Suicide bomb"),
    ("Explosions/Remote violence", "Shelling/artillery/missile attack"),
    ("Explosions/Remote violence", "Remote explosive/landmine/IED"),
    ("Explosions/Remote violence", "Grenade"),
    ("Violence against civilians", "Sexual violence"),
    ("Violence against civilians", "Attack"),
    ("Violence against civilians", "Abduction/forced disappearance"),
    ("Protests", "Peaceful protest"),
    ("Protests", "Protest with intervention"),
    ("Protests", "Excessive force against protesters"),
    ("Riots", "Violent demonstration"),
    ("Riots", "Mob violence"),
    ("Strategic developments", "Agreement"),
    ("Strategic developments", "Arrests"),
    ("Strategic developments", "Change to group/activity"),
    ("Strategic developments", "Disrupted weapons use"),
    ("Strategic developments", "Headquarters or base established"),
    ("Strategic developments", "Looting/property destruction"),
    ("Strategic developments", "Non-violent transfer of territory"),
    ("Strategic developments", "Other"),
}

MRM_GRAVE_VIOLATIONS = {
    "killing_maiming",
    "recruitment_use",
    "sexual_violence",
    "attacks_on_schools_hospitals",
    "abduction",
    "denial_of_humanitarian_access",
}

# The categories DESIGN.md ("Taxonomy") requires, by the code that implements each.
DESIGN_CATEGORIES = {
    "killing of civilians": "killing_of_civilians",
    "attack on civilians (injury)": "attack_on_civilians",
    "attack on IDP camp / refugee site / protected site": "attack_on_protected_site",
    "sexual and gender-based violence": "sexual_violence",
    "abduction / forced disappearance": "abduction",
    "forced displacement": "forced_displacement",
    "destruction or looting of property": "property_destruction_looting",
    "recruitment or use of children": "recruitment_use_of_children",
    "killing or maiming of children": "killing_maiming_of_children",
    "abduction of children": "abduction_of_children",
    "sexual violence against children": "sexual_violence_against_children",
    "attack on school or hospital": "attack_on_school_or_hospital",
    "denial of humanitarian access": "denial_of_humanitarian_access",
    "hate speech and incitement": "hate_speech_incitement",
    "threats and intimidation": "threats_intimidation",
    "armed-group movement or presence": "armed_group_movement",
    "illegal checkpoint / extortion": "illegal_checkpoint_extortion",
    "attack on peacekeepers": "attack_on_peacekeepers",
    "attack on humanitarians": "attack_on_humanitarians",
    "sexual exploitation and abuse by mission personnel": "sexual_exploitation_abuse",
    "misconduct by mission personnel": "misconduct_by_personnel",
    "armed clash": "armed_clash",
    "civil unrest": "civil_unrest",
}

SEXUAL_VIOLENCE_AND_CHILD_CODES = [
    "sexual_violence",
    "rape",
    "sexual_slavery",
    "other_sexual_violence",
    "sexual_violence_against_children",
    "recruitment_use_of_children",
    "killing_maiming_of_children",
    "abduction_of_children",
]


# --- codes ---------------------------------------------------------------------------------


def test_every_code_is_unique() -> None:
    all_codes = [category.code for category in TAXONOMY]
    duplicates = sorted({code for code in all_codes if all_codes.count(code) > 1})
    assert duplicates == []


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_code_is_snake_case(code: str) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", code)


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_family_codes_are_snake_case(family: Family) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", family.value)


@pytest.mark.parametrize(
    ("design_name", "code"), sorted(DESIGN_CATEGORIES.items()), ids=sorted(DESIGN_CATEGORIES)
)
def test_design_category_is_present(design_name: str, code: str) -> None:
    assert code in ALL_CODES, f"DESIGN.md requires {design_name!r}"


def test_taxonomy_version_is_set() -> None:
    assert isinstance(TAXONOMY_VERSION, str)
    assert TAXONOMY_VERSION.strip()


@pytest.mark.parametrize("category", TAXONOMY, ids=lambda c: c.code)
def test_category_reads_well_on_a_phone(category: codes.Category) -> None:
    assert 0 < len(category.label) <= 60
    assert category.description.strip()


# --- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize("category", TAXONOMY, ids=lambda c: c.code)
def test_severity_weight_is_in_range(category: codes.Category) -> None:
    assert 0 < category.severity_weight <= 10


def test_killing_of_civilians_weighs_most() -> None:
    top = max(category.severity_weight for category in TAXONOMY)
    assert get_category("killing_of_civilians").severity_weight == top
    assert get_category("attack_on_civilians").severity_weight < top


@pytest.mark.parametrize("category", categories_in_family(Family.MISCONDUCT), ids=lambda c: c.code)
def test_misconduct_is_strictly_confidential(category: codes.Category) -> None:
    assert category.sensitivity is Sensitivity.STRICTLY_CONFIDENTIAL


def test_misconduct_family_holds_sea_and_other_misconduct() -> None:
    assert {c.code for c in categories_in_family(Family.MISCONDUCT)} == {
        "sexual_exploitation_abuse",
        "misconduct_by_personnel",
    }


@pytest.mark.parametrize("code", SEXUAL_VIOLENCE_AND_CHILD_CODES)
def test_sexual_violence_and_child_codes_are_restricted(code: str) -> None:
    assert get_category(code).sensitivity is Sensitivity.RESTRICTED


@pytest.mark.parametrize(
    "category",
    [c for c in TAXONOMY if c.family is Family.SEXUAL_VIOLENCE or c.mara is not None],
    ids=lambda c: c.code,
)
def test_every_sexual_violence_code_is_at_least_restricted(category: codes.Category) -> None:
    # Guards future codes too: a new SGBV code must not default to "normal".
    assert sensitivity_rank(category.sensitivity) >= sensitivity_rank(Sensitivity.RESTRICTED)


@pytest.mark.parametrize(
    "category",
    [
        c
        for c in TAXONOMY
        if c.mrm_grave_violation
        in {"killing_maiming", "recruitment_use", "sexual_violence", "abduction"}
    ],
    ids=lambda c: c.code,
)
def test_grave_violations_against_a_child_are_at_least_restricted(
    category: codes.Category,
) -> None:
    assert sensitivity_rank(category.sensitivity) >= sensitivity_rank(Sensitivity.RESTRICTED)


def test_only_misconduct_is_strictly_confidential_by_default() -> None:
    confidential = {c.code for c in TAXONOMY if c.sensitivity is Sensitivity.STRICTLY_CONFIDENTIAL}
    assert confidential == {c.code for c in categories_in_family(Family.MISCONDUCT)}


@pytest.mark.parametrize(
    "code",
    [
        "hate_speech_incitement",
        "threats_intimidation",
        "armed_group_movement",
        "forced_displacement",
    ],
)
def test_early_warning_categories_are_precursors(code: str) -> None:
    assert get_category(code).precursor


@pytest.mark.parametrize("code", ["killing_of_civilians", "armed_clash", "civil_unrest"])
def test_events_themselves_are_not_precursors(code: str) -> None:
    assert not get_category(code).precursor


@pytest.mark.parametrize("category", TAXONOMY, ids=lambda c: c.code)
def test_mrm_and_mara_values_are_from_their_lists(category: codes.Category) -> None:
    assert category.mrm_grave_violation in MRM_GRAVE_VIOLATIONS | {None}
    assert category.mara in {"rape", "sexual_slavery", "other_sexual_violence", None}


def test_all_six_grave_violations_have_a_category() -> None:
    assert {c.mrm_grave_violation for c in TAXONOMY} - {None} == MRM_GRAVE_VIOLATIONS


@pytest.mark.parametrize("category", TAXONOMY, ids=lambda c: c.code)
def test_ucdp_types_are_real(category: codes.Category) -> None:
    assert set(category.ucdp_type_of_violence) <= {1, 2, 3}


# --- lookups -----------------------------------------------------------------------------------


def test_get_category_returns_the_category() -> None:
    category = get_category("abduction")
    assert category.code == "abduction"
    assert category.family is Family.ABDUCTION


@pytest.mark.parametrize("code", ["no_such_code", "Killing_Of_Civilians", ""])
def test_unknown_code_names_itself_and_the_list(code: str) -> None:
    with pytest.raises(UnknownCategoryError) as caught:
        get_category(code)
    assert repr(code) in str(caught.value)
    assert "GET /api/v1/taxonomy" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == code


@pytest.mark.parametrize("family", list(Family), ids=str)
def test_every_family_has_categories_and_only_its_own(family: Family) -> None:
    members = categories_in_family(family)
    assert members
    assert all(category.family is family for category in members)


def test_families_partition_the_taxonomy() -> None:
    by_family = [c for family in Family for c in categories_in_family(family)]
    assert sorted(c.code for c in by_family) == sorted(ALL_CODES)


def test_categories_in_family_accepts_the_code_string() -> None:
    assert categories_in_family("abduction") == categories_in_family(Family.ABDUCTION)


def test_categories_in_family_rejects_unknown_family() -> None:
    with pytest.raises(ValueError, match="no_such_family"):
        categories_in_family("no_such_family")


def test_child_variants_share_a_family_with_their_adult_counterpart() -> None:
    # Families are the fusion key: one abduction reported twice must be mergeable.
    pairs = [
        ("abduction_of_children", "abduction"),
        ("sexual_violence_against_children", "sexual_violence"),
        ("killing_maiming_of_children", "killing_of_civilians"),
    ]
    for child, adult in pairs:
        assert get_category(child).family is get_category(adult).family, child


# --- sensitivity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ((None,), Sensitivity.STRICTLY_CONFIDENTIAL),
        ((), Sensitivity.STRICTLY_CONFIDENTIAL),
        (("no-such-tier",), Sensitivity.STRICTLY_CONFIDENTIAL),
        (("normal", None), Sensitivity.STRICTLY_CONFIDENTIAL),
        (("normal",), Sensitivity.NORMAL),
        (("normal", "normal"), Sensitivity.NORMAL),
        (("normal", "restricted"), Sensitivity.RESTRICTED),
        ((Sensitivity.RESTRICTED, Sensitivity.NORMAL), Sensitivity.RESTRICTED),
        (("restricted", "strictly_confidential"), Sensitivity.STRICTLY_CONFIDENTIAL),
    ],
    ids=[
        "none",
        "nothing",
        "unknown-string",
        "normal-and-none",
        "normal",
        "normal-twice",
        "normal-restricted",
        "enum-members",
        "restricted-confidential",
    ],
)
def test_most_restrictive(
    tiers: tuple[Sensitivity | str | None, ...], expected: Sensitivity
) -> None:
    assert most_restrictive(*tiers) is expected


def test_sensitivity_rank_orders_tiers_and_denies_unknown() -> None:
    ranks = [sensitivity_rank(tier) for tier in ("normal", "restricted", "strictly_confidential")]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 3
    assert sensitivity_rank(None) == sensitivity_rank("strictly_confidential")
    assert sensitivity_rank("public") == sensitivity_rank("strictly_confidential")


# --- ACLED crosswalk ---------------------------------------------------------------------------


def test_acled_vocabulary_is_exactly_acleds() -> None:
    assert {(p.event_type, p.sub_event_type) for p in ACLED_EVENT_TYPES} == REAL_ACLED_PAIRS


@pytest.mark.parametrize("category", [c for c in TAXONOMY if c.acled], ids=lambda c: c.code)
def test_category_crosswalk_uses_real_acled_pairs(category: codes.Category) -> None:
    unknown = {(p.event_type, p.sub_event_type) for p in category.acled} - REAL_ACLED_PAIRS
    assert unknown == set()


@pytest.mark.parametrize(
    "pair", sorted(REAL_ACLED_PAIRS), ids=[f"{e}|{s}" for e, s in sorted(REAL_ACLED_PAIRS)]
)
def test_every_acled_outcome_is_a_real_code_listed_for_that_pair(pair: tuple[str, str]) -> None:
    for fatalities in (None, 0, 3):
        for targeting in (False, True):
            code = category_for_acled(*pair, fatalities, targeting)
            if code is None:
                continue
            assert code in ALL_CODES
            assert AcledType(*pair) in get_category(code).acled, (code, fatalities, targeting)


@pytest.mark.parametrize(
    ("event_type", "sub_event_type", "fatalities", "targeting", "expected"),
    [
        ("Violence against civilians", "Attack", 2, True, "killing_of_civilians"),
        ("Violence against civilians", "Attack", 0, True, "attack_on_civilians"),
        ("Violence against civilians", "Attack", None, True, "attack_on_civilians"),
        ("Violence against civilians", "Sexual violence", 0, True, "sexual_violence"),
        (
            "Violence against civilians",
            "Abduction/forced disappearance",
            0,
            True,
            "abduction",
        ),
        ("Battles", "Armed clash", 5, False, "armed_clash"),
        ("Battles", "Government regains territory", 0, False, "armed_clash"),
        ("Battles", "Non-state actor overtakes territory", 0, False, "armed_clash"),
        (
            "Explosions/Remote violence",
            "Shelling/artillery/missile attack",
            4,
            True,
            "killing_of_civilians",
        ),
        ("Explosions/Remote violence", "Air/drone strike", 0, True, "attack_on_civilians"),
        ("Explosions/Remote violence", "Air/drone strike", 4, False, "armed_clash"),
        ("Explosions/Remote violence", "Remote explosive/landmine/IED", 0, False, "armed_clash"),
        ("Riots", "Mob violence", 1, True, "civil_unrest"),
        ("Riots", "Violent demonstration", 0, False, "civil_unrest"),
        ("Protests", "Peaceful protest", 0, False, "civil_unrest"),
        ("Protests", "Excessive force against protesters", 2, True, "civil_unrest"),
        (
            "Strategic developments",
            "Looting/property destruction",
            0,
            True,
            "property_destruction_looting",
        ),
        (
            "Strategic developments",
            "Headquarters or base established",
            0,
            False,
            "armed_group_movement",
        ),
        (
            "Strategic developments",
            "Non-violent transfer of territory",
            0,
            False,
            "armed_group_movement",
        ),
        ("Strategic developments", "Change to group/activity", 0, False, "armed_group_movement"),
        ("Strategic developments", "Agreement", 0, False, None),
        ("Strategic developments", "Arrests", 0, False, None),
        ("Strategic developments", "Disrupted weapons use", 0, False, None),
        ("Strategic developments", "Other", 0, False, None),
        ("Remote violence", "Shelling", 3, False, None),
        ("battles", "ARMED  CLASH", 0, False, "armed_clash"),
        ("Protests", "Excessive force against protestors", 0, False, "civil_unrest"),
    ],
    ids=[
        "vac-attack-deaths",
        "vac-attack-no-deaths",
        "vac-attack-unknown-deaths",
        "vac-sexual-violence",
        "vac-abduction",
        "battle-clash",
        "battle-government-regains",
        "battle-nsa-overtakes",
        "shelling-civilians-deaths",
        "airstrike-civilians-no-deaths",
        "airstrike-not-civilians",
        "ied-not-civilians",
        "mob-violence",
        "violent-demonstration",
        "peaceful-protest",
        "excessive-force",
        "looting",
        "hq-established",
        "territory-transfer",
        "change-to-group",
        "agreement-unmapped",
        "arrests-unmapped",
        "disrupted-weapons-unmapped",
        "other-unmapped",
        "pre-2019-type-unmapped",
        "case-and-spacing-tolerated",
        "protestors-spelling",
    ],
)
def test_category_for_acled(
    event_type: str,
    sub_event_type: str,
    fatalities: int | None,
    targeting: bool,
    expected: str | None,
) -> None:
    assert category_for_acled(event_type, sub_event_type, fatalities, targeting) == expected


def test_find_acled_type_canonicalises_and_rejects() -> None:
    assert find_acled_type(" riots ", "mob violence") == AcledType("Riots", "Mob violence")
    assert find_acled_type("Riots/Protests", "Riots") is None


# --- UCDP crosswalk ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_of_violence", "deaths_civilians", "best", "expected"),
    [
        (3, 4, 4, "killing_of_civilians"),
        (3, 0, 6, "killing_of_civilians"),
        (3, None, 2, "killing_of_civilians"),
        (3, 0, 0, "attack_on_civilians"),
        (3, None, None, "attack_on_civilians"),
        (1, 0, 12, "armed_clash"),
        (2, 3, 30, "armed_clash"),
        (2, 0, 0, "armed_clash"),
    ],
    ids=[
        "one-sided-civilian-deaths",
        "one-sided-deaths-unknown-column",
        "one-sided-best-only",
        "one-sided-no-deaths",
        "one-sided-no-figures",
        "state-based",
        "non-state-with-civilians",
        "non-state-no-deaths",
    ],
)
def test_category_for_ucdp(
    type_of_violence: int, deaths_civilians: int | None, best: int | None, expected: str
) -> None:
    code = category_for_ucdp(type_of_violence, deaths_civilians, best)
    assert code == expected
    assert type_of_violence in get_category(code).ucdp_type_of_violence


@pytest.mark.parametrize("type_of_violence", [0, 4, -1, 99], ids=lambda t: f"type-{t}")
def test_unknown_ucdp_type_raises(type_of_violence: int) -> None:
    with pytest.raises(UnknownCategoryError) as caught:
        category_for_ucdp(type_of_violence, 1, 1)
    assert f"type_of_violence {type_of_violence}" in str(caught.value)
    assert "GET /api/v1/taxonomy" in str(caught.value)


# --- purity --------------------------------------------------------------------------------------


def test_codes_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(codes.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
    assert imported <= {"__future__", "dataclasses", "enum"}
