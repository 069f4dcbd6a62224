"""Where a message goes, as a typed reference instead of ``"slack:C0123"`` strings.

The stored form (outbox rows, message refs, ``deliveries[].target`` in JSON) stays
``<kind>:<name>``, secret-free and stable; this module is the one place that
writes and reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from okr_sync.config.plan import RouteTarget


class TargetKind(StrEnum):
    SLACK = "slack"
    TEAMS_WORKFLOW = "teams_workflow"
    TEAMS_BOT = "teams_bot"


class UnknownTargetError(ValueError):
    """A stored target reference names no kind this version knows."""


@dataclass(frozen=True)
class TargetRef:
    """One destination: a Slack channel, a Teams Workflows URL (by its env var) or a bot chat."""

    kind: TargetKind
    #: The channel id, the name of the environment variable holding the Workflows
    #: URL (the URL itself is a secret), or the bot's conversation id.
    name: str

    @classmethod
    def for_route(cls, target: RouteTarget) -> TargetRef:
        if target.slack is not None:
            return cls(TargetKind.SLACK, target.slack.channel)
        if target.teams_workflow is not None:
            return cls(TargetKind.TEAMS_WORKFLOW, target.teams_workflow.url_env)
        assert target.teams_bot is not None
        return cls(TargetKind.TEAMS_BOT, target.teams_bot.conversation_id)

    @classmethod
    def parse(cls, key: str) -> TargetRef:
        """The reference a stored ``key`` names (see :attr:`key`)."""
        kind, sep, name = key.partition(":")
        if not sep or not name or kind not in TargetKind.__members__.values():
            raise UnknownTargetError(f"unknown delivery target {key!r}")
        return cls(TargetKind(kind), name)

    @property
    def key(self) -> str:
        """The stable, secret-free stored form, e.g. ``slack:C0123``."""
        return f"{self.kind}:{self.name}"

    @property
    def edits_in_place(self) -> bool:
        """Whether a standing message can be updated (Workflows can only post)."""
        return self.kind is not TargetKind.TEAMS_WORKFLOW

    @property
    def threads_notes(self) -> bool:
        """Whether change notes reply under the standing message (Slack threads)."""
        return self.kind is TargetKind.SLACK

    def __str__(self) -> str:
        return self.key
