"""Plan fields of forecast confidence (issue 13 item 2): ``scoring.confidence`` and
``scoring.forecast``, validated at FILE:LINE:COLUMN and in the JSON Schema."""

from __future__ import annotations

import pytest

from okr_sync.config.plan_loader import PlanError, load_plan_text, plan_json_schema

PLAN = """\
version: 1
cycle: {name: Q, start: 2026-10-01, end: 2026-12-31}
scoring:
SCORING
objectives:
  - id: O
    title: O
    key_results:
      - {id: K, title: K, measure: {kind: manual}, target: 10}
"""


def _load(scoring: str):  # type: ignore[no-untyped-def]
    return load_plan_text(PLAN.replace("SCORING", scoring), name="plan.yaml")


def test_load_plan_given_no_confidence_is_pace_with_default_forecast_settings() -> None:
    plan = _load("  cap_objectives: true")
    assert plan.scoring.confidence == "pace"
    forecast = plan.scoring.forecast
    assert (forecast.on_track, forecast.at_risk, forecast.runs) == (0.7, 0.4, 1000)


def test_load_plan_given_forecast_settings_reads_them() -> None:
    plan = _load("  confidence: forecast\n  forecast: {on_track: 0.8, at_risk: 0.5, runs: 400}")
    assert plan.scoring.confidence == "forecast"
    assert (plan.scoring.forecast.on_track, plan.scoring.forecast.runs) == (0.8, 400)


@pytest.mark.parametrize(("scoring", "error"), [
    ("  confidence: monte_carlo",
     "plan.yaml:4:3: scoring.confidence: Input should be 'pace' or 'forecast'"),
    ("  forecast: {on_track: 0.3, at_risk: 0.5}",
     "plan.yaml:4:3: scoring.forecast: at_risk 0.5 is above on_track 0.3"),
    ("  forecast: {runs: 5}",
     "plan.yaml:4:14: scoring.forecast.runs: Input should be greater than or equal to 100"),
    ("  forecast: {on_track: 1.5}",
     "plan.yaml:4:14: scoring.forecast.on_track: Input should be less than or equal to 1"),
    ("  forecast: {seed: 3}",
     "plan.yaml:4:14: scoring.forecast.seed: unknown key"),
])
def test_load_plan_given_bad_forecast_settings_reports_file_line_column(
        scoring: str, error: str) -> None:
    with pytest.raises(PlanError) as caught:
        _load(scoring)
    shown = [str(issue) for issue in caught.value.issues]
    assert any(s.startswith(error) for s in shown), shown


def test_plan_json_schema_given_scoring_documents_forecast() -> None:
    schema = plan_json_schema()
    scoring = schema["$defs"]["Scoring"]["properties"]
    assert scoring["confidence"]["enum"] == ["pace", "forecast"]
    assert scoring["confidence"]["default"] == "pace"
    forecast = schema["$defs"]["ForecastSettings"]["properties"]
    assert set(forecast) == {"on_track", "at_risk", "runs"}
