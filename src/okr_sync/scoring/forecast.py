"""Forecast confidence (issue 13 item 2; opt-in ``scoring.confidence: forecast``): pure.

From a KR's measured history (live or backfilled score history, one value per day: the
last measurement of each day, a day without one keeping the day before's), project the
value at cycle end by Monte Carlo: each run draws ``remaining_days`` days at random, with
replacement, from the observed days (bootstrap) and adds their deltas. When every day of
the history knows the KR's done and total (a ``done_ratio`` or ``milestone`` measure), a
drawn day adds its delta of done *and* its delta of scope (the same day for both, so a
day that added scope and finished work stays one day); otherwise it adds its delta of
the value itself. The seed comes from the cycle's name and the KR's id, so the same
history gives the same forecast on every pass.

Outputs: the probability of reaching the top band's min (``p_top_band``), the expected
landing score (mean over the runs), and the 10th and 90th percentiles (nearest rank).
A KR with phased targets (``milestones``) compares with the next milestone: ``p_top_band``
is the probability that the score at that milestone's due time reaches the top band's
min times the milestone's own score (what pace compares with); the landing numbers stay
those of the cycle's end.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from okr_sync.config.plan import Band, Cycle, KeyResult
from okr_sync.scoring.forecast_record import EN_DASH as EN_DASH
from okr_sync.scoring.forecast_record import Forecast, Model
from okr_sync.scoring.forecast_record import forecast_text as forecast_text
from okr_sync.scoring.rules import cycle_bounds, kr_score, score_key_result
from okr_sync.scoring.scorecard import Confidence, ItemCounts

#: Fewer days of measured history than this: no forecast, confidence by pace.
MIN_HISTORY_DAYS = 3
#: Measures whose value is done / total of their items (the done-and-scope model).
RATIO_KINDS = frozenset({"done_ratio", "milestone"})
_DAY = timedelta(days=1)

@dataclass(frozen=True)
class Measurement:
    """One stored measurement of a KR: its value and, where the measure gives them, the
    done and total (items or points) its value is the ratio of."""

    at: datetime
    value: float
    done: float | None = None
    total: float | None = None


@dataclass(frozen=True)
class DailyPoint:
    day: date
    value: float
    done: float | None = None
    total: float | None = None


def daily_series(measurements: Iterable[Measurement], zone: ZoneInfo,
                 until: date | None = None) -> list[DailyPoint]:
    """One point per day in the cycle's zone: the day's last measurement; a day without
    one keeps the previous day's (a pass writes no history while nothing changes), from
    the first measured day through ``until`` (default: the last measured day)."""
    last: dict[date, Measurement] = {}
    for m in sorted(measurements, key=lambda m: m.at.astimezone(UTC)):
        last[m.at.astimezone(zone).date()] = m
    if not last:
        return []
    first, final = min(last), max(last)
    if until is not None and until > final:
        final = until
    series: list[DailyPoint] = []
    day, kept = first, last[first]
    while day <= final:
        kept = last.get(day, kept)
        series.append(DailyPoint(day, kept.value, kept.done, kept.total))
        day += _DAY
    return series


@dataclass(frozen=True)
class NoForecast:
    """Why a KR has no forecast (its confidence is by pace)."""

    reason: str


def ratio_parts(kr: KeyResult, items: ItemCounts | None, value: float
                ) -> tuple[float | None, float | None]:
    """The done and total a ``done_ratio`` or ``milestone`` KR's value is made of (points
    for a points ratio), when its items say so exactly; (None, None) otherwise."""
    if items is None or kr.measure.kind not in RATIO_KINDS:
        return None, None
    done, total = float(items.done), float(items.selected)
    if getattr(kr.measure, "unit", "issues") == "story_points":
        if items.points_done is None or items.points_total is None:
            return None, None
        done, total = items.points_done, items.points_total
    if kr.measure.kind == "milestone":
        consistent = value == (1.0 if total > 0 and done >= total else 0.0)
    else:
        consistent = abs((done / total if total > 0 else 0.0) - value) <= 1e-9
    return (done, total) if consistent else (None, None)


def forecast_seed(cycle_name: str, kr_id: str) -> int:
    """The fixed seed of one KR's simulation in one cycle (reproducible passes)."""
    digest = hashlib.sha256(f"{cycle_name}\0{kr_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def forecast_confidence(p_top_band: float, on_track: float, at_risk: float) -> Confidence:
    if p_top_band >= on_track:
        return "on_track"
    return "at_risk" if p_top_band >= at_risk else "off_track"


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (p10 of 1000 runs: the 100th)."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def days_until(moment: datetime, as_of: datetime) -> int:
    """Whole days from ``as_of`` to ``moment`` (rounded half up; never negative)."""
    seconds = (moment.astimezone(UTC) - as_of.astimezone(UTC)).total_seconds()
    return max(0, int(seconds / 86400 + 0.5))


@dataclass(frozen=True)
class Throughput:
    """The observed days a simulation draws from."""

    model: Model
    value: float
    done: float
    total: float
    deltas: tuple[float, ...]
    scope_deltas: tuple[float, ...]
    ratio_kind: str | None

    @classmethod
    def of(cls, series: Sequence[DailyPoint], kind: str) -> Throughput:
        pairs = list(pairwise(series))
        now = series[-1]
        if kind in RATIO_KINDS and all(p.done is not None and p.total is not None
                                       for p in series):
            return cls("done_and_scope", now.value, float(now.done or 0), float(now.total or 0),
                       tuple(float(b.done or 0) - float(a.done or 0) for a, b in pairs),
                       tuple(float(b.total or 0) - float(a.total or 0) for a, b in pairs),
                       kind)
        return cls("value", now.value, 0.0, 0.0, tuple(b.value - a.value for a, b in pairs),
                   (), kind if kind in RATIO_KINDS else None)

    def value_after(self, done_gain: float, scope_gain: float) -> float:
        if self.model == "value":
            value = self.value + done_gain
            return min(1.0, max(0.0, value)) if self.ratio_kind else value
        total = max(0.0, self.total + scope_gain)
        done = min(total, max(0.0, self.done + done_gain))
        if self.ratio_kind == "milestone":
            return 1.0 if total > 0 and done >= total else 0.0
        return done / total if total > 0 else 0.0

    def simulate(self, days: int, runs: int, seed: int, checkpoint: int | None = None
                 ) -> tuple[list[float], list[float]]:
        """``runs`` simulated values after ``days`` days, and after ``checkpoint`` days
        (the same runs' paths; empty without a checkpoint)."""
        rng = random.Random(seed)
        indices = range(len(self.deltas))
        ends: list[float] = []
        marks: list[float] = []
        for _ in range(runs):
            drawn = rng.choices(indices, k=days) if days else []
            ends.append(self._gain(drawn))
            if checkpoint is not None:
                marks.append(self._gain(drawn[:checkpoint]))
        return ends, marks

    def _gain(self, drawn: Sequence[int]) -> float:
        done = math.fsum(self.deltas[i] for i in drawn)
        scope = math.fsum(self.scope_deltas[i] for i in drawn) if self.scope_deltas else 0.0
        return self.value_after(done, scope)


def _next_milestone(kr: KeyResult, cycle: Cycle, as_of: datetime
                    ) -> tuple[datetime, float] | None:
    """The first milestone due after ``as_of`` (due at the end of its date) and its score."""
    target = kr.effective_target
    for milestone in kr.milestones or ():
        due = datetime.combine(milestone.date + _DAY, time.min, tzinfo=cycle.zone)
        if due.astimezone(UTC) > as_of.astimezone(UTC):
            assert target is not None  # milestones are for linear KRs
            return due, kr_score(milestone.target, kr.effective_baseline, target)
    return None


def forecast_key_result(kr: KeyResult, cycle: Cycle, as_of: datetime,
                        series: Sequence[DailyPoint], bands: Sequence[Band], runs: int,
                        ) -> Forecast | NoForecast:
    """The KR's forecast from its daily ``series`` (ending with today's value), or why not."""
    if kr.measure.kind == "manual":
        return NoForecast("manual KR: check-ins are no daily throughput, confidence by pace")
    if len(series) < MIN_HISTORY_DAYS:
        have = f"{len(series)} day" + ("" if len(series) == 1 else "s")
        return NoForecast(f"only {have} of measured history (a forecast needs "
                          f"{MIN_HISTORY_DAYS}): confidence by pace")
    throughput = Throughput.of(series, kr.measure.kind)
    _begin, finish = cycle_bounds(cycle.start, cycle.end, cycle.zone)
    remaining = days_until(finish, as_of)
    top = max(band.min for band in bands)
    horizon, threshold, checkpoint = cycle.end, top, None
    upcoming = _next_milestone(kr, cycle, as_of)
    if upcoming is not None and upcoming[0].astimezone(UTC) < finish.astimezone(UTC):
        due, milestone_score = upcoming
        checkpoint = days_until(due, as_of)
        horizon, threshold = (due - _DAY).date(), top * milestone_score
    seed = forecast_seed(cycle.name, kr.id)
    ends, marks = throughput.simulate(remaining, runs, seed, checkpoint)
    scores = sorted(score_key_result(kr, value) for value in ends)
    reach = [score_key_result(kr, value) for value in marks] if checkpoint is not None \
        else scores
    p_top = sum(1 for score in reach if score >= threshold) / runs
    deltas = throughput.deltas
    return Forecast(
        expected_score=math.fsum(scores) / runs, p_top_band=p_top,
        p10=percentile(scores, 0.1), p90=percentile(scores, 0.9), runs=runs,
        history_days=len(series), remaining_days=remaining, model=throughput.model,
        mean_daily=math.fsum(deltas) / len(deltas),
        mean_daily_scope=(math.fsum(throughput.scope_deltas) / len(deltas)
                          if throughput.model == "done_and_scope" else None),
        threshold=threshold, horizon=horizon, seed=seed)


def forecast_formula(forecast: Forecast, on_track: float, at_risk: float) -> str:
    """``explain``'s account of a forecast confidence, with its numbers."""
    from okr_sync.scoring.formulas import num

    if forecast.model == "done_and_scope":
        pace = (f"done {num(forecast.mean_daily)}/day, scope "
                f"{num(forecast.mean_daily_scope or 0)}/day on average")
    else:
        pace = f"value {num(forecast.mean_daily)}/day on average"
    p = forecast.p_top_band
    confidence = forecast_confidence(p, on_track, at_risk)
    verdict = (f">= {num(on_track)} -> on_track" if confidence == "on_track"
               else f"< {num(on_track)}, >= {num(at_risk)} -> at_risk"
               if confidence == "at_risk" else f"< {num(at_risk)} -> off_track")
    return (f"forecast: {forecast.runs} runs (seed {forecast.seed}) each draw "
            f"{forecast.remaining_days} remaining days from {forecast.history_days - 1} "
            f"observed daily deltas of {forecast.history_days} days of history ({pace}); "
            f"P(score >= {num(forecast.threshold)} by {forecast.horizon.isoformat()}) = "
            f"{num(p)} {verdict}; lands at {num(forecast.expected_score)} expected, "
            f"p10 {num(forecast.p10)}, p90 {num(forecast.p90)}")
