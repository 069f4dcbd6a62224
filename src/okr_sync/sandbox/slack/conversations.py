"""Conversations of the Slack sandbox and the read-only answers about them
(``conversations.info``, ``auth.test``), in Slack's shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: ``auth.test`` of the sandbox's bot.
AUTH_TEST = {
    "ok": True, "url": "https://okr-sync-sandbox.slack.com/", "team": "okr-sync sandbox",
    "user": "okr-sync", "team_id": "T0SANDBOX", "user_id": "U0SANDBOX",
    "bot_id": "B0SANDBOX", "is_enterprise_install": False,
}  # fmt: skip


@dataclass
class SandboxChannel:
    id: str
    name: str
    archived: bool = False
    member: bool = True


def conversation_info(channel: SandboxChannel) -> dict[str, Any]:
    """``conversations.info`` of a public channel: Slack answers it for a bot that is not
    a member too, saying so in ``is_member``."""
    return {
        "ok": True,
        "channel": {
            "id": channel.id, "name": channel.name, "is_channel": True, "is_group": False,
            "is_im": False, "is_private": False, "is_archived": channel.archived,
            "is_member": channel.member, "is_general": False, "created": 1700000000,
        },
    }  # fmt: skip
