"""Folders of plans for ``serve --plans`` tests: the Slack-only demo plan, once per
plan, each posting to a channel of its own (so each plan's messages can be counted)."""

from __future__ import annotations

from pathlib import Path

from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld
from support.paths import slack_only_demo_plan


def plan_channel(plan_id: str) -> str:
    return f"C0PLAN{plan_id.upper()}"[:20]


def write_plans_folder(folder: Path, world: SandboxWorld, plan_ids: list[str]) -> Path:
    """``folder/<id>.yaml`` for each id; every plan's channel is added to the Slack sandbox."""
    folder.mkdir(parents=True, exist_ok=True)
    template = slack_only_demo_plan(folder.parent).read_text(encoding="utf-8")
    for plan_id in plan_ids:
        channel = plan_channel(plan_id)
        world.slack.add_channel(channel)
        (folder / f"{plan_id}.yaml").write_text(template.replace(DEMO_CHANNEL, channel),
                                                encoding="utf-8")
    return folder
