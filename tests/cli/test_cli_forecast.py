"""Forecast confidence and KPI history end to end (issue 13 items 2 and 5): daily passes
against the sandboxes with ``scoring.confidence: forecast``, then ``status``, ``explain``,
the Slack and Teams messages and the report, through the CLI."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld
from okr_sync.sync.store.store import Store

runner = CliRunner()
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAYS = 5
NOW = START + timedelta(days=DAYS - 1, hours=3)


@pytest.fixture
def forecast_env(env: dict[str, str]) -> dict[str, str]:
    plan = Path(env["OKR_SYNC_PLAN"])
    plan.write_text(plan.read_text().replace(
        "\nkpis:\n", "\nscoring: {confidence: forecast, forecast: {runs: 500}}\n\nkpis:\n", 1))
    return env


def _progress(world: SandboxWorld, rng: random.Random) -> None:
    """A day's work: some ENT and SUP issues done, one escalation closed."""
    world.dataset.advance(timedelta(hours=20))
    open_items = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                  if i.status_category != "done" and not i.is_subtask]
    for issue in rng.sample(open_items, min(12, len(open_items))):
        world.dataset.transition(issue.id, "done")


def _daily_passes(world: SandboxWorld, env: dict[str, str], days: int) -> list[Any]:
    runtime = world.runtime(load_plan(Path(env["OKR_SYNC_PLAN"])))
    rng = random.Random(5)
    results = []
    try:
        for day in range(days):
            with time_machine.travel(START + timedelta(days=day), tick=False):
                if day:
                    _progress(world, rng)
                results.append(runtime.run_locked(PassOptions()))
                assert results[-1].exit_code == 0
    finally:
        runtime.close()
    return results


@pytest.fixture
def passes(world: SandboxWorld, forecast_env: dict[str, str]) -> Iterator[list[Any]]:
    yield _daily_passes(world, forecast_env, DAYS)


def _invoke(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=False):
        return runner.invoke(app, list(args), env=env)


