"""explain's arithmetic: the same numbers as the scorecard for every KR, objective,
perspective and KPI of the example plans, and formulas that show them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from okr_sync.config.plan import DoneRatioMeasure, Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.arithmetic import Arithmetic, MeasureTrace, explain_scorecard, num
from okr_sync.scoring.measures import measure
from okr_sync.scoring.rollup import CheckIn, MeasuredValue, ScoringInput, build_scorecard
from okr_sync.scoring.scorecard import ItemCounts, Scorecard
from support.issue_builders import AFTER_START, CYCLE_START, issue
from support.plan_builders import PlanBuilder, manual_kr, objective

EXAMPLES = sorted((Path(__file__).parents[2] / "src/okr_sync/config/examples").glob("*.yaml"))
AS_OF = [datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 11, 16, 12, tzinfo=UTC),
         datetime(2026, 12, 20, tzinfo=UTC)]


def _measured_world(plan: Plan, seed: int
                    ) -> tuple[dict[str, MeasuredValue], dict[str, MeasureTrace]]:
    """Random items for every Jira measure (one left unmeasured, one stale, raw-JQL
    counts reported by Jira), measured by the pass's own code."""
    rng = random.Random(seed)
    measured: dict[str, MeasuredValue] = {}
    traces: dict[str, MeasureTrace] = {}
    owners = plan.jira_measures()
    for index, (owner, spec) in enumerate(owners):
        if index == 1:
            continue  # never measured
        if spec.jql is not None and spec.kind == "count":
            count = rng.randint(0, 60)
            measured[owner] = MeasuredValue(float(count), ItemCounts(count, 0))
            traces[owner] = MeasureTrace(count=count)
            continue
        items = [
            issue(f"ENT-{n}", done=rng.random() < 0.5,
                  points=rng.choice([None, 1, 2, 3, 5, 8, 13]),
                  created=AFTER_START if rng.random() < 0.2 else CYCLE_START.replace(day=1,
                                                                                  month=9),
                  fields={"customfield_10050": rng.randint(0, 9)})
            for n in range(rng.randint(0, 25))
        ]
        outcome = measure(spec, items, plan.jira[spec.source], cycle_start=CYCLE_START)
        if index == 2:  # measured earlier; this pass's query failed
            measured[owner] = MeasuredValue(outcome.value, stale=True)
            traces[owner] = MeasureTrace(error="JQL refused")
            continue
        measured[owner] = MeasuredValue(outcome.value, ItemCounts(outcome.selected, outcome.done))
        traces[owner] = MeasureTrace(items=outcome.contributions)
    return measured, traces


def _checkins(plan: Plan) -> dict[str, CheckIn]:
    manual = [kr for _, kr in plan.key_results() if kr.measure.kind == "manual"]
    checkins = {}
    if manual:
        checkins[manual[0].id] = CheckIn(value=(manual[0].effective_target or 1) * 0.6,
                                         at=datetime(2026, 10, 30, tzinfo=UTC))
    if len(manual) > 1:
        checkins[manual[1].id] = CheckIn(confidence="blocked", note="vendor")
    return checkins


@pytest.mark.parametrize("as_of", AS_OF, ids=lambda d: d.date().isoformat())
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_explain_scorecard_given_example_plan_matches_the_scorecard_numbers(
    path: Path, as_of: datetime
) -> None:
    plan = load_plan(path)
    for seed in range(3):
        measured, traces = _measured_world(plan, seed)
        checkins = _checkins(plan)
        card = build_scorecard(ScoringInput(plan, as_of, measured, checkins))
        arithmetic = explain_scorecard(plan, card, traces, checkins)
        _assert_same_numbers(card, arithmetic)
        for owner, kr in arithmetic.key_results.items():
            if owner in traces and traces[owner].error:
                assert kr.value_formula.startswith(f"kept value {num(kr.value or 0)}")
                assert kr.value_formula.endswith("(stale: this pass's measure failed: "
                                                 "JQL refused)")
            elif kr.value is None:
                assert kr.value_formula.startswith("not measured yet")
        for kpi_id, kpi in arithmetic.kpis.items():
            trace = traces.get(kpi_id)
            if trace is not None and trace.count is not None:
                assert kpi.value_formula == f"Jira counts {trace.count} issues for the JQL"
            elif kpi_id not in {owner for owner, _ in plan.jira_measures()}:
                assert kpi.value_formula == f"plan value = {num(kpi.value or 0)}"


