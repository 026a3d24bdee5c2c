"""Opaque keyset cursors: ``(sort time, id)`` of the last item, base64url-encoded.

Keyset pagination stays correct while rows are being added (no skipped or repeated items as
with offsets) and costs one index range scan per page.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from server.errors import ValidationFailedError

__all__ = ["Cursor", "decode_cursor", "encode_cursor", "newest_first_page"]


@dataclass(frozen=True)
class Cursor:
    sort_at: datetime
    id: uuid.UUID


def encode_cursor(sort_at: datetime, item_id: uuid.UUID) -> str:
    raw = json.dumps([sort_at.isoformat(), str(item_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        padded = text + "=" * (-len(text) % 4)
        sort_at_text, id_text = json.loads(base64.urlsafe_b64decode(padded.encode()))
        sort_at = datetime.fromisoformat(sort_at_text)
        if sort_at.tzinfo is None:
            raise ValueError("naive")
        return Cursor(sort_at, uuid.UUID(id_text))
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationFailedError.on(
            "query:cursor", "is not a cursor this server issued; start again without it"
        ) from exc


def newest_first_page(
    session: Session, statement: Select[Any], model: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    """One page of ``statement`` ordered by ``(list_sort_at, id)`` descending, and the cursor
    of the next page (None on the last). ``model`` must have those two columns."""
    if cursor:
        position = decode_cursor(cursor)
        statement = statement.where(
            or_(
                model.list_sort_at < position.sort_at,
                and_(model.list_sort_at == position.sort_at, model.id < position.id),
            )
        )
    statement = statement.order_by(model.list_sort_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list(session.scalars(statement))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].list_sort_at, rows[-1].id)
