"""``okr-sync run`` when Jira refuses the credentials: one failure line, nothing posted."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld

runner = CliRunner()


def test_run_given_wrong_jira_token_on_first_run_prints_one_failure_line_and_exits_1(
    world: SandboxWorld, env: dict[str, str],
) -> None:
    wrong = env | {"OKR_SYNC_JIRA_API_TOKEN": "not-the-token"}

    result = runner.invoke(app, ["run", "--output", "json"], env=wrong)

    assert result.exit_code == 1, result.stderr
    failures = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 1 and failures[0].startswith("failed: source main: "), failures
    assert "not-the-token" not in result.stderr + result.stdout
    doc = json.loads(result.stdout)
    assert doc["deliveries"] == [] and doc["changes"] == []
    jira_krs = [kr for o in doc["objectives"] for kr in o["key_results"]
                if kr["measure"] != "manual"]
    assert jira_krs and all(kr["score"] is None and kr["band"] is None for kr in jira_krs)
    assert world.slack.messages(DEMO_CHANNEL) == []
    assert world.teams.workflow_posts(world.workflow_id) == []
