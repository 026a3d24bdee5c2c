"""Structured (JSON) logs that never carry narratives, tokens or request bodies.

Only the fields named in ``_SAFE_FIELDS`` pass from a record's ``extra`` into the output, so a
careless ``log.info(..., extra={"report": report})`` cannot leak a narrative.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging"]

_SAFE_FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "user_id",
    "exc_type",
    "frames",
    "job",
    "rows",
    "dataset",
    "imported",
    "skipped",
    "errors",
    "unit_id",
    "count",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name in _SAFE_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("vigil")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # uvicorn's own access log repeats raw paths and query strings; ours is structured.
    logging.getLogger("uvicorn.access").disabled = True
