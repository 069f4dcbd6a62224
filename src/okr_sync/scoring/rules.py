"""The scoring rules of DESIGN.md A3 as small pure functions.

Everything here works on unrounded floats; rounding for display happens only
when a scorecard is turned into JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

from okr_sync.config.plan import Band, Cycle, KeyResult
from okr_sync.scoring.scorecard import CONFIDENCE_ORDER, Confidence, KpiStatus

#: Below this elapsed fraction of the cycle every KR is on track: too early to tell.
EARLY_CYCLE_FRACTION = 0.1


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def kr_score(
    value: float,
    baseline: float,
    target: float,
    direction: str | None = None,
    cap: float = 1.0,
) -> float:
    """Score in [0, ``cap``] of a KR's value.

    ``direction`` ``at_least``/``at_most`` is a threshold (1 or 0); otherwise the
    score is linear from baseline to target, increasing when ``target > baseline``
    and decreasing when ``target < baseline``, clamped to [0, ``cap``] (``score_cap``:
    1 unless the KR allows over-achievement).
    """
    if direction == "at_least":
        return 1.0 if value >= target else 0.0
    if direction == "at_most":
        return 1.0 if value <= target else 0.0
    if target == baseline:
        raise ValueError("baseline equals target")
    if target > baseline:
        return clamp((value - baseline) / (target - baseline), 0.0, cap)
    return clamp((baseline - value) / (baseline - target), 0.0, cap)


def range_distance(value: float, low: float, high: float) -> float:
    """How far ``value`` lies outside [low, high] (0 inside)."""
    if value < low:
        return low - value
    if value > high:
        return value - high
    return 0.0


def range_score(value: float, low: float, high: float, tolerance: float | None = None) -> float:
    """``direction: range``: 1 inside [low, high]; outside, 0, or with a tolerance ``T``
    ``max(0, 1 - d / T)`` where ``d`` is the distance to the nearer edge."""
    distance = range_distance(value, low, high)
    if distance == 0:
        return 1.0
    if tolerance is None:
        return 0.0
    return clamp(1.0 - distance / tolerance)


def score_key_result(kr: KeyResult, value: float) -> float:
    """A KR's score for ``value`` by its type: range, threshold or linear (with its cap)."""
    span = kr.range_target
    if span is not None:
        return range_score(value, span.min, span.max, kr.tolerance)
    target = kr.effective_target
    assert target is not None  # plan validation: every non-range KR has a target
    return kr_score(value, kr.effective_baseline, target, kr.direction, kr.score_cap)


def objective_share(score: float, capped: bool) -> float:
    """What a contributor's score counts in its objective's mean: at most 1 when
    ``scoring.cap_objectives`` holds (over-achievement shows on the KR only)."""
    return min(score, 1.0) if capped else score


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


def milestone_path(kr: KeyResult, cycle: Cycle) -> list[tuple[datetime, float]]:
    """The expected value's corners: (cycle start, baseline), each milestone at the end of
    its date, and (cycle end, target) unless the last milestone is already there."""
    target = kr.effective_target
    assert target is not None and kr.milestones  # only linear KRs with milestones
    begin, finish = cycle_bounds(cycle.start, cycle.end, cycle.zone)
    path = [(begin, kr.effective_baseline)]
    for milestone in kr.milestones:
        due = datetime.combine(milestone.date + timedelta(days=1), time.min, tzinfo=cycle.zone)
        path.append((due, milestone.target))
    if path[-1][0] < finish:
        path.append((finish, target))
    return path


def expected_value(path: Sequence[tuple[datetime, float]], as_of: datetime) -> float:
    """The value expected at ``as_of``: linear between the corners around it, in absolute
    time (UTC, as :func:`elapsed_fraction`); before the first corner its value, after
    the last its value."""
    moment = as_of.astimezone(UTC)
    if moment <= path[0][0].astimezone(UTC):
        return path[0][1]
    for (t0, v0), (t1, v1) in pairwise(path):
        start, stop = t0.astimezone(UTC), t1.astimezone(UTC)
        if moment <= stop:
            return v0 + (v1 - v0) * (moment - start).total_seconds() / (
                stop - start).total_seconds()
    return path[-1][1]


def expected_score(kr: KeyResult, cycle: Cycle, as_of: datetime) -> tuple[float, float] | None:
    """For a KR with milestones, (expected value, its score, at most 1) at ``as_of``:
    pace compares with it instead of the elapsed fraction. None without milestones."""
    if not kr.milestones:
        return None
    value = expected_value(milestone_path(kr, cycle), as_of)
    target = kr.effective_target
    assert target is not None
    return value, kr_score(value, kr.effective_baseline, target)


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
    #: The expected score (milestones) the score was divided by instead of the elapsed fraction.
    expected: float | None = None


def confidence_trace(
    score: float,
    elapsed: float,
    bands: Sequence[Band],
    checkin: Confidence | None = None,
    expected: float | None = None,
) -> ConfidenceTrace:
    """A KR's confidence at an elapsed fraction ``elapsed`` of the cycle (A3), with why.

    ``expected``: the score expected by now from the KR's milestones; pace divides by it
    instead of ``elapsed`` (a KR ahead of its milestone path, or whose path expects
    nothing yet, projects to 1)."""
    if checkin is not None:
        return ConfidenceTrace(checkin, "checkin")
    if score >= 1:
        return ConfidenceTrace("on_track", "score_reached")
    if elapsed <= EARLY_CYCLE_FRACTION:
        return ConfidenceTrace("on_track", "early")
    if expected is None:
        projected = min(1.0, score / elapsed)
    else:
        projected = 1.0 if expected <= 0 else min(1.0, score / expected)
    mins = sorted(band.min for band in bands)
    top = mins[-1]
    below = mins[-2] if len(mins) >= 2 else None
    if projected >= top:
        chosen: Confidence = "on_track"
    elif below is not None and projected >= below:
        chosen = "at_risk"
    else:
        chosen = "off_track"
    return ConfidenceTrace(chosen, "projected", projected, top, below, expected)


def kr_confidence(
    score: float,
    elapsed: float,
    bands: Sequence[Band],
    checkin: Confidence | None = None,
    expected: float | None = None,
) -> Confidence:
    """A KR's confidence at an elapsed fraction ``elapsed`` of the cycle (A3)."""
    return confidence_trace(score, elapsed, bands, checkin, expected).confidence


def guardrail_confidence(confidence: Confidence, red_guardrails: Sequence[str],
                         cap: Confidence) -> Confidence:
    """An objective's confidence while guardrail KPIs are red: at best ``cap``."""
    return worst_confidence((confidence, cap)) if red_guardrails else confidence


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
    """True when a KR scored 1.0 in each of the last two cycles (A3's "exactly 1.0";
    a score above 1, over-achievement allowed by ``score_cap``, is as easy or easier).

    ``past_cycle_scores`` are the final scores of earlier cycles, oldest first.
    """
    return len(past_cycle_scores) >= 2 and all(s >= 1.0 for s in past_cycle_scores[-2:])
