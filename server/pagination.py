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

from server.errors import ValidationFailedError

__all__ = ["Cursor", "decode_cursor", "encode_cursor"]


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
