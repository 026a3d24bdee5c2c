"""The taxonomy as the API serves it."""

from __future__ import annotations

from pydantic import BaseModel

from server.taxonomy.codes import Sensitivity


class AcledTypeRead(BaseModel):
    event_type: str
    sub_event_type: str


class CategoryRead(BaseModel):
    code: str
    family: str
    label: str
    description: str
    severity_weight: float
    sensitivity: Sensitivity
    precursor: bool
    acled: list[AcledTypeRead]
    ucdp_type_of_violence: list[int]
    mrm_grave_violation: str | None
    mara: str | None


class TaxonomyRead(BaseModel):
    version: str
    families: list[str]
    categories: list[CategoryRead]