def _status(env: dict[str, str]) -> dict[str, Any]:
    result = _invoke(env, "status", "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["scorecard"]


def _krs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {kr["id"]: kr for o in card["objectives"] for kr in o["key_results"]}


def test_run_given_forecast_plan_and_daily_history_forecasts_jira_krs(
        passes: list[Any], forecast_env: dict[str, str], world: SandboxWorld) -> None:
    first = passes[0].scorecard.key_result("CO-1.KR1")
    assert first.forecast is None  # one day of history: pace, and why
    assert first.forecast_note is not None and "needs 3" in first.forecast_note

    krs = _krs(_status(forecast_env))
    for kr_id in ("CO-1.KR1", "SUP-1.KR1", "SUP-1.KR2"):
        forecast = krs[kr_id]["forecast"]
        assert forecast is not None, krs[kr_id].get("forecast_note")
        assert 0 <= forecast["p10"] <= forecast["expected_score"] <= forecast["p90"] <= 1
        p, expected = forecast["p_top_band"], (
            "on_track" if forecast["p_top_band"] >= 0.7 else
            "at_risk" if forecast["p_top_band"] >= 0.4 else "off_track")
        assert krs[kr_id]["confidence"] == expected, (kr_id, p)
    # Story-point ratios draw done and scope per day; counts their value's deltas.
    assert krs["CO-1.KR1"]["forecast"]["model"] == "done_and_scope"
    assert krs["SUP-1.KR1"]["forecast"]["model"] == "value"
    assert krs["CO-1.KR3"]["forecast"] is None  # manual
    with Store(world.database_url) as store:
        rows = store.get_history("CO-1.KR1")
    assert rows and all(r.done is not None and r.total is not None for r in rows)

    explained = json.loads(_invoke(forecast_env, "explain", "CO-1.KR1", "--output",
                                   "json").stdout)
    assert explained["confidence"]["rule"] == "forecast"
    assert explained["confidence"]["formula"].startswith("forecast: 500 runs (seed ")
    assert explained["confidence"]["value"] == krs["CO-1.KR1"]["confidence"]
    for kr_id, kr in krs.items():  # explain never disagrees with the scorecard
        doc = json.loads(_invoke(forecast_env, "explain", kr_id, "--output", "json").stdout)
        assert doc["confidence"]["value"] == kr["confidence"], kr_id
        assert (doc["confidence"]["rule"] == "forecast") == (kr["forecast"] is not None)
        if kr.get("forecast_note"):
            assert doc["confidence"]["formula"].startswith(f"no forecast ({kr['forecast_note']})")
    text = _invoke(forecast_env, "explain", "CO-1.KR1").stdout
    assert "remaining days from" in text and "p10" in text


def test_messages_given_forecast_show_likely_landing(
        passes: list[Any], forecast_env: dict[str, str], world: SandboxWorld,
        tmp_path: Path) -> None:
    kr = passes[-1].scorecard.key_result("CO-1.KR1")
    assert kr.forecast is not None
    from okr_sync.scoring.forecast import forecast_text

    shown = forecast_text(kr.forecast)
    assert shown.startswith("likely to land at ") and "(p10\u2013p90 " in shown
    slack = json.dumps([m.blocks for m in world.slack.messages(DEMO_CHANNEL)],
                       ensure_ascii=False)
    assert shown in slack
    # A Workflows webhook cannot edit: its scorecard card went out with the first pass
    # (no forecast yet); the card a later pass renders carries it, valid Adaptive Card 1.5.
    from okr_sync.sandbox.teams.adaptive_cards import card_errors
    from okr_sync.sync.delivery.render.teams import render_teams_scorecard_card

    card = render_teams_scorecard_card(passes[-1].scorecard)
    assert shown in json.dumps(card, ensure_ascii=False)
    assert card_errors(card) == []
    report = tmp_path / "report.html"
    assert _invoke(forecast_env, "report", "--output", str(report)).exit_code == 0
    assert shown in report.read_text()
    # The console table may wrap the title column: the words are there.
    assert "likely to land" in " ".join(_invoke(forecast_env, "status").stdout.split())


def test_kpi_given_daily_passes_has_history_trend_and_explain(
        passes: list[Any], forecast_env: dict[str, str], world: SandboxWorld,
        tmp_path: Path) -> None:
    with Store(world.database_url) as store:
        history = store.get_kpi_history("ESC")
        nrr = store.get_kpi_history("NRR")
    assert len(history) >= 2 and len(nrr) >= 2
    kpis = {k["id"]: k for k in _status(forecast_env)["kpis"]}
    trend = kpis["ESC"]["trend"]
    assert trend is not None and trend["previous"] is not None
    assert trend["previous"]["value"] == history[-2].value
    assert trend["previous"]["delta"] == pytest.approx(kpis["ESC"]["value"] - history[-2].value)
    assert trend["week_ago"] is None  # five days of history
    assert kpis["NRR"]["trend"]["previous"]["direction"] == "flat"

    doc = json.loads(_invoke(forecast_env, "explain", "ESC", "--output", "json").stdout)
    assert [h["value"] for h in doc["history"]] == [h.value for h in history][-10:]
    assert doc["trend"] == trend
    text = _invoke(forecast_env, "explain", "ESC").stdout
    assert "trend" in text and "since last measured" in text
    status_text = _invoke(forecast_env, "status").stdout
    assert "since last measured" in status_text
    # Slack, Teams and the report show the same trend text beside the KPI.
    from okr_sync.scoring.kpi_trend import trend_text
    from okr_sync.sync.delivery.render.common import format_number
    from okr_sync.sync.delivery.render.slack import render_slack_scorecard
    from okr_sync.sync.delivery.render.teams import render_teams_scorecard_card

    card = passes[-1].scorecard
    shown = trend_text(card.kpis[1].trend, format_number)
    assert shown is not None and card.kpis[1].id == "ESC"
    assert shown in json.dumps(render_slack_scorecard(card).to_json(), ensure_ascii=False)
    assert shown in json.dumps(render_teams_scorecard_card(card), ensure_ascii=False)
    report = tmp_path / "report.html"
    assert _invoke(forecast_env, "report", "--output", str(report)).exit_code == 0
    assert "since last measured" in report.read_text()


def test_run_given_backfilled_history_forecasts_from_it(
        world: SandboxWorld, forecast_env: dict[str, str]) -> None:
    # Rows as `okr-sync backfill` writes them (backfilled, no snapshot; a count KR has no
    # done/total), one per day at the day's end.
    from okr_sync.sync.store.store import HistoryEntry

    runtime = world.runtime(load_plan(Path(forecast_env["OKR_SYNC_PLAN"])))
    days = [(START - timedelta(days=3 - day), [HistoryEntry("SUP-1.KR2", value, value / 150,
                                                            "missed", "on_track")])
            for day, value in enumerate((0.0, 10.0, 20.0))]
    try:
        with Store(world.database_url) as store:
            store.replace_backfilled(cycle="2026-Q4", kr_ids=["SUP-1.KR2"],
                                     since=days[0][0], days=days)
            assert all(h.backfilled for h in store.get_history("SUP-1.KR2"))
        with time_machine.travel(START, tick=False):
            result = runtime.run_locked(PassOptions())
    finally:
        runtime.close()

    kr = result.scorecard.key_result("SUP-1.KR2")
    assert kr.forecast is not None, kr.forecast_note
    assert (kr.forecast.history_days, kr.forecast.model) == (4, "value")
    assert kr.value is not None
    assert kr.forecast.mean_daily == pytest.approx(kr.value / 3)
    # A KR without backfilled rows has only this pass's day: pace, and why.
    assert result.scorecard.key_result("SUP-1.KR1").forecast is None
