"""Checks of taxonomy codes that arrive as query filters."""

from __future__ import annotations

from collections.abc import Sequence

from server.errors import ValidationFailedError
from server.taxonomy.codes import Family, UnknownCategoryError, get_category

__all__ = ["check_filter_codes"]


def check_filter_codes(categories: Sequence[str], families: Sequence[str]) -> None:
    """422 naming the first unknown category or family code."""
    for code in categories:
        try:
            get_category(code)
        except UnknownCategoryError as exc:
            raise ValidationFailedError.on("query:category", str(exc)) from None
    known = {f.value for f in Family}
    for family in families:
        if family not in known:
            raise ValidationFailedError.on(
                "query:family", f"unknown family {family!r}; see GET /api/v1/taxonomy"
            )