def _assert_same_numbers(card: Scorecard, arithmetic: Arithmetic) -> None:
    assert arithmetic.elapsed == card.cycle.elapsed
    krs = list(card.key_results())
    assert set(arithmetic.key_results) == {kr.id for kr in krs}
    for kr in krs:
        mine = arithmetic.key_results[kr.id]
        assert (mine.value, mine.score, mine.band, mine.confidence) == (
            kr.value, kr.score, kr.band, kr.confidence), kr.id
        assert mine.notes == ()  # nothing differs from the scorecard
    for scored in card.objectives:
        mine = arithmetic.objectives[scored.id]
        assert (mine.score, mine.band, mine.confidence) == (
            scored.score, scored.band, scored.confidence), scored.id
    assert [(p.id, p.score, p.band) for p in card.perspectives] == [
        (p.id, p.score, p.band) for p in arithmetic.perspectives.values()]
    assert [(k.id, k.value, k.status) for k in card.kpis] == [
        (k.id, k.value, k.status) for k in arithmetic.kpis.values()]


def test_explain_scorecard_given_story_point_ratio_writes_the_formulas_with_numbers() -> None:
    plan = load_plan(next(p for p in EXAMPLES if p.stem == "demo"))
    owner, spec = next((o, s) for o, s in plan.jira_measures()
                       if isinstance(s, DoneRatioMeasure) and s.unit == "story_points")
    items = [issue("ENT-1", done=True, points=65), issue("ENT-2", points=79),
             issue("ENT-3", points=None)]
    outcome = measure(spec, items, plan.jira[spec.source], cycle_start=CYCLE_START)
    as_of = datetime(2026, 12, 1, tzinfo=UTC)  # f = 61/92
    card = build_scorecard(ScoringInput(plan, as_of, {owner: MeasuredValue(outcome.value)}))
    kr = explain_scorecard(plan, card, {owner: MeasureTrace(items=outcome.contributions)}
                           ).key_results[owner]
    assert kr.value_formula == "65 done pts / 144 pts = 0.4514 (1 without points count 0)"
    assert kr.score_formula == "(v - b)/(t - b) = (0.4514 - 0)/(1 - 0) = 0.4514"
    assert kr.confidence_formula == (
        "elapsed f = 0.663; projected = min(1, 0.4514/0.663) = 0.6808 < 0.7 (strong), "
        ">= 0.4 (progress) -> at_risk")
    assert kr.confidence == card.key_result(owner).confidence == "at_risk"


def test_explain_scorecard_given_cascade_shows_weights_weight_zero_and_worst_confidence(
    tmp_path: Path,
) -> None:
    plan = load_plan(
        PlanBuilder()
        .with_objective(objective("TOP", manual_kr("T.1", target=10, current=4),
                                  perspective="customer"))
        .with_objective(objective(
            "MID",
            manual_kr("M.1", baseline=40, target=5, current=26),
            manual_kr("M.2", direction="at_most", target=2, current=3),
            manual_kr("M.3", target=100, current=130, weight=2),
            parent="TOP", weight=2, perspective="customer"))
        .with_objective(objective("SIDE", manual_kr("S.1", target=10, current=1),
                                  parent="TOP", weight=0))
        .with_kpi({"id": "MTTR", "title": "MTTR", "direction": "decrease", "value": 3,
                   "thresholds": {"green": 2, "yellow": 4}})
        .write(tmp_path / "plan.yaml"))
    card = build_scorecard(ScoringInput(plan, datetime(2026, 11, 16, tzinfo=UTC)))
    result = explain_scorecard(plan, card)
    krs = result.key_results
    assert krs["M.1"].score_formula == "(b - v)/(b - t) = (40 - 26)/(40 - 5) = 0.4 (decrease)"
    assert krs["M.2"].score_formula == "at_most: 3 > 2 -> 0"
    assert krs["M.3"].score_formula == (
        "(v - b)/(t - b) = (130 - 0)/(100 - 0) = 1.3, clamped to [0, 1] = 1")
    assert krs["M.3"].confidence_formula == "score 1 >= 1 -> on_track"
    mid = result.objectives["MID"]
    assert mid.score_formula == "(0.4*1 + 0*1 + 1*2) / (1 + 1 + 2) = 0.6"
    assert mid.confidence_formula == "worst of on_track, off_track, on_track = off_track"
    top = result.objectives["TOP"]
    assert top.score_formula == "(0.4*1 + 0.6*2) / (1 + 2) = 0.5333"
    assert "weight 0, shown but not counted: SIDE" in top.notes
    assert [t.state for t in top.terms] == ["counted", "counted", "weight_0"]
    assert result.perspectives["customer"].score_formula == (
        "(0.5333*1 + 0.6*2) / (1 + 2) = 0.5778")
    assert result.perspectives["financial"].notes == (
        "no objective is tagged with this perspective",)
    assert result.kpis["MTTR"].formula == "decrease: 3 > green 2, <= yellow 4 -> yellow"


def test_num_given_floats_writes_at_most_four_decimals() -> None:
    assert [num(v) for v in (144.0, 0.45138888, 1e-5, 2.5)] == ["144", "0.4514", "0", "2.5"]
