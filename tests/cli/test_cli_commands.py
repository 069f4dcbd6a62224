"""The CLI against the sandboxes: run, status, explain, checkin, report, lock, secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.store.locks import RunLock
from support.paths import DEMO_PLAN

runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=400, seed=11) as w:
        yield w


@pytest.fixture
def env(world: SandboxWorld, tmp_path: Path) -> dict[str, str]:
    # The CLI has no way to reach a real Microsoft login, so this plan posts to Slack and
    # a Workflows webhook only; the bot path is covered by the pipeline tests.
    text = DEMO_PLAN.read_text().replace(
        '    - {teams_bot: {conversation_id: "19:demo@thread.tacv2"}}\n', "")
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    return {**world.environment(), "OKR_SYNC_PLAN": str(plan)}


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
     (["explain", "NOPE"], "unknown key result 'NOPE'")],
)
def test_cli_given_bad_arguments_exits_2_naming_the_problem(env, args, message) -> None:
    result = _invoke(env, *args)
    assert result.exit_code == 2
    assert message in result.stderr


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


def test_report_given_a_pass_writes_escaped_html(env, tmp_path: Path) -> None:
    assert _invoke(env, "run").exit_code == 0
    out = tmp_path / "card.html"
    assert _invoke(env, "report", "--output", str(out)).exit_code == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "Learning &amp; Growth" in html
    assert "<script" not in html


def test_secrets_given_full_pass_never_reach_db_output_or_logs(env, caplog, tmp_path) -> None:
    caplog.set_level(logging.DEBUG)
    outputs = [_invoke(env, "run", "--output", "json"), _invoke(env, "status"),
               _invoke(env, "explain", "CO-1.KR1")]
    database = Path(env["OKR_SYNC_DATABASE_URL"].removeprefix("sqlite:///")).read_bytes()
    secrets = [env["OKR_SYNC_JIRA_API_TOKEN"], env["OKR_SYNC_SLACK_BOT_TOKEN"],
               env["OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL"].split("sig=")[1]]
    for secret in secrets:
        assert secret.encode() not in database
        assert secret not in caplog.text
        for result in outputs:
            assert secret not in result.stdout and secret not in result.stderr


def test_demo_given_no_credentials_runs_the_whole_flow(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--issues", "300"], env={})
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "pass 3" in result.stdout and "reply  slack:C0DEMO0001" in result.stdout
    assert list(tmp_path.iterdir()) == []  # the demo leaves nothing behind


def test_fetch_progress_given_terminal_shows_issue_counts(monkeypatch) -> None:
    import io

    from rich.console import Console

    from okr_sync.cli import main as cli

    buffer = io.StringIO()
    monkeypatch.setattr(cli, "stderr", Console(file=buffer, force_terminal=True, width=100))
    with cli.fetch_progress() as progress:
        assert progress is not None
        progress("main", 500)
        progress("main", 1200)
    assert "Jira source main" in buffer.getvalue() and "1200 issues" in buffer.getvalue()


def test_fetch_progress_given_no_terminal_stays_silent(monkeypatch) -> None:
    import io

    from rich.console import Console

    from okr_sync.cli import main as cli

    monkeypatch.setattr(cli, "stderr", Console(file=io.StringIO(), force_terminal=False))
    with cli.fetch_progress() as progress:
        assert progress is None


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
