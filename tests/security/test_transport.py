"""Plain ``http://`` to anything but loopback is refused before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from okr_sync.cli.main import app
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, DEMO_WORKFLOW_ENV, SandboxWorld, sandbox_world
from support.secret_world import cli_plan

runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=50, seed=2) as w:
        yield w


@pytest.mark.parametrize("variable", [
    "OKR_SYNC_JIRA_URL", "OKR_SYNC_SLACK_API_URL", "OKR_SYNC_TEAMS_SERVICE_URL",
    "OKR_SYNC_TEAMS_AUTHORITY_HOST", DEMO_WORKFLOW_ENV,
])
def test_run_given_plain_http_to_a_remote_host_refuses_it_before_sending(
    variable: str, world: SandboxWorld, tmp_path: Path
) -> None:
    env = {**world.environment(), "OKR_SYNC_PLAN": str(cli_plan(tmp_path)),
           variable: "http://okr.example.com/api/"}
    result = runner.invoke(app, ["run"], env=env)
    assert result.exit_code == 2, result.output
    assert variable in result.stderr and "https://" in result.stderr
    assert len(world.jira.log) == 0
    assert world.slack.messages(DEMO_CHANNEL) == []
    assert world.teams.workflow_posts(world.workflow_id) == []
