"""How an incident's fields follow from its reports (pure: reports in, field values out).

- location, precision and cells: from the most precisely located report;
- category: the most severe among the reports (a killing reported as an attack is a killing);
- occurred-at: the earliest report's time and precision;
- sensitivity: the strictest tier of any report (one SGBV report makes the incident sensitive);
- killed: the largest best estimate, never the sum (sources count the same victims);
- verification: verified if any report is; discredited only if all are;
- consent to aggregate reporting: only if every sensitive report has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from geo import STORED_RESOLUTIONS, finest_supported_resolution
from server.reports.derived import day_start, list_sort_at
from server.reports.enums import VerificationState
from server.reports.models import Report
from server.taxonomy.codes import Sensitivity, get_category, most_restrictive

__all__ = ["derive"]


def _precision_rank(report: Report) -> tuple[int, float, str]:
    finest = finest_supported_resolution(report.location_precision, report.location_accuracy_m)
    accuracy = report.location_accuracy_m if report.location_accuracy_m is not None else 1e12
    return (-(finest if finest is not None else -1), accuracy, str(report.id))


#: Reports that no longer stand: discredited by an analyst or withdrawn by their author.
_SET_ASIDE = frozenset({VerificationState.DISCREDITED, VerificationState.WITHDRAWN})


def _verification(states: Sequence[VerificationState]) -> VerificationState:
    if VerificationState.VERIFIED in states:
        return VerificationState.VERIFIED
    if all(s in _SET_ASIDE for s in states):
        return (
            VerificationState.WITHDRAWN
            if all(s is VerificationState.WITHDRAWN for s in states)
            else VerificationState.DISCREDITED
        )
    if VerificationState.UNDER_VERIFICATION in states:
        return VerificationState.UNDER_VERIFICATION
    return VerificationState.REPORTED


def _standing(report: Report) -> VerificationState:
    # A report HQ removed from the field counts no more than a discredited one.
    return VerificationState.DISCREDITED if report.deleted_at else report.verification_state


def derive(reports: Sequence[Report]) -> dict[str, Any]:
    """Field values of the incident made of ``reports`` (at least one)."""
    if not reports:
        raise ValueError("an incident has at least one report")
    if len(reports) == 1:  # every new report's own incident (a push makes a hundred at once)
        located = earliest = severest = reports[0]
    else:
        located = min(reports, key=_precision_rank)
        earliest = min(reports, key=lambda r: (r.occurred_at, str(r.id)))
        severest = max(
            reports,
            key=lambda r: (get_category(r.category).severity_weight, -r.occurred_at.timestamp()),
        )
    category = get_category(severest.category)
    sensitivity = most_restrictive(*(r.sensitivity for r in reports))
    killed = [r.killed_best for r in reports if r.killed_best is not None]
    values: dict[str, Any] = {
        "category": category.code,
        "family": category.family.value,
        "severity_weight": category.severity_weight,
        "sensitivity": sensitivity,
        "verification_state": _verification([_standing(r) for r in reports]),
        "occurred_at": earliest.occurred_at,
        "time_precision": earliest.time_precision,
        "occurred_day_start": day_start(earliest.occurred_at),
        "list_sort_at": list_sort_at(earliest.occurred_at, sensitivity),
        "location": located.location,
        "longitude": located.longitude,
        "latitude": located.latitude,
        "location_precision": located.location_precision,
        "location_accuracy_m": located.location_accuracy_m,
        "coarse_longitude": located.coarse_longitude,
        "coarse_latitude": located.coarse_latitude,
        "aor_unit_id": located.aor_unit_id,
        "killed_best": max(killed) if killed else None,
        "report_count": len(reports),
        "consent_aggregate_reporting": all(
            r.consent_aggregate_reporting
            for r in reports
            if most_restrictive(r.sensitivity) is not Sensitivity.NORMAL
        ),
    }
    for resolution in STORED_RESOLUTIONS:
        values[f"h3_res{resolution}"] = located.cell_at(resolution)
    return values
