"""Randomized exponential backoff with full jitter, and ``Retry-After`` parsing.

Full jitter (a uniform draw between 0 and the capped exponential) spreads a mission's phones out
after an outage instead of having them all retry on the same beat; tus and the AWS architecture
blog recommend it. A server's ``Retry-After`` wins over the draw: it knows its own load.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date
    (RFC 9110 §10.2.3). ``None`` when absent or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass
class Backoff:
    """Delays for successive failures: ``uniform(0, min(cap, base·2ⁿ))`` for the n-th."""

    base_s: float = 1.0
    cap_s: float = 60.0
    # Jitter only spreads retries out; it guards no secret.
    random: Callable[[], float] = field(default_factory=lambda: _random.Random().random)  # noqa: S311
    failures: int = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0**self.failures)
        self.failures += 1
        jittered = ceiling * self.random()
        if retry_after_s is not None:
            return max(retry_after_s, jittered)
        return jittered

    def reset(self) -> None:
        self.failures = 0
