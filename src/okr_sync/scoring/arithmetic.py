"""The arithmetic behind every number of a scorecard, for ``okr-sync explain`` (pure).

Given a plan, a pass's scorecard, the items each Jira measure counted and the
check-ins the pass saw, :func:`explain_scorecard` recomputes each KR's value,
score, band and confidence, each objective's and perspective's weighted mean and
each KPI's status, and writes the formula beside each with its numbers filled in
("65 done pts / 144 pts = 0.4514"). Every number comes from the functions the pass
itself uses (:func:`~okr_sync.scoring.measures.value_terms`,
:mod:`~okr_sync.scoring.rules`, :func:`~okr_sync.scoring.rollup.objective_rollup`),
never from a second copy of a formula; the strings only show them.

Values the items cannot give again come from the scorecard: a stale KR's kept value,
a raw-JQL count, a KPI's value. When the plan changed since the pass (a new target),
the numbers follow the plan and a note says the stored scorecard differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from okr_sync.config.plan import (
    STORY_POINTS,
    CountMeasure,
    DoneRatioMeasure,
    KeyResult,
    Kpi,
    ManualMeasure,
    MilestoneMeasure,
    Objective,
    Plan,
    SumMeasure,
)
from okr_sync.scoring.forecast import forecast_confidence, forecast_formula
from okr_sync.scoring.forecast_record import Forecast
from okr_sync.scoring.formulas import num, score_formula, share_text
from okr_sync.scoring.measures import Contribution, ValueTerms, value_terms
from okr_sync.scoring.rollup import (
    CheckIn,
    ContributorState,
    contributor_state,
    manual_value,
    objective_rollup,
    perspective_score,
)
from okr_sync.scoring.rules import (
    EARLY_CYCLE_FRACTION,
    ConfidenceTrace,
    band_for,
    confidence_trace,
    elapsed_fraction,
    expected_score,
    guardrail_confidence,
    kpi_status,
    score_key_result,
)
from okr_sync.scoring.scorecard import (
    Confidence,
    KeyResultScore,
    KpiStatus,
    Scorecard,
    rounded,
)

Kind = Literal["key_result", "objective", "perspective", "kpi"]

__all__ = ["Arithmetic", "MeasureTrace", "explain_scorecard", "num"]


@dataclass(frozen=True)
class MeasureTrace:
    """What a pass stored about one Jira measure: the items it counted, the count Jira
    reported (raw-JQL ``count``), or why it failed."""

    items: tuple[Contribution, ...] = ()
    count: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class KrArithmetic:
    id: str
    title: str
    weight: float
    value: float | None
    value_formula: str
    score: float | None
    score_formula: str
    band: str | None
    confidence: Confidence | None
    confidence_formula: str
    terms: ValueTerms | None = None
    trace: ConfidenceTrace | None = None
    notes: tuple[str, ...] = ()
    #: The stored forecast the confidence came from (``scoring.confidence: forecast``).
    forecast: Forecast | None = None

    def to_json(self) -> dict[str, Any]:
        terms = self.terms
        rule = "forecast" if self.forecast else self.trace.rule if self.trace else None
        return {
            "kind": "key_result", "id": self.id, "title": self.title,
            "weight": rounded(self.weight),
            "value": {"value": rounded(self.value), "formula": self.value_formula,
                      "numerator": rounded(terms.numerator) if terms else None,
                      "denominator": rounded(terms.denominator) if terms else None},
            "score": {"value": rounded(self.score), "formula": self.score_formula},
            "band": self.band,
            "confidence": {
                "value": self.confidence, "formula": self.confidence_formula,
                "rule": rule,
                "projected": rounded(self.trace.projected) if self.trace else None,
                "forecast": self.forecast.to_json() if self.forecast else None,
            },
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Term:
    """One contributor of an objective or perspective mean."""

    id: str
    kind: Literal["key_result", "objective"]
    weight: float
    score: float | None
    confidence: Confidence | None
    state: ContributorState

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "weight": rounded(self.weight),
                "score": rounded(self.score), "confidence": self.confidence,
                "counted": self.state}


@dataclass(frozen=True)
class MeanArithmetic:
    """An objective (weighted mean of its KRs and child objectives, worst confidence) or
    a perspective (weighted mean of its tagged objectives; no confidence)."""

    kind: Literal["objective", "perspective"]
    id: str
    title: str
    weight: float
    score: float | None
    score_formula: str
    band: str | None
    confidence: Confidence | None
    confidence_formula: str
    terms: tuple[Term, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind, "id": self.id, "title": self.title,
            "score": {"value": rounded(self.score), "formula": self.score_formula},
            "band": self.band,
            "contributors": [t.to_json() for t in self.terms],
            "notes": list(self.notes),
        }
        if self.kind == "objective":
            doc["weight"] = rounded(self.weight)
            doc["confidence"] = {"value": self.confidence, "formula": self.confidence_formula}
        return doc


@dataclass(frozen=True)
class KpiArithmetic:
    id: str
    title: str
    value: float | None
    unit: str | None
    direction: str
    green: float
    yellow: float
    status: KpiStatus | None
    formula: str
    value_formula: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": "kpi", "id": self.id, "title": self.title, "value": rounded(self.value),
                "value_formula": self.value_formula,
                "unit": self.unit, "direction": self.direction,
                "thresholds": {"green": rounded(self.green), "yellow": rounded(self.yellow)},
                "status": self.status, "formula": self.formula}


@dataclass(frozen=True)
class Arithmetic:
    elapsed: float
    key_results: Mapping[str, KrArithmetic] = field(default_factory=dict)
    objectives: Mapping[str, MeanArithmetic] = field(default_factory=dict)
    perspectives: Mapping[str, MeanArithmetic] = field(default_factory=dict)
    kpis: Mapping[str, KpiArithmetic] = field(default_factory=dict)


class _Explainer:
    def __init__(self, plan: Plan, scorecard: Scorecard, traces: Mapping[str, MeasureTrace],
                 checkins: Mapping[str, CheckIn]) -> None:
        self.plan = plan
        self.stored = {kr.id: kr for kr in scorecard.key_results()}
        self.stored_objectives = {o.id: o for o in scorecard.objectives}
        self.stored_kpis = {k.id: k for k in scorecard.kpis}
        self.traces = traces
        self.checkins = checkins
        cycle = plan.cycle
        self.as_of = scorecard.cycle.as_of
        self.elapsed = elapsed_fraction(cycle.start, cycle.end, cycle.zone, self.as_of)
        self.bands = plan.scoring.bands
        self.key_results: dict[str, KrArithmetic] = {}
        self.objectives: dict[str, MeanArithmetic] = {}

    # -- key results -------------------------------------------------------------------

    def key_result(self, kr: KeyResult) -> KrArithmetic:
        stored = self.stored.get(kr.id)
        checkin = self.checkins.get(kr.id)
        value, formula, terms = self._value(kr, stored, checkin)
        if value is None:
            result = KrArithmetic(kr.id, kr.title, kr.weight, None, formula,
                                  None, "no value, no score", None, None,
                                  "no score, no confidence")
        else:
            score = score_key_result(kr, value)
            expected = expected_score(kr, self.plan.cycle, self.as_of)
            trace = confidence_trace(score, self.elapsed, self.bands,
                                     checkin.confidence if checkin else None,
                                     None if expected is None else expected[1])
            confidence, because = trace.confidence, self._confidence_formula(score, trace,
                                                                              expected)
            forecast = stored.forecast if stored is not None else None
            settings = self.plan.scoring.forecast
            if forecast is not None and trace.rule == "checkin":
                forecast = None
            if forecast is not None:
                confidence = forecast_confidence(forecast.p_top_band, settings.on_track,
                                                 settings.at_risk)
                because = forecast_formula(forecast, settings.on_track, settings.at_risk)
            elif stored is not None and stored.forecast_note and trace.rule != "checkin":
                because = f"no forecast ({stored.forecast_note}): {because}"
            result = KrArithmetic(
                kr.id, kr.title, kr.weight, value, formula, score,
                score_formula(kr, value, score),
                band_for(score, self.bands), confidence, because, terms, trace,
                _differs(stored, value, score), forecast,
            )
        self.key_results[kr.id] = result
        return result

    def _value(self, kr: KeyResult, stored: KeyResultScore | None, checkin: CheckIn | None
               ) -> tuple[float | None, str, ValueTerms | None]:
        measure = kr.measure
        if measure.kind == "manual":
            value = manual_value(kr, checkin)
            if value is None:
                return (kr.effective_baseline,
                        f"manual, no current value yet: counted at baseline "
                        f"{num(kr.effective_baseline)}", None)
            if checkin is not None and checkin.value is not None:
                when = f" of {checkin.at.date().isoformat()}" if checkin.at else ""
                return value, f"manual: check-in value{when} = {num(value)}", None
            return value, f"manual: plan current = {num(value)}", None
        trace = self.traces.get(kr.id)
        if stored is None or stored.value is None:
            why = f" ({trace.error})" if trace is not None and trace.error else ""
            return None, f"not measured yet{why}: left out of its objective's mean", None
        measured = stored.measured_at.isoformat() if stored.measured_at else "an unknown time"
        if trace is None:
            return (stored.value, f"value {num(stored.value)} measured at {measured} (the "
                    "items behind it were not stored with this pass)", None)
        if trace.error is not None:
            return (stored.value, f"kept value {num(stored.value)}, measured at {measured} "
                    f"(stale: this pass's measure failed: {trace.error})", None)
        aged = (f" (stale: measured at {measured}, older than notify.stale_after)"
                if stored.stale else "")
        if trace.count is not None:
            return (float(trace.count), f"Jira counts {trace.count} issues for the JQL{aged}",
                    None)
        assert not isinstance(measure, ManualMeasure)
        terms = value_terms(measure, trace.items)
        return terms.value, _value_formula(measure, terms) + aged, terms

    def _confidence_formula(self, score: float, trace: ConfidenceTrace,
                            expected: tuple[float, float] | None = None) -> str:
        f = num(self.elapsed)
        if trace.rule == "checkin":
            return f"set by check-in: {trace.confidence} (a check-in's confidence wins)"
        if trace.rule == "score_reached":
            return f"score {num(score)} >= 1 -> on_track"
        if trace.rule == "early":
            return (f"elapsed f = {f} <= {num(EARLY_CYCLE_FRACTION)}: too early to tell "
                    f"-> on_track")
        assert trace.projected is not None and trace.on_track_min is not None
        if expected is not None:
            value, e = num(expected[0]), num(expected[1])
            ratio = (f"min(1, {num(score)}/{e})" if expected[1] > 0
                     else "nothing expected yet: 1")
            head = (f"milestones expect {value} by now (score e = {e}); projected = "
                    f"{ratio} = {num(trace.projected)}")
        else:
            head = (f"elapsed f = {f}; projected = min(1, {num(score)}/{f}) = "
                    f"{num(trace.projected)}")
        top = f"{num(trace.on_track_min)} ({self._band_at(trace.on_track_min)})"
        if trace.confidence == "on_track":
            return f"{head} >= {top} -> on_track"
        if trace.at_risk_min is not None:
            below = f"{num(trace.at_risk_min)} ({self._band_at(trace.at_risk_min)})"
            if trace.confidence == "at_risk":
                return f"{head} < {top}, >= {below} -> at_risk"
            return f"{head} < {below} -> off_track"
        return f"{head} < {top} -> off_track"

    def _band_at(self, minimum: float) -> str:
        return next(b.name for b in self.bands if b.min == minimum)

    # -- objectives and perspectives -----------------------------------------------------

    def objective(self, objective: Objective) -> MeanArithmetic:
        cached = self.objectives.get(objective.id)
        if cached is not None:
            return cached
        parts: list[tuple[Literal["key_result", "objective"], KrArithmetic | MeanArithmetic]]
        parts = [("key_result", self.key_result(kr)) for kr in objective.key_results]
        parts += [("objective", self.objective(c)) for c in self.plan.children(objective.id)]
        contributors = [part for _, part in parts]
        capped = self.plan.scoring.cap_objectives
        rolled = objective_rollup(contributors, capped)
        terms = tuple(Term(p.id, kind, p.weight, p.score, p.confidence, contributor_state(p))
                      for kind, p in parts)
        counted = [t for t in terms if t.state == "counted"]
        notes = _left_out_notes(terms)
        stored = self.stored_objectives.get(objective.id)
        if stored is not None and rounded(stored.score) != rounded(rolled.score):
            notes.append(f"the stored scorecard says {_maybe(stored.score)}: the plan or "
                         "check-ins changed since the last pass")
        confidence, confidence_formula = rolled.confidence, (
            f"worst of {', '.join(str(t.confidence) for t in counted)} = {rolled.confidence}"
            if rolled.confidence is not None else "nothing measured, no confidence")
        kpis = {k.id: k for k in self.plan.kpis}
        red = [k for k in objective.guardrails if self.kpi(kpis[k]).status == "red"]
        if red and confidence is not None:
            cap = self.plan.scoring.guardrail_confidence
            confidence = guardrail_confidence(confidence, red, cap)
            confidence_formula += (f"; guardrail KPI {', '.join(red)} red: at best {cap} "
                                   f"-> {confidence}")
        result = MeanArithmetic(
            "objective", objective.id, objective.title, objective.weight, rolled.score,
            _mean_formula(counted, rolled.score, capped),
            None if rolled.score is None else band_for(rolled.score, self.bands),
            confidence, confidence_formula, terms, tuple(notes),
        )
        self.objectives[objective.id] = result
        return result

    def perspective(self, perspective_id: str, title: str) -> MeanArithmetic:
        tagged = [self.objective(o) for o in self.plan.objectives
                  if o.perspective == perspective_id]
        score = perspective_score(tagged)
        terms = tuple(Term(o.id, "objective", o.weight, o.score, o.confidence,
                           contributor_state(o)) for o in tagged)
        counted = [t for t in terms if t.state == "counted"]
        notes = _left_out_notes(terms)
        if not tagged:
            notes.append("no objective is tagged with this perspective")
        return MeanArithmetic("perspective", perspective_id, title, 1.0, score,
                              _mean_formula(counted, score),
                              None if score is None else band_for(score, self.bands),
                              None, "", terms, tuple(notes))

    def kpi(self, kpi: Kpi) -> KpiArithmetic:
        stored = self.stored_kpis.get(kpi.id)
        value = stored.value if stored is not None else kpi.value
        green, yellow = kpi.thresholds.green, kpi.thresholds.yellow
        status = kpi_status(value, green, yellow, kpi.direction)
        return KpiArithmetic(kpi.id, kpi.title, value, kpi.unit, kpi.direction, green, yellow,
                             status, _kpi_formula(value, green, yellow, kpi.direction, status),
                             self._kpi_value(kpi, value))

    def _kpi_value(self, kpi: Kpi, value: float | None) -> str:
        if kpi.measure is None or isinstance(kpi.measure, ManualMeasure):
            return f"plan value = {_maybe(value)}"
        trace = self.traces.get(kpi.id)
        if value is None:
            why = f" ({trace.error})" if trace is not None and trace.error else ""
            return f"not measured{why}"
        if trace is None or trace.error is not None:
            return f"value {num(value)} from an earlier measurement"
        if trace.count is not None:
            return f"Jira counts {trace.count} issues for the JQL"
        return _value_formula(kpi.measure, value_terms(kpi.measure, trace.items))


def explain_scorecard(
    plan: Plan,
    scorecard: Scorecard,
    traces: Mapping[str, MeasureTrace] | None = None,
    checkins: Mapping[str, CheckIn] | None = None,
) -> Arithmetic:
    """The arithmetic of every KR, objective, perspective and KPI of ``plan`` at the
    scorecard's ``as_of``. ``traces``: per Jira-measured KR, what its pass stored;
    ``checkins``: the latest check-ins the pass saw."""
    explainer = _Explainer(plan, scorecard, traces or {}, checkins or {})
    for objective in plan.objectives:
        explainer.objective(objective)
    perspectives = {p.id: explainer.perspective(p.id, p.title) for p in plan.perspectives}
    kpis = {k.id: explainer.kpi(k) for k in plan.kpis}
    return Arithmetic(explainer.elapsed, explainer.key_results, explainer.objectives,
                      perspectives, kpis)


# -- formulas as text ------------------------------------------------------------------


def _value_formula(measure: object, terms: ValueTerms) -> str:
    if isinstance(measure, DoneRatioMeasure):
        assert terms.numerator is not None and terms.denominator is not None
        points = measure.unit == STORY_POINTS
        unit = "pts" if points else "items"
        text = (f"{num(terms.numerator)} done {unit} / {num(terms.denominator)} {unit} = "
                f"{num(terms.value)}" if terms.denominator > 0
                else f"no {'points' if points else 'items'} selected: 0")
        if terms.unestimated:
            text += f" ({terms.unestimated} without points count 0)"
        if terms.excluded:
            text += (f" ({terms.excluded} created after the cycle start not counted: "
                     "scope frozen)")
        return text
    if isinstance(measure, CountMeasure):
        return f"{terms.selected} items selected = {num(terms.value)}"
    if isinstance(measure, SumMeasure):
        over = "done items" if measure.done_only else "items"
        return (f"sum of {measure.field} over {terms.selected} selected {over} = "
                f"{num(terms.value)}")
    if isinstance(measure, MilestoneMeasure):
        return (f"{terms.done} of {terms.selected} items done: "
                f"{'all done -> 1' if terms.value == 1 else 'not all done -> 0'}")
    raise TypeError(f"not a Jira measure: {measure!r}")


def _mean_formula(counted: Sequence[Term], score: float | None, capped: bool = False) -> str:
    if score is None:
        return "nothing measured: no score"
    parts = " + ".join(f"{share_text(t.score or 0, capped)}*{num(t.weight)}" for t in counted)
    weights = " + ".join(num(t.weight) for t in counted)
    return f"({parts}) / ({weights}) = {num(score)}"


def _left_out_notes(terms: Sequence[Term]) -> list[str]:
    notes = []
    zero = [t.id for t in terms if t.state == "weight_0"]
    unmeasured = [t.id for t in terms if t.state == "not_measured"]
    if zero:
        notes.append(f"weight 0, shown but not counted: {', '.join(zero)}")
    if unmeasured:
        notes.append(f"not measured, left out (the weights renormalise over the rest): "
                     f"{', '.join(unmeasured)}")
    return notes


def _kpi_formula(value: float | None, green: float, yellow: float, direction: str,
                 status: KpiStatus | None) -> str:
    if value is None or status is None:
        return "not measured: no status"
    v, g, y = num(value), num(green), num(yellow)
    better, worse = (">=", "<") if direction != "decrease" else ("<=", ">")
    if status == "green":
        return f"{direction}: {v} {better} green {g} -> green"
    if status == "yellow":
        return f"{direction}: {v} {worse} green {g}, {better} yellow {y} -> yellow"
    return f"{direction}: {v} {worse} yellow {y} -> red"


def _maybe(value: float | None) -> str:
    return "no score" if value is None else num(value)


def _differs(stored: KeyResultScore | None, value: float, score: float) -> tuple[str, ...]:
    if stored is None or stored.value is None:
        return ()
    if rounded(stored.value) != rounded(value) or rounded(stored.score) != rounded(score):
        return (f"the stored scorecard says value {num(stored.value)}, score "
                f"{_maybe(stored.score)}: the plan or check-ins changed since the last pass",)
    return ()
