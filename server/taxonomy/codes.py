"""Vigil's incident taxonomy: the stable category codes every report, alert and import speaks.

A field officer picks a category in seconds; an analyst fuses reports of the same family into
one incident; the spatial core weighs incidents by severity and treats precursor categories as
leading indicators; access control starts from the category's sensitivity tier. All of that
reads from this one table, so the codes here are a public contract: they are stored in reports,
synced to devices and exported. Never rename or reuse a code; add a new one and bump
``TAXONOMY_VERSION``.

Each category also carries a crosswalk to the vocabularies Vigil exchanges data with:

- ACLED event type / sub-event type pairs (ACLED codebook, 2019 onwards);
- UCDP GED ``type_of_violence`` (1 state-based, 2 non-state, 3 one-sided);
- the six MRM grave violations against children (Security Council resolution 1612);
- MARA, the monitoring, analysis and reporting arrangements on conflict-related sexual violence.

Families are the fusion key: Vigil suggests merging reports only within one family, so a
category that describes the same real-world event as another (an abduction, and an abduction
of children) belongs to the same family, and the child-protection lens is carried by
``mrm_grave_violation`` instead of a separate family.

Exceptions::

    ValueError
     └── UnknownCategoryError   a code, or a UCDP type, that the taxonomy does not know
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ACLED_EVENT_TYPES",
    "TAXONOMY",
    "TAXONOMY_VERSION",
    "AcledType",
    "Category",
    "Family",
    "Sensitivity",
    "UnknownCategoryError",
    "categories_in_family",
    "category_for_acled",
    "category_for_ucdp",
    "find_acled_type",
    "get_category",
    "most_restrictive",
    "sensitivity_rank",
]

#: Bump when a category is added or its defaults change; stored with imports and exports so a
#: reader can tell which table a code was resolved against.
TAXONOMY_VERSION = "1.0"


class UnknownCategoryError(ValueError):
    """A category code (or a dataset type) that has no entry in Vigil's taxonomy.

    The message always points at ``GET /api/v1/taxonomy`` because whoever sees it, a client
    developer or an analyst importing a file, needs the list of valid codes next.
    """

    def __init__(self, code: str, detail: str | None = None) -> None:
        self.code = code
        reason = detail or f"unknown incident category {code!r}"
        super().__init__(f"{reason}; the valid categories are listed at GET /api/v1/taxonomy")


class Sensitivity(StrEnum):
    """How much detail of a record a reader may see.

    ``normal`` records are visible in full to anyone in scope; ``restricted`` ones (sexual
    violence, grave violations against children) in full only to protection advisers and as
    suppressed counts to others; ``strictly_confidential`` ones (conduct and discipline) only to
    the named few who handle them.
    """

    NORMAL = "normal"
    RESTRICTED = "restricted"
    STRICTLY_CONFIDENTIAL = "strictly_confidential"


_SENSITIVITY_RANK: dict[Sensitivity, int] = {
    Sensitivity.NORMAL: 0,
    Sensitivity.RESTRICTED: 1,
    Sensitivity.STRICTLY_CONFIDENTIAL: 2,
}


def sensitivity_rank(tier: Sensitivity | str | None) -> int:
    """Order tiers from least (0) to most (2) restrictive.

    A missing or unrecognised tier ranks as the most restrictive: a record whose tier cannot be
    read must never be shown more widely than the strictest tier allows.

    Examples
    --------
    >>> sensitivity_rank("normal") < sensitivity_rank("restricted")
    True
    >>> sensitivity_rank("no-such-tier") == sensitivity_rank("strictly_confidential")
    True
    """
    strictest = _SENSITIVITY_RANK[Sensitivity.STRICTLY_CONFIDENTIAL]
    if tier is None:
        return strictest
    try:
        return _SENSITIVITY_RANK[Sensitivity(tier)]
    except ValueError:
        return strictest


def most_restrictive(*tiers: Sensitivity | str | None) -> Sensitivity:
    """Return the strictest of several tiers, denying by default.

    A report's effective tier is the strictest of its category's default and whatever the
    reporter or an analyst set, so raising a tier is always possible and lowering it below the
    category default is not. ``None``, an unknown value, or no tier at all counts as
    ``strictly_confidential``: when in doubt, protect the victim.

    Examples
    --------
    >>> most_restrictive("normal", "restricted")
    <Sensitivity.RESTRICTED: 'restricted'>
    >>> most_restrictive("normal", None)
    <Sensitivity.STRICTLY_CONFIDENTIAL: 'strictly_confidential'>
    """
    if not tiers:
        return Sensitivity.STRICTLY_CONFIDENTIAL
    rank = max(sensitivity_rank(tier) for tier in tiers)
    return next(tier for tier, value in _SENSITIVITY_RANK.items() if value == rank)


class Family(StrEnum):
    """Groups of categories that can describe the same real-world event (the fusion key)."""

    VIOLENCE_AGAINST_CIVILIANS = "violence_against_civilians"
    ATTACKS_ON_PROTECTED_SITES = "attacks_on_protected_sites"
    SEXUAL_VIOLENCE = "sexual_violence"
    ABDUCTION = "abduction"
    DISPLACEMENT = "displacement"
    PROPERTY = "property"
    GRAVE_VIOLATIONS_CHILDREN = "grave_violations_children"
    HUMANITARIAN_ACCESS = "humanitarian_access"
    INCITEMENT = "incitement"
    THREATS = "threats"
    ARMED_GROUP_ACTIVITY = "armed_group_activity"
    ARMED_CONFLICT = "armed_conflict"
    ATTACKS_ON_MISSION = "attacks_on_mission"
    CIVIL_UNREST = "civil_unrest"
    MISCONDUCT = "misconduct"


@dataclass(frozen=True)
class AcledType:
    """One ACLED event type / sub-event type pair, spelled exactly as ACLED publishes it."""

    event_type: str
    sub_event_type: str


# ACLED's vocabulary, as in the ACLED codebook (2019 onwards). Kept here so an importer can tell
# a real type that Vigil chooses not to map (skipped) from a misspelt or pre-2019 one (an error).
_BATTLES = "Battles"
_EXPLOSIONS = "Explosions/Remote violence"
_VAC = "Violence against civilians"
_PROTESTS = "Protests"
_RIOTS = "Riots"
_STRATEGIC = "Strategic developments"

ARMED_CLASH = AcledType(_BATTLES, "Armed clash")
GOVERNMENT_REGAINS_TERRITORY = AcledType(_BATTLES, "Government regains territory")
NSA_OVERTAKES_TERRITORY = AcledType(_BATTLES, "Non-state actor overtakes territory")
CHEMICAL_WEAPON = AcledType(_EXPLOSIONS, "Chemical weapon")
AIR_DRONE_STRIKE = AcledType(_EXPLOSIONS, "Air/drone strike")
SUICIDE_BOMB = AcledType(_EXPLOSIONS, "Suicide bomb")
SHELLING = AcledType(_EXPLOSIONS, "Shelling/artillery/missile attack")
REMOTE_EXPLOSIVE = AcledType(_EXPLOSIONS, "Remote explosive/landmine/IED")
GRENADE = AcledType(_EXPLOSIONS, "Grenade")
VAC_SEXUAL_VIOLENCE = AcledType(_VAC, "Sexual violence")
VAC_ATTACK = AcledType(_VAC, "Attack")
VAC_ABDUCTION = AcledType(_VAC, "Abduction/forced disappearance")
PEACEFUL_PROTEST = AcledType(_PROTESTS, "Peaceful protest")
PROTEST_WITH_INTERVENTION = AcledType(_PROTESTS, "Protest with intervention")
EXCESSIVE_FORCE = AcledType(_PROTESTS, "Excessive force against protesters")
VIOLENT_DEMONSTRATION = AcledType(_RIOTS, "Violent demonstration")
MOB_VIOLENCE = AcledType(_RIOTS, "Mob violence")
AGREEMENT = AcledType(_STRATEGIC, "Agreement")
ARRESTS = AcledType(_STRATEGIC, "Arrests")
CHANGE_TO_GROUP = AcledType(_STRATEGIC, "Change to group/activity")
DISRUPTED_WEAPONS_USE = AcledType(_STRATEGIC, "Disrupted weapons use")
HQ_ESTABLISHED = AcledType(_STRATEGIC, "Headquarters or base established")
LOOTING = AcledType(_STRATEGIC, "Looting/property destruction")
TERRITORY_TRANSFER = AcledType(_STRATEGIC, "Non-violent transfer of territory")
STRATEGIC_OTHER = AcledType(_STRATEGIC, "Other")

#: Every event type / sub-event type pair ACLED codes.
ACLED_EVENT_TYPES: tuple[AcledType, ...] = (
    ARMED_CLASH,
    GOVERNMENT_REGAINS_TERRITORY,
    NSA_OVERTAKES_TERRITORY,
    CHEMICAL_WEAPON,
    AIR_DRONE_STRIKE,
    SUICIDE_BOMB,
    SHELLING,
    REMOTE_EXPLOSIVE,
    GRENADE,
    VAC_SEXUAL_VIOLENCE,
    VAC_ATTACK,
    VAC_ABDUCTION,
    PEACEFUL_PROTEST,
    PROTEST_WITH_INTERVENTION,
    EXCESSIVE_FORCE,
    VIOLENT_DEMONSTRATION,
    MOB_VIOLENCE,
    AGREEMENT,
    ARRESTS,
    CHANGE_TO_GROUP,
    DISRUPTED_WEAPONS_USE,
    HQ_ESTABLISHED,
    LOOTING,
    TERRITORY_TRANSFER,
    STRATEGIC_OTHER,
)

_BATTLE_TYPES = (ARMED_CLASH, GOVERNMENT_REGAINS_TERRITORY, NSA_OVERTAKES_TERRITORY)
_EXPLOSION_TYPES = (
    CHEMICAL_WEAPON,
    AIR_DRONE_STRIKE,
    SUICIDE_BOMB,
    SHELLING,
    REMOTE_EXPLOSIVE,
    GRENADE,
)
_UNREST_TYPES = (
    PEACEFUL_PROTEST,
    PROTEST_WITH_INTERVENTION,
    EXCESSIVE_FORCE,
    VIOLENT_DEMONSTRATION,
    MOB_VIOLENCE,
)
_MOVEMENT_TYPES = (HQ_ESTABLISHED, TERRITORY_TRANSFER, CHANGE_TO_GROUP)


@dataclass(frozen=True)
class Category:
    """One incident category and its defaults.

    Attributes
    ----------
    code
        Stable snake_case identifier stored in reports; never renamed or reused.
    family
        Fusion key: reports are suggested as one incident only within a family.
    label
        What a field officer reads on the picker (short, plain English).
    description
        What belongs here and what does not, for the officer and the analyst.
    severity_weight
        Default contribution of one incident to a cell's intensity, on a 1-10 scale with
        mass-atrocity-type events (killings, sexual violence, attacks on camps) at the top.
    sensitivity
        Default tier; a report can be raised above it, never lowered below it.
    precursor
        Leading indicator for early warning (incitement, threats, armed-group movement,
        displacement): these often precede mass violence by days or weeks.
    acled
        ACLED event/sub-event pairs that describe this kind of event.
    ucdp_type_of_violence
        UCDP GED types of violence this kind of event falls under.
    mrm_grave_violation
        MRM grave violation against children, if the category is one.
    mara
        MARA conflict-related sexual violence form, if the category is one.
    """

    code: str
    family: Family
    label: str
    description: str
    severity_weight: float
    sensitivity: Sensitivity
    precursor: bool = False
    acled: tuple[AcledType, ...] = ()
    ucdp_type_of_violence: tuple[int, ...] = ()
    mrm_grave_violation: str | None = None
    mara: str | None = None


_NORMAL = Sensitivity.NORMAL
_RESTRICTED = Sensitivity.RESTRICTED
_CONFIDENTIAL = Sensitivity.STRICTLY_CONFIDENTIAL

TAXONOMY: tuple[Category, ...] = (
    # --- violence against civilians ------------------------------------------------------
    Category(
        code="killing_of_civilians",
        family=Family.VIOLENCE_AGAINST_CIVILIANS,
        label="Killing of civilians",
        description=(
            "One or more civilians killed by an armed actor or an organised group, including "
            "massacres and summary executions. Children among the victims: also report "
            "killing_maiming_of_children."
        ),
        severity_weight=10.0,
        sensitivity=_NORMAL,
        acled=(VAC_ATTACK, *_EXPLOSION_TYPES),
        ucdp_type_of_violence=(3,),
    ),
    Category(
        code="attack_on_civilians",
        family=Family.VIOLENCE_AGAINST_CIVILIANS,
        label="Attack on civilians (injury)",
        description=(
            "Civilians deliberately attacked and injured, beaten or tortured, with no one "
            "known to be killed. Use killing_of_civilians as soon as a death is confirmed."
        ),
        severity_weight=7.0,
        sensitivity=_NORMAL,
        acled=(VAC_ATTACK, *_EXPLOSION_TYPES),
        ucdp_type_of_violence=(3,),
    ),
    Category(
        code="killing_maiming_of_children",
        family=Family.VIOLENCE_AGAINST_CIVILIANS,
        label="Killing or maiming of children",
        description=(
            "A child (under 18) killed or injured in an attack, crossfire, explosive remnants "
            "or mines. MRM grave violation; child protection verifies."
        ),
        severity_weight=10.0,
        sensitivity=_RESTRICTED,
        acled=(VAC_ATTACK, *_EXPLOSION_TYPES),
        ucdp_type_of_violence=(3,),
        mrm_grave_violation="killing_maiming",
    ),
    # --- attacks on protected sites ------------------------------------------------------
    Category(
        code="attack_on_protected_site",
        family=Family.ATTACKS_ON_PROTECTED_SITES,
        label="Attack on IDP camp, refugee or protected site",
        description=(
            "Armed attack on, incursion into or shelling of an IDP camp or site, a refugee "
            "settlement or a mission protection-of-civilians site, whatever the casualties."
        ),
        severity_weight=9.0,
        sensitivity=_NORMAL,
        acled=(VAC_ATTACK, SHELLING),
        ucdp_type_of_violence=(3,),
    ),
    Category(
        code="attack_on_school_or_hospital",
        family=Family.ATTACKS_ON_PROTECTED_SITES,
        label="Attack on school or hospital",
        description=(
            "Attack on, looting, burning or military use of a school or a health facility, "
            "or threats against their staff. MRM grave violation."
        ),
        severity_weight=8.0,
        sensitivity=_NORMAL,
        acled=(VAC_ATTACK, LOOTING),
        mrm_grave_violation="attacks_on_schools_hospitals",
    ),
    Category(
        code="attack_on_place_of_worship",
        family=Family.ATTACKS_ON_PROTECTED_SITES,
        label="Attack on church, mosque or place of worship",
        description=(
            "Attack on a place of worship or on people sheltering there; in identity-based "
            "conflict an early sign of targeting a community."
        ),
        severity_weight=8.0,
        sensitivity=_NORMAL,
        acled=(VAC_ATTACK, LOOTING),
    ),
    # --- sexual violence -------------------------------------------------------------------
    Category(
        code="sexual_violence",
        family=Family.SEXUAL_VIOLENCE,
        label="Sexual violence (SGBV / CRSV)",
        description=(
            "Conflict-related sexual or gender-based violence whose form is not yet "
            "established. The protection adviser re-codes it to rape, sexual_slavery or "
            "other_sexual_violence during verification."
        ),
        severity_weight=9.0,
        sensitivity=_RESTRICTED,
        acled=(VAC_SEXUAL_VIOLENCE,),
    ),
    Category(
        code="rape",
        family=Family.SEXUAL_VIOLENCE,
        label="Rape or attempted rape",
        description="Rape or attempted rape linked to the conflict. MARA category.",
        severity_weight=9.0,
        sensitivity=_RESTRICTED,
        acled=(VAC_SEXUAL_VIOLENCE,),
        mara="rape",
    ),
    Category(
        code="sexual_slavery",
        family=Family.SEXUAL_VIOLENCE,
        label="Sexual slavery or forced marriage",
        description=(
            "Sexual slavery, forced marriage or enforced prostitution linked to the conflict. "
            "MARA category."
        ),
        severity_weight=9.5,
        sensitivity=_RESTRICTED,
        acled=(VAC_SEXUAL_VIOLENCE,),
        mara="sexual_slavery",
    ),
    Category(
        code="other_sexual_violence",
        family=Family.SEXUAL_VIOLENCE,
        label="Other sexual violence",
        description=(
            "Other sexual violence of comparable gravity: sexual mutilation, forced nudity, "
            "forced pregnancy or sterilisation. MARA category."
        ),
        severity_weight=8.0,
        sensitivity=_RESTRICTED,
        acled=(VAC_SEXUAL_VIOLENCE,),
        mara="other_sexual_violence",
    ),
    Category(
        code="sexual_violence_against_children",
        family=Family.SEXUAL_VIOLENCE,
        label="Sexual violence against a child",
        description=(
            "Any sexual violence against a child (under 18). MRM grave violation and MARA; "
            "child protection and the women protection adviser verify together."
        ),
        severity_weight=9.5,
        sensitivity=_RESTRICTED,
        acled=(VAC_SEXUAL_VIOLENCE,),
        mrm_grave_violation="sexual_violence",
    ),
    # --- abduction -------------------------------------------------------------------------
    Category(
        code="abduction",
        family=Family.ABDUCTION,
        label="Abduction or forced disappearance",
        description=(
            "People taken by an armed actor or a criminal group, held for ransom, or detained "
            "with their fate or whereabouts concealed."
        ),
        severity_weight=8.0,
        sensitivity=_NORMAL,
        acled=(VAC_ABDUCTION,),
    ),
    Category(
        code="abduction_of_children",
        family=Family.ABDUCTION,
        label="Abduction of children",
        description="A child (under 18) abducted, for any purpose. MRM grave violation.",
        severity_weight=8.5,
        sensitivity=_RESTRICTED,
        acled=(VAC_ABDUCTION,),
        mrm_grave_violation="abduction",
    ),
    # --- children ----------------------------------------------------------------------------
    Category(
        code="recruitment_use_of_children",
        family=Family.GRAVE_VIOLATIONS_CHILDREN,
        label="Recruitment or use of children",
        description=(
            "A child (under 18) recruited or used by an armed force or group, as fighter, "
            "porter, cook, spy or in any other role. MRM grave violation."
        ),
        severity_weight=7.5,
        sensitivity=_RESTRICTED,
        mrm_grave_violation="recruitment_use",
    ),
    # --- displacement ------------------------------------------------------------------------
    Category(
        code="forced_displacement",
        family=Family.DISPLACEMENT,
        label="Forced displacement",
        description=(
            "People forced to flee or expelled by violence or threats, including whole "
            "villages emptying; a leading indicator and a possible sign of ethnic cleansing."
        ),
        severity_weight=7.0,
        sensitivity=_NORMAL,
        precursor=True,
    ),
    # --- property ------------------------------------------------------------------------------
    Category(
        code="property_destruction_looting",
        family=Family.PROPERTY,
        label="Destruction or looting of property",
        description=(
            "Houses, villages, markets, crops or livestock burned, destroyed or looted by an "
            "armed actor or a mob."
        ),
        severity_weight=5.0,
        sensitivity=_NORMAL,
        acled=(LOOTING,),
    ),
    # --- humanitarian access ---------------------------------------------------------------
    Category(
        code="denial_of_humanitarian_access",
        family=Family.HUMANITARIAN_ACCESS,
        label="Denial of humanitarian access",
        description=(
            "Humanitarian convoys, staff or supplies blocked, diverted or taxed, or people "
            "prevented from reaching aid. MRM grave violation when it affects children."
        ),
        severity_weight=5.0,
        sensitivity=_NORMAL,
        mrm_grave_violation="denial_of_humanitarian_access",
    ),
    Category(
        code="attack_on_humanitarians",
        family=Family.HUMANITARIAN_ACCESS,
        label="Attack on humanitarian workers",
        description=(
            "Humanitarian staff, premises, vehicles or convoys attacked, robbed or abducted."
        ),
        severity_weight=7.0,
        sensitivity=_NORMAL,
        acled=(VAC_ATTACK, VAC_ABDUCTION, LOOTING),
    ),
    # --- precursors ---------------------------------------------------------------------------
    Category(
        code="hate_speech_incitement",
        family=Family.INCITEMENT,
        label="Hate speech or incitement",
        description=(
            "Speech, broadcasts, leaflets or messages that dehumanise a group or call for "
            "violence against it; incitement to an RtoP crime is itself a crime."
        ),
        severity_weight=4.0,
        sensitivity=_NORMAL,
        precursor=True,
    ),
    Category(
        code="threats_intimidation",
        family=Family.THREATS,
        label="Threats or intimidation",
        description=(
            "Threats of violence against a community, a leader, a human rights defender or a "
            "witness, ultimatums to leave, or intimidation at gunpoint."
        ),
        severity_weight=3.0,
        sensitivity=_NORMAL,
        precursor=True,
    ),
    Category(
        code="armed_group_movement",
        family=Family.ARMED_GROUP_ACTIVITY,
        label="Armed-group movement or presence",
        description=(
            "Armed elements seen moving, massing, setting up a base or taking over an area "
            "without fighting; a leading indicator of attacks."
        ),
        severity_weight=3.0,
        sensitivity=_NORMAL,
        precursor=True,
        acled=_MOVEMENT_TYPES,
    ),
    Category(
        code="illegal_checkpoint_extortion",
        family=Family.ARMED_GROUP_ACTIVITY,
        label="Illegal checkpoint or extortion",
        description=(
            "Roadblocks, barriers or 'taxes' imposed by armed actors or unauthorised "
            "officials on travellers, traders or farmers."
        ),
        severity_weight=3.0,
        sensitivity=_NORMAL,
    ),
    # --- armed conflict -------------------------------------------------------------------
    Category(
        code="armed_clash",
        family=Family.ARMED_CONFLICT,
        label="Armed clash",
        description=(
            "Fighting between armed actors (state forces, armed groups, militias), including "
            "shelling and strikes not aimed at civilians. Context for the threat picture."
        ),
        severity_weight=6.0,
        sensitivity=_NORMAL,
        acled=(*_BATTLE_TYPES, *_EXPLOSION_TYPES),
        ucdp_type_of_violence=(1, 2),
    ),
    # --- the mission ----------------------------------------------------------------------------
    Category(
        code="attack_on_peacekeepers",
        family=Family.ATTACKS_ON_MISSION,
        label="Attack on peacekeepers",
        description=(
            "Attack on mission personnel, patrols, convoys, bases or aircraft, including "
            "ambushes and explosive devices."
        ),
        severity_weight=6.0,
        sensitivity=_NORMAL,
        acled=(ARMED_CLASH, REMOTE_EXPLOSIVE, SHELLING),
    ),
    # --- civil unrest --------------------------------------------------------------------------
    Category(
        code="civil_unrest",
        family=Family.CIVIL_UNREST,
        label="Riot or protest",
        description=(
            "Demonstrations, riots and mob violence, peaceful or not. Killings by a mob or by "
            "security forces at a protest are also reported as killing_of_civilians."
        ),
        severity_weight=2.0,
        sensitivity=_NORMAL,
        acled=_UNREST_TYPES,
    ),
    # --- conduct and discipline --------------------------------------------------------------
    Category(
        code="sexual_exploitation_abuse",
        family=Family.MISCONDUCT,
        label="Sexual exploitation or abuse by mission personnel",
        description=(
            "Sexual exploitation or abuse by anyone serving with the mission (military, police, "
            "civilian, contractor). Always strictly confidential; goes to conduct and "
            "discipline only."
        ),
        severity_weight=8.0,
        sensitivity=_CONFIDENTIAL,
    ),
    Category(
        code="misconduct_by_personnel",
        family=Family.MISCONDUCT,
        label="Other misconduct by mission personnel",
        description=(
            "Any other serious misconduct by mission personnel (abuse of force, theft, "
            "fraud, harassment). Always strictly confidential; goes to conduct and "
            "discipline only."
        ),
        severity_weight=4.0,
        sensitivity=_CONFIDENTIAL,
    ),
)

_BY_CODE: dict[str, Category] = {category.code: category for category in TAXONOMY}


def get_category(code: str) -> Category:
    """Look a category up by its stable code.

    Raises
    ------
    UnknownCategoryError
        If no category has that code; the message names the code and where the list is, since
        the caller is usually a client that must show the user something actionable.
    """
    try:
        return _BY_CODE[code]
    except (KeyError, TypeError):
        raise UnknownCategoryError(str(code)) from None


def categories_in_family(family: Family | str) -> tuple[Category, ...]:
    """All categories of one family, in taxonomy order (the fusion candidates for a report).

    Raises
    ------
    ValueError
        If ``family`` is not a family code.
    """
    family = Family(family)
    return tuple(category for category in TAXONOMY if category.family is family)


# --- crosswalks used by the importers ----------------------------------------------------------

_UCDP_TYPES = {1: "state-based", 2: "non-state", 3: "one-sided"}


def category_for_ucdp(type_of_violence: int, deaths_civilians: int | None, best: int | None) -> str:
    """Resolve a UCDP GED event to a Vigil category code.

    UCDP codes only lethal organised violence, by who fought whom, so the mapping is coarse:

    - type 3 (one-sided violence, an organised actor against civilians) becomes
      ``killing_of_civilians`` when the event has deaths, ``attack_on_civilians`` otherwise.
      In one-sided violence every victim is a civilian by definition, so deaths counted only in
      ``best`` (``deaths_unknown``) count as civilian deaths too;
    - types 1 (state-based) and 2 (non-state) become ``armed_clash``: they are fighting between
      armed actors, context for the threat picture rather than protection incidents.

    Raises
    ------
    UnknownCategoryError
        For any other ``type_of_violence``: guessing would put the event in the wrong family.

    Examples
    --------
    >>> category_for_ucdp(3, 0, 6)
    'killing_of_civilians'
    >>> category_for_ucdp(3, 0, 0)
    'attack_on_civilians'
    >>> category_for_ucdp(2, 0, 12)
    'armed_clash'
    """
    if isinstance(type_of_violence, bool) or type_of_violence not in _UCDP_TYPES:
        raise UnknownCategoryError(
            f"ucdp:type_of_violence={type_of_violence!r}",
            f"UCDP type_of_violence {type_of_violence!r} has no Vigil category (UCDP uses "
            "1 state-based, 2 non-state, 3 one-sided)",
        )
    if type_of_violence == 3:
        deaths = max(deaths_civilians or 0, best or 0)
        return "killing_of_civilians" if deaths > 0 else "attack_on_civilians"
    return "armed_clash"


def _key(text: str) -> str:
    # ACLED's own material spells "protesters" both ways; exports from spreadsheets vary in case.
    return " ".join(text.split()).casefold().replace("protestors", "protesters")


_ACLED_BY_KEY: dict[tuple[str, str], AcledType] = {
    (_key(pair.event_type), _key(pair.sub_event_type)): pair for pair in ACLED_EVENT_TYPES
}


def find_acled_type(event_type: str, sub_event_type: str) -> AcledType | None:
    """Return ACLED's canonical pair for these strings, or ``None`` if ACLED has no such pair.

    Matching ignores case and repeated spaces so that hand-edited exports still resolve, while
    a pre-2019 or misspelt type is recognised as not ACLED's and can be reported as an error
    rather than silently skipped.
    """
    return _ACLED_BY_KEY.get((_key(event_type), _key(sub_event_type)))


_ACLED_FIXED: dict[AcledType, str | None] = {
    VAC_SEXUAL_VIOLENCE: "sexual_violence",
    VAC_ABDUCTION: "abduction",
    **dict.fromkeys(_BATTLE_TYPES, "armed_clash"),
    **dict.fromkeys(_UNREST_TYPES, "civil_unrest"),
    LOOTING: "property_destruction_looting",
    **dict.fromkeys(_MOVEMENT_TYPES, "armed_group_movement"),
    AGREEMENT: None,
    ARRESTS: None,
    DISRUPTED_WEAPONS_USE: None,
    STRATEGIC_OTHER: None,
}


def category_for_acled(
    event_type: str, sub_event_type: str, fatalities: int | None, civilian_targeting: bool
) -> str | None:
    """Resolve an ACLED event to a Vigil category code, or ``None`` if Vigil does not import it.

    ACLED types mix violence with political developments, so only the pairs that describe a
    protection threat or its context are mapped:

    ===========================================  =====================================
    ACLED event type / sub-event type            Vigil category
    ===========================================  =====================================
    Violence against civilians / Attack          ``killing_of_civilians`` if fatalities
                                                 > 0, else ``attack_on_civilians``
    Violence against civilians / Sexual violence ``sexual_violence``
    Violence against civilians / Abduction/...   ``abduction``
    Battles / any                                ``armed_clash``
    Explosions/Remote violence / any             as VAC / Attack when the event is
                                                 marked civilian targeting, else
                                                 ``armed_clash``
    Riots / any, Protests / any                  ``civil_unrest``
    Strategic developments / Looting/property    ``property_destruction_looting``
    destruction
    Strategic developments / Headquarters or     ``armed_group_movement``
    base established, Non-violent transfer of
    territory, Change to group/activity
    Strategic developments / Agreement, Arrests, ``None`` (not a protection incident)
    Disrupted weapons use, Other
    any pair that is not ACLED's                 ``None``
    ===========================================  =====================================

    ``civilian_targeting`` is ACLED's flag for events where civilians were the main target;
    only it separates a strike on a market from one on a frontline. ACLED does not record the
    victims' age or whether a site was a camp, so the child and protected-site categories are
    never produced here; analysts re-code imported events when they know more.

    Examples
    --------
    >>> category_for_acled("Violence against civilians", "Attack", 3, True)
    'killing_of_civilians'
    >>> category_for_acled("Explosions/Remote violence", "Air/drone strike", 5, False)
    'armed_clash'
    >>> category_for_acled("Strategic developments", "Arrests", 0, False) is None
    True
    """
    pair = find_acled_type(event_type, sub_event_type)
    if pair is None:
        return None
    if pair == VAC_ATTACK or (pair in _EXPLOSION_TYPES and civilian_targeting):
        return "killing_of_civilians" if (fatalities or 0) > 0 else "attack_on_civilians"
    if pair in _EXPLOSION_TYPES:
        return "armed_clash"
    return _ACLED_FIXED[pair]
