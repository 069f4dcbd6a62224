"""Build a scorecard from a plan and measured KR values (pure: no I/O, no clock).

The caller measures (Jira, check-ins) and passes values in; this module applies
A3: KR scores, objective roll-ups through cascading parents, perspectives,
KPIs, bands, confidence and the ``too_easy`` flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from okr_sync.config.plan import (
    STORY_POINTS,
    KeyResult,
    ManualMeasure,
    Objective,
    Plan,
    uses_points,
)
from okr_sync.scoring.forecast import (
    Measurement,
    NoForecast,
    daily_series,
    forecast_confidence,
    forecast_key_result,
    ratio_parts,
)
from okr_sync.scoring.forecast_record import Forecast
from okr_sync.scoring.kpi_trend import kpi_trend
from okr_sync.scoring.rules import (
    band_for,
    elapsed_fraction,
    expected_score,
    guardrail_confidence,
    is_too_easy,
    kpi_status,
    kr_confidence,
    objective_share,
    score_key_result,
    weighted_mean,
    worst_confidence,
)
from okr_sync.scoring.scorecard import (
    Confidence,
    CycleInfo,
    ItemCounts,
    KeyResultScore,
    KpiScore,
    ObjectiveScore,
    PerspectiveScore,
    Scorecard,
    ScoringWarning,
    TargetRange,
)


@dataclass(frozen=True)
class MeasuredValue:
    """A measure's outcome for one KR or KPI, before scoring."""

    value: float
    items: ItemCounts | None = None
    links: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: When it was measured; None: by this pass (``ScoringInput.measured_at``).
    measured_at: datetime | None = None
    #: A value kept from an earlier pass because this pass's measure failed.
    stale: bool = False


@dataclass(frozen=True)
class CheckIn:
    """The latest manual check-in of a KR: a value, a confidence, or both."""

    value: float | None = None
    confidence: Confidence | None = None
    note: str | None = None
    #: When it was recorded (a manual KR's value is measured by its check-in).
    at: datetime | None = None
    #: When the note was written (a later check-in may have set only a value).
    note_at: datetime | None = None
    #: Who wrote it (a ``people`` key, or a login), when recorded.
    note_by: str | None = None


@dataclass(frozen=True)
class ScoringInput:
    plan: Plan
    as_of: datetime
    measured: Mapping[str, MeasuredValue] = field(default_factory=dict)
    checkins: Mapping[str, CheckIn] = field(default_factory=dict)
    past_cycle_scores: Mapping[str, Sequence[float]] = field(default_factory=dict)
    #: The real time of the pass (``as_of`` may be moved by ``--as-of``); default ``as_of``.
    measured_at: datetime | None = None
    #: Stored measurements of this cycle per KR (forecasts) and KPI (trends), any order.
    history: Mapping[str, Sequence[Measurement]] = field(default_factory=dict)


def manual_value(kr: KeyResult, checkin: CheckIn | None) -> float | None:
    """A manual KR's value: the latest check-in value, else ``current`` from the plan."""
    if checkin is not None and checkin.value is not None:
        return checkin.value
    return kr.current


class Scored(Protocol):
    """A KR or objective as a contributor to its objective or perspective."""

    @property
    def id(self) -> str: ...
    @property
    def score(self) -> float | None: ...
    @property
    def weight(self) -> float: ...
    @property
    def confidence(self) -> Confidence | None: ...


ContributorState = Literal["counted", "weight_0", "not_measured"]


def contributor_state(contributor: Scored) -> ContributorState:
    """Whether a contributor counts in its parent's mean (A3: weight 0 is shown, left out;
    unmeasured is not zero, left out)."""
    if contributor.score is None or contributor.confidence is None:
        return "not_measured"
    return "counted" if contributor.weight > 0 else "weight_0"


@dataclass(frozen=True)
class ObjectiveRollup:
    score: float | None
    confidence: Confidence | None
    #: Contributors of positive weight that are not measured (left out of the mean).
    left_out: tuple[str, ...]


