"""A complete local world: Jira, Slack and Teams sandboxes on loopback, and okr-sync wired to them.

Used by ``okr-sync demo``, the end-to-end tests and the benchmark. Everything
speaks real HTTP on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from okr_sync.config.plan import Plan
from okr_sync.config.settings import Settings
from okr_sync.connectors.slack.client import SlackClient
from okr_sync.connectors.teams.client import TeamsBotClient, TeamsWorkflowClient
from okr_sync.sandbox.jira.data import JiraDataset, generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sandbox.slack.server import SlackSandbox
from okr_sync.sandbox.teams.server import TeamsSandbox
from okr_sync.sync.delivery.outbox import Senders
from okr_sync.sync.runtime import Runtime, build_runtime

DEMO_CHANNEL = "C0DEMO0001"
DEMO_CONVERSATION = "19:demo@thread.tacv2"
DEMO_WORKFLOW_ENV = "OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL"


@dataclass
class SandboxWorld:
    jira: JiraSandbox
    slack: SlackSandbox
    teams: TeamsSandbox
    workflow_id: str
    database_url: str

    @property
    def dataset(self) -> JiraDataset:
        return self.jira.dataset

    def settings(self, plan_path: Path | None = None) -> Settings:
        email, token = self.jira.basic_auth
        return Settings(
            _env_file=None,
            plan=plan_path or Path("okr-plan.yaml"),
            database_url=self.database_url,
            jira_url=self.jira.url,
            jira_email=email,
            jira_api_token=SecretStr(token),
            slack_bot_token=SecretStr(self.slack.token),
            slack_api_url=self.slack.api_url,
            teams_app_id=self.teams.app_id,
            teams_app_secret=SecretStr(self.teams.app_secret),
            teams_tenant_id=self.teams.tenant_id,
            teams_service_url=self.teams.service_url,
        )

    def environment(self) -> dict[str, str]:
        """The same settings as environment variables, for running the CLI in a subprocess."""
        email, token = self.jira.basic_auth
        return {
            "OKR_SYNC_DATABASE_URL": self.database_url,
            "OKR_SYNC_JIRA_URL": self.jira.url,
            "OKR_SYNC_JIRA_EMAIL": email,
            "OKR_SYNC_JIRA_API_TOKEN": token,
            "OKR_SYNC_SLACK_BOT_TOKEN": self.slack.token,
            "OKR_SYNC_SLACK_API_URL": self.slack.api_url,
            DEMO_WORKFLOW_ENV: self.teams.workflow_url(self.workflow_id),
        }

    def senders(self, *, fast: bool = True) -> Senders:
        """Clients pointed at the sandboxes (Teams' MSAL reaches the sandbox's login)."""
        settings = self.settings()
        interval = 0.0 if fast else 1.0
        assert settings.slack_bot_token is not None and settings.teams_app_secret is not None
        slack_token = settings.slack_bot_token
        teams_secret = settings.teams_app_secret
        workflow_url = self.teams.workflow_url(self.workflow_id)

        def workflow(env_name: str) -> TeamsWorkflowClient:
            del env_name  # every Workflows route of the demo goes to the one sandbox flow
            return TeamsWorkflowClient(SecretStr(workflow_url))

        return Senders(
            slack=lambda: SlackClient(
                settings.slack_api_url, slack_token, channel_interval=interval
            ),
            teams_bot=lambda: TeamsBotClient(
                self.teams.app_id,
                teams_secret,
                self.teams.tenant_id,
                self.teams.service_url,
                http_client=self.teams.msal_http_client(),
            ),
            teams_workflow=workflow,
        )

    def runtime(self, plan: Plan, *, dry_run: bool = False) -> Runtime:
        return build_runtime(self.settings(), plan, dry_run=dry_run, senders=self.senders())


@contextmanager
def sandbox_world(
    workdir: Path,
    *,
    issues: int = 600,
    seed: int = 7,
    dataset: JiraDataset | None = None,
    channels: tuple[str, ...] = (DEMO_CHANNEL,),
    conversations: tuple[str, ...] = (DEMO_CONVERSATION,),
) -> Iterator[SandboxWorld]:
    """Start the three sandboxes (stopped on exit) over a seeded Jira dataset."""
    data = dataset if dataset is not None else generate_dataset(seed=seed, issues=issues)
    with (
        JiraSandbox(data) as jira,
        SlackSandbox(channels=channels) as slack,
        TeamsSandbox(conversations=conversations) as teams,
    ):
        workflow_id = "demo"
        teams.add_workflow(workflow_id)
        previous = os.environ.get(DEMO_WORKFLOW_ENV)
        os.environ[DEMO_WORKFLOW_ENV] = teams.workflow_url(workflow_id)
        try:
            yield SandboxWorld(jira, slack, teams, workflow_id,
                               f"sqlite:///{workdir / 'okr-sync.db'}")
        finally:
            if previous is None:
                os.environ.pop(DEMO_WORKFLOW_ENV, None)
            else:
                os.environ[DEMO_WORKFLOW_ENV] = previous
