"""KPIs as guardrails (issue 13 item 5, the confidence cap): a red guardrail KPI caps
its objective's confidence, with the reason shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import PlanError, load_plan_text
from okr_sync.scoring.arithmetic import explain_scorecard
from okr_sync.scoring.rollup import ScoringInput, build_scorecard
from okr_sync.scoring.rules import guardrail_confidence
from okr_sync.scoring.scorecard import scorecard_from_json, scorecard_to_json
from support.plan_builders import PlanBuilder, manual_kr, objective

AS_OF = datetime(2026, 11, 16, tzinfo=UTC)


def _plan(escalations: float, current: float = 10, **scoring: Any) -> Plan:
    builder = (PlanBuilder()
               .with_kpi({"id": "ESC", "title": "Open escalations", "direction": "decrease",
                          "value": escalations, "thresholds": {"green": 5, "yellow": 10}})
               .with_objective(objective("P", manual_kr("P.1", target=10, current=10)))
               .with_objective(objective("O", manual_kr("O.1", target=10, current=current),
                                         parent="P", guardrails=["ESC"])))
    if scoring:
        builder.set("scoring", scoring)
    return builder.build()


def test_build_scorecard_given_red_guardrail_caps_objective_confidence_with_reason() -> None:
    card = build_scorecard(ScoringInput(_plan(escalations=12), AS_OF))
    guarded = card.objective("O")
    assert (guarded.confidence, guarded.red_guardrails) == ("at_risk", ("ESC",))
    assert card.key_result("O.1").confidence == "on_track"  # the KR itself is done
    assert card.objective("P").confidence == "at_risk"  # the parent takes the worst
    assert [w.to_json() for w in card.warnings] == [
        {"kr": "O", "message": "confidence capped at at_risk: guardrail KPI ESC is red"}]
    assert card.to_json()["objectives"][1]["red_guardrails"] == ["ESC"]
    back = scorecard_from_json(scorecard_to_json(card))
    assert back.objective("O").red_guardrails == ("ESC",)


@pytest.mark.parametrize("escalations", [5, 8])  # green, yellow
def test_build_scorecard_given_guardrail_not_red_leaves_confidence(escalations: float) -> None:
    card = build_scorecard(ScoringInput(_plan(escalations), AS_OF))
    assert (card.objective("O").confidence, card.objective("O").red_guardrails) == (
        "on_track", ())
    assert "red_guardrails" not in card.to_json()["objectives"][1]
    assert card.warnings == ()


def test_build_scorecard_given_guardrail_confidence_off_track_caps_lower() -> None:
    card = build_scorecard(ScoringInput(
        _plan(escalations=12, guardrail_confidence="off_track"), AS_OF))
    assert card.objective("O").confidence == "off_track"


def test_guardrail_confidence_given_worse_confidence_keeps_it() -> None:
    assert guardrail_confidence("off_track", ["ESC"], "at_risk") == "off_track"
    assert guardrail_confidence("blocked", ["ESC"], "at_risk") == "blocked"
    assert guardrail_confidence("on_track", [], "at_risk") == "on_track"
    assert guardrail_confidence("on_track", ["ESC"], "at_risk") == "at_risk"


def test_explain_scorecard_given_red_guardrail_shows_the_cap() -> None:
    plan = _plan(escalations=12)
    card = build_scorecard(ScoringInput(plan, AS_OF))
    explained = explain_scorecard(plan, card).objectives
    assert explained["O"].confidence_formula == (
        "worst of on_track = on_track; guardrail KPI ESC red: at best at_risk -> at_risk")
    assert (explained["O"].confidence, explained["P"].confidence) == ("at_risk", "at_risk")


def test_load_plan_given_unknown_guardrail_kpi_reports_its_position() -> None:
    text = """\
version: 1
cycle: {name: Q, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: O
    title: O
    guardrails: [NOPE]
    key_results:
      - {id: K, title: k, measure: {kind: manual}, target: 3}
"""
    with pytest.raises(PlanError) as caught:
        load_plan_text(text, name="plan.yaml")
    assert [str(i) for i in caught.value.issues] == [
        "plan.yaml:6:18: objectives[0].guardrails[0]: unknown KPI 'NOPE'"]


def test_render_slack_scorecard_given_red_guardrail_shows_the_reason() -> None:
    from okr_sync.sync.delivery.render.slack import render_slack_scorecard

    card = build_scorecard(ScoringInput(_plan(escalations=12), AS_OF))
    blocks = str(render_slack_scorecard(card).to_json()["blocks"])
    assert "confidence capped at at_risk: guardrail KPI ESC is red" in blocks
