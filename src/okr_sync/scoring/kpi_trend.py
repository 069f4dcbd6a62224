"""A KPI's trend (issue 13 item 5): up, down or flat against its previous measurement and
against its value a week earlier, from the KPI history the store keeps per pass (pure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Direction = Literal["up", "down", "flat"]
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class TrendPoint:
    """The value compared with, when it was measured, and the move since."""

    value: float
    at: datetime
    delta: float

    @property
    def direction(self) -> Direction:
        return "up" if self.delta > 0 else "down" if self.delta < 0 else "flat"

    def to_json(self) -> dict[str, Any]:
        return {"value": round(self.value, 4), "at": self.at.isoformat(),
                "delta": round(self.delta, 4), "direction": self.direction}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TrendPoint:
        return cls(float(doc["value"]), datetime.fromisoformat(doc["at"]), float(doc["delta"]))


@dataclass(frozen=True)
class KpiTrend:
    #: The KPI's last stored measurement before this one.
    previous: TrendPoint | None
    #: Its last stored measurement at least a week before this one (None: too young).
    week_ago: TrendPoint | None

    def to_json(self) -> dict[str, Any]:
        return {"previous": self.previous.to_json() if self.previous else None,
                "week_ago": self.week_ago.to_json() if self.week_ago else None}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> KpiTrend:
        previous, week = doc.get("previous"), doc.get("week_ago")
        return cls(TrendPoint.from_json(previous) if previous else None,
                   TrendPoint.from_json(week) if week else None)


def kpi_trend(value: float | None, now: datetime,
              history: Sequence[tuple[datetime, float | None]]) -> KpiTrend | None:
    """The trend of a KPI valued ``value`` at ``now`` against its stored ``history``
    (measurement time, value; measurements at or after ``now`` and unmeasured ones are
    left out). None without a value or without an earlier measurement."""
    if value is None:
        return None
    moment = now.astimezone(UTC)
    earlier = sorted(((at.astimezone(UTC), v) for at, v in history
                      if v is not None and at.astimezone(UTC) < moment), key=lambda p: p[0])
    if not earlier:
        return None
    at, before = earlier[-1]
    previous = TrendPoint(before, at, value - before)
    old = [(at, v) for at, v in earlier if at <= moment - WEEK]
    week_ago = TrendPoint(old[-1][1], old[-1][0], value - old[-1][1]) if old else None
    return KpiTrend(previous, week_ago)


ARROWS: dict[Direction, str] = {"up": "▲", "down": "▼", "flat": "▶"}


def trend_text(trend: KpiTrend | None, number: Any = None) -> str | None:
    """``▲ +2 since the last pass, ▲ +5 in a week`` (``number`` formats a delta)."""
    if trend is None:
        return None
    show = number or (lambda d: f"{d:g}")
    parts = []
    for point, when in ((trend.previous, "since last measured"), (trend.week_ago, "in a week")):
        if point is not None:
            sign = "+" if point.delta > 0 else ""
            parts.append(f"{ARROWS[point.direction]} {sign}{show(point.delta)} {when}")
    return ", ".join(parts) or None
