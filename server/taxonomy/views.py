"""GET /api/v1/taxonomy: the category codes a client may send, with their crosswalks."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import CurrentUser
from server.taxonomy.codes import TAXONOMY, TAXONOMY_VERSION, Family
from server.taxonomy.schemas import AcledTypeRead, CategoryRead, TaxonomyRead

router = APIRouter(prefix="/taxonomy", tags=["taxonomy"])


@router.get("", response_model=TaxonomyRead, summary="Incident categories and crosswalks")
def get_taxonomy(_user: CurrentUser) -> TaxonomyRead:
    return TaxonomyRead(
        version=TAXONOMY_VERSION,
        families=[f.value for f in Family],
        categories=[
            CategoryRead(
                code=c.code,
                family=c.family.value,
                label=c.label,
                description=c.description,
                severity_weight=c.severity_weight,
                sensitivity=c.sensitivity,
                precursor=c.precursor,
                acled=[
                    AcledTypeRead(event_type=a.event_type, sub_event_type=a.sub_event_type)
                    for a in c.acled
                ],
                ucdp_type_of_violence=list(c.ucdp_type_of_violence),
                mrm_grave_violation=c.mrm_grave_violation,
                mara=c.mara,
            )
            for c in TAXONOMY
        ],
    )
