"""The scoring rules of DESIGN.md A3 as small pure functions.

Everything here works on unrounded floats; rounding for display happens only
when a scorecard is turned into JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from okr_sync.config.plan import Band
from okr_sync.scoring.scorecard import CONFIDENCE_ORDER, Confidence, KpiStatus

#: Below this elapsed fraction of the cycle every KR is on track: too early to tell.
EARLY_CYCLE_FRACTION = 0.1


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def kr_score(value: float, baseline: float, target: float, direction: str | None = None) -> float:
    """Score in [0, 1] of a KR's value.

    ``direction`` ``at_least``/``at_most`` is a threshold (1 or 0); otherwise the
    score is linear from baseline to target, increasing when ``target > baseline``
    and decreasing when ``target < baseline``.
    """
    if direction == "at_least":
        return 1.0 if value >= target else 0.0
    if direction == "at_most":
        return 1.0 if value <= target else 0.0
    if target == baseline:
        raise ValueError("baseline equals target")
    if target > baseline:
        return clamp((value - baseline) / (target - baseline))
    return clamp((baseline - value) / (baseline - target))


def weighted_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Weighted mean of ``(score, weight)`` pairs; weight-0 pairs are left out.

    ``None`` when no pair has a positive weight.
    """
    total = 0.0
    weights = 0.0
    for score, weight in pairs:
        if weight > 0:
            total += score * weight
            weights += weight
    if weights == 0:
        return None
    return total / weights


def band_for(score: float, bands: Sequence[Band]) -> str:
    """The last band (in ascending ``min`` order) whose ``min <= score``."""
    chosen = None
    for band in sorted(bands, key=lambda b: b.min):
        if band.min <= score:
            chosen = band.name
    if chosen is None:
        raise ValueError(f"no band covers score {score}")
    return chosen


def cycle_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The cycle runs from ``start`` 00:00 to ``end`` + 1 day 00:00, in the cycle's zone."""
    begin = datetime.combine(start, time.min, tzinfo=zone)
    finish = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
    return begin, finish


def elapsed_fraction(start: date, end: date, zone: ZoneInfo, as_of: datetime) -> float:
    """Fraction of the cycle elapsed at ``as_of``, in absolute time, clamped to [0, 1].

    Differences are taken in UTC: Python subtracts two datetimes sharing a tzinfo
    as wall-clock times, which would be off by an hour across a DST change.
    """
    begin, finish = cycle_bounds(start, end, zone)
    total = (finish.astimezone(UTC) - begin.astimezone(UTC)).total_seconds()
    done = (as_of.astimezone(UTC) - begin.astimezone(UTC)).total_seconds()
    return clamp(done / total)


ConfidenceRule = Literal["checkin", "score_reached", "early", "projected"]


@dataclass(frozen=True)
class ConfidenceTrace:
    """How :func:`kr_confidence` decided: the rule that applied and its numbers."""

    confidence: Confidence
    rule: ConfidenceRule
    #: ``min(1, score / elapsed)``, for the ``projected`` rule only.
    projected: float | None = None
    #: The minimum of the top band and of the band below it (``projected`` compares with them).
    on_track_min: float | None = None
    at_risk_min: float | None = None


def confidence_trace(
    score: float,
    elapsed: float,
    bands: Sequence[Band],
    checkin: Confidence | None = None,
) -> ConfidenceTrace:
    """A KR's confidence at an elapsed fraction ``elapsed`` of the cycle (A3), with why."""
    if checkin is not None:
        return ConfidenceTrace(checkin, "checkin")
    if score >= 1:
        return ConfidenceTrace("on_track", "score_reached")
    if elapsed <= EARLY_CYCLE_FRACTION:
        return ConfidenceTrace("on_track", "early")
    projected = min(1.0, score / elapsed)
    mins = sorted(band.min for band in bands)
    top = mins[-1]
    below = mins[-2] if len(mins) >= 2 else None
    if projected >= top:
        chosen: Confidence = "on_track"
    elif below is not None and projected >= below:
        chosen = "at_risk"
    else:
        chosen = "off_track"
    return ConfidenceTrace(chosen, "projected", projected, top, below)


def kr_confidence(
    score: float,
    elapsed: float,
    bands: Sequence[Band],
    checkin: Confidence | None = None,
) -> Confidence:
    """A KR's confidence at an elapsed fraction ``elapsed`` of the cycle (A3)."""
    return confidence_trace(score, elapsed, bands, checkin).confidence


def worst_confidence(values: Iterable[Confidence]) -> Confidence:
    """The worst confidence: ``blocked`` < ``off_track`` < ``at_risk`` < ``on_track``."""
    ranked = [CONFIDENCE_ORDER.index(value) for value in values]
    if not ranked:
        raise ValueError("no confidences to combine")
    return CONFIDENCE_ORDER[min(ranked)]


def kpi_status(
    value: float | None, green: float, yellow: float, direction: str
) -> KpiStatus | None:
    """Traffic light of a KPI: ``increase`` means higher is better, ``decrease`` mirrors it."""
    if value is None:
        return None
    if direction == "decrease":
        if value <= green:
            return "green"
        if value <= yellow:
            return "yellow"
        return "red"
    if value >= green:
        return "green"
    if value >= yellow:
        return "yellow"
    return "red"


def is_too_easy(past_cycle_scores: Sequence[float]) -> bool:
    """True when a KR scored exactly 1.0 in each of the last two cycles.

    ``past_cycle_scores`` are the final scores of earlier cycles, oldest first.
    """
    return len(past_cycle_scores) >= 2 and all(s == 1.0 for s in past_cycle_scores[-2:])
