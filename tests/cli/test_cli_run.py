"""`okr-sync run`: dry runs of manual KRs checked against hand math, passes against the
sandboxes (JSON output, lock, settings; secrets: tests/security), and the fetch progress display."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.store.locks import RunLock
from support.plan_builders import PlanBuilder, manual_kr, objective

runner = CliRunner()


def _cascade_plan(tmp_path: Path) -> Path:
    builder = (
        PlanBuilder()
        .with_objective(objective("TOP", manual_kr("T.1", target=10, current=4),
                                  perspective="customer"))
        .with_objective(objective(
            "MID",
            manual_kr("M.1", baseline=40, target=5, current=26),  # decrease: 14/35 = 0.4
            manual_kr("M.2", direction="at_most", target=2, current=3),  # 0
            manual_kr("M.3", target=100, current=30, weight=2),  # 0.3
            parent="TOP", weight=2, perspective="internal"))
        .with_objective(objective(
            "LEAF", manual_kr("L.1", direction="at_least", target=99.9, current=99.95),
            parent="MID", perspective="internal"))
        .with_objective(objective("SIDE", manual_kr("S.1", target=10, current=1),
                                  parent="TOP", weight=0, perspective="learning"))
        .with_kpi({"id": "NRR", "title": "NRR", "perspective": "financial", "value": 104,
                   "thresholds": {"green": 110, "yellow": 100}})
        .with_kpi({"id": "MTTR", "title": "MTTR", "direction": "decrease", "value": 1.5,
                   "thresholds": {"green": 2, "yellow": 4}})
    )
    return builder.write(tmp_path / "plan.yaml")


def _run_json(*args: str) -> dict:
    result = runner.invoke(app, ["run", "--dry-run", "--output", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_run_dry_run_given_cascade_plan_prints_hand_computed_scorecard(tmp_path: Path) -> None:
    doc = _run_json("--plan", str(_cascade_plan(tmp_path)), "--as-of", "2026-11-16")
    assert doc["cycle"] == {"name": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31",
                            "as_of": "2026-11-16T00:00:00+00:00", "elapsed": 0.5}
    objectives = {o["id"]: o for o in doc["objectives"]}
    krs = {kr["id"]: kr for o in doc["objectives"] for kr in o["key_results"]}
    assert {k: (v["score"], v["band"], v["confidence"]) for k, v in krs.items()} == {
        "T.1": (0.4, "progress", "on_track"),  # projected 0.8
        "M.1": (0.4, "progress", "on_track"),
        "M.2": (0, "missed", "off_track"),
        "M.3": (0.3, "missed", "at_risk"),  # projected 0.6
        "L.1": (1, "strong", "on_track"),
        "S.1": (0.1, "missed", "off_track"),  # projected 0.2
    }
    assert krs["M.1"]["baseline"] == 40 and krs["M.1"]["target"] == 5 and krs["M.1"]["value"] == 26
    assert krs["M.2"]["baseline"] is None and krs["M.2"]["direction"] == "at_most"
    # LEAF = 1.0; MID = (0.4 + 0 + 0.3*2 + 1.0) / 5 = 0.4; TOP = (0.4 + 0.4*2) / 3, SIDE left out
    assert {k: (v["score"], v["band"], v["confidence"], v["parent"])
            for k, v in objectives.items()} == {
        "TOP": (0.4, "progress", "off_track", None),
        "MID": (0.4, "progress", "off_track", "TOP"),
        "LEAF": (1, "strong", "on_track", "MID"),
        "SIDE": (0.1, "missed", "off_track", "TOP"),
    }
    assert doc["perspectives"] == [
        {"id": "financial", "title": "Financial", "score": None, "band": None},
        {"id": "customer", "title": "Customer", "score": 0.4, "band": "progress"},
        {"id": "internal", "title": "Internal Processes", "score": 0.6, "band": "progress"},
        {"id": "learning", "title": "Learning & Growth", "score": None, "band": None},
    ]
    assert [(k["id"], k["value"], k["status"]) for k in doc["kpis"]] == [
        ("NRR", 104, "yellow"), ("MTTR", 1.5, "green")]
    assert doc["changes"] == [] and doc["deliveries"] == []


def test_run_dry_run_given_early_as_of_everything_on_track(tmp_path: Path) -> None:
    doc = _run_json("--plan", str(_cascade_plan(tmp_path)), "--as-of", "2026-10-05T12:00")
    assert doc["cycle"]["elapsed"] == pytest.approx(4.5 / 92, abs=1e-4)
    assert {kr["confidence"] for o in doc["objectives"] for kr in o["key_results"]} == {"on_track"}


def test_run_dry_run_given_cycle_timezone_reads_as_of_there(tmp_path: Path) -> None:
    plan = PlanBuilder().with_cycle(timezone="America/New_York").with_objective(
        objective("O", manual_kr("O.1", target=4, current=1))).write(tmp_path / "p.yaml")
    doc = _run_json("--plan", str(plan), "--as-of", "2026-11-16")
    assert doc["cycle"]["as_of"] == "2026-11-16T00:00:00-05:00"


def test_run_dry_run_given_text_output_prints_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--dry-run", "--plan", str(_cascade_plan(tmp_path)),
                                 "--as-of", "2026-11-16"])
    assert result.exit_code == 0
    assert "TOP" in result.stdout and "off_track" in result.stdout and "40%" in result.stdout


def test_run_given_bad_as_of_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--dry-run", "--plan", str(_cascade_plan(tmp_path)),
                                 "--as-of", "mid-november"])
    assert result.exit_code == 2
    assert "--as-of" in result.stderr


def _invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def test_run_given_sandboxes_prints_one_json_document_and_posts(env, world) -> None:
    result = _invoke(env, "run", "--output", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {"cycle", "objectives", "perspectives", "kpis", "changes", "warnings",
            "deliveries"} <= set(doc)
    assert {(d["target"], d["status"]) for d in doc["deliveries"]} == {
        ("slack:C0DEMO0001", "sent"), ("teams_workflow:OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL", "sent")}
    assert len(world.slack.messages("C0DEMO0001")) == 1


def test_run_given_another_holder_of_the_lock_exits_75(env) -> None:
    assert _invoke(env, "db", "upgrade").exit_code == 0
    with RunLock(env["OKR_SYNC_DATABASE_URL"], "run"):
        result = _invoke(env, "run")
    assert result.exit_code == 75
    assert "another run holds the lock" in result.stderr


def test_run_given_jira_settings_missing_exits_2_before_fetching(env, world) -> None:
    broken = {k: v for k, v in env.items() if not k.startswith("OKR_SYNC_JIRA")}
    world.jira.log.clear()
    result = runner.invoke(app, ["run"], env={**broken, "OKR_SYNC_JIRA_URL": ""})
    assert result.exit_code == 2
    assert len(world.jira.log) == 0


def test_run_given_workflow_url_variable_unset_exits_2_before_fetching(env, world) -> None:
    world.jira.log.clear()
    result = _invoke({**env, "OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL": ""}, "run")
    assert result.exit_code == 2
    assert "OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL is unset" in result.stderr
    assert len(world.jira.log) == 0


def test_run_given_dry_run_lists_what_it_would_post(env) -> None:
    result = _invoke(env, "run", "--dry-run")
    assert result.exit_code == 0
    assert "dry_run: post slack:C0DEMO0001 (route leadership)" in result.stdout


def test_fetch_progress_given_terminal_shows_issue_counts(monkeypatch) -> None:
    import io

    from okr_sync.cli import run as cli
    from okr_sync.cli.common import LazyConsole

    buffer = io.StringIO()
    monkeypatch.setattr(cli, "stderr", LazyConsole(file=buffer, force_terminal=True, width=100))
    with cli.fetch_progress() as progress:
        assert progress is not None
        progress("main", 500)
        progress("main", 1200)
    assert "Jira source main" in buffer.getvalue() and "1200 issues" in buffer.getvalue()


def test_fetch_progress_given_no_terminal_stays_silent(monkeypatch) -> None:
    import io

    from okr_sync.cli import run as cli
    from okr_sync.cli.common import LazyConsole

    monkeypatch.setattr(cli, "stderr", LazyConsole(file=io.StringIO(), force_terminal=False))
    with cli.fetch_progress() as progress:
        assert progress is None


def test_run_given_as_of_stores_history_and_snapshot_at_the_real_time(env) -> None:
    from datetime import UTC, datetime, timedelta

    from okr_sync.sync.store.store import Store

    before = datetime.now(UTC)
    result = runner.invoke(app, ["run", "--as-of", "2027-06-01", "--output", "json"], env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["cycle"]["as_of"] == "2027-06-01T00:00:00+00:00"
    with Store(env["OKR_SYNC_DATABASE_URL"]) as store:
        snapshot = store.latest_snapshot()
        history = store.get_history("CO-1.KR1")
    assert snapshot is not None and history
    for stored in (snapshot.as_of, history[-1].as_of):
        assert before - timedelta(seconds=1) <= stored <= datetime.now(UTC)


def test_run_given_as_of_before_last_published_scorecard_refuses_a_real_pass(env) -> None:
    assert runner.invoke(app, ["run"], env=env).exit_code == 0
    refused = runner.invoke(app, ["run", "--as-of", "2026-10-15"], env=env)
    assert refused.exit_code == 2
    assert "--as-of 2026-10-15 is before the last published scorecard" in refused.stderr
    dry = runner.invoke(app, ["run", "--dry-run", "--as-of", "2026-10-15"], env=env)
    assert dry.exit_code == 0, dry.stderr


def test_run_given_cron_digest_time_passed_posts_one_digest_over_several_runs(env, world) -> None:
    from datetime import UTC, datetime, timedelta

    import time_machine

    monday_9 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # the demo plan's digest: 0 9 * * MON
    docs = []
    with time_machine.travel(monday_9 - timedelta(minutes=10), tick=True) as traveller:
        assert _invoke(env, "run").exit_code == 0  # before the digest time: none
        for minutes in (1, 11, 21):
            traveller.move_to(monday_9 + timedelta(minutes=minutes))
            result = _invoke(env, "run", "--output", "json")
            assert result.exit_code == 0, result.stderr
            docs.append(json.loads(result.stdout))
    texts = [m.text for m in world.slack.messages("C0DEMO0001")]
    assert sum(1 for t in texts if t.startswith("Weekly OKR digest")) == 1
    # The run that sent it lists its deliveries (one JSON document); the later ones do not.
    assert [len(d["deliveries"]) for d in docs] == [2, 0, 0]
