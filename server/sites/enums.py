"""Kinds of protected sites."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SiteKind"]


class SiteKind(StrEnum):
    IDP_CAMP = "idp_camp"
    REFUGEE_SITE = "refugee_site"
    POC_SITE = "poc_site"
    MARKET = "market"
    WATER_POINT = "water_point"
