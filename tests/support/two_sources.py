"""Two Jira sandboxes in one plan: ``main`` a Jira Cloud (project ENT) and ``legacy`` a
Jira Data Center (project OPS), with a Slack sandbox for the scorecard.

The plan measures one KR per source from a structured selector, and one raw-JQL KR
from ``legacy``, so each source has its own cursor, mirror and membership queries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.config.settings import JiraSourceSettings, Settings
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.source import JiraSource
from okr_sync.connectors.slack.client import SlackClient
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sandbox.slack.server import SlackSandbox
from okr_sync.sync.delivery.outbox import Senders
from okr_sync.sync.runtime import Runtime, build_runtime

CHANNEL = "C0SOURCES1"
MAIN_KR = "CO-1.KR1"
LEGACY_KRS = ("CO-2.KR1", "CO-2.KR2")

PLAN_YAML = f"""\
version: 1
cycle: {{name: "2026-Q4", start: 2026-10-01, end: 2026-12-31, timezone: UTC}}
jira:
  main: {{projects: [ENT]}}
  legacy: {{projects: [OPS]}}
objectives:
  - id: CO-1
    title: Ship on the Cloud site
    notify: [team]
    key_results:
      - id: {MAIN_KR}
        title: Enterprise work done
        measure: {{kind: done_ratio, select: {{project: ENT}}}}
  - id: CO-2
    title: Keep the Data Center running
    notify: [team]
    key_results:
      - id: {LEGACY_KRS[0]}
        title: Operations work done
        measure: {{kind: done_ratio, source: legacy, select: {{project: OPS}}}}
      - id: {LEGACY_KRS[1]}
        title: Open operations items
        measure: {{kind: count, source: legacy, jql: 'project = OPS AND statusCategory != Done'}}
        baseline: 100
        target: 0
routes:
  team:
    - {{slack: {{channel: {CHANNEL}}}}}
"""


@dataclass
class TwoSources:
    cloud: JiraSandbox
    dc: JiraSandbox
    slack: SlackSandbox
    plan_path: Path
    database_url: str

    @property
    def plan(self) -> Plan:
        return load_plan(self.plan_path)

    def settings(self, *, legacy_pat: str | None = None,
                 webhook_secrets: tuple[str | None, str | None] = (None, None)) -> Settings:
        """``webhook_secrets``: the service-wide one and legacy's own."""
        email, token = self.cloud.basic_auth
        shared, own = (SecretStr(s) if s is not None else None for s in webhook_secrets)
        legacy = JiraSourceSettings(url=self.dc.url, pat=SecretStr(legacy_pat or self.dc.pat),
                                    webhook_secret=own)
        return Settings(
            _env_file=None, plan=self.plan_path, database_url=self.database_url,
            jira_url=self.cloud.url, jira_email=email, jira_api_token=SecretStr(token),
            jira={"legacy": legacy}, webhook_secret=shared,
            slack_bot_token=SecretStr(self.slack.token), slack_api_url=self.slack.api_url,
        )

    def environment(self) -> dict[str, str]:
        """The same settings as environment variables (the CLI in a subprocess)."""
        email, token = self.cloud.basic_auth
        return {
            "OKR_SYNC_PLAN": str(self.plan_path),
            "OKR_SYNC_DATABASE_URL": self.database_url,
            "OKR_SYNC_JIRA_URL": self.cloud.url,
            "OKR_SYNC_JIRA_EMAIL": email,
            "OKR_SYNC_JIRA_API_TOKEN": token,
            "OKR_SYNC_JIRA__LEGACY__URL": self.dc.url,
            "OKR_SYNC_JIRA__LEGACY__PAT": self.dc.pat,
            "OKR_SYNC_SLACK_BOT_TOKEN": self.slack.token,
            "OKR_SYNC_SLACK_API_URL": self.slack.api_url,
        }

    def runtime(self, *, legacy_pat: str | None = None,
                webhook_secrets: tuple[str | None, str | None] = (None, None)) -> Runtime:
        """A runtime whose Jira retries do not sleep, so a failing source fails fast."""
        settings = self.settings(legacy_pat=legacy_pat, webhook_secrets=webhook_secrets)
        token = settings.slack_bot_token
        assert token is not None

        def jira(source: JiraSource) -> JiraClient:
            return JiraClient(source, sleep=lambda _: None)

        senders = Senders(slack=lambda: SlackClient(settings.slack_api_url, token,
                                                    channel_interval=0.0))
        return build_runtime(settings, self.plan, senders=senders, jira_make=jira)

    def posted_text(self) -> str:
        """Every message posted to the channel, as it reads (text and blocks)."""
        return json.dumps([[m.text, m.blocks] for m in self.slack.messages(CHANNEL)])


def kr_docs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {kr["id"]: kr for o in doc["objectives"] for kr in o["key_results"]}


@contextmanager
def two_sources(workdir: Path, *, dc_pat: str = "sandbox-pat",
                database_url: str | None = None,
                legacy_name: str = "legacy") -> Iterator[TwoSources]:
    """The sandboxes (stopped on exit); ``dc_pat``: the token the Data Center accepts;
    ``legacy_name``: the plan's name for the Data Center source, as written (``Legacy``)."""
    cloud_data = generate_dataset(seed=11, issues=80, projects=("ENT",))
    dc_data = generate_dataset(seed=12, issues=80, projects=("OPS",))
    plan_path = workdir / "okr-plan.yaml"
    plan_path.write_text(PLAN_YAML.replace("legacy", legacy_name), "utf-8")
    with (
        JiraSandbox(cloud_data) as cloud,
        JiraSandbox(dc_data, deployment="dc", pat=dc_pat) as dc,
        SlackSandbox(channels=(CHANNEL,)) as slack,
    ):
        yield TwoSources(cloud, dc, slack, plan_path,
                         database_url or f"sqlite:///{workdir / 'okr-sync.db'}")
