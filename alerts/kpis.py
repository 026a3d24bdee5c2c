"""Time to act: how long from a threat to the first delivery, the acknowledgement, the end.

The KPI the mission is judged on is not how many alerts it raised but how fast someone who had
to act knew and said so. Medians and 90th percentiles per unit and severity, with the alerts
still waiting counted separately (a slow acknowledgement not yet given must not vanish from a
median of those that were).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

__all__ = ["AlertTimes", "TimeToAct", "time_to_act"]


@dataclass(frozen=True)
class AlertTimes:
    unit: str
    severity: str
    created_at: datetime
    first_delivery_at: datetime | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class TimeToAct:
    unit: str
    severity: str
    alerts: int
    delivered: int
    acknowledged: int
    resolved: int
    waiting_ack: int
    delivery_p50_s: float | None
    delivery_p90_s: float | None
    ack_p50_s: float | None
    ack_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    oldest_waiting_ack_s: float | None


def _quantiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    p50, p90 = np.quantile(np.asarray(values, dtype=float), [0.5, 0.9])
    return round(float(p50), 3), round(float(p90), 3)


def time_to_act(rows: Iterable[AlertTimes], *, now: datetime) -> list[TimeToAct]:
    """KPIs per (unit, severity), sorted by unit then severity.

    >>> from datetime import timezone, timedelta
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> [k.ack_p50_s for k in time_to_act([AlertTimes("coy", "red", t, t, t + timedelta(minutes=4),
    ...     None)], now=t + timedelta(hours=1))]
    [240.0]
    """
    buckets: dict[tuple[str, str], list[AlertTimes]] = {}
    for row in rows:
        buckets.setdefault((row.unit, row.severity), []).append(row)
    out = []
    for (unit, severity), items in sorted(buckets.items()):

        def spans(attr: str, items: list[AlertTimes] = items) -> list[float]:
            return [
                (getattr(r, attr) - r.created_at).total_seconds()
                for r in items
                if getattr(r, attr) is not None
            ]

        waiting = [r for r in items if r.acknowledged_at is None and r.resolved_at is None]
        d50, d90 = _quantiles(spans("first_delivery_at"))
        a50, a90 = _quantiles(spans("acknowledged_at"))
        r50, r90 = _quantiles(spans("resolved_at"))
        oldest = max(((now - r.created_at).total_seconds() for r in waiting), default=None)
        out.append(
            TimeToAct(
                unit=unit,
                severity=severity,
                alerts=len(items),
                delivered=sum(r.first_delivery_at is not None for r in items),
                acknowledged=sum(r.acknowledged_at is not None for r in items),
                resolved=sum(r.resolved_at is not None for r in items),
                waiting_ack=len(waiting),
                delivery_p50_s=d50,
                delivery_p90_s=d90,
                ack_p50_s=a50,
                ack_p90_s=a90,
                resolve_p50_s=r50,
                resolve_p90_s=r90,
                oldest_waiting_ack_s=oldest,
            )
        )
    return out
