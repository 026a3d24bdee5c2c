"""What an alert says: title, summary and the coverage picture, from labels and counts only.

Nothing here ever sees a narrative, a name or an exact point: the facts that reach the core
carry none (SECURITY.md rule 6). A sensitive alert (SGBV, children, informants, misconduct) says
category, cell and count, and points to the logged need-to-know view for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alerts.rules import RuleKind

__all__ = ["CoveragePicture", "alert_summary", "alert_title", "coverage_sentence", "humanise"]


def humanise(code: str) -> str:
    """``attack_on_protected_site`` → ``attack on protected site``."""
    return code.replace("_", " ").replace("-", " ")


def _hours(hours: float) -> str:
    if hours < 1:
        return "under an hour"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


@dataclass(frozen=True)
class CoveragePicture:
    """The coverage facts an alert states: last presence in the cell and its ring, the
    responsible unit's nearest asset, the gaps nearby."""

    hours_uncovered: float | None
    ring_hours_uncovered: float | None
    nearest_kind: str | None = None  # "base" | "patrol"
    nearest_name: str | None = None
    nearest_km: float | None = None
    gaps_nearby: int = 0
    worst_gap_hours: float | None = None


def coverage_sentence(picture: CoveragePicture | None) -> str:
    """One sentence a commander reads next to the threat.

    >>> import textwrap
    >>> picture = CoveragePicture(52.0, 30.0, "base", "COB Bambari", 12.4, 2, 80.0)
    >>> print(textwrap.fill(coverage_sentence(picture), 80))
    Last patrol presence in this cell 2 days ago, around it 30 h ago. Nearest: base
    COB Bambari, 12.4 km. 2 coverage gaps nearby (worst 3 days uncovered).
    >>> print(textwrap.fill(coverage_sentence(CoveragePicture(None, None)), 80))
    No patrol presence on record in this cell or around it. No base or underway
    patrol of the responsible unit on record.
    """
    if picture is None:
        return "Coverage picture unavailable."
    parts: list[str] = []
    if picture.hours_uncovered is None and picture.ring_hours_uncovered is None:
        parts.append("No patrol presence on record in this cell or around it.")
    else:
        own = (
            "none on record in this cell"
            if picture.hours_uncovered is None
            else f"in this cell {_hours(picture.hours_uncovered)} ago"
        )
        ring = (
            "none around it"
            if picture.ring_hours_uncovered is None
            else f"around it {_hours(picture.ring_hours_uncovered)} ago"
        )
        parts.append(f"Last patrol presence {own}, {ring}.")
    if picture.nearest_name is not None and picture.nearest_km is not None:
        parts.append(
            f"Nearest: {picture.nearest_kind or 'asset'} {picture.nearest_name}, "
            f"{picture.nearest_km:.1f} km."
        )
    else:
        parts.append("No base or underway patrol of the responsible unit on record.")
    if picture.gaps_nearby:
        worst = (
            f" (worst {_hours(picture.worst_gap_hours)} uncovered)"
            if picture.worst_gap_hours is not None
            else ""
        )
        noun = "gap" if picture.gaps_nearby == 1 else "gaps"
        parts.append(f"{picture.gaps_nearby} coverage {noun} nearby{worst}.")
    return " ".join(parts)


def alert_title(kind: RuleKind, rule_name: str, category: str | None, place: str) -> str:
    """Short, scannable on a phone's lock screen: what, where."""
    what = humanise(category) if kind is RuleKind.FLASH and category else rule_name
    return f"{what[:1].upper()}{what[1:]} — {place}"


def alert_summary(
    *,
    kind: RuleKind,
    category: str | None,
    count: int,
    killed: int,
    abducted: int,
    sensitive: bool,
    place: str,
    first_at: datetime,
    last_at: datetime,
) -> str:
    """The body line. Sensitive alerts: category, cell and count, nothing else."""
    day = first_at.strftime("%d %b %Y %H:%M UTC")
    noun = "report" if count == 1 else "reports"
    if sensitive:
        day = first_at.strftime("%d %b %Y")
        return (
            f"{count} {noun} of {humanise(category or 'a sensitive category')} in {place} "
            f"since {day}. Details only in the need-to-know view."
        )
    if kind is RuleKind.FLASH:
        extra = []
        if killed:
            extra.append(f"{killed} killed")
        if abducted:
            extra.append(f"{abducted} abducted")
        tally = f" ({', '.join(extra)})" if extra else ""
        what = humanise(category or "an incident")
        return f"{count} {noun} of {what}{tally} in {place} since {day}."
    as_of = f"(as of {last_at:%d %b %H:%M} UTC)"
    if kind is RuleKind.GAP:
        return f"No patrol presence in {place} for longer than allowed {as_of}."
    return f"{humanise(kind.value).capitalize()} signal in {place} {as_of}."
