"""The store commands against the sandboxes: status, explain, checkin, report."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app

runner = CliRunner()


def _invoke(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def test_status_given_a_pass_shows_scorecard_freshness_and_no_secret(env, world) -> None:
    assert _invoke(env, "run").exit_code == 0
    result = _invoke(env, "status", "--output", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["scorecard"]["cycle"]["name"] == "2026-Q4"
    assert doc["freshness"]["sources"][0]["source"] == "main"
    assert doc["deliveries"]["counts"] == {"sent": 2}
    text = _invoke(env, "status")
    assert text.exit_code == 0 and "source main: Jira data up to" in text.stdout
    for secret in (env["OKR_SYNC_JIRA_API_TOKEN"], env["OKR_SYNC_SLACK_BOT_TOKEN"],
                   env["OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL"]):
        assert secret not in result.stdout and secret not in text.stdout


def test_explain_given_mutation_lists_items_and_reasons(env, world) -> None:
    assert _invoke(env, "run").exit_code == 0
    world.dataset.advance(timedelta(minutes=20))
    on_call = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
               if i.project == "OPS" and "on-call" in i.labels and i.status_category != "done"
               and not i.is_subtask]
    world.dataset.transition(on_call[0].id, "done")
    world.dataset.transition(on_call[1].id, "done")
    assert _invoke(env, "run").exit_code == 0
    result = _invoke(env, "explain", "OPS-1.KR2")
    assert result.exit_code == 0, result.stderr
    assert "JQL: project = OPS AND labels = on-call" in result.stdout
    assert "changed since the last pass: +2 done" in result.stdout
    assert on_call[0].key in result.stdout and on_call[1].key in result.stdout


def test_checkin_given_manual_kr_value_is_used_by_next_run(env) -> None:
    result = _invoke(env, "checkin", "CO-1.KR3", "--value", "9", "--note", "two signed")
    assert result.exit_code == 0
    doc = json.loads(_invoke(env, "run", "--dry-run", "--output", "json").stdout)
    kr = next(k for o in doc["objectives"] for k in o["key_results"] if k["id"] == "CO-1.KR3")
    assert kr["value"] == 9 and kr["score"] == 0.9


@pytest.mark.parametrize(
    ("args", "message"),
    [(["checkin", "NOPE", "--value", "1"], "unknown key result 'NOPE'"),
     (["checkin", "OPS-1.KR2", "--value", "1"], "only manual KRs take --value"),
     (["checkin", "CO-1.KR3", "--confidence", "great"], "--confidence must be one of"),
     (["explain", "NOPE"], "unknown id 'NOPE'")],
)
def test_cli_given_bad_arguments_exits_2_naming_the_problem(env, args, message) -> None:
    result = _invoke(env, *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_report_given_a_pass_writes_escaped_html(env, tmp_path: Path) -> None:
    assert _invoke(env, "run").exit_code == 0
    out = tmp_path / "card.html"
    assert _invoke(env, "report", "--output", str(out)).exit_code == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "Learning &amp; Growth" in html
    assert "<script" not in html


def test_report_given_a_pass_writes_every_kr_of_the_plan_with_its_history(env, tmp_path) -> None:
    from okr_sync.config.plan_loader import load_plan
    from support.html import parse_strict

    assert _invoke(env, "run").exit_code == 0
    assert _invoke(env, "checkin", "CO-1.KR3", "--note", "two more in legal").exit_code == 0
    out = tmp_path / "card.html"
    result = _invoke(env, "report", "--output", str(out))
    assert result.exit_code == 0, result.stderr
    root = parse_strict(out.read_text())
    plan = load_plan(Path(env["OKR_SYNC_PLAN"]))
    shown = {e.get("data-kr") for e in root.iter() if e.get("data-kr")}
    assert shown == {kr.id for _, kr in plan.key_results()}
    points = [e.get("data-points") for e in root.iter() if e.get("data-points")]
    assert points and set(points) == {"1"}  # one pass: one history row per KR
    assert "two more in legal" in out.read_text()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_report_given_format_writes_the_same_krs_as_data(env, tmp_path, fmt: str) -> None:
    import csv
    import io

    assert _invoke(env, "run").exit_code == 0
    status = json.loads(_invoke(env, "status", "--output", "json").stdout)["scorecard"]
    expected = {k["id"]: k["value"] for o in status["objectives"] for k in o["key_results"]}
    out = tmp_path / f"card.{fmt}"
    assert _invoke(env, "report", "--output", str(out), "--format", fmt).exit_code == 0
    text = out.read_text()
    if fmt == "json":
        rows = json.loads(text)["rows"]
        values = {r["id"]: r["value"] for r in rows if r["kind"] == "key_result"}
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        values = {r["id"]: json.loads(r["value"]) for r in rows if r["kind"] == "key_result"}
    assert values == expected


def test_report_given_no_pass_yet_exits_2_saying_so(env, tmp_path) -> None:
    result = _invoke(env, "report", "--output", str(tmp_path / "card.html"))
    assert result.exit_code == 2
    assert "no scorecard yet" in result.stderr