def objective_rollup(contributors: Sequence[Scored], capped: bool = True) -> ObjectiveRollup:
    """An objective's score (weighted mean of its measured contributors; weights
    renormalise over them) and confidence (the worst of those with a positive weight).
    ``capped`` (``scoring.cap_objectives``): each score counts at most 1."""
    counted = [c for c in contributors if contributor_state(c) == "counted"]
    score = weighted_mean(
        (objective_share(c.score, capped), c.weight) for c in counted if c.score is not None)
    confidence = (
        worst_confidence(c.confidence for c in counted if c.confidence is not None)
        if score is not None else None
    )
    left_out = tuple(c.id for c in contributors if c.score is None and c.weight > 0)
    return ObjectiveRollup(score, confidence, left_out)


def perspective_score(objectives: Iterable[Scored]) -> float | None:
    """Weighted mean (by objective weight) of the measured objectives tagged with it."""
    return weighted_mean((o.score, o.weight) for o in objectives if o.score is not None)


class _Scorer:
    def __init__(self, data: ScoringInput) -> None:
        self.data = data
        self.plan = data.plan
        self.bands = self.plan.scoring.bands
        cycle = self.plan.cycle
        self.elapsed = elapsed_fraction(cycle.start, cycle.end, cycle.zone, data.as_of)
        self.warnings: list[ScoringWarning] = []
        self._objectives: dict[str, ObjectiveScore] = {}
        self._kpi_status: dict[str, str | None] = {}
        # Children by parent, in plan order: one pass over the objectives instead of
        # one Plan.children scan per objective (quadratic in the number of objectives).
        self._children: dict[str, list[Objective]] = {}
        for candidate in self.plan.objectives:
            if candidate.parent is not None:
                self._children.setdefault(candidate.parent, []).append(candidate)

    def key_result(self, kr: KeyResult, objective: Objective) -> KeyResultScore:
        checkin = self.data.checkins.get(kr.id)
        measured = self.data.measured.get(kr.id)
        baseline = kr.effective_baseline
        span = kr.range_target
        target: float | TargetRange | None = (
            TargetRange(span.min, span.max) if span is not None else kr.effective_target)
        assert target is not None  # guaranteed by plan validation
        now = self.data.measured_at or self.data.as_of
        items = None
        links: tuple[str, ...] = ()
        value: float | None
        measured_at: datetime | None = now
        stale = False
        if kr.measure.kind == "manual":
            # A manual KR is measured by the plan (read by this pass) or its check-in.
            value = manual_value(kr, checkin)
            if checkin is not None and checkin.value is not None and checkin.at is not None:
                measured_at = checkin.at
            if value is None:
                self.warnings.append(
                    ScoringWarning(kr=kr.id, message="no current value yet: counted at baseline")
                )
                value = baseline
        elif measured is None:
            # Unmeasured is not zero: a baseline score would be a false message.
            self.warnings.append(ScoringWarning(kr=kr.id, message=NOT_MEASURED_YET))
            value = None
            measured_at = None
        else:
            value = measured.value
            measured_at = measured.measured_at or now
            stale = measured.stale
        if measured is not None:
            items = measured.items
            links = measured.links
            self.warnings.extend(ScoringWarning(kr=kr.id, message=m) for m in measured.warnings)
        stale_after = self.plan.notify.stale_after
        if (
            measured_at is not None
            and stale_after is not None
            and now - measured_at > stale_after
        ):
            stale = True
            self.warnings.append(ScoringWarning(
                kr=kr.id, message=f"measured {_age(now - measured_at)} ago, older than "
                                  f"notify.stale_after"))
        score = None if value is None else score_key_result(kr, value)
        expected = expected_score(kr, self.plan.cycle, self.data.as_of)
        confidence = None if score is None else kr_confidence(
            score, self.elapsed, self.bands, checkin.confidence if checkin else None,
            None if expected is None else expected[1],
        )
        forecast: Forecast | None = None
        forecast_note: str | None = None
        if value is not None and self.plan.scoring.confidence == "forecast":
            forecast, forecast_note = self._forecast(kr, Measurement(
                measured_at or now, value, *ratio_parts(kr, items, value)))
            settings = self.plan.scoring.forecast
            if forecast is not None and (checkin is None or checkin.confidence is None):
                confidence = forecast_confidence(forecast.p_top_band, settings.on_track,
                                                 settings.at_risk)
        return KeyResultScore(
            id=kr.id,
            title=kr.title,
            value=value,
            baseline=None if kr.direction else baseline,
            target=target,
            score=score,
            band=None if score is None else band_for(score, self.bands),
            confidence=confidence,
            weight=kr.weight,
            direction=kr.direction,
            items=items,
            too_easy=is_too_easy(self.data.past_cycle_scores.get(kr.id, ())),
            links=links,
            measure_kind=kr.measure.kind,
            measured_at=measured_at,
            stale=stale,
            tolerance=kr.tolerance,
            score_cap=kr.score_cap,
            milestones=tuple((m.date, m.target) for m in kr.milestones or ()),
            expected=None if expected is None else expected[0],
            owner=self.plan.owner_name(kr.owner or objective.owner),
            unit=STORY_POINTS if not isinstance(kr.measure, ManualMeasure)
            and uses_points(kr.measure) else None,
            checkin_note=checkin.note if checkin is not None else None,
            checkin_note_at=checkin.note_at if checkin is not None else None,
            checkin_note_by=self.plan.owner_name(checkin.note_by) if checkin is not None
            else None,
            forecast=forecast,
            forecast_note=forecast_note,
        )

    def _forecast(self, kr: KeyResult, current: Measurement
                  ) -> tuple[Forecast | None, str | None]:
        """The KR's forecast from its stored history and this pass's value, or (None and)
        why it has none, shown as a warning: confidence is then by pace."""
        cycle = self.plan.cycle
        series = daily_series([*self.data.history.get(kr.id, ()), current], cycle.zone,
                              self.data.as_of.astimezone(cycle.zone).date())
        result = forecast_key_result(kr, cycle, self.data.as_of, series, self.bands,
                                     self.plan.scoring.forecast.runs)
        if isinstance(result, NoForecast):
            self.warnings.append(ScoringWarning(kr=kr.id, message=f"no forecast: {result.reason}"))
            return None, result.reason
        return result, None

    def objective(self, objective: Objective) -> ObjectiveScore:
        cached = self._objectives.get(objective.id)
        if cached is not None:
            return cached
        key_results = tuple(self.key_result(kr, objective) for kr in objective.key_results)
        children = [self.objective(child) for child in self._children.get(objective.id, ())]
        everything: list[KeyResultScore | ObjectiveScore] = [*key_results, *children]
        rolled = objective_rollup(everything, self.plan.scoring.cap_objectives)
        score, confidence, left_out = rolled.score, rolled.confidence, rolled.left_out
        if score is None and not left_out:  # plan validation guarantees a positive weight sum
            raise ValueError(f"objective {objective.id} has no weighted contributors")
        if left_out:
            self.warnings.append(ScoringWarning(
                kr=objective.id,
                message=("mean leaves out, not measured: " if score is not None
                         else "nothing measured, no score: ") + ", ".join(left_out),
            ))
        red = tuple(k for k in objective.guardrails if self._kpi_status.get(k) == "red")
        if red and confidence is not None:
            cap = self.plan.scoring.guardrail_confidence
            capped = guardrail_confidence(confidence, red, cap)
            if capped != confidence:
                self.warnings.append(ScoringWarning(kr=objective.id, message=(
                    f"confidence capped at {cap}: guardrail KPI {', '.join(red)} is red")))
            confidence = capped
        result = ObjectiveScore(
            id=objective.id,
            title=objective.title,
            perspective=objective.perspective,
            parent=objective.parent,
            score=score,
            band=None if score is None else band_for(score, self.bands),
            confidence=confidence,
            weight=objective.weight,
            key_results=key_results,
            red_guardrails=red,
            owner=self.plan.owner_name(objective.owner),
        )
        self._objectives[objective.id] = result
        return result

    def perspectives(self, objectives: Sequence[ObjectiveScore]) -> tuple[PerspectiveScore, ...]:
        results = []
        for perspective in self.plan.perspectives:
            score = perspective_score(o for o in objectives if o.perspective == perspective.id)
            band = band_for(score, self.bands) if score is not None else None
            results.append(PerspectiveScore(perspective.id, perspective.title, score, band))
        return tuple(results)

    def kpis(self) -> tuple[KpiScore, ...]:
        results = []
        for kpi in self.plan.kpis:
            value = kpi.value
            if kpi.measure is not None:
                measured = self.data.measured.get(kpi.id)
                if measured is None:
                    self.warnings.append(ScoringWarning(kr=kpi.id, message="KPI not measured"))
                else:
                    value = measured.value
                    self.warnings.extend(
                        ScoringWarning(kr=kpi.id, message=m) for m in measured.warnings
                    )
            status = kpi_status(value, kpi.thresholds.green, kpi.thresholds.yellow, kpi.direction)
            trend = kpi_trend(value, self.data.measured_at or self.data.as_of,
                              [(m.at, m.value) for m in self.data.history.get(kpi.id, ())])
            results.append(KpiScore(kpi.id, kpi.title, kpi.perspective, value, status, trend))
        return tuple(results)

    def scorecard(self) -> Scorecard:
        # KPIs first (guardrails need their status), their warnings after the objectives'.
        before = len(self.warnings)
        kpis = self.kpis()
        kpi_warnings = self.warnings[before:]
        del self.warnings[before:]
        self._kpi_status = {k.id: k.status for k in kpis}
        objectives = tuple(self.objective(o) for o in self.plan.objectives)
        self.warnings.extend(kpi_warnings)
        cycle = self.plan.cycle
        return Scorecard(
            cycle=CycleInfo(
                name=cycle.name,
                start=cycle.start,
                end=cycle.end,
                as_of=self.data.as_of.astimezone(cycle.zone),
                elapsed=self.elapsed,
            ),
            objectives=objectives,
            perspectives=self.perspectives(objectives),
            kpis=kpis,
            warnings=unique_warnings(self.warnings),
        )


