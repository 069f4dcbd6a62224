"""The forecast of one KR as the scorecard carries it (see :mod:`okr_sync.scoring.forecast`).

Apart from the simulation so that the scorecard codec can hold it without importing the
scoring rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from okr_sync.scoring.display import percent, percent_points

Model = Literal["done_and_scope", "value"]


def _r(value: float) -> float:
    return round(value, 4)


@dataclass(frozen=True)
class Forecast:
    """A KR's forecast: where it is likely to land at cycle end, and how sure."""

    expected_score: float
    p_top_band: float
    p10: float
    p90: float
    runs: int
    history_days: int
    remaining_days: int
    model: Model
    #: Mean daily delta of the value (``value`` model) or of done and of scope.
    mean_daily: float
    mean_daily_scope: float | None
    #: The score each run's horizon score was compared with (top band min, times the
    #: milestone's score for phased KRs) and the day that horizon ends.
    threshold: float
    horizon: date
    seed: int

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "expected_score": _r(self.expected_score),
            "p_top_band": _r(self.p_top_band),
            "p10": _r(self.p10), "p90": _r(self.p90),
            "runs": self.runs, "history_days": self.history_days,
            "remaining_days": self.remaining_days, "model": self.model,
            "mean_daily": _r(self.mean_daily), "threshold": _r(self.threshold),
            "horizon": self.horizon.isoformat(), "seed": self.seed,
        }
        if self.mean_daily_scope is not None:
            doc["mean_daily_scope"] = _r(self.mean_daily_scope)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Forecast:
        scope = doc.get("mean_daily_scope")
        return cls(
            float(doc["expected_score"]), float(doc["p_top_band"]), float(doc["p10"]),
            float(doc["p90"]), int(doc["runs"]), int(doc["history_days"]),
            int(doc["remaining_days"]), doc["model"], float(doc["mean_daily"]),
            None if scope is None else float(scope), float(doc["threshold"]),
            date.fromisoformat(doc["horizon"]), int(doc["seed"]))


#: The en dash of "p10-p90 62-95%" as people read it.
EN_DASH = "\u2013"


def forecast_text(forecast: Forecast) -> str:
    """What people read: "likely to land at 80% (p10-p90 62-95%)", with en dashes, every
    number rounded as :func:`~okr_sync.scoring.display.percent` rounds."""
    return (f"likely to land at {percent(forecast.expected_score)} "
            f"(p10{EN_DASH}p90 {percent_points(forecast.p10)}{EN_DASH}"
            f"{percent(forecast.p90)})")