def _age(age: timedelta) -> str:
    if age >= timedelta(days=2):
        return f"{age.days}d"
    if age >= timedelta(hours=1):
        return f"{int(age.total_seconds() // 3600)}h"
    return f"{int(age.total_seconds() // 60)}m"


#: The scorer's warning for a KR without a value; a pass that knows why says that instead.
NOT_MEASURED_YET = "not measured yet"


def unique_warnings(warnings: Iterable[ScoringWarning]) -> tuple[ScoringWarning, ...]:
    """Each warning once per pass, in first-seen order.

    Exact repeats are dropped, and a KR whose pass said why it could not be measured
    ("could not be measured: ...") does not also say "not measured yet".
    """
    listed = list(warnings)
    explained = {w.kr for w in listed if w.message != NOT_MEASURED_YET
                 and w.message.startswith("could not be measured")}
    seen: set[tuple[str | None, str]] = set()
    kept: list[ScoringWarning] = []
    for warning in listed:
        key = (warning.kr, warning.message)
        if key in seen or (warning.message == NOT_MEASURED_YET and warning.kr in explained):
            continue
        seen.add(key)
        kept.append(warning)
    return tuple(kept)


def build_scorecard(data: ScoringInput) -> Scorecard:
    """Score every KR, objective, perspective and KPI of ``data.plan`` at ``data.as_of``."""
    return _Scorer(data).scorecard()
